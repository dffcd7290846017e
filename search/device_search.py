"""DNAS for one device, as ``vidlat search`` runs it: the device's latency table, the supernet, the files.

::

    store | `vidlat lut export` file --device_latency_table--> latency_table[l][i] (ms), fixed_ms
    space + table --create_supernet--> supernet --run_search (OUT/checkpoint.pt, resumable)--> trained
        = train_supernet (shared with ``search.evolution.evolve_device``)
    trained --search.derive (argmax, or evolution under the argmax's latency)--> OUT/arch.yaml;
        argmax of every epoch + archs the derivation scored + landmarks --SupernetScorer--> OUT/pareto.png;
        history --plot_search_history--> probabilities.png, latency.png; OUT/report.json
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from predictors.network import Calibration
from profiler.errors import VidlatError
from profiler.store import LatencyStore
from search.checkpoint import LOG
from search.config import DEFAULT_DERIVATION, EvolutionConfig, SearchConfig
from search.data.clips import ClipSplits
from search.dnas import SearchResult, distributed_rank, run_search
from search.losses import with_unit_ms
from search.plots import plot_search_history
from search.space import SearchSpace
from search.supernet import Supernet


class MissingLatencyError(VidlatError):
    """The device's lookup table lacks some (layer, candidate) of the space."""


def device_latency_table(space: SearchSpace, *, device: str, store: LatencyStore | None = None,
                         lut_file: str | Path | None = None) -> tuple[list[list[float]], float]:
    """(latency_table, fixed_ms) of ``space`` on ``device`` from the store or a ``vidlat lut export`` file.

    ``latency_table[l][i]`` is the median ms of candidate i of layer l; ``fixed_ms`` is stem + head.
    A missing measurement is a ``MissingLatencyError`` telling the user to profile first.
    """
    from predictors import LUTMissError, LUTPredictor
    from predictors.lut import space_entries

    try:
        if lut_file is not None:
            predictor = LUTPredictor.from_file(lut_file, device=device)
        else:
            predictor = LUTPredictor.from_store(store, device, space_entries(space))
        table = predictor.layer_latencies(space.layers)
        fixed = predictor.fixed_ms
    except LUTMissError as exc:
        raise MissingLatencyError(
            f"device '{device}' has no measured latency for {len(exc.keys)} workload(s) of space '{space.name}' "
            f"(e.g. {exc.keys[0]}); run `vidlat profile --device {device} --space {space.name}` first"
        ) from exc
    return [[float(v) for v in row] for row in table], float(fixed)


def train_supernet(
    space: SearchSpace,
    clips: ClipSplits,
    config: SearchConfig,
    *,
    latency_table: list[list[float]],
    fixed_ms: float,
    device: str,
    out_dir: str | Path,
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    progress: bool = True,
) -> tuple[Supernet, SearchResult] | None:
    """The supernet of ``space`` with the device's table, trained by ``run_search`` in ``out_dir`` (resumable).

    Device and space join ``data_settings`` in the checkpoint's resume check. Returns (supernet,
    result) on rank 0, ``None`` on the other ranks under DDP (after a barrier).
    """
    from search.supernet import create_supernet

    config = with_unit_ms(config, latency_table, fixed_ms)
    torch.manual_seed(config.seed)
    supernet = create_supernet(space, latency_table=latency_table, fixed_ms=fixed_ms, num_classes=clips.num_classes)
    settings = {"device": device, "space": space.name, **(data_settings or {})}
    result = run_search(supernet, clips, config, out_dir=out_dir, data_settings=settings, extend=extend, progress=progress)
    rank, world = distributed_rank()
    if world > 1:
        dist.barrier()
    return (supernet, result) if rank == 0 else None


def search_device(
    space: SearchSpace,
    clips: ClipSplits,
    config: SearchConfig,
    *,
    latency_table: list[list[float]],
    fixed_ms: float,
    device: str,
    out_dir: str | Path,
    data_name: str = "",
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    calibration: Calibration | None = None,
    derive: str = DEFAULT_DERIVATION,
    evolution: EvolutionConfig = EvolutionConfig(),
    progress: bool = True,
) -> dict[str, Any] | None:
    """The whole DNAS of ``space`` for one device, as ``vidlat search`` runs it.

    supernet (latency table) --train_supernet--> search.derive_arch(``derive``, ``evolution``) --> OUT/arch.yaml,
    report.json, PNGs; argmax of every epoch + archs the derivation scored + landmarks --SupernetScorer (val
    clips)--> OUT/pareto.png, report "pareto". ``predicted_ms`` is the table sum, calibrated when
    ``calibration`` (the device's fitted predictor) is given; the target loss itself works on the table sum.
    The derivation runs after the checkpoint, so another ``derive`` on a finished search re-derives without
    training. Returns the report (also written as ``report.json``); ``None`` on ranks other than 0 under DDP.
    """
    from search.derive import check_derivation, derive_arch
    from search.pareto import PredictedLatency, score_arch, write_pareto
    from search.scoring import SupernetScorer

    check_derivation(derive)  # before the training, not after it
    out_dir = Path(out_dir)
    trained = train_supernet(space, clips, config, latency_table=latency_table, fixed_ms=fixed_ms, device=device,
                             out_dir=out_dir, data_settings=data_settings, extend=extend, progress=progress)
    if trained is None:
        return None
    supernet, result = trained
    scorer = SupernetScorer(supernet, clips.val)
    latency = PredictedLatency.of(latency_table, fixed_ms, calibration)
    derivation = derive_arch(supernet, scorer, latency=latency, how=derive, evolution=evolution)
    derived = derivation.chosen
    visited = {tuple(row["derived"]): row["epoch"] for row in result.history}
    scored = [score_arch(supernet, scorer, supernet.path_of(blocks), latency=latency, origin=f"argmax after epoch {epoch}")
              for blocks, epoch in visited.items()]
    notes = {"device": device, "predicted_ms": round(derived.predicted_ms, 4), "derive": derive, "search": str(out_dir)}
    arch = space.make_arch(list(derived.blocks), name=f"dnas-{device}-{space.name}")
    arch = dataclasses.replace(arch, num_classes=clips.num_classes, notes=notes)
    arch.save(out_dir / "arch.yaml")
    title = f"{device} / {space.name}"
    plots = plot_search_history(result, out_dir, candidates=[slot.candidates for slot in space.layers], title=title)
    everything = list({a.path: a for a in [*scored, *derivation.scored]}.values())
    chosen = {"dnas": derived} if derived.path == derivation.argmax.path else {"dnas": derived, "argmax": derivation.argmax}
    pareto = write_pareto(out_dir, space=space, supernet=supernet, scorer=scorer, scored=everything, chosen=chosen,
                          budgets_ms=[config.target_ms] if config.target_ms else [], latency=latency,
                          title=f"{title}: DNAS archs on the supernet ({derive})", seed=config.seed)
    last = result.history[-1]
    report = {
        "method": "dnas", "device": device, "space": space.name, "data": data_name, "loss": config.loss, "mode": config.mode,
        "target_ms": config.target_ms, "predicted_ms": derived.predicted_ms, "table_ms": latency.table_ms(derived.path),
        "calibration": calibration.to_dict() if calibration else None, "expected_ms": result.expected_ms,
        "fixed_ms": fixed_ms, "val_acc_supernet": derived.accuracy, "derive": derive,
        "argmax": {**derivation.argmax.row(), "table_ms": latency.table_ms(derivation.argmax.path)},
        "derive_scored": len(derivation.scored), "derive_seconds": derivation.seconds,
        "val_acc_sampled": last.get("val_acc_sampled"), "search_seconds": result.seconds,
        "search_cpu_seconds": result.cpu_seconds, "epochs": len(result.history), "resumed_from_epoch": result.resumed_from,
        "layers": arch.layers, "pareto": pareto["pareto"], "landmarks": pareto["landmarks"], "scored_archs": pareto["scored_archs"],
        "files": {"arch": str(out_dir / "arch.yaml"), "log": str(out_dir / LOG), **{k: str(v) for k, v in plots.items()},
                  "pareto": pareto["file"]},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


__all__ = ["MissingLatencyError", "device_latency_table", "search_device", "train_supernet"]
