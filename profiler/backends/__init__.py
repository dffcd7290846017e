"""Backend registry: a new backend is one new file plus one line here.

Backends are imported lazily, so listing devices or running the remote agent never imports a
runtime (or torch) that the device does not use.
"""

from __future__ import annotations

import importlib

from profiler.backends.base import Availability, Backend
from profiler.device import DeviceConfig
from profiler.errors import BackendUnavailableError

# backend name -> "module:Class"
BACKENDS: dict[str, str] = {
    "onnxruntime": "profiler.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "profiler.backends.openvino:OpenVinoBackend",
    "torch": "profiler.backends.torch_backend:TorchBackend",
    "tensorrt": "profiler.backends.tensorrt:TensorRtBackend",
    "remote": "profiler.backends.remote:RemoteBackend",
    "simulator": "profiler.simulators.backend:SimulatorBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name``."""
    if name not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend '{name}'; backends: {', '.join(sorted(BACKENDS))}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def availability(device: DeviceConfig) -> Availability:
    """Whether ``device`` can be measured here, and if not, why (the schema only allows registered backends)."""
    try:
        cls = backend_class(device.backend)
    except ImportError as exc:
        return Availability(False, f"cannot import the '{device.backend}' backend: {exc}")
    return cls.availability(device)


def create_backend(device: DeviceConfig) -> Backend:
    """A ready backend for ``device``, or a clear error naming what is missing."""
    status = availability(device)
    if not status.ok:
        raise BackendUnavailableError(f"device '{device.name}' cannot run here: {status.reason}")
    return backend_class(device.backend)(device)


__all__ = ["BACKENDS", "Availability", "Backend", "availability", "backend_class", "create_backend"]
