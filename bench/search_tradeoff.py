"""Does the search trade accuracy for latency? Default searches per device, judged by training from scratch.

::

    search DEVICE:  data (default task), the device's table --search_device (DNAS, defaults)--> trained supernet,
                    derived arch (--derive) and the logits' argmax; on the same supernet: evolution and budget
                    DNAS at 3 budgets (the quartiles of the random archs' predicted latency), supernet val
                    accuracy of every arch below;
                    x3d-xs as a one-candidate supernet in the same loop and steps (the fixed-path reference)
    train:          12 random archs + x3d-xs, or with --device a searched device's archs and its table minimum,
                    each trained stand-alone at the `vidlat run` defaults (8 epochs, 1500 clips)
    report:         the tables of docs/search.md and OUT/pareto.png

Each step writes its own JSON under ``--out`` (one file per searched device and per trained arch), so
steps can run side by side in separate processes and a second run skips what is done.

    B=".venv/bin/python bench/search_tradeoff.py --store S --out runs/bench-search"
    $B search --device ort-cpu-1t && $B train --device ort-cpu-1t &
    $B train && $B search --device fpga-zcu102-sim && $B train --device fpga-zcu102-sim &
    wait; $B report --devices ort-cpu-1t,fpga-zcu102-sim
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from predictors.metrics import kendall_tau
from profiler.store import LatencyStore
from search.arch import create_head, create_stem
from search.blocks import create_block
from search.data import DEFAULT_DATA, load_data
from search.config import DEFAULT_DERIVATION, DERIVATIONS, SEARCH_MODES, WEIGHT_PATHS, EvolutionConfig, SearchConfig, TrainConfig
from search.device_search import device_latency_table, search_device
from search.dnas import budget_search, run_search
from search.evolution import evolve
from search.losses import fbnet_unit_ms
from search.pareto import PredictedLatency, score_arch
from search.scoring import SupernetScorer
from search.space import load_space
from search.supernet import MixedLayer, Supernet, create_supernet
from search.train import train_arch

TRAIN_CLIPS, FRAMES, SIZE, RANDOM_SEED0 = 1500, 8, 32, 1000


def clips_for(data: str, seed: int, *, test: int):
    """The clips `vidlat search` (test=10) and `vidlat train` (test=1000) load at their defaults."""
    return load_data(data, channels=3, frames=FRAMES, size=SIZE, seed=seed, n_train=TRAIN_CLIPS,
                     n_val=max(100, TRAIN_CLIPS // 5), n_test=test, num_classes=10)


def random_archs(space, count: int) -> dict[str, list[str]]:
    return {f"random-{k}": space.sample(RANDOM_SEED0 + k).layers for k in range(count)}


def fixed_path_accuracy(space, blocks: list[str], clips, config: SearchConfig, out_dir: Path) -> dict[str, Any]:
    """Val accuracy (batch-statistic BN, as the search's sampled accuracy) of one path trained in the search loop."""
    torch.manual_seed(config.seed)
    layers = [MixedLayer([create_block(block, in_channels=slot.in_channels, out_channels=slot.out_channels, stride=slot.stride)],
                         [0.0], [block]) for slot, block in zip(space.layers, blocks)]
    stem = create_stem(in_channels=space.input_shape[0], out_channels=space.stem["channels"],
                       temporal_kernel=space.stem.get("temporal_kernel", 5))
    head = create_head(in_channels=space.layers[-1].out_channels, hidden_channels=space.head["channels"], num_classes=clips.num_classes)
    supernet = Supernet(stem=stem, layers=layers, head=head, fixed_ms=1.0)
    # one path: "uniform" trains it once per step, as the search trains its drawn path
    result = run_search(supernet, clips, dataclasses.replace(config, sampling="uniform"), out_dir=out_dir, progress=False)
    return {"val_acc": result.history[-1]["val_acc_sampled"], "seconds": result.seconds, "cpu_seconds": result.cpu_seconds}


def device_table(space, store: str, device: str) -> PredictedLatency:
    with LatencyStore(store, read_only=True) as latency_store:
        return PredictedLatency.of(*device_latency_table(space, device=device, store=latency_store))


def run_device_search(args: argparse.Namespace, space, out: Path) -> None:
    """The default DNAS of one device, then evolution, budget DNAS and scores on its supernet."""
    device = args.device
    result_file = out / f"search-{device}.json"
    if result_file.is_file():
        return
    latency = device_table(space, args.store, device)
    table = [list(row) for row in latency.table]
    clips = clips_for(args.data, args.seed, test=10)
    config = SearchConfig(epochs=args.search_epochs, warmup_epochs=min(SearchConfig.warmup_epochs, args.search_epochs - 1),
                          unit_ms=fbnet_unit_ms(table, latency.fixed_ms), mode=args.mode, weight_paths=args.weight_paths,
                          seed=args.seed)
    report = search_device(space, clips, config, latency_table=table, fixed_ms=latency.fixed_ms, device=device,
                           out_dir=out / f"search-{device}", data_name=args.data, derive=args.derive,
                           evolution=EvolutionConfig(seed=args.seed), progress=False)
    search_seconds = {"wall": report["search_seconds"], "cpu": report["search_cpu_seconds"]}  # over every resumed run
    supernet = create_supernet(space, latency_table=table, fixed_ms=latency.fixed_ms, num_classes=clips.num_classes)
    supernet.load_state_dict(torch.load(out / f"search-{device}" / "checkpoint.pt", map_location="cpu", weights_only=True)["model"])
    scorer = SupernetScorer(supernet, clips.val)
    archs = {**random_archs(space, args.random), "x3d-xs": space.reference_archs()["x3d-xs"].layers,
             "fastest": [layer.names[i] for layer, i in zip(supernet.layers, latency.fastest())], "dnas": report["layers"],
             "dnas-argmax": report["argmax"]["layers"]}
    random_ms = sorted(latency(supernet.path_of(layers)) for name, layers in archs.items() if name.startswith("random-"))
    budgets = [] if args.light else [random_ms[round(q * (len(random_ms) - 1))] for q in (0.25, 0.5, 0.75)]
    budget_seconds = {}
    evolution = EvolutionConfig(population=args.population, generations=args.generations,
                                parents=min(EvolutionConfig.parents, args.population), seed=args.seed)
    for budget in budgets:
        begin = time.perf_counter()
        archs[f"evolution-{budget:.2f}ms"] = list(evolve(supernet, scorer, latency=latency, budget_ms=budget,
                                                         config=evolution).best.blocks)
        middle = time.perf_counter()
        path = budget_search(supernet, clips, config, target_ms=budget)
        archs[f"dnas-{budget:.2f}ms"] = [layer.names[i] for layer, i in zip(supernet.layers, path)]
        budget_seconds[f"{budget:.2f}"] = {"evolution": middle - begin, "dnas": time.perf_counter() - middle}
    scored = {name: score_arch(supernet, scorer, supernet.path_of(layers), latency=latency) for name, layers in archs.items()}
    fixed = None if args.light else fixed_path_accuracy(space, archs["x3d-xs"], clips, config, out / f"fixed-path-{device}")
    result = {
        "device": device, "data": args.data, "config": dataclasses.asdict(config), "search_seconds": search_seconds,
        "val_acc_sampled": report["val_acc_sampled"], "val_acc_derived": report["val_acc_supernet"], "derive": args.derive,
        "derive_seconds": report["derive_seconds"], "fixed_path": fixed,
        "budgets_ms": budgets, "budget_seconds": budget_seconds,
        "archs": {name: {"layers": list(s.blocks), "predicted_ms": s.predicted_ms, "supernet_acc": s.accuracy}
                  for name, s in scored.items()},
    }
    result_file.write_text(json.dumps(result, indent=1))


def train_archs(args: argparse.Namespace, space, out: Path) -> None:
    """Train the random archs and x3d-xs, or a searched device's archs (``--device``), ``--train-seeds`` runs
    each, one JSON file per arch; ``--names`` keeps only the named archs."""
    if args.device:
        searched = json.loads((out / f"search-{args.device}.json").read_text())["archs"]
        jobs = {name: arch["layers"] for name, arch in searched.items() if not name.startswith("random-") and name != "x3d-xs"}
    else:
        jobs = {**random_archs(space, args.random), "x3d-xs": space.reference_archs()["x3d-xs"].layers}
    if args.names:
        jobs = {name: layers for name, layers in jobs.items() if name in args.names.split(",")}
    if args.device:
        jobs = {f"{name}@{args.device}": layers for name, layers in jobs.items()}
    shard, shards = (int(part) for part in args.shard.split("/"))
    jobs = dict(list(jobs.items())[shard::shards])
    trained_dir = out / "trained"
    trained_dir.mkdir(parents=True, exist_ok=True)
    data = clips_for(args.data, args.seed, test=1000)
    seeds = range(args.seed, args.seed + args.train_seeds)
    for name, layers in jobs.items():
        path = trained_dir / f"{name}.json"
        # the same arch under another name (e.g. DNAS ending at the table minimum) shares its runs
        twin = next((p for p in trained_dir.glob("*.json") if p != path and json.loads(p.read_text())["layers"] == layers), None)
        runs = {run["seed"]: run for source in (path, twin) if source is not None and source.is_file()
                for run in trained_runs(json.loads(source.read_text()), args.seed)}
        for seed in seeds:
            if seed in runs:
                continue
            started, cpu = time.perf_counter(), time.process_time()
            result = train_arch(space.make_arch(layers, name=name), data, TrainConfig(epochs=args.train_epochs, seed=seed),
                                progress=False)
            runs[seed] = {"seed": seed, "val_acc": result.val_acc, "test_acc": result.test_acc,
                          "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}
            print(f"trained {name} (training seed {seed}): test {result.test_acc:.3f} in {runs[seed]['seconds']:.0f} s", flush=True)
            path.write_text(json.dumps(trained_row(layers, list(runs.values()))))
        if not path.is_file():
            path.write_text(json.dumps(trained_row(layers, list(runs.values()))))


def trained_runs(row: dict[str, Any], data_seed: int) -> list[dict[str, Any]]:
    """The stand-alone runs of one trained-arch file (a file of one run, before training seeds, is that seed's run)."""
    return row.get("runs") or [{"seed": data_seed, **{key: row[key] for key in ("val_acc", "test_acc", "seconds", "cpu_seconds")}}]


def trained_row(layers: list[str], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One arch's file: its runs (one per training seed) and their mean accuracies."""
    runs = sorted(runs, key=lambda run: run["seed"])
    return {"layers": layers, "runs": runs, "val_acc": sum(r["val_acc"] for r in runs) / len(runs),
            "test_acc": sum(r["test_acc"] for r in runs) / len(runs)}


def report(args: argparse.Namespace, space, out: Path) -> None:
    """Print the tables and draw OUT/pareto.png (stand-alone test accuracy against predicted latency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = args.devices.split(",")
    trained = {path.stem: json.loads(path.read_text()) for path in (out / "trained").glob("*.json")}
    searches = {device: json.loads((out / f"search-{device}.json").read_text()) for device in devices}

    def trained_as(name: str, device: str) -> dict[str, Any] | None:
        return trained.get(name) or trained.get(f"{name}@{device}")

    def test_acc(name: str, device: str) -> float:
        row = trained_as(name, device)
        return row["test_acc"] if row else math.nan

    def runs(name: str, device: str) -> int:
        row = trained_as(name, device)
        return len(trained_runs(row, args.seed)) if row else 0

    fig, axes = plt.subplots(1, len(devices), figsize=(6.5 * len(devices), 4.8), squeeze=False)
    for device, ax in zip(devices, axes.flat):
        result = searches[device]
        archs = result["archs"]
        fixed = result["fixed_path"]["val_acc"] if result["fixed_path"] else math.nan
        print(f"\n== {device} ({result['data']}, {result['config']['epochs']} search epochs, mode {result['config']['mode']}, "
              f"sampling {result['config']['sampling']}, weight paths {result['config'].get('weight_paths', 'logits')})")
        print(f"supernet: val acc of paths drawn from the logits {result['val_acc_sampled']:.3f}, of the derived arch "
              f"{result['val_acc_derived']:.3f} (derive: {result.get('derive', 'argmax')}); x3d-xs trained alone in the same loop and steps {fixed:.3f} "
              f"(gap {100 * (fixed - result['val_acc_sampled']):.1f} points)")
        print(f"cost: search {result['search_seconds']['wall']:.0f} s wall / {result['search_seconds']['cpu']:.0f} s CPU; "
              + ", ".join(f"{b} ms: evolution {s['evolution']:.0f} s, budget DNAS {s['dnas']:.0f} s"
                          for b, s in result["budget_seconds"].items()))
        randoms = [name for name in archs if name.startswith("random-") and name in trained]
        tau = kendall_tau([archs[n]["supernet_acc"] for n in randoms], [trained[n]["test_acc"] for n in randoms])
        print(f"ranking: Kendall tau of supernet val acc against stand-alone test acc over {len(randoms)} random archs: {tau:.3f}")
        print(f"{'arch':<22} {'pred ms':>8} {'supernet':>9} {'test acc (runs)':>16}  layers")
        for name, arch in sorted(archs.items(), key=lambda item: item[1]["predicted_ms"]):
            print(f"{name:<22} {arch['predicted_ms']:>8.2f} {arch['supernet_acc']:>9.3f} {test_acc(name, device):>12.3f} "
                  f"({runs(name, device)})  "
                  f"{' '.join(arch['layers'])}")
        for budget in result["budgets_ms"]:
            under = [trained[n]["test_acc"] for n in randoms if archs[n]["predicted_ms"] <= budget + 1e-9]
            evo, dn = f"evolution-{budget:.2f}ms", f"dnas-{budget:.2f}ms"
            print(f"budget {budget:.2f} ms: evolution {test_acc(evo, device):.3f} ({archs[evo]['predicted_ms']:.2f} ms), budget DNAS "
                  f"{test_acc(dn, device):.3f} ({archs[dn]['predicted_ms']:.2f} ms), best of {len(under)} random archs under it "
                  f"{max(under) if under else math.nan:.3f}")
        for name, arch in archs.items():
            acc = test_acc(name, device)
            if math.isnan(acc):
                continue
            searched = not name.startswith("random-")
            ax.scatter(arch["predicted_ms"], acc, marker="*" if searched else "o", s=90 if searched else 30,
                       color="tab:red" if name.startswith(("dnas", "evolution")) else ("tab:green" if searched else "tab:blue"))
            if searched:
                ax.annotate(name, (arch["predicted_ms"], acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for budget in result["budgets_ms"]:
            ax.axvline(budget, color="grey", lw=0.6, ls="--")
        ax.set_xlabel(f"predicted latency on {device} (ms, table sum)")
        ax.set_ylabel("test accuracy, trained alone (--train-epochs)")
        ax.set_title(f"{device}: random archs (o), references (green), search results (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    print(f"\nwrote {out / 'pareto.png'}")
    if len(devices) > 1:
        print("\n== the derived (default DNAS) arch of each device, priced on every device; test accuracy trained alone")
        print(f"{'found for':<20}" + "".join(f"{d + ' ms':>22}" for d in devices) + f"{'test acc':>10}")
        for source in devices:
            layers = searches[source]["archs"]["dnas"]["layers"]
            cells = "".join(f"{device_table(space, args.store, d)(space_path(space, layers)):>22.2f}" for d in devices)
            print(f"{source:<20}{cells}{test_acc('dnas', source):>10.3f}")


def space_path(space, layers: list[str]) -> list[int]:
    """Candidate indices of ``layers`` in ``space``."""
    return [slot.candidates.index(block) for slot, block in zip(space.layers, layers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["search", "train", "report"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--device", default=None, help="search: the device; train: a searched device's archs")
    parser.add_argument("--light", action="store_true", help="search: the default DNAS and scores only (no budgets, no fixed path)")
    parser.add_argument("--shard", default="0/1", help="train: every N-th arch from the K-th (K/N), for side-by-side runs")
    parser.add_argument("--names", default="", help="train: only these archs (e.g. dnas,fastest or random-5,x3d-xs)")
    parser.add_argument("--devices", default="ort-cpu-1t,fpga-zcu102-sim", help="report: the searched devices")
    parser.add_argument("--random", type=int, default=12, help="random archs (scored on every supernet, trained alone)")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--search-epochs", type=int, default=SearchConfig.epochs)
    parser.add_argument("--mode", choices=SEARCH_MODES, default=SearchConfig.mode)
    parser.add_argument("--weight-paths", choices=WEIGHT_PATHS, default=SearchConfig.weight_paths,
                        help="search: uniform (SPOS) or drawn from the logits")
    parser.add_argument("--derive", choices=DERIVATIONS, default=DEFAULT_DERIVATION, help="search: how the DNAS picks its arch")
    parser.add_argument("--population", type=int, default=EvolutionConfig.population)
    parser.add_argument("--generations", type=int, default=EvolutionConfig.generations)
    parser.add_argument("--train-epochs", type=int, default=8, help="stand-alone training epochs (`vidlat run`'s default)")
    parser.add_argument("--train-seeds", type=int, default=1,
                        help="train: stand-alone runs per arch, training seeds --seed and up on the clips of --seed; "
                             "the report takes their mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-search")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = load_space("default")
    if args.step == "search":
        if not args.device:
            parser.error("search needs --device")
        run_device_search(args, space, out)
    elif args.step == "train":
        train_archs(args, space, out)
    else:
        report(args, space, out)


if __name__ == "__main__":
    main()
