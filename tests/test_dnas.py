"""DNAS: loss forms, temperature schedule, disjoint weight/arch splits, a tiny search that resumes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from search import dnas, scoring
from search.data import ClipSet, MovingDigitsConfig, make_moving_digits
from search.checkpoint import CHECKPOINT, LOG
from search.config import SearchConfig, SearchConfigError
from search.dnas import run_search, split_for_arch
from search.losses import fbnet_loss, fbnet_unit_ms, target_loss, temperature_at
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


def test_in_place_distillation_mixes_ce_with_kl_to_the_anchor():
    logits, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert dnas.path_loss(logits, ce, None, 0.5) is ce  # no anchor (uniform sampling): plain CE
    assert dnas.path_loss(logits, ce, logits.clone(), 0.5) == pytest.approx(0.5 * float(ce))  # KL to itself is 0
    teacher = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    p, q = teacher.softmax(1), logits.softmax(1)
    kl = float((p * (p.log() - q.log())).sum(1).mean())
    assert float(dnas.path_loss(logits, ce, teacher, 0.25)) == pytest.approx(0.75 * float(ce) + 0.25 * kl, rel=1e-5)
    with pytest.raises(SearchConfigError, match="distill"):
        SearchConfig(distill=1.5)


def test_weight_and_arch_splits_are_disjoint_80_20():
    clips = torch.arange(50).view(50, 1, 1, 1, 1).expand(50, 1, 2, 4, 4).to(torch.uint8).clone()
    train = ClipSet(clips=clips, labels=torch.zeros(50, dtype=torch.int64))
    weights, arch = split_for_arch(train, 0.2, seed=0)
    assert (len(weights), len(arch)) == (40, 10)
    ids = lambda part: set(part.clips[:, 0, 0, 0, 0].tolist())  # noqa: E731
    assert not ids(weights) & ids(arch) and len(ids(weights) | ids(arch)) == 50


def test_tiny_search_moves_logits_checkpoints_and_resumes(tmp_path, monkeypatch):
    data = make_moving_digits(
        MovingDigitsConfig(n_train=40, n_val=12, n_test=4, num_classes=4, channels=1, frames=4, size=16)
    )
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
    assert 0.0 <= result.history[1]["val_acc_sampled"] <= 1.0  # archs drawn from softmax(logits), shared weights
    log = json.loads((tmp_path / LOG).read_text())
    assert len(log["history"]) == 2 and log["config"]["loss"] == "target"
    with pytest.raises(SearchConfigError, match="other settings"):
        run_search(tiny_supernet(), data, SearchConfig(**{**config.__dict__, "arch_lr": 0.1}), out_dir=tmp_path, progress=False)


@pytest.mark.parametrize("weight_paths", ["uniform", "logits"])
def test_uniform_weight_paths_train_candidates_the_logits_would_not_draw(tmp_path, weight_paths):
    data = make_moving_digits(MovingDigitsConfig(n_train=40, n_val=8, n_test=4, num_classes=4, channels=1, frames=4, size=16))
    net = tiny_supernet()
    with torch.no_grad():
        for layer in net.layers:
            layer.logits.copy_(torch.tensor([100.0, 0.0, 0.0]))  # the logits draw candidate 0, always
    config = SearchConfig(epochs=1, warmup_epochs=0, batch_size=8, mode="hard", sampling="uniform", weight_paths=weight_paths)
    run_search(net, data, config, out_dir=tmp_path, progress=False)  # 4 weight and arch steps; scoring runs on copies
    others = sum(candidate.calls for layer in net.layers for candidate in layer.candidates[1:])
    assert net.layers[0].candidates[0].calls > 0
    assert others == 0 if weight_paths == "logits" else others > 0
    with pytest.raises(SearchConfigError, match="weight_paths must be one of logits, uniform"):
        SearchConfig(weight_paths="anchor")


def test_a_bad_derivation_is_refused_before_the_supernet_trains(tmp_path):
    from search.device_search import search_device
    from search.space import load_space

    data = make_moving_digits(MovingDigitsConfig(n_train=8, n_val=8, n_test=4, num_classes=4, channels=3, frames=4, size=16))
    space = load_space("tiny")
    table = [[1.0] * len(slot.candidates) for slot in space.layers]
    with pytest.raises(SearchConfigError, match="derive must be one of argmax, evolution, got 'best'"):
        search_device(space, data, SearchConfig(epochs=1, warmup_epochs=0), latency_table=table, fixed_ms=1.0,
                      device="d", out_dir=tmp_path / "s", derive="best", progress=False)
    assert not (tmp_path / "s").exists()


def test_sampled_accuracy_uses_batch_statistics_on_a_copy():
    data = make_moving_digits(MovingDigitsConfig(n_train=8, n_val=16, n_test=4, num_classes=4, channels=1, frames=4, size=16))
    net = tiny_supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    accuracy = scoring.sampled_accuracy(net, data.val, batch_size=8)
    assert 0.0 <= accuracy <= 1.0 and net.training  # left in its mode
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running stats untouched
    assert sum(op.calls for layer in net.layers for op in layer.candidates) == 0  # the copy ran, not net


def test_fbnet_unit_puts_the_uniform_supernet_at_28_units():
    table = [[1.0, 3.0], [0.5, 0.5, 2.0]]
    unit = fbnet_unit_ms(table, 1.0)
    assert (1.0 + 2.0 + 1.0) / unit == pytest.approx(28.0)
    assert fbnet_unit_ms([[v * 100 for v in row] for row in table], 100.0) == pytest.approx(100 * unit)


def _tiny_lut(path):
    """A lookup-table file for the tiny space with made-up latencies (ms ~ MFLOPs)."""
    from predictors.lut import space_entries
    from search.space import load_space

    entries = space_entries(load_space("tiny"))
    entries["median_ms"] = [0.05 + float(spec.get("flops", 0)) / 2e7 for spec in entries["spec"]]
    entries.drop(columns=["spec"]).to_csv(path, index=False)
    return path


SMALL_RUN = ["--space", "tiny", "--epochs", "2", "--warmup", "1", "--train-clips", "64", "--frames", "4", "--size", "16",
             "--batch-size", "16"]


@pytest.mark.slow
def test_cli_search_then_train_on_the_tiny_space(tmp_path):
    from click.testing import CliRunner

    from search.arch import load_arch
    from vidlat.cli import cli

    lut = _tiny_lut(tmp_path / "lut.csv")
    runner = CliRunner()
    result = runner.invoke(cli, ["search", "--device", "ort-cpu-1t", "--lut", str(lut), *SMALL_RUN, "--derive", "evolution",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    for name in ("arch.yaml", "report.json", "probabilities.png", "latency.png", "search_log.json", "checkpoint.pt"):
        assert (tmp_path / "s" / name).is_file(), name
    arch = load_arch(tmp_path / "s" / "arch.yaml")
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert arch.space == "tiny" and report["layers"] == arch.layers and report["predicted_ms"] > 0
    assert 0.0 <= report["val_acc_sampled"] <= 1.0 and "(sampled archs)" in result.output
    argmax = report["argmax"]  # the evolution's arch: no slower than the logits' argmax, no worse on the supernet
    assert report["derive"] == "evolution" and report["derive_scored"] > 1 and "derived arch (evolution)" in result.output
    assert report["predicted_ms"] <= argmax["predicted_ms"] and report["val_acc_supernet"] >= argmax["val_acc_supernet"]
    # another derivation on the finished search (the default): no training, the argmax itself
    again = runner.invoke(cli, ["search", "--device", "ort-cpu-1t", "--lut", str(lut), *SMALL_RUN, "--out", str(tmp_path / "s")])
    rederived = json.loads((tmp_path / "s" / "report.json").read_text())
    assert again.exit_code == 0 and rederived["resumed_from_epoch"] == 2 and rederived["derive"] == "argmax"
    assert rederived["layers"] == argmax["layers"] == load_arch(tmp_path / "s" / "arch.yaml").layers
    trained = runner.invoke(cli, ["train", str(tmp_path / "s" / "arch.yaml"), "--epochs", "1", "--train-clips", "32",
                                  "--test-clips", "20", "--frames", "4", "--size", "16", "--out", str(tmp_path / "t")])
    assert trained.exit_code == 0, trained.output
    assert "test accuracy" in trained.output and (tmp_path / "t" / "weights.pt").is_file()
    from search.train import load_weights

    model = load_weights(load_arch(tmp_path / "t" / "arch.yaml"), tmp_path / "t" / "weights.pt")
    assert model(torch.rand(2, 3, 4, 16, 16)).shape == (2, 4)


def test_cli_search_without_measurements_says_to_profile_first(tmp_path):
    from click.testing import CliRunner

    from profiler.store import LatencyStore
    from vidlat.cli import cli

    LatencyStore(tmp_path / "empty.sqlite").close()
    result = CliRunner().invoke(cli, ["search", "--device", "ort-cpu-1t", "--space", "tiny", "--store", str(tmp_path / "empty.sqlite")])
    assert result.exit_code == 2
    assert "vidlat profile --device ort-cpu-1t --space tiny" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_search_under_torchrun_with_two_gloo_processes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    lut = _tiny_lut(tmp_path / "lut.csv")
    vidlat = Path(sys.executable).parent / "vidlat"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(vidlat),
               "search", "--device", "ort-cpu-1t", "--lut", str(lut), *SMALL_RUN, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    log = json.loads((tmp_path / "ddp" / "search_log.json").read_text())
    assert len(log["history"]) == 2 and (tmp_path / "ddp" / "arch.yaml").is_file()


def _tiny_data():
    return make_moving_digits(MovingDigitsConfig(n_train=16, n_val=8, n_test=4, num_classes=4, channels=1, frames=4, size=16))


def test_resume_refuses_other_data_settings_and_epochs_unless_extended(tmp_path):
    data, config = _tiny_data(), SearchConfig(epochs=1, warmup_epochs=0, batch_size=8)
    settings = {"data": "moving-digits", "train_clips": 16, "frames": 4, "size": 16}
    run_search(tiny_supernet(), data, config, out_dir=tmp_path, data_settings=settings, progress=False)
    with pytest.raises(SearchConfigError, match=r"other settings \(frames, train_clips\); use another --out or delete it"):
        run_search(tiny_supernet(), data, config, out_dir=tmp_path, data_settings={**settings, "frames": 8, "train_clips": 32},
                   progress=False)
    longer = SearchConfig(**{**config.__dict__, "epochs": 2})
    with pytest.raises(SearchConfigError, match="1-epoch search .* pass --extend"):
        run_search(tiny_supernet(), data, longer, out_dir=tmp_path, data_settings=settings, progress=False)
    other_table = tiny_supernet(fixed_ms=2.0)  # the device's measurements changed
    with pytest.raises(SearchConfigError, match="latency_table"):
        run_search(other_table, data, config, out_dir=tmp_path, data_settings=settings, progress=False)
    result = run_search(tiny_supernet(), data, longer, out_dir=tmp_path, data_settings=settings, extend=True, progress=False)
    assert result.resumed_from == 1 and [row["epoch"] for row in result.history] == [0, 1]
    with pytest.raises(SearchConfigError, match="cannot shorten"):
        run_search(tiny_supernet(), data, config, out_dir=tmp_path, data_settings=settings, extend=True, progress=False)
    assert json.loads((tmp_path / LOG).read_text())["settings"]["frames"] == 4


@pytest.mark.parametrize("kind", ["random bytes", "truncated", "missing keys", "not a dict", "no data settings"])
def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, kind):
    data, config = _tiny_data(), SearchConfig(epochs=1, warmup_epochs=0, batch_size=8)
    path = tmp_path / CHECKPOINT
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "truncated":
        run_search(tiny_supernet(), data, config, out_dir=tmp_path, progress=False)
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "missing keys":
        torch.save({"epoch": 0, "model": {}}, path)
    elif kind == "no data settings":  # written before the checkpoint recorded them
        run_search(tiny_supernet(), data, config, out_dir=tmp_path, progress=False)
        state = torch.load(path, weights_only=True)
        del state["settings"]
        torch.save(state, path)
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(SearchConfigError, match="not a (readable )?search checkpoint|earlier vidlat") as caught:
        run_search(tiny_supernet(), data, config, out_dir=tmp_path, progress=False)
    assert "\n" not in str(caught.value) and "delete it" in str(caught.value)


def test_cli_resume_checks_data_settings_epochs_extend_and_corrupt_files(tmp_path):
    from click.testing import CliRunner

    from vidlat.cli import cli

    lut = _tiny_lut(tmp_path / "lut.csv")
    out = tmp_path / "s"
    base = ["search", "--device", "ort-cpu-1t", "--lut", str(lut), "--space", "tiny", "--warmup", "0", "--frames", "2",
            "--size", "16", "--batch-size", "8", "--out", str(out)]
    runner = CliRunner()
    first = runner.invoke(cli, [*base, "--epochs", "1", "--train-clips", "10"])
    assert first.exit_code == 0, first.output
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "dnas" and report["pareto"] and (out / "pareto.png").is_file()
    assert {row["origin"] for row in report["landmarks"]} >= {"reference x3d-xs", "reference r2p1d"}
    changed = runner.invoke(cli, [*base, "--epochs", "1", "--train-clips", "12"])
    assert changed.exit_code == 2 and "other settings (train_clips)" in changed.output
    more = runner.invoke(cli, [*base, "--epochs", "2", "--train-clips", "10"])
    assert more.exit_code == 2 and "pass --extend" in more.output
    extended = runner.invoke(cli, [*base, "--epochs", "2", "--train-clips", "10", "--extend"])
    assert extended.exit_code == 0, extended.output
    assert json.loads((out / "report.json").read_text())["resumed_from_epoch"] == 1
    (out / CHECKPOINT).write_bytes(b"\x80\x02garbage" * 50)
    corrupt = runner.invoke(cli, [*base, "--epochs", "2", "--train-clips", "10"])
    errors = [line for line in corrupt.output.splitlines() if line.startswith("error:")]
    assert corrupt.exit_code == 2 and len(errors) == 1 and "not a readable search checkpoint" in errors[0]
    assert "Traceback" not in corrupt.output
