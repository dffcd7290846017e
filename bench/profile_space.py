"""Bench: profile a whole search space on one device; time it and the harness's own overhead.

    .venv/bin/python bench/profile_space.py --space default --device ort-cpu-1t

Prints one table: workloads, time to build them (torch -> ONNX), sweep wall time, and per
workload the split between runtime work (session creation, warm-up and timed runs) and the
harness itself (statistics, stopping rule, store commit, progress bar). Also the per-run cost
of the timing loop, from timing a no-op under the protocol.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.device import MeasurementPolicy
from profiler.protocol import measure_callable
from profiler.store import LatencyStore
from profiler.sweep import profile_workloads


def timed_backend(backend):
    """Wrap ``measure`` (whole call) and, for ONNX Runtime, session creation, recording seconds."""
    spent = {"measure": [], "session": [], "runs": []}
    measure = backend.measure
    warmup_runs = backend.policy.warmup_runs

    def timed_measure(workload):
        start = time.perf_counter()
        measurement = measure(workload)
        spent["measure"].append(time.perf_counter() - start)
        if measurement.status == "ok":  # timed runs plus warm-up runs estimated at the median
            spent["runs"].append((sum(measurement.raw_ms) + warmup_runs * measurement.median_ms) / 1000)
        return measurement

    backend.measure = timed_measure
    if hasattr(backend, "_session"):
        session = backend._session

        def timed_session(*args, **kwargs):
            start = time.perf_counter()
            try:
                return session(*args, **kwargs)
            finally:
                spent["session"].append(time.perf_counter() - start)

        backend._session = timed_session
    return spent


def loop_cost_us(runs: int = 2000) -> float:
    """Per-run cost of the timing loop itself (clock reads, CI of the median), timing a no-op."""
    policy = MeasurementPolicy(warmup_runs=0, min_runs=runs, max_runs=runs, max_seconds=600)
    start = time.perf_counter()
    measure_callable(lambda: None, policy)
    return (time.perf_counter() - start) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="default")
    parser.add_argument("--device", default="ort-cpu-1t")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    from search.space import load_space

    start = time.perf_counter()
    space = load_space(args.space)
    workloads = [item.workload for item in space.workloads()] + list(space.fixed_workloads())
    build_s = time.perf_counter() - start
    unique = len({workload.key for workload in workloads})

    device = resolve_device(args.device)
    backend = create_backend(device)
    spent = timed_backend(backend)
    with tempfile.TemporaryDirectory() as folder, LatencyStore(Path(folder) / "bench.sqlite") as store:
        cpu_start = time.process_time()
        summary = profile_workloads(backend, store, workloads, progress=False)
        cpu_s = time.process_time() - cpu_start
        table = store.table(device.name)
    ok = table[table["status"] == "ok"]
    runs_s = float(np.sum(spent["runs"]))
    session_s = float(np.sum(spent["session"]))
    measure_s = float(np.sum(spent["measure"]))
    harness_s = summary.elapsed_s - runs_s - session_s
    in_measure_harness_s = measure_s - runs_s - session_s
    n = len(spent["measure"])

    print(f"space {args.space} on {device.name}: {unique} unique workloads of {len(workloads)} (layer, candidate) entries + stem/head")
    print(f"{'quantity':<52} {'value':>12}")
    rows = [
        ("build workloads (torch -> ONNX), s", build_s),
        ("sweep wall time, s", summary.elapsed_s),
        ("sweep process CPU time, s", cpu_s),
        ("build + sweep, min", (build_s + summary.elapsed_s) / 60),
        ("measured / unsupported / failed / contended", f"{summary.measured}/{summary.unsupported}/{summary.failed}/{summary.contended}"),
        ("contended re-measurements", summary.remeasured_contended),
        ("median runs per workload", float(ok["runs"].median())),
        ("median of medians, ms", float(ok["median_ms"].median())),
        ("measure calls (incl. contended re-measurements)", n),
        ("per measure call: session creation, ms", session_s / n * 1000),
        ("per measure call: warm-up + timed runs, ms", runs_s / n * 1000),
        ("per measure call: harness inside measure, ms", in_measure_harness_s / n * 1000),
        ("per measure call: harness total (incl. store, bar), ms", harness_s / n * 1000),
        ("harness share of sweep wall time, %", 100 * harness_s / summary.elapsed_s),
        ("timing loop cost per run (no-op), us", loop_cost_us()),
    ]
    for name, value in rows:
        shown = f"{value:>12.3f}" if isinstance(value, float) else f"{value!s:>12}"
        print(f"{name:<52} {shown}")


if __name__ == "__main__":
    main()
