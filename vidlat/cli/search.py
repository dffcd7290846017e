"""``vidlat search``: device-aware search with a device's measured latency as the cost (``vidlat.api.search``).

::

    store (device, space) --LUTPredictor--> latency table per (layer, candidate), fixed ms
                          --fitted predictor (`vidlat fit`), if any--> calibration of predicted ms
    --data (moving-digits | folder) ------> clips at the proxy shape (C x frames x size x size)
        --> supernet --run_search (checkpoint per epoch, resumable)-->
    --method dnas:      OUT/arch.yaml (--derive: the argmax, or evolution under the argmax's latency)
                        search.device_search.search_device, search.derive
    --method evolution: OUT/arch.yaml or arch-<T>ms.yaml per budget   search.evolution.evolve_device
    both: search_log.json, report.json, probabilities.png, latency.png, pareto.png

Started under ``torchrun`` (WORLD_SIZE > 1) it trains with DistributedDataParallel on gloo.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from search.config import DEFAULT_DERIVATION, DERIVATIONS, SAMPLINGS, SEARCH_MODES, WEIGHT_PATHS, ClipConfig, EvolutionConfig, SearchConfig
from search.data.names import DATA_HELP
from vidlat.cli.common import space_option, store_option

SEARCH, EVOLUTION, CLIPS = SearchConfig(), EvolutionConfig(), ClipConfig()


def _targets(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        targets = [float(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of ms, e.g. 10,20,30") from None
    if not targets or min(targets) <= 0 or len(set(targets)) != len(targets):
        raise click.BadParameter(f"'{value}': give distinct budgets > 0 ms, e.g. 10,20,30")
    return targets


@click.command("search")
@click.option("--device", required=True, help="device whose lookup table is the cost (shipped name, stored name or .yaml)")
@space_option
@click.option("--data", default=CLIPS.data, show_default=True, help=DATA_HELP)
@click.option("--method", type=click.Choice(["dnas", "evolution"]), default="dnas", show_default=True,
              help="dnas: FBNet/GDAS logits pick the arch; evolution: train the same supernet (FBNet loss), then evolve "
                   "archs scored by supernet val accuracy under a hard predicted-latency budget")
@click.option("--target-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="latency budget in ms: dnas: target loss instead of FBNet's CE*alpha*log(LAT)^beta; evolution: the hard budget")
@click.option("--targets", callback=_targets, default=None, metavar="MS,MS,...",
              help="one arch per budget from one trained supernet (arch-<T>ms.yaml each): evolution under each hard "
                   "budget, or dnas: fresh logits per budget trained with the target loss on the frozen supernet")
@click.option("--derive", type=click.Choice(DERIVATIONS), default=DEFAULT_DERIVATION, show_default=True,
              help="dnas: argmax takes the logits' argmax; evolution picks the supernet's most accurate arch no slower than the logits' argmax "
                   "(seeded with archs drawn from the logits; --population, --generations)")
@click.option("--population", type=click.IntRange(2), default=EVOLUTION.population, show_default=True, help="evolution: archs per generation")
@click.option("--generations", type=click.IntRange(0), default=EVOLUTION.generations, show_default=True, help="evolution: generations after the random one")
@click.option("--mutation-prob", type=click.FloatRange(0, 1, min_open=True), default=EVOLUTION.mutation_prob, show_default=True,
              help="evolution: probability that a layer of a parent is re-drawn")
@click.option("--crossover", type=click.FloatRange(0, 1), default=EVOLUTION.crossover_fraction, show_default=True,
              help="evolution: fraction of each generation made by crossover (the rest by mutation)")
@click.option("--epochs", type=click.IntRange(1), default=SEARCH.epochs, show_default=True)
@click.option("--extend", is_flag=True, help="continue a finished or partial search in OUT to a different (larger) --epochs")
@click.option("--warmup", type=click.IntRange(0), default=SEARCH.warmup_epochs, show_default=True, help="weight-only epochs first")
@click.option("--sampling", type=click.Choice(SAMPLINGS), default=SEARCH.sampling, show_default=True,
              help="weight steps: sandwich trains the space's reference arch beside the drawn path; uniform only the drawn path")
@click.option("--weight-paths", type=click.Choice(WEIGHT_PATHS), default=SEARCH.weight_paths, show_default=True,
              help="weight steps: the drawn path is uniform over every layer's candidates (SPOS) or drawn from the logits (GDAS)")
@click.option("--distill", type=click.FloatRange(0, 1), default=SEARCH.distill, show_default=True,
              help="sandwich sampling: share of the drawn path's loss that follows the anchor path's predictions "
                   "(in-place distillation; 0: plain CE)")
@click.option("--mode", type=click.Choice(SEARCH_MODES), default=SEARCH.mode, show_default=True,
              help="reinforce: arch steps compare whole sampled paths (score function), weight steps as hard; "
                   "hard: GDAS straight-through, one candidate runs per layer; soft: FBNet mixing, all run")
@click.option("--alpha", type=float, default=SEARCH.alpha, show_default=True, help="FBNet loss alpha")
@click.option("--beta", type=float, default=SEARCH.beta, show_default=True, help="FBNet loss beta")
@click.option("--unit-ms", type=float, default=SEARCH.unit_ms,
              help="FBNet loss: LAT is measured in this unit [default: uniform supernet latency / 28, FBNet's phone regime]")
@click.option("--latency-weight", type=float, default=SEARCH.latency_weight, show_default=True, help="target loss: weight of the relative excess")
@click.option("--temperature", type=float, default=SEARCH.temperature, show_default=True, help="initial Gumbel-softmax temperature")
@click.option("--temperature-decay", type=float, default=SEARCH.temperature_decay, show_default=True, help="tau = tau0 * exp(-decay * epoch)")
@click.option("--arch-lr", type=float, default=SEARCH.arch_lr, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=SEARCH.batch_size, show_default=True)
@click.option("--train-clips", type=click.IntRange(10), default=CLIPS.train_clips, show_default=True, help="moving-digits training clips")
@click.option("--frames", type=click.IntRange(2), default=CLIPS.frames, show_default=True, help="proxy clip length")
@click.option("--size", type=click.IntRange(16), default=CLIPS.size, show_default=True, help="proxy clip height and width")
@click.option("--seed", type=int, default=SEARCH.seed, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch intra-op threads (per process)")
@click.option("--lut", "lut_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="a `vidlat lut export` file instead of the store")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="[default: runs/search-<device>-<space>]")
@store_option
def search(device: str, space_name: str, data: str, method: str, target_ms: float | None, targets: list[float] | None,
           derive: str, population: int, generations: int, mutation_prob: float, crossover: float, epochs: int, extend: bool, warmup: int, sampling: str, weight_paths: str, distill: float, mode: str,
           alpha: float, beta: float, unit_ms: float | None, latency_weight: float, temperature: float, temperature_decay: float,
           arch_lr: float, batch_size: int, train_clips: int, frames: int, size: int, seed: int, threads: int,
           lut_file: str | None, out_dir: str | None, store_path: str | None) -> None:
    """Search a device-specific architecture; resumes from OUT/checkpoint.pt if one is there (same settings only)."""
    import torch
    import torch.distributed as dist

    from vidlat import api

    if targets is not None and target_ms is not None:
        raise click.UsageError("give --targets T1,T2,... or --target-ms T, not both")
    if method == "evolution" and not (targets or target_ms is not None):
        raise click.UsageError("--method evolution needs a latency budget: --target-ms T or --targets T1,T2,...")
    evolution = EvolutionConfig(population=population, generations=generations, mutation_prob=mutation_prob,
                                crossover_fraction=crossover, seed=seed)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    config = SearchConfig(
        epochs=epochs, warmup_epochs=min(warmup, epochs - 1), batch_size=batch_size, mode=mode, alpha=alpha, beta=beta,
        unit_ms=unit_ms or None, latency_weight=latency_weight, temperature=temperature,
        temperature_decay=temperature_decay, arch_lr=arch_lr, sampling=sampling, weight_paths=weight_paths, distill=distill, seed=seed,
    )
    clips = ClipConfig(data=data, train_clips=train_clips, frames=frames, size=size)
    result = api.search(device, space=space_name, method=method, target_ms=target_ms, targets=targets, config=config,
                        evolution=evolution, clips=clips, store=store_path, lut=lut_file, out=out_dir, extend=extend,
                        derive=derive, progress=rank == 0)
    if result is not None:
        echo_search(result)
    if distributed:
        dist.destroy_process_group()


def echo_search(result) -> None:
    """What `vidlat search` prints of a ``vidlat.api.SearchRun`` once it is done."""
    if "archs" in result.report:  # evolution, or dnas with --targets: one arch per budget
        _print_evolution(result.report, result.device, result.out_dir)
    else:
        _print_dnas(result.report, result.device, result.out_dir, chance=1.0 / result.num_classes)


def _calibrated(report: dict) -> str:
    return " (table sum, no fitted calibration)" if report["calibration"] is None else " (calibrated, as `vidlat predict`)"


def _print_evolution(report: dict, device: str, out: Path) -> None:
    rows = report["archs"]
    click.echo(f"{report['method']}: {sum(row['scored'] for row in rows)} archs scored on the supernet for {len(rows)} budget(s) "
               f"in {report['evolution_seconds']:.0f} s (supernet training {report['search_seconds']:.0f} s)")
    for row in rows:
        click.echo(f"{'under' if report['method'] == 'evolution' else 'aiming at'} {row['target_ms']:g} ms: {' | '.join(row['layers'])}")
        click.echo(f"  predicted {row['predicted_ms']:.3f} ms on {device}{_calibrated(report)}, "
                   f"supernet val acc {row['val_acc_supernet']:.3f} -> {row['file']}")
    files = report["files"]
    click.echo(f"wrote {out / 'report.json'}, {files['pareto']}, {files['heatmap']}, {files['latency']}, {files['log']}")


def _print_dnas(report: dict, device_name: str, out: Path, *, chance: float) -> None:
    files = report["files"]
    click.echo(f"derived arch ({report['derive']}): {' | '.join(report['layers'])}")
    click.echo(f"predicted latency on {device_name}: {report['predicted_ms']:.3f} ms{_calibrated(report)} "
               f"(expected {report['expected_ms']:.3f} ms), "
               f"supernet val acc {report['val_acc_supernet']:.3f} (derived arch), "
               f"{report['val_acc_sampled'] if report['val_acc_sampled'] is not None else float('nan'):.3f} (sampled archs), "
               f"search {report['search_seconds']:.0f} s")
    if report["derive"] != "argmax":
        argmax = report["argmax"]
        click.echo(f"{report['derive_scored']} archs scored on the supernet in {report['derive_seconds']:.0f} s to derive it; "
                   f"the logits' argmax: {argmax['predicted_ms']:.3f} ms, supernet val acc {argmax['val_acc_supernet']:.3f}")
    if report["val_acc_sampled"] is not None and report["val_acc_sampled"] < 2 * chance:
        click.echo(f"note: archs sampled from the supernet reach {report['val_acc_sampled']:.2f} val accuracy (chance "
                   f"{chance:.2f}): the supernet has learned little, so its accuracy weighs little against latency "
                   f"in the choice; give it a budget with --target-ms, or more --epochs and --warmup", err=True)
    if abs(report["argmax"]["table_ms"] - report["expected_ms"]) > 0.25 * report["expected_ms"]:
        click.echo(f"note: the argmax arch ({report['argmax']['table_ms']:.2f} ms by the table) is far from the expected latency "
                   f"({report['expected_ms']:.2f} ms): the probabilities have not sharpened yet; try more --epochs "
                   f"or a faster --temperature-decay", err=True)
    click.echo(f"wrote {files['arch']}, {out / 'report.json'}, {files['heatmap']}, {files['latency']}, {files['pareto']}, "
               f"{files['log']}")
