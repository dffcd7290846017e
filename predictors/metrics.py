"""Accuracy of latency predictions, as the field reports it (nn-Meter, HELP, BRP-NAS).

::

    predicted ms ─┐
                  ├─> acc5 / acc10 (share within 5% / 10%), MAPE, RMSE   (absolute accuracy)
    measured ms ──┘   Kendall tau, Spearman rho                          (ranking only)

A ranking-only proxy (FLOPs) has no unit, so ``evaluate(..., ranking_only=True)`` reports the rank
correlations and leaves the absolute figures as NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

METRICS: tuple[str, ...] = ("acc5", "acc10", "mape", "rmse", "kendall", "spearman")


def _pair(predicted: np.ndarray | list[float], measured: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(predicted, dtype=float)
    true = np.asarray(measured, dtype=float)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"predicted and measured must be 1-D of one length (got {pred.shape} and {true.shape})")
    if len(true) == 0:
        raise ValueError("no values to score")
    if np.any(true <= 0):
        raise ValueError("measured latencies must be > 0")
    return pred, true


def relative_error(predicted, measured) -> np.ndarray:
    """``|predicted - measured| / measured`` per item."""
    pred, true = _pair(predicted, measured)
    return np.abs(pred - true) / true


def accuracy_within(predicted, measured, tolerance: float) -> float:
    """Share of items whose relative error is at most ``tolerance`` (acc10: tolerance 0.10)."""
    return float(np.mean(relative_error(predicted, measured) <= tolerance + 1e-12))


def mape(predicted, measured) -> float:
    """Mean absolute percentage error, in percent."""
    return float(100.0 * np.mean(relative_error(predicted, measured)))


def rmse(predicted, measured) -> float:
    """Root mean squared error, in the unit of the inputs (ms)."""
    pred, true = _pair(predicted, measured)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def kendall_tau(predicted, measured) -> float:
    """Kendall's tau-b between predicted and measured order; NaN for fewer than two items."""
    pred, true = _pair(predicted, measured)
    if len(true) < 2:
        return math.nan
    return float(stats.kendalltau(pred, true).statistic)


def spearman_rho(predicted, measured) -> float:
    """Spearman's rank correlation; NaN for fewer than two items."""
    pred, true = _pair(predicted, measured)
    if len(true) < 2:
        return math.nan
    return float(stats.spearmanr(pred, true).statistic)


def evaluate(predicted, measured, *, ranking_only: bool = False) -> dict[str, float]:
    """Every metric of ``METRICS`` in one dict (absolute ones NaN when ``ranking_only``)."""
    if ranking_only:
        _pair(np.abs(np.asarray(predicted, dtype=float)) + 1.0, measured)
        absolute = {"acc5": math.nan, "acc10": math.nan, "mape": math.nan, "rmse": math.nan}
    else:
        absolute = {
            "acc5": accuracy_within(predicted, measured, 0.05),
            "acc10": accuracy_within(predicted, measured, 0.10),
            "mape": mape(predicted, measured),
            "rmse": rmse(predicted, measured),
        }
    return {**absolute, "kendall": kendall_tau(predicted, measured), "spearman": spearman_rho(predicted, measured)}
