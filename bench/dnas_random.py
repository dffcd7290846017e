"""DNAS against random search at the same latency budget, every model trained the same way.

::

    vidlat.api.search(D, target_ms=T)                  ──> DNAS arch ─┐
    random archs of the space (seeds 0, 1, ...) whose lookup-table   ├─ vidlat.api.train (same settings)
    latency on D is in [band * T, T], the first N                  ──┘      ──> test accuracy

The search and the random trainings run side by side (``--workers`` processes, one thread each).

    .venv/bin/python bench/dnas_random.py --store /tmp/h5/default.sqlite --target-ms 30 --n 4
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from dnas_common import run_parallel

from profiler.store import LatencyStore
from search.arch import load_arch
from search.config import ClipConfig, SearchConfig, TrainConfig
from search.device_search import device_latency_table
from search.space import load_space
from vidlat import api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--store", required=True)
    parser.add_argument("--target-ms", type=float, required=True, help="the latency budget of the search and of the random archs")
    parser.add_argument("--out", default="runs/bench-random")
    parser.add_argument("--n", type=int, default=4, help="random archs to train")
    parser.add_argument("--band", type=float, default=0.8, help="keep random archs with latency >= band * budget")
    parser.add_argument("--epochs", type=int, default=6, help="search epochs (2 weight-only warm-up)")
    parser.add_argument("--train-epochs", type=int, default=6)
    parser.add_argument("--train-clips", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    space = load_space(args.space)
    with LatencyStore(args.store) as store:
        table, fixed = device_latency_table(space, device=args.device, store=store)

    def lut_ms(layers: list[str]) -> float:
        return fixed + sum(row[slot.candidates.index(b)] for row, slot, b in zip(table, space.layers, layers))

    budget = args.target_ms
    picked, tried = [], 0
    for seed in range(20_000):
        arch = space.sample(seed)
        tried += 1
        if args.band * budget <= lut_ms(arch.layers) <= budget:
            picked.append(arch)
            if len(picked) == args.n:
                break
    clips = ClipConfig(train_clips=args.train_clips)
    train = partial(api.train, clips=clips, config=TrainConfig(epochs=args.train_epochs, seed=args.seed))
    jobs = {"search": partial(api.search, args.device, space=args.space, store=args.store, target_ms=budget, clips=clips,
                              config=SearchConfig(seed=args.seed).with_epochs(args.epochs), out=out / "search")}
    for arch in picked:
        arch.save(out / "random" / f"{arch.name}.yaml")
        jobs[arch.name] = partial(train, out / "random" / f"{arch.name}.yaml", out=out / "random" / arch.name)
    run_parallel(jobs, workers=args.workers, log_dir=out / "logs")
    run_parallel({"train-dnas": partial(train, out / "search" / "arch.yaml", out=out / "train-dnas")}, workers=1, log_dir=out / "logs")
    found = load_arch(out / "search" / "arch.yaml")
    found_acc = json.loads((out / "train-dnas" / "train.json").read_text())["test_acc"]
    rows = [(arch.name, lut_ms(arch.layers), json.loads((out / "random" / arch.name / "train.json").read_text())["test_acc"])
            for arch in picked]
    accs = [acc for _, _, acc in rows]
    print(f"{args.device}, space {args.space}: budget {budget:.2f} ms; random archs in [{args.band * budget:.2f}, {budget:.2f}] ms: "
          f"first {len(picked)} of {tried} sampled; {args.train_clips} clips, train {args.train_epochs} epochs")
    print(f"{'model':<28} {'LUT ms':>8} {'test acc':>9}")
    print(f"{'DNAS (target ' + str(budget) + ' ms)':<28} {lut_ms(found.layers):>8.2f} {found_acc:>9.3f}")
    for name, ms, acc in rows:
        print(f"{name:<28} {ms:>8.2f} {acc:>9.3f}")
    if accs:
        print(f"random: best {max(accs):.3f}, mean {sum(accs) / len(accs):.3f} (N={len(accs)})")
    print(f"DNAS arch: {' | '.join(found.layers)}")
    (out / "random.json").write_text(json.dumps(
        {"budget_ms": budget, "dnas": {"layers": found.layers, "lut_ms": lut_ms(found.layers), "test_acc": found_acc},
         "random": rows}, indent=1))


if __name__ == "__main__":
    main()
