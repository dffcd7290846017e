"""Bench: do the canary's timings make interleaved passes agree? Three ways to read the same rounds.

    .venv/bin/python bench/canary_scaling.py --device ort-cpu-1t --space default --networks 20 --passes 3

The space's sampled networks are loaded in one process and timed in ``--passes`` passes of
``--rounds`` interleaved rounds each (order shuffled per round, one untimed and three timed runs of
each network per round), with the canary timed at both ends of every round and once more just before
each network. Per network and pass: the plain median over round medians, the median of round
medians divided by the round's canary, and the median of each network's time divided by the canary
timed just before it. Prints, for every pair of passes, Kendall tau and the median relative
difference under each reading.
"""

from __future__ import annotations

import argparse
import random
import time
from itertools import combinations

import numpy as np
import torch

from predictors.metrics import kendall_tau
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.rounds import canary_workload
from search.space import load_space

READINGS = ("plain", "round canary", "own canary")


def timed(run, runs: int = 3) -> float:
    """Median of ``runs`` timed runs after one untimed run, ms."""
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


def one_pass(prepared: dict, canary, rounds: int, seed: int) -> dict[str, dict[str, float]]:
    order = random.Random(seed)
    plain = {key: [] for key in prepared}
    own = {key: [] for key in prepared}
    canary_rounds = []
    for _ in range(rounds):
        canary_ms = [timed(canary)]
        for key in order.sample(list(prepared), len(prepared)):
            before = timed(canary)
            ms = timed(prepared[key].run)
            plain[key].append(ms)
            own[key].append(ms / before)
        canary_ms.append(timed(canary))
        canary_rounds.append(float(np.mean(canary_ms)))
    speed = np.array(canary_rounds)
    return {
        "plain": {key: float(np.median(values)) for key, values in plain.items()},
        "round canary": {key: float(np.median(np.array(values) / speed)) for key, values in plain.items()},
        "own canary": {key: float(np.median(values)) for key, values in own.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    torch.set_flush_denormal(True)
    backend = create_backend(resolve_device(args.device))
    networks = [w for w in load_space(args.space).profiling_workloads(networks=args.networks) if w.spec.get("op") == "network"]
    prepared = {w.key: backend.prepare(w) for w in networks}
    canary = backend.prepare(canary_workload()).run
    passes = [one_pass(prepared, canary, args.rounds, seed) for seed in range(args.passes)]
    keys = list(prepared)
    print(f"{args.device}: {len(keys)} networks of space {args.space}, {args.passes} passes of {args.rounds} rounds")
    print(f"{'passes':<8}" + "".join(f"{name + ': Kendall / diff %':>30}" for name in READINGS))
    for first, second in combinations(range(args.passes), 2):
        cells = []
        for name in READINGS:
            a = np.array([passes[first][name][key] for key in keys])
            b = np.array([passes[second][name][key] for key in keys])
            cells.append(f"{kendall_tau(a, b):>20.3f} / {100 * float(np.median(np.abs(a - b) / ((a + b) / 2))):>5.2f}")
        print(f"{first}-{second:<6}" + "".join(cells))


if __name__ == "__main__":
    main()
