"""A fleet: several devices measured in one call, each into its own table; identical boards share one.

::

    backends ──by device name──> tables       a name given by several boards needs shard=True, and its boards
                                               one identity (options, policy, fingerprint; not their address)
    boards ──by machine──> lanes (threads)    a remote board is its agent's address; local devices share this
                                               host, so they are one lane and run one after another

    lane thread, for each of its boards:  TableQueue.take() ──> measure (the sweep's rules) ──> results
        link down (TransientDeviceError) ──> hand the workload back, back off; down for max_wait_s ──> leaves
        anything else escaping measure   ──> hand the workload back, leave (a refusal is a failed row, as in a sweep)
        contended                        ──> back into the queue with attempt + 1 (any board of the table)
    calling thread (the store's only connection and only writer): store.record(only_if_absent), at once

A workload is held by at most one board at a time and stored once; a table is done when its queue is
empty and no board holds one. What no board could measure (all left) stays unmeasured, is named by
``FleetSummary.problem()``, and the next run resumes it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from profiler.backends.base import Backend, runtime_message
from profiler.device import DeviceConfig
from profiler.errors import DeviceConfigError, TransientDeviceError
from profiler.progress import progress_bar
from profiler.store import LatencyStore, device_identity
from profiler.sweep import SweepSummary, contention, measure_robustly, pending_workloads, record_result
from profiler.workload import Measurement, Workload

LOCAL = "local"


def board_address(backend: Backend) -> str:
    """Where a board is: its agent's URL, or ``local`` for a device of this host."""
    return str(backend.options.url) if backend.device.backend == "remote" else LOCAL


@dataclass
class Board:
    """One device of the fleet: its backend, address and the fingerprint taken at the start."""

    backend: Backend
    address: str
    fingerprint: dict[str, str]

    @property
    def table(self) -> str:
        return self.backend.device.name


class TableQueue:
    """The workloads of one table, shared by its boards; thread-safe."""

    def __init__(self, todo: Iterable[Workload]) -> None:
        self._pending: deque[tuple[Workload, int]] = deque((workload, 0) for workload in todo)
        self._held = 0
        self._changed = threading.Condition()
        self.least_contended: dict[str, Measurement] = {}

    def take(self, stop: threading.Event) -> tuple[Workload, int] | None:
        """The next (workload, attempt); waits while others hold workloads that may come back; None when done."""
        with self._changed:
            while not self._pending and self._held and not stop.is_set():
                self._changed.wait(0.2)
            if not self._pending or stop.is_set():
                return None
            self._held += 1
            return self._pending.popleft()

    def finish(self, again: tuple[Workload, int] | None = None) -> None:
        """The held workload is done (or goes to the back of the queue as ``again``)."""
        with self._changed:
            self._held -= 1
            if again is not None:
                self._pending.append(again)
            self._changed.notify_all()

    def hand_back(self, item: tuple[Workload, int]) -> None:
        """The held workload was not measured: first in the queue again."""
        with self._changed:
            self._held -= 1
            self._pending.appendleft(item)
            self._changed.notify_all()

    def keep_least_contended(self, workload: Workload, measurement: Measurement) -> Measurement:
        """Remember the least contended attempt of ``workload`` so far, and return it."""
        with self._changed:
            previous = self.least_contended.get(workload.key)
            if previous is None or contention(measurement) < contention(previous):
                self.least_contended[workload.key] = measurement
            return self.least_contended[workload.key]

    def left(self) -> list[str]:
        with self._changed:
            return [workload.key for workload, _ in self._pending]


@dataclass
class FleetSummary:
    """What a fleet sweep did: a ``SweepSummary`` per table, and what happened to its boards."""

    tables: dict[str, SweepSummary] = field(default_factory=dict)
    boards: dict[str, list[str]] = field(default_factory=dict)  # table -> board addresses
    measured_by: Counter[str] = field(default_factory=Counter)  # board address -> results stored
    handed_back: list[tuple[str, str]] = field(default_factory=list)  # (board address, key)
    left: dict[str, str] = field(default_factory=dict)  # board address -> why it left the fleet
    unmeasured: dict[str, list[str]] = field(default_factory=dict)  # table -> keys no board measured
    elapsed_s: float = 0.0

    def problem(self) -> str:
        """One line if some table kept unmeasured workloads (its boards all left), else ``""``."""
        parts = []
        for table, keys in self.unmeasured.items():
            why = "; ".join(f"{address}: {self.left[address]}" for address in self.boards[table] if address in self.left)
            parts.append(f"device '{table}': {len(keys)} workload(s) not measured, its boards left ({why})")
        if not parts:
            return ""
        return " | ".join(parts) + "; everything measured so far is stored, run the same command again to resume"

    def __str__(self) -> str:
        lines = []
        for table, summary in self.tables.items():
            boards = self.boards[table]
            shared = f" [{len(boards)} boards: " + ", ".join(f"{a} {self.measured_by[a]}" for a in boards) + "]" if len(boards) > 1 else ""
            lines.append(f"{summary}{shared}")
        for address, why in self.left.items():
            lines.append(f"board {address} left the fleet: {why}")
        if self.handed_back:
            lines.append(f"{len(self.handed_back)} workload(s) handed back to the queue by a board that dropped out")
        return "\n".join(lines)


def _identity_without_name(board: Board) -> dict[str, str]:
    return device_identity(board.backend.device.model_dump(mode="json", exclude_none=True), board.fingerprint)


def _check_shared(boards: list[Board]) -> None:
    """Boards that share a table must be one device: the same identity, less their address."""
    first = _identity_without_name(boards[0])
    for board in boards[1:]:
        other = _identity_without_name(board)
        if other != first:
            keys = sorted(key for key in set(first) | set(other) if first.get(key) != other.get(key))
            shown = ", ".join(f"{key} {first.get(key, '(unset)')} vs {other.get(key, '(unset)')}" for key in keys[:3])
            raise DeviceConfigError(
                f"boards {boards[0].address} and {board.address} of device '{board.table}' differ ({shown}); "
                "only identical boards can share a table: give the other one its own device name")


def check_names(devices: Sequence[DeviceConfig], *, shard: bool) -> None:
    """A device name given more than once is one shared table, allowed only with ``shard`` (cheap: no device is reached)."""
    counts = Counter(device.name for device in devices)
    for name, count in counts.items():
        if count > 1 and not shard:
            sources = ", ".join(str(device.source) for device in devices if device.name == name)
            raise DeviceConfigError(
                f"device name '{name}' is given {count} times ({sources}); pass --shard to let identical "
                "boards share its table, or give each device its own name")


def fleet_boards(backends: Sequence[Backend], *, shard: bool, left: dict[str, str] | None = None) -> dict[str, list[Board]]:
    """The fleet's tables (device name -> boards), fingerprints taken now, shared tables checked.

    A name given by several backends is one shared table only with ``shard``; a board of a shared table
    that does not answer now is left out (the others measure; its address and why go into ``left``), a
    table with no board answering fails.
    """
    check_names([backend.device for backend in backends], shard=shard)
    by_name: dict[str, list[Backend]] = {}
    for backend in backends:
        by_name.setdefault(backend.device.name, []).append(backend)
    tables: dict[str, list[Board]] = {}
    for name, group in by_name.items():
        boards, down = [], None
        for backend in group:
            try:
                boards.append(Board(backend, board_address(backend), backend.fingerprint()))
            except TransientDeviceError as exc:
                if len(group) == 1:
                    raise
                down = exc
                if left is not None:
                    left[board_address(backend)] = f"did not answer at the start ({exc})"
        if not boards:
            raise TransientDeviceError(f"no board of device '{name}' answered ({down})")
        _check_shared(boards)
        tables[name] = boards
    return tables


@dataclass
class _Result:
    board: Board
    workload: Workload
    measurement: Measurement


@dataclass
class _HandedBack:
    board: Board
    key: str


@dataclass
class _Left:
    board: Board
    reason: str


def _run_board(board: Board, table: TableQueue, results: queue.Queue[Any], stop: threading.Event, *, shared: bool,
               max_contended_retries: int, retry_wait_s: float, max_wait_s: float, sleep: Callable[[float], None]) -> None:
    """Take, measure and report workloads of the board's table until the queue is done or the board leaves."""
    waited, wait = 0.0, retry_wait_s
    while (item := table.take(stop)) is not None:
        workload, attempt = item
        try:
            measurement = measure_robustly(board.backend, workload)
        except TransientDeviceError as exc:
            table.hand_back(item)
            results.put(_HandedBack(board, workload.key))
            if waited >= max_wait_s:
                results.put(_Left(board, f"did not answer for {waited:.0f} s ({exc})"))
                return
            sleep(wait)
            waited += wait
            wait = min(wait * 2, max(max_wait_s - waited, retry_wait_s))
            continue
        except BaseException:  # anything measure_robustly lets through: the workload stays queued, the board leaves
            table.hand_back(item)
            raise
        waited, wait = 0.0, retry_wait_s
        measurement.extra.setdefault("attempt", attempt)
        if shared:
            measurement.extra["board"] = board.address
        if measurement.status == "ok" and measurement.contended:
            least = table.keep_least_contended(workload, measurement)
            if attempt < max_contended_retries:
                table.finish(again=(workload, attempt + 1))
                continue
            measurement = least
        results.put(_Result(board, workload, measurement))
        table.finish()


def _run_lane(boards: list[Board], queues: dict[str, TableQueue], results: queue.Queue[Any], stop: threading.Event,
              shared: set[str], **rules: Any) -> None:
    for board in boards:
        try:
            _run_board(board, queues[board.table], results, stop, shared=board.table in shared, **rules)
        except BaseException as exc:  # the board leaves; the queue keeps its work
            results.put(_Left(board, runtime_message(exc)))


def profile_fleet(
    backends: Sequence[Backend],
    store: LatencyStore,
    workloads: Iterable[Workload],
    *,
    shard: bool = False,
    remeasure: bool = False,
    limit: int | None = None,
    progress: bool = True,
    max_contended_retries: int = 2,
    retry_wait_s: float = 2.0,
    max_wait_s: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> FleetSummary:
    """Measure ``workloads`` on every device of ``backends`` into ``store``, one table per device name.

    Devices on different machines measure at once, local ones one after another; with ``shard``, boards
    that give the same device name (and are identical) share its table's queue. Resumable, with the
    rules of ``profile_workloads`` (``remeasure``, ``limit`` per table, contended re-measuring, back-off);
    every result is written by the calling thread, the one that owns ``store``.
    """
    started = time.perf_counter()
    workloads = list(workloads)
    summary = FleetSummary()
    tables = fleet_boards(backends, shard=shard, left=summary.left)
    queues: dict[str, TableQueue] = {}
    for name, boards in tables.items():
        store.register_device(boards[0].backend.device, boards[0].fingerprint, replace=remeasure)
        summary.tables[name] = SweepSummary(device=name)
        summary.boards[name] = [board.address for board in boards]
        queues[name] = TableQueue(pending_workloads(store, name, workloads, summary.tables[name], remeasure=remeasure, limit=limit))
    lanes: dict[str, list[Board]] = {}
    for boards in tables.values():
        for board in boards:
            lanes.setdefault(board.address, []).append(board)

    results: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    rules = dict(max_contended_retries=max_contended_retries, retry_wait_s=retry_wait_s, max_wait_s=max_wait_s, sleep=sleep)
    shared = {name for name, boards in tables.items() if len(boards) > 1}
    threads = [threading.Thread(target=_run_lane, args=(boards, queues, results, stop, shared), kwargs=rules,
                                name=f"vidlat-fleet-{address}", daemon=True) for address, boards in lanes.items()]
    total = sum(len(table.left()) for table in queues.values())
    bar = progress_bar(total, desc="fleet", unit="wl") if progress else None
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) or not results.empty():
            try:
                event = results.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, _Result):
                record_result(store, summary.tables[event.board.table], event.workload, event.measurement, remeasure=remeasure)
                summary.measured_by[event.board.address] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{event.board.table} @ {event.board.address}", refresh=True)
            elif isinstance(event, _HandedBack):
                summary.handed_back.append((event.board.address, event.key))
            else:
                summary.left[event.board.address] = event.reason
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        if bar is not None:
            bar.close()
    summary.elapsed_s = time.perf_counter() - started
    for name, table in queues.items():
        summary.tables[name].elapsed_s = summary.elapsed_s
        if keys := table.left():
            summary.unmeasured[name] = keys
    return summary
