"""A measuring process the agent can kill: the time limit per measurement, and crash isolation.

::

    agent (HTTP threads) ──(device, workload)──> pipe ──> worker process: create_backend(device).measure(workload)
          │  poll(time_limit_s)                                                    │
          │  <──────────────────────────── ("ok", Measurement) | ("error", message) ┘
          └─ no answer in time: kill the worker, raise MeasureTimeout; a new worker starts on the next request

The worker is a ``spawn``-ed child (no fork of a threaded server); it imports the runtime once and
says "ready" before the time limit starts counting. If the agent dies, the worker's pipe closes and
it exits.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from profiler.device import DeviceConfig
from profiler.workload import Measurement, Workload

READY_TIMEOUT_S = 120.0


class MeasureTimeout(Exception):
    """The measurement ran past its time limit; the worker was killed."""


class WorkerCrashed(Exception):
    """The worker process died while measuring (a runtime crash, out of memory)."""


class MeasureFailed(Exception):
    """The backend raised instead of returning a measurement; the message is the runtime's."""


def _worker_main(conn: Connection, runtime: str) -> None:
    """Worker loop: import the runtime's backend, say ready, then measure what the pipe sends."""
    from profiler.backends import backend_class, create_backend

    backend_class(runtime)  # import the runtime once, before the first time limit starts
    conn.send(("ready", None))
    while True:
        try:
            device, workload = conn.recv()
        except (EOFError, OSError):  # the agent is gone
            return
        try:
            backend = create_backend(device)
            try:
                reply: tuple[str, Any] = ("ok", backend.measure(workload))
            finally:
                backend.close()
        except Exception as exc:  # reported to the client as runtime_error; the worker lives on
            reply = ("error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500])
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


class MeasureWorker:
    """One killable measuring process for ``runtime``; ``measure`` is called by one thread at a time."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._guard = threading.Lock()

    def start(self) -> None:
        """Start the worker (if not running) and wait until it has imported the runtime."""
        with self._guard:
            if self._process is not None and self._process.is_alive():
                return
            self._stop_locked()
            parent, child = self._context.Pipe()
            process = self._context.Process(target=_worker_main, args=(child, self.runtime), name="vidlat-agent-worker", daemon=True)
            process.start()
            child.close()
            if not parent.poll(READY_TIMEOUT_S):
                process.kill()
                raise WorkerCrashed(f"the measuring process did not start within {READY_TIMEOUT_S:.0f} s")
            try:
                parent.recv()
            except EOFError:
                raise WorkerCrashed(f"the measuring process exited at start (exit code {process.exitcode})") from None
            self._process, self._conn = process, parent

    def measure(self, device: DeviceConfig, workload: Workload, time_limit_s: float) -> tuple[Measurement, float]:
        """Measure in the worker; returns the measurement and the seconds it took."""
        self.start()
        assert self._conn is not None
        started = time.perf_counter()
        try:
            self._conn.send((device, workload))
            if not self._conn.poll(time_limit_s):
                self.stop()
                raise MeasureTimeout(f"the measurement ran past the agent's time limit of {time_limit_s:g} s and was stopped")
            kind, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._process.exitcode if self._process is not None else None
            self.stop()
            raise WorkerCrashed(f"the runtime's process died while measuring (exit code {code})") from None
        if kind == "error":
            raise MeasureFailed(value)
        return value, time.perf_counter() - started

    def stop(self) -> None:
        """Kill the worker (it is restarted by the next ``measure``)."""
        with self._guard:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
