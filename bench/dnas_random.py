"""DNAS against random search at the same latency budget, every model trained the same way.

::

    budget = lookup-table latency of the DNAS arch on the device (from bench/dnas_devices.py)
    random archs of the space (seeds 0, 1, ...) with budget * band <= latency <= budget, first N
        --vidlat train (same settings as the DNAS arch)--> test accuracy: DNAS vs best / mean of N

    .venv/bin/python bench/dnas_random.py --store /tmp/h5/default.sqlite --dnas runs/bench-dnas --n 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dnas_common import run_parallel

from profiler.store import LatencyStore
from search.arch import load_arch
from search.dnas import device_latency_table
from search.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--store", required=True)
    parser.add_argument("--dnas", default="runs/bench-dnas", help="output folder of bench/dnas_devices.py")
    parser.add_argument("--n", type=int, default=4, help="random archs to train")
    parser.add_argument("--band", type=float, default=0.8, help="keep random archs with latency >= band * budget")
    parser.add_argument("--train-epochs", type=int, default=8)
    parser.add_argument("--train-clips", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dnas = Path(args.dnas)
    space = load_space(args.space)
    with LatencyStore(args.store) as store:
        table, fixed = device_latency_table(space, device=args.device, store=store)

    def lut_ms(layers: list[str]) -> float:
        return fixed + sum(row[slot.candidates.index(b)] for row, slot, b in zip(table, space.layers, layers))

    found = load_arch(dnas / f"search-{args.device}" / "arch.yaml")
    found_acc = json.loads((dnas / f"train-{args.device}" / "train.json").read_text())["test_acc"]
    budget = lut_ms(found.layers)
    picked, tried = [], 0
    for seed in range(20_000):
        arch = space.sample(seed)
        tried += 1
        if args.band * budget <= lut_ms(arch.layers) <= budget:
            picked.append(arch)
            if len(picked) == args.n:
                break
    out = dnas / f"random-{args.device}"
    jobs = {}
    for arch in picked:
        arch.save(out / f"{arch.name}.yaml")
        jobs[arch.name] = ["train", str(out / f"{arch.name}.yaml"), "--epochs", str(args.train_epochs),
                           "--train-clips", str(args.train_clips), "--seed", str(args.seed), "--out", str(out / arch.name)]
    run_parallel(jobs, workers=2, log_dir=out / "logs")
    rows = [(arch.name, lut_ms(arch.layers), json.loads((out / arch.name / "train.json").read_text())["test_acc"]) for arch in picked]
    accs = [acc for _, _, acc in rows]
    print(f"{args.device}, space {args.space}: budget {budget:.2f} ms (DNAS arch), random archs in "
          f"[{args.band * budget:.2f}, {budget:.2f}] ms: {len(picked)} of {tried} sampled; train {args.train_epochs} epochs")
    print(f"{'model':<28} {'LUT ms':>8} {'test acc':>9}")
    print(f"{'DNAS (' + args.device + ')':<28} {budget:>8.2f} {found_acc:>9.3f}")
    for name, ms, acc in rows:
        print(f"{name:<28} {ms:>8.2f} {acc:>9.3f}")
    if accs:
        print(f"random: best {max(accs):.3f}, mean {sum(accs) / len(accs):.3f} (N={len(accs)})")
    (out / "random.json").write_text(json.dumps({"budget_ms": budget, "dnas_acc": found_acc, "random": rows}, indent=1))


if __name__ == "__main__":
    main()
