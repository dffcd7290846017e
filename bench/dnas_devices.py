"""Device specificity: the same search on two devices, each found model measured on both.

::

    vidlat.api.search(A)  ──> arch_A ─┐   measure whole network on A and B (deployment shape)
    vidlat.api.search(B)  ──> arch_B ─┴─> vidlat.api.train each (same settings) ──> test accuracy

Prints the 2x2 latency table (measured median wall ms / thread CPU ms where the device reports it,
and the lookup-table sum in brackets), each model's speed-up on its own device (by wall and CPU time), test accuracy and search wall / CPU time. The lookup tables must be in the store
(`vidlat profile --device D --space S --store STORE` for both devices).

    .venv/bin/python bench/dnas_devices.py --store /tmp/h5/default.sqlite --out runs/bench-dnas
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from dnas_common import measure_network, run_parallel

from profiler.store import LatencyStore
from search.arch import load_arch
from search.config import ClipConfig, SearchConfig, TrainConfig
from search.device_search import device_latency_table
from search.space import load_space
from vidlat import api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs=2, default=["ort-cpu-1t", "fpga-zcu102-sim"])
    parser.add_argument("--space", default="default")
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", default="runs/bench-dnas")
    parser.add_argument("--epochs", type=int, default=8, help="search epochs (2 weight-only warm-up)")
    parser.add_argument("--train-epochs", type=int, default=8)
    parser.add_argument("--train-clips", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    clips = ClipConfig(train_clips=args.train_clips)
    searches = {
        f"search-{device}": partial(api.search, device, space=args.space, store=args.store, clips=clips,
                                    config=SearchConfig(seed=args.seed).with_epochs(args.epochs), out=out / f"search-{device}")
        for device in args.devices
    }
    run_parallel(searches, workers=2, log_dir=out / "logs",
                 done={f"search-{d}": out / f"search-{d}" / "report.json" for d in args.devices})
    trains = {
        f"train-{device}": partial(api.train, out / f"search-{device}" / "arch.yaml", clips=clips,
                                   config=TrainConfig(epochs=args.train_epochs, seed=args.seed), out=out / f"train-{device}")
        for device in args.devices
    }
    run_parallel(trains, workers=2, log_dir=out / "logs",
                 done={f"train-{d}": out / f"train-{d}" / "train.json" for d in args.devices})
    space = load_space(args.space)
    rows = {}
    with LatencyStore(args.store) as store:
        tables = {device: device_latency_table(space, device=device, store=store) for device in args.devices}
    for found in args.devices:
        arch = load_arch(out / f"search-{found}" / "arch.yaml")
        report = json.loads((out / f"search-{found}" / "report.json").read_text())
        trained = json.loads((out / f"train-{found}" / "train.json").read_text())
        latency = {}
        for device in args.devices:
            table, fixed = tables[device]
            lut = fixed + sum(row[slot.candidates.index(block)] for row, slot, block in zip(table, space.layers, arch.layers))
            wall, cpu = measure_network(space, arch, device)
            latency[device] = {"measured_ms": wall, "cpu_ms": cpu, "lut_ms": lut}
        rows[found] = {"layers": arch.layers, "latency": latency, "test_acc": trained["test_acc"],
                       "search_seconds": report["search_seconds"], "search_cpu_seconds": report["search_cpu_seconds"]}
    (out / "devices.json").write_text(json.dumps(rows, indent=1))
    a, b = args.devices
    print(f"space {args.space}, moving-digits {args.train_clips} clips, search {args.epochs} epochs, train {args.train_epochs} epochs")
    print(f"{'model found for':<20} {'on ' + a + ' wall/cpu (lut)':>30} {'on ' + b + ' wall/cpu (lut)':>30} {'test acc':>9} "
          f"{'search s (cpu)':>15}")

    def cell(entry: dict) -> str:
        cpu = f"{entry['cpu_ms']:.2f}" if entry["cpu_ms"] is not None else "-"
        return f"{entry['measured_ms']:.2f}/{cpu} ({entry['lut_ms']:.2f})"

    for found, row in rows.items():
        cells = [cell(row["latency"][d]) for d in args.devices]
        print(f"{found:<20} {cells[0]:>30} {cells[1]:>30} {row['test_acc']:>9.3f} "
              f"{row['search_seconds']:>7.0f} ({row['search_cpu_seconds']:.0f})")
    for device, other in ((a, b), (b, a)):
        own, foreign = rows[device]["latency"][device], rows[other]["latency"][device]
        ratios = [f"{foreign[k] / own[k]:.2f}x by {label}" for k, label in (("measured_ms", "wall"), ("cpu_ms", "CPU"), ("lut_ms", "table"))
                  if own[k] and foreign[k]]
        print(f"on {device}: its own model is faster than the model found for {other}: {', '.join(ratios)}")
    for found, row in rows.items():
        print(f"{found}: {' | '.join(row['layers'])}")


if __name__ == "__main__":
    main()
