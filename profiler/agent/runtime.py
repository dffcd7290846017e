"""The device an agent measures on: a runtime name plus threads and precision, as a ``DeviceConfig``.

::

    --runtime / request options {threads, precision} + request policy
        ──> runtime_device() ──> DeviceConfig(backend=runtime, options for that backend)
        ──> profiler.backends.create_backend(device).measure(workload)   (the same code as a local device)

Precision names of both spellings (``f32``/``fp32``, ``f16``/``fp16``) are accepted and mapped to
the runtime's own; a precision the runtime cannot run is a ``DeviceConfigError`` naming what it can.
"""

from __future__ import annotations

from typing import Any

from profiler.device import DeviceConfig, parse_device
from profiler.errors import DeviceConfigError, short_repr

RUNTIMES = ("onnxruntime", "openvino", "tensorrt")

# runtime -> accepted precision spelling -> the backend's spelling (None: the runtime takes no precision)
PRECISIONS: dict[str, dict[str, str | None]] = {
    "onnxruntime": {"f32": None, "fp32": None},
    "openvino": {"f32": "f32", "fp32": "f32", "f16": "f16", "fp16": "f16", "bf16": "bf16"},
    "tensorrt": {"f32": "fp32", "fp32": "fp32", "f16": "fp16", "fp16": "fp16", "int8": "int8"},
}
DEFAULT_PRECISION = {"onnxruntime": "f32", "openvino": "f32", "tensorrt": "fp16"}


def backend_options(runtime: str, *, threads: int, precision: str) -> dict[str, Any]:
    """The local backend's options for ``runtime`` at ``threads`` and ``precision``."""
    if runtime not in PRECISIONS:
        raise DeviceConfigError(f"unknown runtime '{runtime}'; the agent runs: {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS[runtime]:
        allowed = ", ".join(PRECISIONS[runtime])
        raise DeviceConfigError(f"runtime '{runtime}' cannot run precision '{precision}'; allowed: {allowed}")
    mapped = PRECISIONS[runtime][precision]
    if runtime == "onnxruntime":
        return {"intra_op_threads": threads, "inter_op_threads": 1}
    if runtime == "openvino":
        return {"threads": threads, "precision": mapped}
    return {"precision": mapped}


def runtime_device(runtime: str, *, threads: int, precision: str, policy: dict[str, Any] | None = None) -> DeviceConfig:
    """A validated in-memory device for the agent's runtime; errors name the bad field."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise DeviceConfigError(f"threads must be a positive integer, got {short_repr(threads)}")
    data = {
        "name": f"agent-{runtime}",
        "description": f"the vidlat agent's {runtime} runtime on this device",
        "backend": runtime,
        "options": backend_options(runtime, threads=threads, precision=precision),
        "measurement": policy or {},
    }
    return parse_device(data, source="agent request")
