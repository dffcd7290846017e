"""Bench: does the canary catch a neighbour that the wall-versus-CPU check cannot see?

    .venv/bin/python bench/canary_neighbour.py --device ort-cpu-1t --space default --workloads 12

One group of block workloads is timed in interleaved rounds twice, pinned to CPU 0, re-runs off so
that every flagged round stays visible: once on a quiet machine, once with a planted neighbour, a
memory-bound loop (copying a 256 MiB array) pinned to CPU 1, started a few seconds into the rounds
and stopped a few seconds later. The neighbour never takes our core, so wall time stays equal to
CPU time and the contention flag (wall / CPU > 1.5) stays off; what it takes is memory bandwidth
and the shared cache. Prints, per run, the rounds inside and outside the neighbour's window, how
many of each the canary flagged, the canary's drift there, and how many measurements were flagged
contended.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time

import numpy as np
import torch

from profiler.backends import create_backend
from profiler.backends.base import Prepared
from profiler.catalog import resolve_device
from profiler.rounds import canary_workload, time_in_rounds
from search.space import load_space

NEIGHBOUR_MB = 256


def memory_bound_loop(cpu: int, stop: multiprocessing.synchronize.Event) -> None:
    """Copy a large array back and forth on ``cpu`` until ``stop`` is set."""
    os.sched_setaffinity(0, {cpu})
    a = np.ones(NEIGHBOUR_MB * 1024 * 1024 // 8)
    b = np.empty_like(a)
    while not stop.is_set():
        np.copyto(b, a)
        np.copyto(a, b)


def one_run(backend, prepared: dict[str, Prepared], canary: Prepared, policy, *, window_s: tuple[float, float] | None):
    stop = multiprocessing.Event()
    neighbour = multiprocessing.Process(target=memory_bound_loop, args=(1, stop), daemon=True)
    timers = []
    if window_s is not None:
        timers = [threading.Timer(window_s[0], neighbour.start), threading.Timer(window_s[1], stop.set)]
        for timer in timers:
            timer.start()
    try:
        results, log = time_in_rounds({key: item.run for key, item in prepared.items()}, policy, canary=canary.run)
    finally:
        stop.set()
        for timer in timers:
            timer.cancel()
        if neighbour.is_alive():
            neighbour.join(5)
    return results, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--workloads", type=int, default=12, help="block workloads in the group")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--window", default="0.35,0.65", help="neighbour on/off as fractions of the quiet run's duration")
    args = parser.parse_args()

    torch.set_flush_denormal(True)
    os.sched_setaffinity(0, {0})
    device = resolve_device(args.device)
    policy = device.measurement.model_copy(update={"min_rounds": args.rounds, "max_rounds": args.rounds, "max_round_retries": 0,
                                                   "max_runs": 100000, "max_seconds": 1e6})
    backend = create_backend(device)
    blocks = [w for w in load_space(args.space).profiling_workloads() if w.spec.get("op") not in ("network",)][: args.workloads]
    prepared = {w.key: backend.prepare(w) for w in blocks}
    canary = backend.prepare(canary_workload())
    assert all(isinstance(item, Prepared) for item in [*prepared.values(), canary])

    started = time.perf_counter()
    quiet, quiet_log = one_run(backend, prepared, canary, policy, window_s=None)
    duration = time.perf_counter() - started
    on, off = (float(part) * duration for part in args.window.split(","))
    loud, loud_log = one_run(backend, prepared, canary, policy, window_s=(on, off))

    print(f"{device.name}, {len(blocks)} block workloads of space {args.space}, {args.rounds} rounds, canary tolerance "
          f"{quiet_log.canary_tolerance:.3f} / {loud_log.canary_tolerance:.3f}; neighbour window {on:.1f}-{off:.1f} s "
          f"of a {duration:.1f} s run; load average {os.getloadavg()[0]:.1f}")
    print(f"{'rounds':<30}{'count':>7}{'flagged':>9}{'max |drift| %':>15}")

    def row(name: str, log, picked: list[int]) -> None:
        drift = max((abs(log.drifts[index]) for index in picked), default=0.0)
        print(f"{name:<30}{len(picked):>7}{sum(log.flagged[index] for index in picked):>9}{100 * drift:>15.1f}")

    row("quiet run", quiet_log, list(range(len(quiet_log.ended_s))))
    span = float(np.median(np.diff(loud_log.ended_s)))  # a round ending up to one round after the window saw it
    inside = [index for index, end in enumerate(loud_log.ended_s) if on <= end <= off + span]
    row("neighbour run, inside window", loud_log, inside)
    row("neighbour run, outside window", loud_log, [index for index in range(len(loud_log.ended_s)) if index not in inside])
    print(f"measurements flagged contended (wall / CPU > {policy.contention_ratio}): quiet {sum(m.contended for m in quiet.values())}, "
          f"with neighbour {sum(m.contended for m in loud.values())} of {len(blocks)}")

if __name__ == "__main__":
    main()
