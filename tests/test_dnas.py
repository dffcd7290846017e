"""DNAS: loss forms, temperature schedule, disjoint weight/arch splits, a tiny search that resumes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from search import dnas
from search.data import MovingDigitsConfig, make_moving_digits
from search.dnas import (
    CHECKPOINT,
    LOG,
    SearchConfig,
    SearchConfigError,
    fbnet_loss,
    run_search,
    split_for_arch,
    target_loss,
    temperature_at,
)
from test_supernet import tiny_supernet


def test_temperature_decays_by_exp_minus_0045_per_epoch():
    assert temperature_at(0) == 5.0
    assert temperature_at(1) == pytest.approx(5.0 * math.exp(-0.045))
    assert temperature_at(10, initial=2.0, decay=0.1) == pytest.approx(2.0 * math.exp(-1.0))
    assert temperature_at(3) < temperature_at(2)


def test_fbnet_loss_is_ce_times_alpha_log_lat_to_the_beta():
    ce, lat = torch.tensor(1.3), torch.tensor(20.0, requires_grad=True)
    loss = fbnet_loss(ce, lat, alpha=0.2, beta=0.6)
    assert float(loss.detach()) == pytest.approx(1.3 * 0.2 * math.log(20.0) ** 0.6)
    loss.backward()
    assert float(lat.grad) > 0  # slower costs more
    tiny = fbnet_loss(ce, torch.tensor(0.5))  # below one unit: clamped, finite
    assert torch.isfinite(tiny) and float(fbnet_loss(ce, torch.tensor(5.0), unit_ms=0.1)) == pytest.approx(
        1.3 * 0.2 * math.log(50.0) ** 0.6
    )


def test_target_loss_is_free_below_budget_and_linear_above():
    ce = torch.tensor(0.7)
    assert float(target_loss(ce, torch.tensor(8.0), target_ms=10.0)) == pytest.approx(0.7)
    assert float(target_loss(ce, torch.tensor(15.0), target_ms=10.0, weight=2.0)) == pytest.approx(0.7 + 2.0 * 0.5)
    lat = torch.tensor(12.0, requires_grad=True)
    target_loss(ce, lat, target_ms=10.0).backward()
    assert float(lat.grad) > 0


def test_bad_settings_are_clear_errors():
    with pytest.raises(SearchConfigError, match="target_ms"):
        SearchConfig(loss="target")
    with pytest.raises(SearchConfigError, match="mode"):
        SearchConfig(mode="medium")
    with pytest.raises(SearchConfigError, match="warmup"):
        SearchConfig(epochs=2, warmup_epochs=2)


def test_weight_and_arch_splits_are_disjoint_80_20():
    train = make_moving_digits(MovingDigitsConfig(n_train=50, n_val=2, n_test=2, channels=1, frames=4, size=16)).train
    train.clips = torch.arange(50).view(50, 1, 1, 1, 1).expand(50, 1, 4, 16, 16).to(torch.uint8).clone()
    weights, arch = split_for_arch(train, 0.2, seed=0)
    assert (len(weights), len(arch)) == (40, 10)
    ids = lambda part: set(part.clips[:, 0, 0, 0, 0].tolist())  # noqa: E731
    assert not ids(weights) & ids(arch) and len(ids(weights) | ids(arch)) == 50


def test_tiny_search_moves_logits_checkpoints_and_resumes(tmp_path, monkeypatch):
    data = make_moving_digits(MovingDigitsConfig(n_train=40, n_val=12, n_test=4, channels=1, frames=4, size=16))
    data.classes = data.classes[:4]
    for part in (data.train, data.val):
        part.labels = part.labels % 4
    config = SearchConfig(epochs=2, warmup_epochs=1, batch_size=8, mode="hard", loss="target", target_ms=2.0,
                          latency_weight=5.0, arch_lr=0.2)
    net = tiny_supernet()
    train_epoch = dnas._train_epoch

    def interrupted(*args, **kwargs):
        if args[7] == 1:  # the epoch argument: stop after the warm-up epoch
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(dnas, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(net, data, config, out_dir=tmp_path, progress=False)
    assert all(torch.all(layer.logits == 0) for layer in net.layers)  # warm-up trains weights only
    assert (tmp_path / CHECKPOINT).is_file()
    monkeypatch.setattr(dnas, "_train_epoch", train_epoch)
    resumed = tiny_supernet()
    result = run_search(resumed, data, config, out_dir=tmp_path, progress=False)
    assert result.resumed_from == 1 and [row["epoch"] for row in result.history] == [0, 1]
    assert result.history[1]["searching"] and result.history[1]["temperature"] == pytest.approx(temperature_at(1))
    assert result.expected_ms < result.history[0]["expected_ms"]  # the budget pushed latency down
    assert len(result.derived) == 2 and 0.0 <= result.history[1]["val_acc"] <= 1.0
    log = json.loads((tmp_path / LOG).read_text())
    assert len(log["history"]) == 2 and log["config"]["loss"] == "target"
    with pytest.raises(SearchConfigError, match="other settings"):
        run_search(tiny_supernet(), data, SearchConfig(**{**config.__dict__, "arch_lr": 0.1}), out_dir=tmp_path, progress=False)
