"""Does the search trade accuracy for latency? One default search per device, judged by training.

::

    data (the default task), device table (store) --search_device (DNAS, defaults)--> trained supernet, derived arch
    the same supernet --evolve at 3 budgets--> evolution archs
    12 random archs, the table minimum, x3d-xs, the derived and evolution archs
        --SupernetScorer--> supernet val accuracy
        --train_arch (the `vidlat train` defaults, from scratch)--> stand-alone test accuracy
    x3d-xs as a one-candidate supernet, the same loop and steps --> the fixed-path val accuracy

Prints the tables the search docs show (supernet quality, ranking, trade-off, budgets, 2x2 device
table, cost) and writes ``results.json`` and ``pareto.png`` under ``--out``. Every trained arch is
kept in ``results.json``, so a second run resumes where the first stopped.

    .venv/bin/python bench/search_tradeoff.py --store S --devices ort-cpu-1t,fpga-zcu102-sim --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from predictors.metrics import kendall_tau
from profiler.store import LatencyStore
from search.arch import create_head, create_stem
from search.data import DEFAULT_DATA, load_data
from search.dnas import SearchConfig, device_latency_table, fbnet_unit_ms, run_search, search_device
from search.evolution import EvolutionConfig, evolve
from search.pareto import PredictedLatency, score_arch
from search.scoring import SupernetScorer
from search.space import load_space
from search.supernet import MixedLayer, Supernet, create_supernet
from search.train import TrainConfig, train_arch

TRAIN_CLIPS, FRAMES, SIZE = 1500, 8, 32


def clips_for(data: str, seed: int, *, test: int):
    """The clips `vidlat search` (test=10) and `vidlat train` (test=1000) load at their defaults."""
    return load_data(data, channels=3, frames=FRAMES, size=SIZE, seed=seed, n_train=TRAIN_CLIPS,
                     n_val=max(100, TRAIN_CLIPS // 5), n_test=test, num_classes=10)


def _train_one(job: tuple[str, list[str], str, int, int]) -> tuple[str, dict[str, Any]]:
    """Train one arch stand-alone at the `vidlat train` defaults (in a worker process, one thread)."""
    name, layers, data, epochs, seed = job
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    space = load_space("default")
    arch = space.make_arch(layers, name=name)
    started, cpu = time.perf_counter(), time.process_time()
    result = train_arch(arch, clips_for(data, seed, test=1000), TrainConfig(epochs=epochs, seed=seed), progress=False)
    return name, {"layers": layers, "val_acc": result.val_acc, "test_acc": result.test_acc,
                  "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def fixed_path_accuracy(space, blocks: list[str], clips, config: SearchConfig, out_dir: Path) -> dict[str, Any]:
    """Val accuracy (batch-statistic BN, as the search's sampled accuracy) of one path trained in the search loop."""
    torch.manual_seed(config.seed)
    layers = [MixedLayer([create_supernet_block(slot, block)], [0.0], [block]) for slot, block in zip(space.layers, blocks)]
    stem = create_stem(in_channels=space.input_shape[0], out_channels=space.stem["channels"],
                       temporal_kernel=space.stem.get("temporal_kernel", 5))
    head = create_head(in_channels=space.layers[-1].out_channels, hidden_channels=space.head["channels"], num_classes=clips.num_classes)
    result = run_search(Supernet(stem=stem, layers=layers, head=head, fixed_ms=1.0), clips, config, out_dir=out_dir, progress=False)
    return {"val_acc": result.history[-1]["val_acc_sampled"], "seconds": result.seconds}


def space_path(space, layers: list[str]) -> list[int]:
    """Candidate indices of ``layers`` in ``space``."""
    return [slot.candidates.index(block) for slot, block in zip(space.layers, layers)]


def create_supernet_block(slot, block: str):
    from search.blocks import create_block

    return create_block(block, in_channels=slot.in_channels, out_channels=slot.out_channels, stride=slot.stride)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--devices", default="ort-cpu-1t,fpga-zcu102-sim")
    parser.add_argument("--data", default=DEFAULT_DATA, help="generated task (default: the search's default)")
    parser.add_argument("--search-epochs", type=int, default=SearchConfig.epochs)
    parser.add_argument("--random", type=int, default=12, help="random archs trained stand-alone")
    parser.add_argument("--train-epochs", type=int, default=8, help="stand-alone training epochs (vidlat run's default)")
    parser.add_argument("--population", type=int, default=EvolutionConfig.population)
    parser.add_argument("--generations", type=int, default=EvolutionConfig.generations)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-search-tradeoff")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.is_file() else {"trained": {}, "devices": {}}

    def save() -> None:
        results_file.write_text(json.dumps(results, indent=1))

    space = load_space("default")
    clips = clips_for(args.data, args.seed, test=10)
    devices = args.devices.split(",")
    random_archs = {f"random-{k}": space.sample(1000 + k).layers for k in range(args.random)}
    jobs: dict[str, list[str]] = dict(random_archs)
    jobs["x3d-xs"] = space.reference_archs()["x3d-xs"].layers
    for device in devices:
        with LatencyStore(args.store, read_only=True) as store:
            table, fixed = device_latency_table(space, device=device, store=store)
        latency = PredictedLatency.of(table, fixed)
        config = SearchConfig(epochs=args.search_epochs, warmup_epochs=min(SearchConfig.warmup_epochs, args.search_epochs - 1),
                              unit_ms=fbnet_unit_ms(table, fixed), seed=args.seed)
        search_dir = out / f"search-{device}"
        report = search_device(space, clips, config, latency_table=table, fixed_ms=fixed, device=device, out_dir=search_dir,
                               data_name=args.data, progress=False)
        supernet = create_supernet(space, latency_table=table, fixed_ms=fixed, num_classes=clips.num_classes)
        state = torch.load(search_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
        supernet.load_state_dict(state["model"])
        scorer = SupernetScorer(supernet, clips.val)
        fastest = [layer.names[i] for layer, i in zip(supernet.layers, latency.fastest())]
        row: dict[str, Any] = {"report": {k: report[k] for k in ("predicted_ms", "val_acc_sampled", "val_acc_supernet",
                                                                   "search_seconds", "search_cpu_seconds", "layers")},
                               "archs": {}}
        named = {**{name: layers for name, layers in random_archs.items()}, "x3d-xs": jobs["x3d-xs"],
                 f"fastest-{device}": fastest, f"dnas-{device}": report["layers"]}
        random_ms = sorted(latency(supernet.path_of(layers)) for layers in random_archs.values())
        budgets = [random_ms[round(q * (len(random_ms) - 1))] for q in (0.25, 0.5, 0.75)]
        evolution_started = time.perf_counter()
        for budget in budgets:
            best = evolve(supernet, scorer, latency=latency, budget_ms=budget, config=EvolutionConfig(population=args.population, generations=args.generations,
                                                                                          parents=min(EvolutionConfig.parents, args.population), seed=args.seed)).best
            named[f"evolution-{device}-{budget:.2f}ms"] = list(best.blocks)
        row["evolution_seconds"] = time.perf_counter() - evolution_started
        row["budgets_ms"] = budgets
        for name, layers in named.items():
            scored = score_arch(supernet, scorer, supernet.path_of(layers), latency=latency)
            row["archs"][name] = {"layers": layers, "predicted_ms": scored.predicted_ms, "supernet_acc": scored.accuracy}
            jobs.setdefault(name, layers)
        if "fixed_path" not in row:
            fixed_dir = out / f"fixed-path-{device}"
            shutil.rmtree(fixed_dir, ignore_errors=True)
            row["fixed_path"] = fixed_path_accuracy(space, jobs["x3d-xs"], clips, config, fixed_dir)
        results["devices"][device] = row
        save()
    for device in devices:  # every device's derived arch, priced on every device (the 2x2 table)
        with LatencyStore(args.store, read_only=True) as store:
            latency = PredictedLatency.of(*device_latency_table(space, device=device, store=store))
        archs = results["devices"][device]["archs"]
        for source in devices:
            layers = results["devices"][source]["report"]["layers"]
            archs.setdefault(f"dnas-{source}", {"layers": layers, "supernet_acc": math.nan})
            archs[f"dnas-{source}"]["predicted_ms"] = latency(space_path(space, layers))
    save()
    todo = [(name, layers, args.data, args.train_epochs, args.seed) for name, layers in jobs.items() if name not in results["trained"]]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, trained in pool.map(_train_one, todo):
            results["trained"][name] = trained
            save()
            print(f"trained {name}: test {trained['test_acc']:.3f} in {trained['seconds']:.0f} s", flush=True)
    report_tables(results, devices, out)


def report_tables(results: dict[str, Any], devices: list[str], out: Path) -> None:
    """Print the bench's tables and draw pareto.png (stand-alone test accuracy against predicted latency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = results["trained"]
    fig, axes = plt.subplots(1, len(devices), figsize=(6 * len(devices), 4.5), squeeze=False)
    for device, ax in zip(devices, axes.flat):
        row = results["devices"][device]
        report = row["report"]
        fixed = row["fixed_path"]["val_acc"]
        print(f"\n== {device}")
        print(f"supernet quality: sampled-path val acc {report['val_acc_sampled']:.3f}, fixed x3d-xs path "
              f"(same loop and steps) {fixed:.3f}, gap {100 * (fixed - report['val_acc_sampled']):.1f} points; "
              f"search {report['search_seconds']:.0f} s wall, {report['search_cpu_seconds']:.0f} s CPU; "
              f"evolution at 3 budgets {row['evolution_seconds']:.0f} s")
        randoms = [name for name in row["archs"] if name.startswith("random-") and name in trained]
        tau = kendall_tau([row["archs"][n]["supernet_acc"] for n in randoms], [trained[n]["test_acc"] for n in randoms])
        print(f"ranking: Kendall tau (supernet val acc vs stand-alone test acc) over {len(randoms)} random archs: {tau:.3f}")
        print(f"{'arch':<34} {'pred ms':>8} {'supernet':>9} {'test acc':>9}")
        for name, arch in sorted(row["archs"].items(), key=lambda item: item[1]["predicted_ms"]):
            test = trained.get(name, {}).get("test_acc", math.nan)
            print(f"{name:<34} {arch['predicted_ms']:>8.2f} {arch['supernet_acc']:>9.3f} {test:>9.3f}")
        for budget in row["budgets_ms"]:
            under = [trained[n]["test_acc"] for n in randoms if row["archs"][n]["predicted_ms"] <= budget]
            evo = trained.get(f"evolution-{device}-{budget:.2f}ms", {}).get("test_acc", math.nan)
            print(f"budget {budget:.2f} ms: evolution {evo:.3f}, best of {len(under)} random archs under it "
                  f"{max(under) if under else math.nan:.3f}")
        for name, arch in row["archs"].items():
            if name in trained:
                marker = "o" if name.startswith("random-") else "*"
                ax.scatter(arch["predicted_ms"], trained[name]["test_acc"], marker=marker, s=30 if marker == "o" else 90)
                if marker == "*":
                    ax.annotate(name.replace(f"-{device}", ""), (arch["predicted_ms"], trained[name]["test_acc"]), fontsize=7)
        for budget in row["budgets_ms"]:
            ax.axvline(budget, color="grey", lw=0.6, ls="--")
        ax.set_xlabel(f"predicted latency on {device} (ms)")
        ax.set_ylabel("stand-alone test accuracy")
        ax.set_title(f"{device}: random archs (o) and search results (*)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    if len(devices) == 2:
        print("\n== 2x2: the derived arch of each device, predicted ms on both devices, stand-alone test accuracy")
        print(f"{'arch':<26}" + "".join(f"{d:>20}" for d in devices) + f"{'test acc':>10}")
        for source in devices:
            name = f"dnas-{source}"
            cells = "".join(f"{results['devices'][d]['archs'][name]['predicted_ms']:>17.2f} ms" for d in devices)
            print(f"{name:<26}{cells}{trained.get(name, {}).get('test_acc', math.nan):>10.3f}")


if __name__ == "__main__":
    main()
