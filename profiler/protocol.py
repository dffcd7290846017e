"""The measurement protocol: warm-up, adaptive repetition, statistics, contention check.

::

    warm-up runs ──> timed runs ──(>= min_runs)──> CI of the median <= max_rel_ci ? stop
                        ^  (cold cache: flush       │ or max_runs reached
                        │   before each run)        v
                        │   max_seconds of timed runs spent ? stop (checked after every run)
                        └──────── no ────────── Measurement(median, mean, std, p10, p90,
                                                            raw times, CPU time, contended)

``max_seconds`` is a hard cap: it wins over ``min_runs``, so a slow workload may stop with fewer
runs (at least one; ``extra["stopped_by"]`` says why it stopped). Warm-up runs do not count
towards it; they are bounded by ``warmup_runs``.

Wall time is ``perf_counter``; CPU time is the process CPU time of the same run, so a run whose
wall time is far above its CPU time (another process had the core) shows as contended. A backend
whose device keeps its own clock (CUDA events) passes ``device_timer``: each timed run's latency is
then the device's, no CPU time is taken and the contention check is off; the stopping rule, the
warm-up and the ``max_seconds`` cap (on the host's clock) stay the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from profiler.device import MeasurementPolicy
from profiler.workload import Measurement

Z_95 = 1.96


def median_rel_ci(samples: list[float] | np.ndarray) -> float:
    """Width of the distribution-free 95% confidence interval of the median, relative to it."""
    values = np.sort(np.asarray(samples, dtype=float))
    n = len(values)
    if n < 3:
        return math.inf
    half = Z_95 * math.sqrt(n) / 2
    low = max(int(math.floor(n / 2 - half)), 0)
    high = min(int(math.ceil(n / 2 + half)), n - 1)
    median = float(np.median(values))
    return float(values[high] - values[low]) / median if median > 0 else math.inf


class CacheFlusher:
    """Evicts the last-level cache by writing a buffer larger than it."""

    def __init__(self, size_mb: int) -> None:
        self._buffer = np.zeros(size_mb * 1024 * 1024 // 8, dtype=np.float64)

    def __call__(self) -> None:
        self._buffer += 1.0


def summarize(wall_ms: list[float], cpu_ms: list[float], contention_ratio: float) -> Measurement:
    """Statistics of a list of timed runs (milliseconds)."""
    wall = np.asarray(wall_ms, dtype=float)
    cpu_median = float(np.median(cpu_ms)) if cpu_ms else None
    median = float(np.median(wall))
    contended = cpu_median is not None and cpu_median > 0 and median / cpu_median > contention_ratio
    return Measurement(
        status="ok",
        median_ms=median,
        mean_ms=float(wall.mean()),
        std_ms=float(wall.std(ddof=1)) if len(wall) > 1 else 0.0,
        p10_ms=float(np.percentile(wall, 10)),
        p90_ms=float(np.percentile(wall, 90)),
        runs=len(wall),
        raw_ms=[round(value, 6) for value in wall.tolist()],
        cpu_ms=cpu_median,
        contended=bool(contended),
    )


def measure_callable(
    run: Callable[[], object], policy: MeasurementPolicy, *, clock_ns: Callable[[], int] = time.perf_counter_ns,
    device_timer: Callable[[Callable[[], object]], float] | None = None,
) -> Measurement:
    """Time ``run`` under ``policy``; exceptions propagate to the backend, which records them.

    Stops at ``max_runs``, at ``min_runs`` once the CI of the median is narrow enough, or as soon as
    the timed runs have taken ``max_seconds`` (a hard cap, also below ``min_runs``; warm-up not
    counted). ``clock_ns`` is the wall clock (nanoseconds); ``device_timer(run)``, if given, runs
    ``run`` once and returns its latency in milliseconds as the device measured it.
    """
    flush = CacheFlusher(policy.flush_mb) if policy.cold_cache else None
    for _ in range(policy.warmup_runs):
        run()
    wall_ms: list[float] = []
    cpu_ms: list[float] = []
    deadline = clock_ns() + int(policy.max_seconds * 1e9)
    stopped_by = "max_runs"
    while len(wall_ms) < policy.max_runs:
        if flush is not None:
            flush()
        if device_timer is not None:
            wall_ms.append(float(device_timer(run)))
            wall_end = clock_ns()
        else:
            cpu_start = time.process_time_ns()
            wall_start = clock_ns()
            run()
            wall_end = clock_ns()
            cpu_end = time.process_time_ns()
            wall_ms.append((wall_end - wall_start) / 1e6)
            cpu_ms.append((cpu_end - cpu_start) / 1e6)
        if len(wall_ms) >= policy.min_runs and median_rel_ci(wall_ms) <= policy.max_rel_ci:
            stopped_by = "max_rel_ci"
            break
        if wall_end >= deadline:
            stopped_by = "max_seconds"
            break
    measurement = summarize(wall_ms, cpu_ms, policy.contention_ratio)
    rel_ci = median_rel_ci(wall_ms)
    measurement.extra.update(rel_ci=rel_ci if math.isfinite(rel_ci) else None, stopped_by=stopped_by)
    return measurement
