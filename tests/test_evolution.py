"""Evolution under a hard latency budget, the Pareto front and plot, `vidlat search --method evolution`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from predictors.errors import PredictorError
from predictors.network import Calibration
from search.data import MovingDigitsConfig, make_moving_digits
from search.config import EvolutionConfig, EvolutionConfigError, SearchConfigError
from search.derive import derive_arch
from search.evolution import evolve
from search.pareto import PredictedLatency, ScoredArch, pareto_front, write_pareto
from search.scoring import SupernetScorer
from search.supernet import MixedLayer, Supernet
from test_dnas import _tiny_lut
from test_predictors_cli import DEVICE, store_path  # noqa: F401 (a store of synthetic measurements of 'tiny')
from test_supernet import LATENCIES, tiny_supernet

TABLE = [[4.0, 2.5, 1.0, 0.3], [3.0, 2.0, 0.7, 0.1], [5.0, 1.5, 0.9, 0.2], [2.0, 1.2, 0.6, 0.05], [3.5, 2.2, 1.1, 0.4],
         [4.5, 3.0, 0.8, 0.3]]
FIXED_MS = 1.0
TABLE_MIN = FIXED_MS + sum(min(row) for row in TABLE)
LATENCY = PredictedLatency.of(TABLE, FIXED_MS)


def identity_supernet() -> Supernet:
    """6 layers x 4 candidates (4096 archs) of identity blocks with the latencies of TABLE."""
    layers = [MixedLayer([nn.Identity() for _ in row], row, [f"c{i}" for i in range(len(row))]) for row in TABLE]
    return Supernet(stem=nn.Identity(), layers=layers, head=nn.Identity(), fixed_ms=FIXED_MS)


def slow_is_accurate(path) -> float:
    """A deterministic stand-in for supernet accuracy that prefers slow candidates (so the budget binds)."""
    return sum((3 - i) * (layer + 1) for layer, i in enumerate(path)) / 63


SMALL = EvolutionConfig(population=6, generations=4, parents=3, mutation_prob=0.3, seed=1)


@pytest.mark.parametrize("budget", [TABLE_MIN, TABLE_MIN + 0.3, 8.0, 20.0, 100.0])
def test_every_scored_arch_and_the_result_meet_the_budget(budget):
    net = identity_supernet()
    result = evolve(net, slow_is_accurate, latency=LATENCY, budget_ms=budget, config=SMALL)
    assert result.scored and all(arch.predicted_ms <= budget for arch in result.scored)
    assert result.best.predicted_ms <= budget and result.best in result.scored
    assert result.best.accuracy == max(arch.accuracy for arch in result.scored)
    assert len({arch.path for arch in result.scored}) == len(result.scored)  # each arch scored once
    assert [row["generation"] for row in result.generations] == list(range(SMALL.generations + 1))


def test_evolution_improves_on_its_random_generation_and_uses_the_budget():
    result = evolve(identity_supernet(), slow_is_accurate, latency=LATENCY, budget_ms=12.0, config=SMALL)
    first = max(arch.accuracy for arch in result.scored if arch.origin.endswith("generation 0"))
    assert result.best.accuracy > first
    assert result.best.predicted_ms > 0.8 * 12.0  # slow is accurate here: the best arch spends most of the budget
    assert [row["best_acc"] for row in result.generations] == sorted(row["best_acc"] for row in result.generations)


def test_seed_paths_open_the_first_generation_repaired_to_the_budget():
    slowest, fastest = [0] * len(TABLE), [len(row) - 1 for row in TABLE]
    mid = [1] * len(TABLE)
    result = evolve(identity_supernet(), slow_is_accurate, latency=LATENCY, budget_ms=14.0, config=SMALL,
                    seeds=[mid, slowest, mid, fastest])
    first = [arch for arch in result.scored if arch.origin.endswith("generation 0")]
    assert [arch.origin for arch in first[:3]] == ["seed, generation 0"] * 3  # the repeat of mid is dropped
    assert first[0].path == tuple(mid) and first[2].path == tuple(fastest)  # both within the budget: kept as they are
    assert first[1].predicted_ms <= 14.0 < LATENCY(slowest)  # over it: repaired
    assert len(first) == SMALL.population and all(arch.origin == "random, generation 0" for arch in first[3:])


def test_derive_evolution_is_never_slower_nor_worse_on_the_supernet_than_the_argmax():
    net = identity_supernet()
    with torch.no_grad():
        for layer, index in zip(net.layers, [3, 0, 3, 0, 3, 0]):  # a mix of the slowest and the fastest candidates
            layer.logits[index] = 2.0
    plain = derive_arch(net, slow_is_accurate, latency=LATENCY)  # the default: the argmax
    assert plain.chosen == plain.argmax and plain.argmax.path == (3, 0, 3, 0, 3, 0) and plain.scored == [plain.argmax]
    derived = derive_arch(net, slow_is_accurate, latency=LATENCY, how="evolution", evolution=SMALL)
    assert derived.argmax == plain.argmax and derived.chosen in derived.scored
    assert derived.scored[0].path == derived.argmax.path and derived.scored[0].origin == "seed, generation 0"
    assert derived.chosen.predicted_ms <= derived.argmax.predicted_ms + 1e-12
    assert derived.chosen.accuracy > derived.argmax.accuracy  # slow early layers score higher for the same ms here
    assert derive_arch(net, slow_is_accurate, latency=LATENCY, how="evolution", evolution=SMALL).chosen == derived.chosen  # seeded
    with pytest.raises(SearchConfigError, match="derive must be one of argmax, evolution"):
        derive_arch(net, slow_is_accurate, latency=LATENCY, how="best")


def test_same_seed_same_archs_other_seed_other_archs():
    runs = [evolve(identity_supernet(), slow_is_accurate, latency=LATENCY, budget_ms=12.0, config=SMALL) for _ in range(2)]
    assert [a.path for a in runs[0].scored] == [a.path for a in runs[1].scored] and runs[0].best == runs[1].best
    reseeded = EvolutionConfig(**{**SMALL.__dict__, "seed": 2})
    other = evolve(identity_supernet(), slow_is_accurate, latency=LATENCY, budget_ms=12.0, config=reseeded)
    assert [a.path for a in other.scored] != [a.path for a in runs[0].scored]


def test_calibrated_latency_is_the_budgeted_one():
    calibrated = PredictedLatency.of(TABLE, FIXED_MS, Calibration("affine", scale=1.5, offset_ms=0.5, networks=6))
    net = identity_supernet()
    result = evolve(net, slow_is_accurate, latency=calibrated, budget_ms=12.0, config=SMALL)
    for arch in result.scored:
        assert arch.predicted_ms == pytest.approx(1.5 * net.path_latency_ms(arch.path) + 0.5) and arch.predicted_ms <= 12.0
    with pytest.raises(EvolutionConfigError, match="below the fastest"):
        evolve(net, slow_is_accurate, latency=calibrated, budget_ms=1.5 * TABLE_MIN)  # met uncalibrated, not calibrated
    with pytest.raises(PredictorError, match="not positive"):
        PredictedLatency.of(TABLE, FIXED_MS, Calibration("scale", scale=-1.0))


def test_budget_below_the_table_minimum_is_one_line():
    with pytest.raises(EvolutionConfigError, match="below the fastest arch") as caught:
        evolve(identity_supernet(), slow_is_accurate, latency=LATENCY, budget_ms=TABLE_MIN - 0.01)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kwargs, word", [({"population": 1}, "population"), ({"parents": 0}, "parents"),
                                          ({"mutation_prob": 0.0}, "mutation_prob"), ({"crossover_fraction": 1.5}, "crossover"),
                                          ({"generations": -1}, "generations")])
def test_bad_evolution_settings_are_typed_errors(kwargs, word):
    with pytest.raises(EvolutionConfigError, match=word):
        EvolutionConfig(**kwargs)


def test_evolution_on_a_real_supernet_with_the_scorer_is_deterministic():
    data = make_moving_digits(MovingDigitsConfig(n_train=8, n_val=16, n_test=4, num_classes=4, channels=1, frames=4, size=16))
    latency = PredictedLatency.of(LATENCIES, 1.5)
    runs = [evolve(tiny_supernet(), SupernetScorer(tiny_supernet(), data.val), latency=latency, budget_ms=4.0,
                   config=EvolutionConfig(population=3, generations=2)) for _ in range(2)]
    assert runs[0].scored == runs[1].scored and all(a.predicted_ms <= 4.0 for a in runs[0].scored)
    assert all(0.0 <= a.accuracy <= 1.0 and len(a.blocks) == 2 for a in runs[0].scored)


def test_pareto_front_keeps_only_non_dominated_archs():
    def arch(ms, acc, k):
        return ScoredArch((k,), (f"b{k}",), ms, acc)

    points = [arch(1.0, 0.2, 0), arch(2.0, 0.5, 1), arch(2.0, 0.4, 2), arch(3.0, 0.45, 3), arch(4.0, 0.7, 4), arch(1.5, 0.2, 5)]
    assert [a.path[0] for a in pareto_front(points)] == [0, 1, 4]


def test_pareto_plot_and_rows_with_references_and_random_archs(tmp_path):
    from search.space import load_space
    from search.supernet import create_supernet

    space = load_space("tiny")
    table = [[0.1 * (i + 1) * (layer + 1) for i in range(len(slot.candidates))] for layer, slot in enumerate(space.layers)]
    net = create_supernet(space, latency_table=table, fixed_ms=0.5, num_classes=4)
    data = make_moving_digits(MovingDigitsConfig(n_train=8, n_val=12, n_test=4, num_classes=4, channels=3, frames=2, size=16))
    scorer = SupernetScorer(net, data.val)
    latency = PredictedLatency.of(table, 0.5)
    result = evolve(net, scorer, latency=latency, budget_ms=3.0, config=EvolutionConfig(population=3, generations=1))
    part = write_pareto(tmp_path, space=space, supernet=net, scorer=scorer, scored=result.scored, latency=latency,
                        chosen={"3 ms": result.best}, budgets_ms=[3.0], random_archs=2)
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and part["file"] == str(tmp_path / "pareto.png")
    origins = [row["origin"] for row in part["landmarks"]]
    assert origins == ["reference x3d-xs", "reference r2p1d", "random seed 0", "random seed 1"]
    front = part["pareto"]
    assert front and [r["predicted_ms"] for r in front] == sorted(r["predicted_ms"] for r in front)
    assert [r["val_acc_supernet"] for r in front] == sorted(r["val_acc_supernet"] for r in front)
    assert len(part["scored_archs"]) == len(result.scored) and json.dumps(part)


# ---------------------------------------------------------------------------------------------- CLI
FAST = ["--space", "tiny", "--epochs", "1", "--warmup", "0", "--train-clips", "10", "--frames", "2", "--size", "16",
        "--batch-size", "8", "--population", "3", "--generations", "1"]


def _table_min(lut) -> float:
    from search.device_search import device_latency_table
    from search.space import load_space

    table, fixed = device_latency_table(load_space("tiny"), device="ort-cpu-1t", lut_file=lut)
    return fixed + sum(min(row) for row in table)


def test_cli_targets_give_one_arch_per_budget_under_it(tmp_path):
    from click.testing import CliRunner

    from search.arch import load_arch
    from vidlat.cli import cli

    lut = _tiny_lut(tmp_path / "lut.csv")
    floor = _table_min(lut)
    targets = [round(floor * 1.02, 4), round(floor * 1.6, 4)]
    out = tmp_path / "evo"
    result = CliRunner().invoke(cli, ["search", "--device", "ort-cpu-1t", "--lut", str(lut), *FAST, "--method", "evolution",
                                      "--targets", ",".join(map(str, targets)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "evolution" and [row["target_ms"] for row in report["archs"]] == targets
    for target, row in zip(targets, report["archs"]):
        arch = load_arch(out / f"arch-{target:g}ms.yaml")
        assert row["predicted_ms"] <= target and arch.layers == row["layers"] and arch.notes["target_ms"] == target
    assert not (out / "arch.yaml").exists() and (out / "pareto.png").is_file() and report["pareto"]
    assert all(row["predicted_ms"] <= max(targets) for row in report["scored_archs"])
    assert "table sum, no fitted calibration" in result.output


def test_cli_dnas_targets_give_one_arch_per_budget_from_one_supernet(tmp_path):
    from click.testing import CliRunner

    from search.arch import load_arch
    from vidlat.cli import cli

    lut = _tiny_lut(tmp_path / "lut.csv")
    floor = _table_min(lut)
    targets = [round(floor * 1.05, 4), round(floor * 3, 4)]
    out = tmp_path / "dnas"
    result = CliRunner().invoke(cli, ["search", "--device", "ort-cpu-1t", "--lut", str(lut), *FAST,
                                      "--targets", ",".join(map(str, targets)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "dnas" and [row["target_ms"] for row in report["archs"]] == targets
    for target, row in zip(targets, report["archs"]):
        assert load_arch(out / f"arch-{target:g}ms.yaml").layers == row["layers"]
    assert (out / "checkpoint.pt").is_file() and (out / "pareto.png").is_file()


@pytest.mark.parametrize("mode", ["hard", "reinforce"])
def test_budget_search_leaves_the_supernet_as_it_was_and_a_tight_budget_gives_a_faster_arch(mode):
    from search.config import SearchConfig
    from search.dnas import budget_search

    data = make_moving_digits(MovingDigitsConfig(n_train=40, n_val=8, n_test=4, num_classes=4, channels=1, frames=4, size=16))
    net = tiny_supernet()
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    config = SearchConfig(batch_size=8, seed=0, mode=mode, arch_lr=0.2)
    cheap = budget_search(net, data, config, target_ms=1.5 + sum(min(row) for row in LATENCIES), epochs=4)
    generous = budget_search(net, data, config, target_ms=100.0, epochs=4)
    assert len(cheap) == len(generous) == len(LATENCIES)
    assert net.path_latency_ms(cheap) <= net.path_latency_ms(generous)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items() if "running" not in k and "batches" not in k)
    assert all(p.requires_grad for p in net.parameters())


def test_cli_evolution_refuses_impossible_budgets_and_two_kinds_of_budget(tmp_path):
    from click.testing import CliRunner

    from vidlat.cli import cli

    lut = _tiny_lut(tmp_path / "lut.csv")
    base = ["search", "--device", "ort-cpu-1t", "--lut", str(lut), *FAST, "--out", str(tmp_path / "x")]
    runner = CliRunner()
    below = runner.invoke(cli, [*base, "--method", "evolution", "--target-ms", str(_table_min(lut) * 0.9)])
    assert below.exit_code == 2 and "below the fastest arch" in below.output and not (tmp_path / "x").exists()
    assert below.output.startswith("error: budget") and below.output.count("\n") == 1
    both = runner.invoke(cli, [*base, "--targets", "10,20", "--target-ms", "10"])
    assert both.exit_code == 2 and "not both" in both.output
    no_budget = runner.invoke(cli, [*base, "--method", "evolution"])
    assert no_budget.exit_code == 2 and "needs a latency budget" in no_budget.output
    bad = runner.invoke(cli, [*base, "--method", "evolution", "--targets", "10,x"])
    assert bad.exit_code == 2 and "comma-separated" in bad.output


def test_cli_budget_is_on_the_calibrated_latency_when_the_device_has_a_fitted_predictor(store_path, tmp_path):
    from click.testing import CliRunner

    from vidlat.cli import cli

    runner = CliRunner()
    fitted = runner.invoke(cli, ["fit", "--device", DEVICE, "--space", "tiny", "--store", str(store_path)])
    assert fitted.exit_code == 0, fitted.output
    out = tmp_path / "cal"
    result = runner.invoke(cli, ["search", "--device", DEVICE, "--store", str(store_path), *FAST, "--method", "evolution",
                                 "--target-ms", "0.22", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    c, row = report["calibration"], report["archs"][0]
    assert c["kind"] != "none" and row["predicted_ms"] == pytest.approx(c["scale"] * row["table_ms"] + c["offset_ms"])
    assert row["predicted_ms"] <= 0.22 and (out / "arch.yaml").is_file() and "calibrated" in result.output
