"""Evolutionary search on a trained supernet (SPOS-style) under a hard predicted-latency budget.

::

    seed paths (if any) + random archs --repair--> population (every arch <= budget) --SupernetScorer--> accuracy
    per generation: top `parents` of everything scored so far
        --mutation (each layer re-drawn with p) | uniform crossover of two parents--> child
        --repair (over budget: a random layer to a random faster candidate, until under)--> new archs
        --SupernetScorer--> scored; a child scored before is drawn again (up to `max_tries`)
    best = highest supernet accuracy (ties: faster, then lower indices) of everything scored

Latency is ``search.pareto.PredictedLatency``: table sum plus fixed ms, calibrated by the device's fitted
predictor when one is given (an increasing affine map, so "faster candidate" means the same with and
without it). No arch over the budget is ever scored or returned; a budget below the fastest arch of
the space is an ``EvolutionConfigError``.

``evolve_device`` is what ``vidlat search --method evolution`` runs: it trains the supernet with
``search.device_search.train_supernet`` under the same ``SearchConfig`` and checkpoint as ``--method dnas``
(FBNet loss, budget-free), so one trained supernet serves both methods and every budget. Its weight
steps train single paths drawn uniformly, as SPOS does (``SearchConfig.weight_paths``, default
``uniform``), or from the logits (``logits``: the shared weights then fit the DNAS-preferred region
best). ``search.derive`` runs ``evolve`` under the argmax's latency to pick a DNAS search's arch.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from predictors.network import Calibration
from search.data.clips import ClipSplits
from search.checkpoint import LOG
from search.config import EvolutionConfig, EvolutionConfigError, SearchConfig
from search.device_search import train_supernet
from search.dnas import budget_search
from search.plots import plot_search_history
from search.space import SearchSpace
from search.pareto import PredictedLatency, ScoredArch, Scorer, score_arch, write_pareto
from search.supernet import Supernet


@dataclass
class EvolutionResult:
    """The best arch under ``budget_ms``, every arch scored (in order) and one summary row per generation."""

    best: ScoredArch
    budget_ms: float
    scored: list[ScoredArch] = field(default_factory=list)
    generations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def check_budget(budget_ms: float, latency: PredictedLatency) -> None:
    """``EvolutionConfigError`` unless the fastest arch (the cheapest candidate of every layer) meets the budget."""
    floor = latency(latency.fastest())
    if budget_ms < floor:
        raise EvolutionConfigError(f"budget {budget_ms:g} ms is below the fastest arch of the space ({floor:.6g} ms predicted)")


def _rank_key(arch: ScoredArch) -> tuple[float, float, tuple[int, ...]]:
    return -arch.accuracy, arch.predicted_ms, arch.path


class _Constrained:
    """Draws, mutates, crosses and repairs paths so that every one meets the budget."""

    def __init__(self, latency: PredictedLatency, budget_ms: float, rng: random.Random) -> None:
        self.latency, self.table, self.budget_ms, self.rng = latency, latency.table, budget_ms, rng

    def repair(self, path: list[int]) -> tuple[int, ...]:
        """Move a random layer to a random strictly faster candidate until the path meets the budget."""
        while self.latency(path) > self.budget_ms:  # ends: every move is faster and the fastest path meets the budget
            moves = [(layer, i) for layer, row in enumerate(self.table) for i, ms in enumerate(row) if ms < row[path[layer]]]
            layer, index = self.rng.choice(moves)
            path[layer] = index
        return tuple(path)

    def random(self) -> tuple[int, ...]:
        return self.repair([self.rng.randrange(len(row)) for row in self.table])

    def mutate(self, parent: Sequence[int], prob: float) -> tuple[int, ...]:
        child = list(parent)
        for layer, row in enumerate(self.table):
            if len(row) > 1 and self.rng.random() < prob:
                child[layer] = self.rng.choice([i for i in range(len(row)) if i != parent[layer]])
        return self.repair(child)

    def cross(self, a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
        return self.repair([x if self.rng.random() < 0.5 else y for x, y in zip(a, b)])


def evolve(supernet: Supernet, scorer: Scorer, *, latency: PredictedLatency, budget_ms: float,
           config: EvolutionConfig = EvolutionConfig(), seeds: Sequence[Sequence[int]] = ()) -> EvolutionResult:
    """The most accurate arch (by ``scorer``, e.g. ``SupernetScorer`` on the val clips) whose ``latency`` (the
    device's table for ``supernet``'s layers, calibrated or not) is at most ``budget_ms``; deterministic for
    ``config.seed`` and a deterministic scorer.

    ``seeds``: paths that open the first generation (repaired to the budget, repeats dropped, at most
    ``config.population``); random archs fill the rest of it."""
    if len(latency.table) != len(supernet.layers):
        raise EvolutionConfigError(f"latency table has {len(latency.table)} layers, the supernet {len(supernet.layers)}")
    check_budget(budget_ms, latency)
    started = time.perf_counter()
    ops = _Constrained(latency, budget_ms, random.Random(config.seed))
    scored: dict[tuple[int, ...], ScoredArch] = {}

    def fresh(draw: Callable[[], tuple[int, ...]]) -> tuple[int, ...] | None:  # a path not scored yet, or None after max_tries draws
        for _ in range(config.max_tries):
            path = draw()
            if path not in scored:
                return path
        return None

    def add(path: tuple[int, ...] | None, generation: int, origin: str) -> None:
        if path is not None:
            scored[path] = score_arch(supernet, scorer, path, latency=latency, origin=f"{origin}, generation {generation}")

    history: list[dict[str, Any]] = []
    for generation in range(config.generations + 1):
        before = len(scored)
        if generation == 0:
            for path in list(seeds)[: config.population]:
                repaired = ops.repair([int(index) for index in path])
                if repaired not in scored:
                    add(repaired, 0, "seed")
            for _ in range(config.population - len(scored)):
                add(fresh(ops.random), 0, "random")
        else:
            parents = sorted(scored.values(), key=_rank_key)[: config.parents]
            crossovers = round(config.crossover_fraction * config.population) if len(parents) > 1 else 0
            for _ in range(crossovers):
                add(fresh(lambda: ops.cross(*(p.path for p in ops.rng.sample(parents, 2)))), generation, "crossover")
            for _ in range(config.population - crossovers):
                add(fresh(lambda: ops.mutate(ops.rng.choice(parents).path, config.mutation_prob)), generation, "mutation")
        best = min(scored.values(), key=_rank_key)
        history.append({"generation": generation, "new_archs": len(scored) - before, "best_acc": best.accuracy,
                        "best_ms": best.predicted_ms})
    return EvolutionResult(best=best, budget_ms=budget_ms, scored=list(scored.values()),
                           generations=history, seconds=time.perf_counter() - started)


def arch_file_name(target_ms: float, *, single: bool) -> str:
    """``arch.yaml`` for a single budget, ``arch-<T>ms.yaml`` for each of several."""
    return "arch.yaml" if single else f"arch-{target_ms:g}ms.yaml"


def evolve_device(
    space: SearchSpace,
    clips: ClipSplits,
    config: SearchConfig,
    *,
    targets_ms: Sequence[float],
    evolution: EvolutionConfig = EvolutionConfig(),
    latency_table: list[list[float]],
    fixed_ms: float,
    device: str,
    out_dir: str | Path,
    calibration: Calibration | None = None,
    data_name: str = "",
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    progress: bool = True,
    method: str = "evolution",
) -> dict[str, Any] | None:
    """Train (or resume) the supernet, then one search per budget on it, as ``vidlat search --targets`` runs.

    ``method``: ``evolution`` (``evolve``, a hard budget) or ``dnas`` (``search.dnas.budget_search``: fresh
    logits trained alone with the target loss, weights frozen, the budget mapped back through the
    calibration to the table sum; a soft budget: the argmax is reported as it falls).

    supernet --train_supernet (checkpoint shared with --method dnas)--> SupernetScorer (val clips, cached)
        --evolve(budget) per target--> OUT/arch.yaml (one target) or arch-<T>ms.yaml (several)
        --> report.json (one row per target, Pareto front), pareto.png, probabilities.png, latency.png
    Returns the report; ``None`` on ranks other than 0 under DDP (evolution runs on rank 0 only).
    """
    from search.scoring import SupernetScorer

    if not targets_ms:
        raise EvolutionConfigError("the evolution needs at least one latency budget (--target-ms or --targets)")
    latency = PredictedLatency.of(latency_table, fixed_ms, calibration)
    for target in targets_ms:  # before the training, not after it
        check_budget(target, latency)
    out_dir = Path(out_dir)
    trained = train_supernet(space, clips, config, latency_table=latency_table, fixed_ms=fixed_ms, device=device,
                             out_dir=out_dir, data_settings=data_settings, extend=extend, progress=progress)
    if trained is None:
        return None
    supernet, result = trained
    scorer = SupernetScorer(supernet, clips.val)
    started = time.perf_counter()
    if method == "dnas":
        runs = []
        for target in targets_ms:
            path = budget_search(supernet, clips, config, target_ms=latency.table_budget(target))
            best = score_arch(supernet, scorer, path, latency=latency, origin=f"dnas, {target:g} ms budget")
            runs.append(EvolutionResult(best=best, budget_ms=target, scored=[best]))
    else:
        runs = [evolve(supernet, scorer, latency=latency, budget_ms=target, config=evolution) for target in targets_ms]
    rows = []
    for target, run in zip(targets_ms, runs):
        path = out_dir / arch_file_name(target, single=len(targets_ms) == 1)
        notes = {"device": device, "predicted_ms": round(run.best.predicted_ms, 4), "target_ms": target, "search": str(out_dir)}
        arch = space.make_arch(list(run.best.blocks), name=f"{method}-{device}-{space.name}-{target:g}ms")
        arch = dataclasses.replace(arch, num_classes=clips.num_classes, notes=notes)
        arch.save(path)
        rows.append({"target_ms": target, "predicted_ms": run.best.predicted_ms, "table_ms": latency.table_ms(run.best.path),
                     "val_acc_supernet": run.best.accuracy, "scored": len(run.scored), "layers": arch.layers,
                     "generations": run.generations, "file": str(path)})
    evolution_seconds = time.perf_counter() - started
    title = f"{device} / {space.name}"
    plots = plot_search_history(result, out_dir, candidates=[slot.candidates for slot in space.layers], title=title)
    everything = list({a.path: a for run in runs for a in run.scored}.values())
    pareto = write_pareto(out_dir, space=space, supernet=supernet, scorer=scorer, scored=everything,
                          chosen={f"{t:g} ms": run.best for t, run in zip(targets_ms, runs)}, budgets_ms=targets_ms,
                          latency=latency, title=f"{title}: {method} on the supernet", seed=evolution.seed)
    report = {
        "method": method, "device": device, "space": space.name, "data": data_name, "loss": config.loss, "mode": config.mode,
        "targets_ms": list(targets_ms), "archs": rows, "calibration": calibration.to_dict() if calibration else None,
        "fixed_ms": fixed_ms, "evolution": asdict(evolution), "evolution_seconds": evolution_seconds,
        "val_acc_sampled": result.history[-1].get("val_acc_sampled"), "search_seconds": result.seconds,
        "search_cpu_seconds": result.cpu_seconds, "epochs": len(result.history), "resumed_from_epoch": result.resumed_from,
        "pareto": pareto["pareto"], "landmarks": pareto["landmarks"], "scored_archs": pareto["scored_archs"],
        "files": {"archs": [row["file"] for row in rows], "log": str(out_dir / LOG), **{k: str(v) for k, v in plots.items()},
                  "pareto": pareto["file"]},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


__all__ = ["EvolutionResult", "arch_file_name", "check_budget", "evolve",
           "evolve_device"]
