"""A resumable sweep: measure many workloads on one backend into the store.

::

    workloads ──dedupe by key──> already in store? ──yes──> skipped (unless remeasure)
                                      │ no
                                      v
                              backend.measure(workload)
          TransientDeviceError ──> back off and retry; give up after max_wait_s (nothing stored)
          contended (wall >> CPU) ──> queued, re-measured after the others (max_contended_retries),
                                      then the least contended attempt is stored, flagged
          ok / unsupported / failed ──> store.record (committed at once)
          ok with an Inf / NaN / negative latency ──> stored as failed, with the reason

Each result is committed as it is made, so a killed sweep re-measures at most the workload in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from profiler.backends.base import Backend, runtime_message
from profiler.errors import TransientDeviceError, VidlatError
from profiler.progress import progress_bar
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
        if self.left:
            parts.append(f"{self.left} left for a later run (--limit)")
        return f"{self.device}: " + ", ".join(parts) + f" in {self.elapsed_s:.1f} s"


def contention(measurement: Measurement) -> float:
    """Median wall time over CPU time: 1 on an idle core, higher the more the core was shared."""
    return measurement.median_ms / measurement.cpu_ms if measurement.cpu_ms else float("inf")


def measure_robustly(backend: Backend, workload: Workload) -> Measurement:
    """``backend.measure``; an unexpected exception or a non-physical latency (Inf, NaN, negative)
    becomes a failed measurement, not a dead sweep or a stored ok."""
    try:
        measurement = backend.measure(workload)
    except (TransientDeviceError, KeyboardInterrupt):
        raise
    except VidlatError as exc:
        return Measurement.failed(str(exc))
    except Exception as exc:  # a backend bug or a runtime crash that surfaced as an exception
        return Measurement.failed(runtime_message(exc))
    problem = measurement.problem()
    return Measurement("failed", reason=problem, extra=measurement.extra) if problem else measurement


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

    queue: list[tuple[Workload, int]] = [(workload, 0) for workload in todo]
    least_contended: dict[str, Measurement] = {}
    try:
        position = 0
        while position < len(queue):
            workload, attempt = queue[position]
            position += 1
            if bar is not None:
                bar.set_postfix_str(workload.key + (f" (retry {attempt}, contended)" if attempt else ""), refresh=True)
            measurement = _measure_with_retry(backend, workload, retry_wait_s=retry_wait_s, max_wait_s=max_wait_s, sleep=sleep)
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
