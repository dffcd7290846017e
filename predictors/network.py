"""Whole-network latency: sum of blocks plus stem and head, then a calibration.

::

    arch layers ──LUTPredictor──> block ms ──sum + fixed_ms──> block sum ──Calibration──> network ms
                                                                 ^
                      a few measured networks (<= 10) ───fit─────┘

Runtimes fuse and overlap work that separately measured blocks do not show (and separately
compiled blocks pay layout reorders a whole network does not), so the block sum is biased. The
calibration is a scale ``a * x`` or an affine ``a * x + b``, fitted on relative error so that
small and large networks count alike; ``kind="auto"`` picks by leave-one-out error on the
calibration networks themselves (scale below 6 networks: an offset from fewer is mostly noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from predictors.errors import PredictorError
from predictors.features import as_spec
from predictors.lut import ContendedPolicy, LUTPredictor, latency_ms

CalibrationKind = Literal["none", "scale", "affine", "auto"]
MAX_CALIBRATION_NETWORKS = 10


@dataclass(frozen=True)
class Calibration:
    """``network_ms = scale * block_sum_ms + offset_ms``."""

    kind: str = "none"
    scale: float = 1.0
    offset_ms: float = 0.0
    networks: int = 0

    def __call__(self, block_sum_ms: np.ndarray | float) -> np.ndarray:
        return self.scale * np.asarray(block_sum_ms, dtype=float) + self.offset_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(**{key: data[key] for key in ("kind", "scale", "offset_ms", "networks") if key in data})


def _solve(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, float]:
    """Least squares on relative error: minimise sum(((a x + b) - y) / y)^2."""
    if kind == "scale":
        return float(np.sum(x / y) / np.sum((x / y) ** 2)), 0.0
    design = np.stack([x / y, 1.0 / y], axis=1)
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    return float(scale), float(offset)


def _loo_error(x: np.ndarray, y: np.ndarray, kind: str) -> float:
    errors = []
    for i in range(len(x)):
        rest = np.arange(len(x)) != i
        scale, offset = _solve(x[rest], y[rest], kind)
        errors.append(abs(scale * x[i] + offset - y[i]) / y[i])
    return float(np.mean(errors))


def fit_calibration(block_sum_ms: Sequence[float], measured_ms: Sequence[float], *, kind: CalibrationKind = "auto") -> Calibration:
    """Fit a calibration on at most ``MAX_CALIBRATION_NETWORKS`` measured networks."""
    x, y = np.asarray(block_sum_ms, dtype=float), np.asarray(measured_ms, dtype=float)
    if x.shape != y.shape:
        raise PredictorError(f"{len(x)} block sums but {len(y)} measured networks")
    if len(x) > MAX_CALIBRATION_NETWORKS:
        raise PredictorError(f"calibration takes at most {MAX_CALIBRATION_NETWORKS} networks, got {len(x)}")
    if kind == "none" or len(x) == 0:
        return Calibration()
    if np.any(x <= 0) or np.any(y <= 0):
        raise PredictorError("block sums and measured latencies must be > 0 ms")
    if kind == "auto":
        kind = "scale" if len(x) < 6 else min(("scale", "affine"), key=lambda k: _loo_error(x, y, k))
    if kind == "affine" and len(x) < 2:
        raise PredictorError("an affine calibration needs at least 2 measured networks")
    if kind not in ("scale", "affine"):
        raise PredictorError(f"unknown calibration '{kind}'; choose none, scale, affine or auto")
    scale, offset = _solve(x, y, kind)
    return Calibration(kind, scale, offset, len(x))


def network_frame(table: pd.DataFrame, space: str | None = None, *, contended: ContendedPolicy = "cpu") -> pd.DataFrame:
    """Measured whole networks from a store table: key, layers, flops, median_ms, round_medians_ms (ok rows only).

    Network workloads have spec op "network" and carry the arch as a dict with ``layers``;
    contended rows are handled as ``predictors.lut.latency_ms`` says. ``round_medians_ms`` holds the
    per-round medians of an interleaved measurement (None otherwise).
    """
    columns = ["key", "layers", "flops", "median_ms", "round_medians_ms"]
    if table.empty or "spec" not in table.columns:
        return pd.DataFrame(columns=columns)
    rounds = table["round_medians_ms"] if "round_medians_ms" in table.columns else [None] * len(table)
    rows = []
    for key, spec, median, round_medians in zip(table["key"], table["spec"], latency_ms(table, contended), rounds):
        spec = as_spec(spec)
        if spec.get("op") != "network" or not median or not np.isfinite(median):
            continue
        if space is not None and spec.get("space") != space:
            continue
        arch = spec.get("arch") or {}
        rows.append({"key": key, "layers": list(arch.get("layers", [])), "flops": float(spec.get("flops", np.nan)),
                     "median_ms": float(median), "round_medians_ms": round_medians if isinstance(round_medians, list) else None})
    return pd.DataFrame(rows, columns=columns)


class NetworkPredictor:
    """Block sum from a lookup table (regressor for misses) followed by a calibration."""

    def __init__(self, lut: LUTPredictor, calibration: Calibration | None = None) -> None:
        self.lut = lut
        self.calibration = calibration or Calibration()

    def fit(self, archs: Sequence[Sequence[str]], measured_ms: Sequence[float], *, kind: CalibrationKind = "auto") -> "NetworkPredictor":
        """Fit the calibration on a few measured networks (their block lists and latencies)."""
        self.calibration = fit_calibration(self.lut.predict_archs(archs), measured_ms, kind=kind)
        return self

    def predict(self, archs: Sequence[Sequence[str]]) -> np.ndarray:
        """Calibrated whole-network latency, ms, per arch."""
        return self.calibration(self.lut.predict_archs(archs))

    def breakdown(self, layers: Sequence[str]) -> dict[str, Any]:
        """Per-block and total prediction of one arch, JSON-able (total under ``total_ms``)."""
        blocks = self.lut.block_ms(layers)
        block_sum = float(blocks.sum()) + self.lut.fixed_ms
        return {
            "blocks": [
                {"layer": i, "block": block, "key": key, "ms": float(ms), "source": source}
                for i, (block, key, ms, source) in enumerate(
                    zip(layers, self.lut.block_keys(layers), blocks, self.lut.block_sources(layers))
                )
            ],
            "fixed_ms": self.lut.fixed_ms,
            "block_sum_ms": block_sum,
            "calibration": self.calibration.to_dict(),
            "total_ms": float(self.calibration(block_sum)),
        }
