"""A resumable sweep: measure many workloads on one backend into the store.

::

    workloads ──dedupe by key──> already in store? ──yes──> skipped (unless remeasure)
                                      │ no
                                      v
              policy.interleave and the backend can prepare workloads (ONNX Runtime, OpenVINO, torch on a CPU)?
                 yes: group_size at a time, prepared together, timed in interleaved rounds with a
                      canary (profiler.rounds)
                 no:  backend.measure(workload), one at a time (remote boards, simulators, torch on a GPU)
          TransientDeviceError ──> back off and retry; give up after max_wait_s (nothing stored)
          contended (wall >> CPU) ──> queued, re-measured after the others (max_contended_retries),
                                      then the least contended attempt is stored, flagged
          ok / unsupported / failed ──> store.record (committed at once)
          ok with an Inf / NaN / negative latency ──> stored as failed, with the reason

Each result is committed as it is made (a group's results when its rounds end), so a killed sweep
re-measures at most the workload or the group in flight.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from profiler.backends.base import Backend, Prepared, runtime_message
from profiler.errors import TransientDeviceError, VidlatError
from profiler.progress import progress_bar
from profiler.rounds import RoundLog, canary_workload, time_in_rounds
from profiler.rounds import canary_reference_ms as canary_reference
from profiler.store import LatencyStore
from profiler.workload import Measurement, Workload


@dataclass
class SweepSummary:
    """What a sweep did: counts per outcome and wall time."""

    device: str
    measured: int = 0
    skipped: int = 0
    unsupported: int = 0
    failed: int = 0
    contended: int = 0
    remeasured_contended: int = 0
    flagged_rounds: int = 0
    rerun_rounds: int = 0
    left: int = 0
    elapsed_s: float = 0.0
    keys: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.measured + self.unsupported + self.failed

    def __str__(self) -> str:
        parts = [
            f"{self.measured} measured",
            f"{self.skipped} skipped as present",
            f"{self.unsupported} unsupported",
            f"{self.failed} failed",
        ]
        if self.contended:
            parts.append(f"{self.contended} stored flagged contended")
        if self.rerun_rounds or self.flagged_rounds:
            parts.append(f"{self.rerun_rounds} rounds re-run and {self.flagged_rounds} kept flagged for a drifting canary")
        if self.left:
            parts.append(f"{self.left} left for a later run (--limit)")
        return f"{self.device}: " + ", ".join(parts) + f" in {self.elapsed_s:.1f} s"


def contention(measurement: Measurement) -> float:
    """Median wall time over CPU time: 1 on an idle core, higher the more the core was shared."""
    return measurement.median_ms / measurement.cpu_ms if measurement.cpu_ms else float("inf")


def _robustly(step: Callable[[], Measurement]) -> Measurement:
    """Run a backend step; an unexpected exception or a non-physical latency (Inf, NaN, negative)
    becomes a failed measurement, not a dead sweep or a stored ok."""
    try:
        measurement = step()
    except (TransientDeviceError, KeyboardInterrupt):
        raise
    except VidlatError as exc:
        return Measurement.failed(str(exc))
    except Exception as exc:  # a backend bug or a runtime crash that surfaced as an exception
        return Measurement.failed(runtime_message(exc))
    problem = measurement.problem()
    return Measurement("failed", reason=problem, extra=measurement.extra) if problem else measurement


def measure_robustly(backend: Backend, workload: Workload) -> Measurement:
    """``backend.measure``, robustly (see ``_robustly``)."""
    return _robustly(lambda: backend.measure(workload))


def _prepare_robustly(backend: Backend, workload: Workload) -> Prepared | Measurement:
    try:
        loaded = backend.prepare(workload)
    except (TransientDeviceError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a backend bug or a runtime crash that surfaced as an exception
        return Measurement.failed(str(exc) if isinstance(exc, VidlatError) else runtime_message(exc))
    if loaded is None:
        raise TypeError(f"{type(backend).__name__}.prepare returned None; it times one workload at a time")
    return loaded


def measure_interleaved(backend: Backend, workloads: list[Workload], *, seed: int = 0,
                        canary_reference_ms: float | None = None) -> tuple[list[Measurement], RoundLog]:
    """Prepare ``workloads`` together and time them in interleaved rounds with a canary
    (``profiler.rounds``; ``canary_reference_ms``: the speed every round is scaled to, measured
    here when not given); one measurement per workload, in order, failures included."""
    results: dict[str, Measurement] = {}
    prepared: dict[str, Prepared] = {}
    canary: Prepared | None = None
    try:
        for workload in workloads:
            loaded = _prepare_robustly(backend, workload)
            if isinstance(loaded, Prepared):
                prepared[workload.key] = loaded
            else:
                results[workload.key] = loaded
        if backend.policy.canary_tolerance > 0:  # a runtime that cannot run the canary times the group unguarded
            loaded = _prepare_robustly(backend, canary_workload())
            canary = loaded if isinstance(loaded, Prepared) else None
        if canary is not None and canary_reference_ms is None:
            canary_reference_ms = canary_reference(canary.run)
        timed, log = time_in_rounds({key: item.run for key, item in prepared.items()}, backend.policy,
                                    canary=canary.run if canary else None, canary_reference_ms=canary_reference_ms, seed=seed)
        for key, measurement in timed.items():
            finish = prepared[key].finish
            results[key] = _robustly(lambda: finish(measurement)) if measurement.status == "ok" else measurement
    finally:
        for item in [*prepared.values(), *([canary] if canary else [])]:
            item.close()
    return [results[workload.key] for workload in workloads], log


def _measure_with_retry(
    backend: Backend, workload: Workload, *, retry_wait_s: float, max_wait_s: float, sleep: Callable[[float], None]
) -> Measurement:
    waited = 0.0
    wait = retry_wait_s
    while True:
        try:
            return measure_robustly(backend, workload)
        except TransientDeviceError as exc:
            if waited >= max_wait_s:
                raise TransientDeviceError(
                    f"device '{backend.device.name}' did not answer for {waited:.0f} s ({exc}); "
                    "everything measured so far is stored, run the same command again to resume"
                ) from None
            sleep(wait)
            waited += wait
            wait = min(wait * 2, max(max_wait_s - waited, retry_wait_s))


def pending_workloads(store: LatencyStore, device: str, workloads: Iterable[Workload], summary: SweepSummary, *,
                      remeasure: bool = False, limit: int | None = None) -> list[Workload]:
    """What a sweep of ``device`` still has to measure: ``workloads`` deduplicated by key, less the keys
    stored for the device as configured now (unless ``remeasure``), at most ``limit``; the skipped and
    the left-over are counted in ``summary``."""
    unique: dict[str, Workload] = {}
    for workload in workloads:
        unique.setdefault(workload.key, workload)
    present = set() if remeasure else store.measured_keys(device)
    todo = [workload for key, workload in unique.items() if key not in present]
    summary.skipped += len(unique) - len(todo)
    if limit is not None and len(todo) > limit:
        summary.left = len(todo) - limit
        todo = todo[:limit]
    return todo


def record_result(store: LatencyStore, summary: SweepSummary, workload: Workload, measurement: Measurement, *,
                  remeasure: bool = False) -> None:
    """Store one result of ``summary.device`` (committed at once) and count it; a key another sweep stored
    meanwhile is left as it is and counted as skipped."""
    if not store.record(summary.device, workload, measurement, only_if_absent=not remeasure):
        summary.skipped += 1
        return
    summary.keys.append(workload.key)
    if measurement.status == "ok":
        summary.measured += 1
        summary.contended += int(measurement.contended)
    elif measurement.status == "unsupported":
        summary.unsupported += 1
    else:
        summary.failed += 1


def profile_workloads(
    backend: Backend,
    store: LatencyStore,
    workloads: Iterable[Workload],
    *,
    remeasure: bool = False,
    limit: int | None = None,
    progress: bool = True,
    max_contended_retries: int = 2,
    retry_wait_s: float = 2.0,
    max_wait_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepSummary:
    """Measure ``workloads`` (deduplicated by key) on ``backend`` into ``store``; resumable.

    Keys already stored for the device as configured now are skipped unless ``remeasure``, which also
    lets a changed configuration replace the one the name meant (else the store refuses it, see
    ``LatencyStore.register_device``); ``limit`` caps how many are measured in
    this call. A contended measurement is queued and re-measured after the others (up to
    ``max_contended_retries`` times); if every attempt was contended, the least contended one is
    stored, flagged. A backend raising
    ``TransientDeviceError`` is retried with exponential back-off for up to ``max_wait_s`` seconds.
    With ``policy.interleave`` on a backend that can prepare workloads, they are timed
    ``policy.group_size`` at a time in interleaved rounds guarded by a canary (``measure_interleaved``).
    """
    started = time.perf_counter()
    device = backend.device.name
    store.register_device(backend.device, backend.fingerprint(), replace=remeasure)
    summary = SweepSummary(device=device)
    todo = pending_workloads(store, device, workloads, summary, remeasure=remeasure, limit=limit)

    bar = None
    if progress:
        bar = progress_bar(len(todo), desc=device, unit="wl")

    def store_result(workload: Workload, measurement: Measurement) -> None:
        if bar is not None:
            bar.update(1)
        record_result(store, summary, workload, measurement, remeasure=remeasure)

    interleave = backend.policy.interleave and backend.can_interleave()
    group_size = backend.policy.group_size if interleave else 1
    queue: deque[tuple[Workload, int]] = deque((workload, 0) for workload in todo)
    least_contended: dict[str, Measurement] = {}
    groups = 0
    reference = store.canary_reference(device) if interleave else None  # the scale of all the device's sweeps
    try:
        while queue:
            batch = [queue.popleft() for _ in range(min(group_size, len(queue)))]
            if bar is not None:
                first, attempt = batch[0]
                label = first.key if len(batch) == 1 else f"{len(batch)} workloads in rounds"
                bar.set_postfix_str(label + (f" (retry {attempt}, contended)" if attempt else ""), refresh=True)
            if interleave:
                measurements, log = measure_interleaved(backend, [workload for workload, _ in batch], seed=groups,
                                                        canary_reference_ms=reference)
                if reference is None and log.canary_reference_ms is not None:
                    reference = log.canary_reference_ms
                    store.set_canary_reference(device, reference)
                summary.flagged_rounds += log.flagged_rounds
                summary.rerun_rounds += log.reruns
            else:
                measurements = [_measure_with_retry(backend, batch[0][0], retry_wait_s=retry_wait_s,
                                                    max_wait_s=max_wait_s, sleep=sleep)]
            groups += 1
            for (workload, attempt), measurement in zip(batch, measurements):
                measurement.extra.setdefault("attempt", attempt)
                if measurement.status == "ok" and measurement.contended:
                    previous = least_contended.get(workload.key)
                    if previous is None or contention(measurement) < contention(previous):
                        least_contended[workload.key] = measurement
                    if attempt < max_contended_retries:
                        queue.append((workload, attempt + 1))
                        summary.remeasured_contended += 1
                        continue
                    measurement = least_contended[workload.key]
                store_result(workload, measurement)
    finally:
        if bar is not None:
            bar.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary
