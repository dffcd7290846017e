"""The measurement protocol: stopping rule, statistics, contention flag, cold-cache flush."""

from __future__ import annotations

import math

import pytest

from profiler.device import MeasurementPolicy
from profiler.protocol import measure_callable, median_rel_ci, summarize


def test_median_rel_ci_narrows_with_agreeing_samples():
    assert median_rel_ci([1.0, 1.0]) == math.inf
    assert median_rel_ci([1.0] * 20) == 0.0
    spread = [1.0, 1.1, 0.9, 1.2, 0.8] * 4
    assert median_rel_ci(spread) == pytest.approx(0.2) and median_rel_ci(spread[:6]) == pytest.approx(0.4)


def test_summarize_statistics_and_contention():
    good = summarize([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], contention_ratio=1.5)
    assert (good.median_ms, good.mean_ms, good.runs, good.contended) == (2.5, 2.5, 4, False)
    assert good.p10_ms == pytest.approx(1.3) and good.p90_ms == pytest.approx(3.7) and good.raw_ms == [1.0, 2.0, 3.0, 4.0]
    starved = summarize([4.0, 4.0, 4.0], [1.0, 1.0, 1.0], contention_ratio=1.5)
    assert starved.contended and starved.cpu_ms == 1.0


def test_stable_run_stops_at_min_runs_after_warmup():
    calls = []
    policy = MeasurementPolicy(warmup_runs=2, min_runs=5, max_runs=50, max_rel_ci=0.9, max_seconds=60)
    measurement = measure_callable(lambda: calls.append(1), policy)
    assert measurement.status == "ok" and measurement.runs >= 5 and len(calls) == measurement.runs + 2
    assert "rel_ci" in measurement.extra


def test_unreachable_bound_stops_at_cap():
    policy = MeasurementPolicy(warmup_runs=0, min_runs=3, max_runs=7, max_rel_ci=1e-9, max_seconds=60)
    assert measure_callable(lambda: sum(range(100)), policy).runs == 7


def test_cold_cache_flushes_before_each_timed_run(monkeypatch):
    flushes = []
    monkeypatch.setattr("profiler.protocol.CacheFlusher.__call__", lambda self: flushes.append(1))
    policy = MeasurementPolicy(warmup_runs=1, min_runs=3, max_runs=3, cold_cache=True, flush_mb=1)
    measurement = measure_callable(lambda: None, policy)
    assert len(flushes) == measurement.runs == 3


def test_exceptions_propagate_to_the_backend():
    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        measure_callable(boom, MeasurementPolicy())


class FakeClock:
    """A wall clock in nanoseconds that each timed run advances by ``run_s``."""

    def __init__(self, run_s: float) -> None:
        self.now, self.step = 0, int(run_s * 1e9)

    def __call__(self) -> int:
        return self.now

    def run(self) -> None:
        self.now += self.step


def test_max_seconds_is_a_hard_cap_that_wins_over_min_runs():
    clock = FakeClock(run_s=0.1)
    policy = MeasurementPolicy(warmup_runs=30, min_runs=100_000, max_runs=100_000, max_seconds=1.5)
    measurement = measure_callable(clock.run, policy, clock_ns=clock)
    # warm-up (30 runs, 3 s on the fake clock) does not count; timed runs stop once 1.5 s are spent
    assert measurement.runs == 15 and measurement.extra["stopped_by"] == "max_seconds"
    assert measurement.median_ms == pytest.approx(100.0)


def test_a_run_longer_than_max_seconds_still_gives_one_timed_run():
    clock = FakeClock(run_s=10.0)
    measurement = measure_callable(clock.run, MeasurementPolicy(warmup_runs=0, max_seconds=1.0), clock_ns=clock)
    assert measurement.runs == 1 and measurement.median_ms == pytest.approx(10_000.0) and measurement.extra["rel_ci"] is None

