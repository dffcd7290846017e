"""Workloads and measurements: what every backend takes and what it gives back.

A ``Workload`` is the one interchange format of vidlat: a stable readable key, an ONNX model, the
shapes of its (float32) inputs, and the spec it came from (op kind and parameters, JSON-able) so
regressors can learn from it. A ``Measurement`` is what a device says about one workload.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

Status = Literal["ok", "unsupported", "failed"]


@dataclass(frozen=True)
class Workload:
    """One thing a device measures: ``key``, ONNX bytes, input shapes and the spec.

    ``builder`` optionally rebuilds the torch module the ONNX came from (in-process only, never
    serialised), so the torch backend can run the module directly.
    """

    key: str
    onnx: bytes
    inputs: dict[str, tuple[int, ...]]
    spec: dict[str, Any] = field(default_factory=dict)
    builder: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def onnx_hash(self) -> str:
        """Content hash of the ONNX bytes (hex sha256, 16 characters)."""
        return hashlib.sha256(self.onnx).hexdigest()[:16]

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic float32 inputs of the workload's shapes."""
        rng = np.random.default_rng(seed)
        return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in self.inputs.items()}


@dataclass
class Measurement:
    """Statistics of one workload on one device; latency fields are ``None`` unless status is ok."""

    status: Status
    reason: str = ""
    median_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    runs: int = 0
    raw_ms: list[float] = field(default_factory=list)
    cpu_ms: float | None = None
    contended: bool = False
    node_times: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unsupported(cls, reason: str, **extra: Any) -> "Measurement":
        return cls(status="unsupported", reason=reason, extra=extra)

    @classmethod
    def failed(cls, reason: str, **extra: Any) -> "Measurement":
        return cls(status="failed", reason=reason, extra=extra)

    def problem(self) -> str:
        """Why an ok measurement cannot be a latency ("" when it can): no median, or a statistic that is
        non-finite or negative."""
        if self.status != "ok":
            return ""
        stats = {"median_ms": self.median_ms, "mean_ms": self.mean_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms}
        for name, value in stats.items():
            if (value is None and name == "median_ms") or (value is not None and (not math.isfinite(value) or value < 0)):
                return f"non-physical latency {name}={value} (a latency must be a finite number >= 0 ms)"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})
