"""The one small interface every backend implements."""

from __future__ import annotations

import importlib.util
import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from profiler import __version__
from profiler.device import DeviceConfig
from profiler.protocol import measure_callable
from profiler.workload import Measurement, Workload


@dataclass(frozen=True)
class Availability:
    """Whether a device's backend can run here, and if not, why."""

    ok: bool
    reason: str = ""


def _unchanged(measurement: Measurement) -> Measurement:
    return measurement


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Prepared:
    """A workload loaded on the device, ready to run many times (see ``Backend.prepare``).

    ``run`` executes it once; ``finish`` adds what the backend records after timing (per-node
    times, flags); ``close`` releases the session.
    """

    run: Callable[[], object]
    finish: Callable[[Measurement], Measurement] = _unchanged
    close: Callable[[], None] = _nothing


def runtime_message(exc: BaseException) -> str:
    """A runtime's exception as one line (type and text, whitespace folded, at most 500 characters)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_fingerprint() -> dict[str, str]:
    """What every local backend reports: CPU, cores, OS, Python and vidlat versions."""
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "vidlat": __version__,
    }


class Backend(ABC):
    """Prepares and times workloads on one device.

    Subclasses set ``name``, the Python modules they need (``requires``) and the pip extra that
    installs them (``extra``), and implement ``fingerprint`` and ``measure``. ``measure`` never
    raises for a workload the runtime rejects: it returns ``Measurement.unsupported`` or
    ``Measurement.failed`` with the runtime's message.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    #: node types the runtime inserts to convert a tensor's memory layout (they are marked ``layout`` in node times)
    layout_nodes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, device: DeviceConfig) -> None:
        self.device = device
        self.options = device.backend_options
        self.policy = device.measurement

    @classmethod
    def availability(cls, device: DeviceConfig) -> Availability:
        """Cheap check: are the required modules importable? Subclasses may add more."""
        for module in cls.requires:
            if importlib.util.find_spec(module) is None:
                how = f"pip install 'vidlat[{cls.extra}]'" if cls.extra else f"pip install {module}"
                return Availability(False, f"python package '{module}' is not installed ({how})")
        return Availability(True)

    @abstractmethod
    def fingerprint(self) -> dict[str, str]:
        """CPU model, runtime versions, threads: recorded with every measurement."""

    def can_interleave(self) -> bool:
        """Whether this backend can hold several workloads at once and time them in rounds."""
        return type(self).prepare is not Backend.prepare

    def prepare(self, workload: Workload) -> Prepared | Measurement | None:
        """Load ``workload`` so that it can be timed in rounds interleaved with others.

        Returns a ``Measurement`` (unsupported / failed) when the runtime rejects the workload, and
        ``None`` when this backend can only time one workload at a time (a remote board, a
        simulator): the sweep then calls ``measure``.
        """
        return None

    @abstractmethod
    def measure(self, workload: Workload) -> Measurement:
        """Time one workload under the device's measurement policy."""

    def measure_prepared(self, workload: Workload) -> Measurement:
        """``measure`` for backends with ``prepare``: prepare, time under the policy, finish, close."""
        prepared = self.prepare(workload)
        if prepared is None:
            raise TypeError(f"{type(self).__name__}.prepare returned None; it times one workload at a time")
        if isinstance(prepared, Measurement):
            return prepared
        try:
            measurement = measure_callable(prepared.run, self.policy)
        except Exception as exc:
            return Measurement.failed(runtime_message(exc))
        finally:
            prepared.close()
        return prepared.finish(measurement)

    def close(self) -> None:
        """Release runtime resources (sessions, engines, connections)."""
