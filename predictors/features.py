"""Regressor features from a workload spec (the JSON-able dict every workload carries).

::

    spec {op, c_in, c_out, t, h, w, kt, kh, kw, stride_t, stride_s, expansion, se, act, heads,
          macs, flops, params, bytes}
      │
      ├─ raw numbers ───────────── c_in, c_out, t, h, w, kernel, stride, expansion, se, heads
      ├─ derived ───────────────── output T*H*W, hidden width, arithmetic intensity (flops / bytes)
      ├─ log1p of the big ones ─── flops, params, bytes, input / output / hidden elements
      ├─ raw work terms ────────── GFLOPs, MB moved, hidden elements (millions)
      └─ one-hot ───────────────── op kind and activation, over the kinds seen when fitting
                                           │
                                           v
                              float64 matrix, columns = FeatureSet.names

A spec key a workload does not have (a stem has no ``expansion``) reads as 0. The one-hot
vocabularies are fixed at fit time and saved with a predictor, so a predictor never silently
scores an op kind it has not seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictors.errors import PredictorError

NUMERIC_FEATURES: tuple[str, ...] = (
    "c_in", "c_out", "t", "h", "w", "kt", "kh", "kw", "stride_t", "stride_s", "expansion", "se", "heads",
    "out_thw", "hidden", "intensity",
    "log_flops", "log_params", "log_bytes", "log_in_elems", "log_out_elems", "log_hidden_elems",
    "gflops", "mbytes", "m_hidden_elems",
)
# the raw work terms of the additive (roofline-like) model: latency ~ a*gflops + b*mbytes + c*m_hidden_elems + d, per op
WORK_FEATURES: tuple[str, ...] = ("gflops", "mbytes", "m_hidden_elems")


def as_spec(value: Any) -> dict[str, Any]:
    """A spec dict from a dict or its JSON text (how the store's ``spec`` column may hold it)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        return json.loads(value)
    raise PredictorError(f"a workload spec must be a dict or JSON text, got {type(value).__name__}")


def _num(spec: Mapping[str, Any], key: str) -> float:
    value = spec.get(key)
    if value is None or isinstance(value, str):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def numeric_features(spec: Mapping[str, Any]) -> list[float]:
    """The values of ``NUMERIC_FEATURES`` for one spec."""
    c_in, c_out = _num(spec, "c_in"), _num(spec, "c_out")
    t, h, w = _num(spec, "t"), _num(spec, "h"), _num(spec, "w")
    stride_t, stride_s = max(_num(spec, "stride_t"), 1.0), max(_num(spec, "stride_s"), 1.0)
    expansion = _num(spec, "expansion")
    flops, params, nbytes = _num(spec, "flops") or 2 * _num(spec, "macs"), _num(spec, "params"), _num(spec, "bytes")
    out_thw = math.ceil(t / stride_t) * math.ceil(h / stride_s) * math.ceil(w / stride_s)
    hidden = c_in * expansion if expansion else c_out
    return [
        c_in, c_out, t, h, w, _num(spec, "kt"), _num(spec, "kh"), _num(spec, "kw"), stride_t, stride_s,
        expansion, _num(spec, "se"), _num(spec, "heads"),
        float(out_thw), hidden, flops / nbytes if nbytes else 0.0,
        math.log1p(flops), math.log1p(params), math.log1p(nbytes),
        math.log1p(c_in * t * h * w), math.log1p(c_out * out_thw), math.log1p(hidden * t * h * w),
        flops / 1e9, nbytes / 1e6, hidden * t * h * w / 1e6,
    ]


@dataclass(frozen=True)
class FeatureSet:
    """Numeric features plus one-hot op kinds and activations (vocabularies fixed at fit time)."""

    op_kinds: tuple[str, ...]
    activations: tuple[str, ...] = ()

    @classmethod
    def from_specs(cls, specs: Iterable[Mapping[str, Any]]) -> "FeatureSet":
        specs = [as_spec(spec) for spec in specs]
        ops = sorted({str(spec.get("op", "")) for spec in specs})
        acts = sorted({str(spec["act"]) for spec in specs if spec.get("act")})
        return cls(tuple(ops), tuple(acts))

    @property
    def names(self) -> list[str]:
        """Column names of ``transform``'s matrix, in order."""
        return [*NUMERIC_FEATURES, *(f"op={op}" for op in self.op_kinds), *(f"act={act}" for act in self.activations)]

    def transform(self, specs: Sequence[Mapping[str, Any] | str]) -> np.ndarray:
        """Feature matrix (rows: specs, columns: ``names``); an unseen op kind is an error."""
        rows = []
        for raw in specs:
            spec = as_spec(raw)
            op = str(spec.get("op", ""))
            if op not in self.op_kinds:
                raise PredictorError(
                    f"op kind '{op}' was not seen when the regressor was fitted; known: {', '.join(self.op_kinds)}"
                )
            act = str(spec.get("act") or "")
            rows.append(
                numeric_features(spec)
                + [1.0 if op == kind else 0.0 for kind in self.op_kinds]
                + [1.0 if act == kind else 0.0 for kind in self.activations]
            )
        return np.asarray(rows, dtype=float).reshape(len(rows), len(self.names))

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(NUMERIC_FEATURES), "op_kinds": list(self.op_kinds), "activations": list(self.activations)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSet":
        """Rebuild a saved feature set; one saved with other numeric features is an error."""
        numeric = tuple(data.get("numeric", ()))
        if numeric != NUMERIC_FEATURES:
            missing = sorted(set(NUMERIC_FEATURES) - set(numeric))
            extra = sorted(set(numeric) - set(NUMERIC_FEATURES))
            raise PredictorError(
                "saved predictor uses another feature set "
                f"(missing here: {', '.join(extra) or 'none'}; new here: {', '.join(missing) or 'none'}); refit it with `vidlat fit`"
            )
        return cls(tuple(data.get("op_kinds", ())), tuple(data.get("activations", ())))
