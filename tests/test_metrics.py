"""Latency metrics against small cases worked out by hand."""

import math

import numpy as np
import pytest

from predictors.metrics import accuracy_within, evaluate, kendall_tau, mape, rmse, spearman_rho


def test_accuracy_within_counts_relative_errors_by_hand():
    measured = [10.0, 10.0, 10.0, 10.0]
    predicted = [10.4, 10.6, 9.0, 12.0]  # relative errors 4%, 6%, 10%, 20%
    assert accuracy_within(predicted, measured, 0.05) == 0.25
    assert accuracy_within(predicted, measured, 0.10) == 0.75  # 10% exactly counts as within


def test_mape_and_rmse_by_hand():
    assert mape([11.0, 18.0], [10.0, 20.0]) == pytest.approx(10.0)  # (10% + 10%) / 2
    assert rmse([11.0, 18.0], [10.0, 20.0]) == pytest.approx(math.sqrt((1 + 4) / 2))


def test_rank_correlations_by_hand():
    measured = [1.0, 2.0, 3.0, 4.0]
    assert kendall_tau([10, 20, 30, 40], measured) == pytest.approx(1.0)
    assert kendall_tau([40, 30, 20, 10], measured) == pytest.approx(-1.0)
    # one swapped adjacent pair: 5 concordant, 1 discordant of 6 pairs -> (5 - 1) / 6
    assert kendall_tau([1, 3, 2, 4], measured) == pytest.approx(4 / 6)
    # d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman_rho([1, 3, 2, 4], measured) == pytest.approx(0.8)


def test_evaluate_ranking_only_leaves_absolute_metrics_undefined():
    flops = [1e9, 2e9, 3e9]
    scores = evaluate(flops, [1.0, 2.0, 3.0], ranking_only=True)
    assert np.isnan(scores["acc10"]) and np.isnan(scores["mape"]) and np.isnan(scores["rmse"])
    assert scores["kendall"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="one length"):
        evaluate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="> 0"):
        evaluate([1.0], [0.0])
