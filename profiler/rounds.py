"""Interleaved rounds: time a group of workloads so that the host's drift falls on all of them alike.

::

    warm-up runs of every workload ──> canary baseline (BASELINE_ROUNDS rounds of the canary alone)
        │
        v
    round r: every workload, order shuffled, each right after the canary (1 untimed + round_runs timed
             runs each, the canary's too), then the canary once more
        │  canary median off its baseline by more than the tolerance ──> the round is flagged, its runs
        │  dropped and the round re-run (after max_round_retries re-runs it is kept, flagged)
        v
    from min_rounds on: every workload's CI of the median <= max_rel_ci ? stop (else max_rounds);
    a workload leaves the rounds once its runs reach max_runs or have taken max_seconds
        │
        v
    Measurement per workload: median over its round medians, each divided by the host's speed right
    before it (the canary's median there over the device's reference), flagged rounds left out while two
    unflagged ones remain; mean, p10, p90 and the raw runs stay as timed;
    extra: rounds, round_medians_ms (normalised, those the median is over), flagged_round_medians_ms,
    round_speeds, canary_reference_ms, run_rounds, flagged_rounds, canary_drift

Timed one after another, two passes over the same networks ranked them at Kendall 0.55-0.62 on this
kind of shared VM; in interleaved rounds at 0.79-0.95 (docs/design.md, early measurements), because
minutes-long changes of the host's speed no longer land on one workload only. The canary, a fixed
small convolution timed before every workload of every round, sees what wall-versus-CPU time cannot:
the host's own speed, which changes without any process here taking the core (on this VM the canary
took 0.97 to 2.21 ms within a minute, CPU time equal to wall time). So each workload's round is also
scaled by the canary timed just before it (bench/canary_scaling.py: passes agreed better this way
than with one factor per round or none), and a round whose canary strays from the group's baseline
is re-run.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from profiler.backends.base import runtime_message
from profiler.device import MeasurementPolicy
from profiler.protocol import median_rel_ci, summarize
from profiler.workload import Measurement, Workload

BASELINE_ROUNDS = 3  # canary rounds before the first round, to learn its time and its spread
MIN_CLEAN_ROUNDS = 2  # unflagged rounds needed to leave the flagged ones out of a latency
REFERENCE_SECONDS = 2.0  # how long the canary runs to set a device's reference
REFERENCE_QUANTILE = 10  # the reference is this percentile of those runs: the host at its usual best
CANARY_KEY = "canary/conv3d_c16_t4_s28"

Clock = Callable[[], int]


def canary_workload() -> Workload:
    """The fixed reference workload: Conv3d 16->16, 3x3x3, on 1x16x4x28x28, then ReLU (about 2 ms on one CPU core)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((16, 16, 3, 3, 3), dtype=np.float32) * 0.1
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1]),
            helper.make_node("Relu", ["y"], ["out"]),
        ],
        "canary",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 4, 28, 28])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 4, 28, 28])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return Workload(key=CANARY_KEY, onnx=model.SerializeToString(), inputs={"x": (1, 16, 4, 28, 28)},
                    spec={"op": "canary"}, builder=lambda: _canary_module(weight))


def _canary_module(weight: np.ndarray) -> object:
    """The canary as a torch module (for the torch backend), with the ONNX model's weights."""
    import torch

    conv = torch.nn.Conv3d(16, 16, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
    return torch.nn.Sequential(conv, torch.nn.ReLU())


def canary_reference_ms(run: Callable[[], object], *, seconds: float = REFERENCE_SECONDS,
                        clock_ns: Clock = time.perf_counter_ns) -> float:
    """The canary's reference time: the ``REFERENCE_QUANTILE``-th percentile of its runs over ``seconds``.

    Rounds are scaled to it, so it sets the scale of a device's latencies; a low percentile over a few
    seconds is the host at its usual best, where a short baseline would catch whatever phase it is in.
    """
    run()
    times: list[float] = []
    deadline = clock_ns() + int(seconds * 1e9)
    while clock_ns() < deadline or len(times) < 10:
        start = clock_ns()
        run()
        times.append((clock_ns() - start) / 1e6)
    return float(np.percentile(times, REFERENCE_QUANTILE))


@dataclass
class _Runs:
    """One workload's timed runs so far."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    run_rounds: list[int] = field(default_factory=list)
    round_medians_ms: list[float] = field(default_factory=list)
    round_flagged: list[bool] = field(default_factory=list)
    round_speed: list[float] = field(default_factory=list)  # canary before it over the reference (1: no canary)
    spent_ns: int = 0
    stopped_by: str | None = None

    def add_round(self, round_index: int, wall_ms: list[float], cpu_ms: list[float], spent_ns: int, *, flagged: bool,
                  speed: float) -> None:
        self.wall_ms += wall_ms
        self.cpu_ms += cpu_ms
        self.run_rounds += [round_index] * len(wall_ms)
        self.round_medians_ms.append(float(np.median(wall_ms)) / speed)
        self.round_flagged.append(flagged)
        self.round_speed.append(speed)
        self.spent_ns += spent_ns

    def kept_medians(self) -> tuple[list[float], list[float]]:
        """(round medians, canary-normalised, the latency is the median of; flagged ones left out): flagged rounds are left
        out while at least ``MIN_CLEAN_ROUNDS`` unflagged ones remain, else every round counts."""
        clean = [ms for ms, flagged in zip(self.round_medians_ms, self.round_flagged) if not flagged]
        if len(clean) >= MIN_CLEAN_ROUNDS:
            return clean, [ms for ms, flagged in zip(self.round_medians_ms, self.round_flagged) if flagged]
        return list(self.round_medians_ms), []


@dataclass
class RoundLog:
    """What the rounds of one group did: the canary's baseline and, per kept round, its drift and end time."""

    canary_baseline_ms: float | None = None
    canary_reference_ms: float | None = None
    canary_tolerance: float | None = None
    drifts: list[float] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    ended_s: list[float] = field(default_factory=list)  # when each kept round ended, seconds after the rounds began
    reruns: int = 0
    stopped_by: str = "max_rounds"

    @property
    def flagged_rounds(self) -> int:
        return sum(self.flagged)


class _Timer:
    def __init__(self, clock_ns: Clock, cpu_ns: Clock) -> None:
        self.clock_ns = clock_ns
        self.cpu_ns = cpu_ns

    def runs(self, run: Callable[[], object], count: int) -> tuple[list[float], list[float], int]:
        """One untimed run, then ``count`` timed runs: wall ms, CPU ms, timed nanoseconds."""
        run()
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(count):
            cpu_start, wall_start = self.cpu_ns(), self.clock_ns()
            run()
            wall_end, cpu_end = self.clock_ns(), self.cpu_ns()
            wall.append((wall_end - wall_start) / 1e6)
            cpu.append((cpu_end - cpu_start) / 1e6)
        return wall, cpu, int(sum(wall) * 1e6)


def time_in_rounds(
    runs: Mapping[str, Callable[[], object]],
    policy: MeasurementPolicy,
    *,
    canary: Callable[[], object] | None = None,
    canary_reference_ms: float | None = None,
    seed: int = 0,
    clock_ns: Clock = time.perf_counter_ns,
    cpu_ns: Clock = time.process_time_ns,
) -> tuple[dict[str, Measurement], RoundLog]:
    """Time every ``runs[key]`` in interleaved rounds under ``policy`` (see the module doc).

    A run that raises ends that workload as failed; the others go on. ``canary`` (timed before every
    workload and at the end of every round) guards the rounds when ``policy.canary_tolerance`` > 0, and
    each workload's round is divided by the canary's speed just before it relative to
    ``canary_reference_ms`` (default: the group's own baseline; a sweep passes the device's reference
    from the store, so that all its groups and sweeps share one scale).
    ``clock_ns`` / ``cpu_ns`` are the wall and CPU clocks (injectable for tests).
    """
    timer = _Timer(clock_ns, cpu_ns)
    order = random.Random(seed)
    results: dict[str, Measurement] = {}
    timings = {key: _Runs() for key in runs}
    active = list(runs)

    def fail(key: str, exc: Exception) -> None:
        results[key] = Measurement.failed(runtime_message(exc))
        active.remove(key)

    for key in list(active):
        try:
            for _ in range(policy.warmup_runs):
                runs[key]()
        except Exception as exc:
            fail(key, exc)

    log = RoundLog()
    began_ns = clock_ns()
    guard = canary if canary is not None and policy.canary_tolerance > 0 else None

    def canary_times() -> list[float]:
        """The canary's timed runs now ([] without a canary, or once it has failed: then there is none)."""
        nonlocal guard
        if guard is None:
            return []
        try:
            return timer.runs(guard, policy.round_runs)[0]
        except Exception:
            guard = None
            return []

    baseline = [ms for _ in range(BASELINE_ROUNDS) for ms in canary_times()]
    median = float(np.median(baseline)) if baseline and guard is not None else 0.0
    if median > 0:
        log.canary_baseline_ms = median
        log.canary_reference_ms = canary_reference_ms or median
        spread = float(np.median(np.abs(np.array(baseline) - median))) / median
        log.canary_tolerance = max(policy.canary_tolerance, 3 * spread)
    else:  # a canary that failed, or a clock too coarse to time it, cannot guard anything
        guard = None

    round_index = 0
    while active and round_index < policy.max_rounds:
        retries = 0
        while True:
            kept: dict[str, tuple[list[float], list[float], int]] = {}
            speeds: dict[str, float] = {}
            canary_ms: list[float] = []
            for key in order.sample(active, len(active)):
                before = canary_times()  # the host's speed right before this workload
                canary_ms += before
                try:
                    kept[key] = timer.runs(runs[key], policy.round_runs)
                except Exception as exc:
                    fail(key, exc)
                    continue
                speeds[key] = float(np.median(before)) / log.canary_reference_ms if before else 1.0
            canary_ms += canary_times()
            if guard is None or not canary_ms:
                drift, flagged = 0.0, False
                break
            drift = float(np.median(canary_ms)) / log.canary_baseline_ms - 1.0
            flagged = abs(drift) > log.canary_tolerance
            if not flagged or retries >= policy.max_round_retries:
                break
            retries += 1
            log.reruns += 1
        log.drifts.append(drift)
        log.flagged.append(flagged)
        log.ended_s.append((clock_ns() - began_ns) / 1e9)
        for key, (wall, cpu, spent) in kept.items():
            timings[key].add_round(round_index, wall, cpu, spent, flagged=flagged, speed=speeds[key])
        round_index += 1
        for key in list(active):
            timing = timings[key]
            if len(timing.wall_ms) >= policy.max_runs:
                timing.stopped_by = "max_runs"
            elif timing.spent_ns >= policy.max_seconds * 1e9:
                timing.stopped_by = "max_seconds"
            if timing.stopped_by:
                active.remove(key)
        if round_index >= policy.min_rounds and all(
            len(timings[key].wall_ms) >= policy.min_runs and median_rel_ci(timings[key].wall_ms) <= policy.max_rel_ci
            for key in active
        ):
            log.stopped_by = "max_rel_ci"
            break

    for key, timing in timings.items():
        if key in results:
            continue
        measurement = summarize(timing.wall_ms, timing.cpu_ms, policy.contention_ratio)
        kept, left_out = timing.kept_medians()
        measurement.median_ms = float(np.median(kept))
        rel_ci = median_rel_ci(timing.wall_ms)
        measurement.extra.update(
            rel_ci=rel_ci if math.isfinite(rel_ci) else None,
            stopped_by=timing.stopped_by or log.stopped_by,
            rounds=len(timing.round_medians_ms),
            round_medians_ms=[round(value, 6) for value in kept],
            run_rounds=timing.run_rounds,
            flagged_rounds=sum(timing.round_flagged),
        )
        if left_out:
            measurement.extra["flagged_round_medians_ms"] = [round(value, 6) for value in left_out]
        if log.canary_reference_ms is not None:
            measurement.extra.update(
                canary_drift=round(max(log.drifts, key=abs), 6) if log.drifts else 0.0,
                canary_reference_ms=round(log.canary_reference_ms, 6),
                round_speeds=[round(value, 4) for value in timing.round_speed],
            )
        results[key] = measurement
    return results, log
