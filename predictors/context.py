"""Tables that hold in context: per-entry corrections of the isolated table, fitted on measured networks.

::

    isolated table (layer, block) ms ───┐
    measured networks (layers, ms) ─────┴──> calibration a * sum + b on the networks
                                             residual r_n = y_n - (a * sum_n + b)
                                             ridge, on relative error, with the table as prior:
                                               min_d  sum_n ((r_n - sum_l d[l, c_nl]) / y_n)^2 + alpha * sum_e (d_e / s_e)^2
                                             alpha by leave-one-out (closed form)
                                                   │
    in-context entry (layer, block) = a * isolated + d ;  stem + head = a * fixed + b

A block measured alone pays what a network does not (a fresh compile's layout reorders, a first
read of its input) and misses what a network adds (fusion across the block boundary). A scale and
an offset correct the average of that; the per-entry corrections ``d`` correct what depends on the
candidate and its place. The result is again one latency per (layer, candidate), so a network's
latency stays a sum and the differentiable search's cost is unchanged. The prior scale ``s_e`` of
an entry is its calibrated isolated latency: a 10% correction costs the same on a large and a
small block, and an entry no fitted network uses keeps its calibrated isolated value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from predictors.errors import PredictorError
from predictors.lut import FIXED_LAYER, LUTPredictor
from predictors.network import Calibration

ALPHAS: tuple[float, ...] = tuple(float(value) for value in np.logspace(-3, 3, 25))
MIN_NETWORKS = 5


class InContextTable:
    """Isolated per-(layer, candidate) latencies corrected to what they cost inside measured networks.

    ``fit(lut, archs, measured_ms)`` learns ``calibration_`` (scale and offset on the block sum),
    ``corrections_`` (ms per (layer, block), the ridge solution), ``alpha_`` (the prior's weight, by
    leave-one-out) and ``table_``, the in-context entries as a lookup table (columns of the isolated one,
    ``median_ms`` replaced, plus ``isolated_ms`` and ``correction_ms``); ``predict(archs)`` sums it.
    """

    def __init__(self, *, alphas: Sequence[float] = ALPHAS) -> None:
        self.alphas = tuple(alphas)

    def fit(self, lut: LUTPredictor, archs: Sequence[Sequence[str]], measured_ms: Sequence[float]) -> "InContextTable":
        measured = np.asarray(measured_ms, dtype=float)
        if len(archs) != len(measured):
            raise PredictorError(f"{len(archs)} archs but {len(measured)} measured latencies")
        if len(archs) < MIN_NETWORKS:
            raise PredictorError(f"an in-context table needs at least {MIN_NETWORKS} measured networks, got {len(archs)}")
        if not np.all(np.isfinite(measured) & (measured > 0)):
            raise PredictorError("measured network latencies must be finite and > 0 ms")
        self.lut_ = lut
        block_sum = lut.predict_archs(archs)
        design_ = np.stack([block_sum / measured, 1.0 / measured], axis=1)  # affine, on relative error
        (scale, offset), *_ = np.linalg.lstsq(design_, np.ones_like(measured), rcond=None)
        self.calibration_ = Calibration("affine", float(scale), float(offset), len(measured))
        entries = sorted({(index, str(block)) for layers in archs for index, block in enumerate(layers)})
        column = {entry: position for position, entry in enumerate(entries)}
        design = np.zeros((len(archs), len(entries)))
        for row, layers in enumerate(archs):
            for index, block in enumerate(layers):
                design[row, column[(index, str(block))]] += 1.0
        isolated = lut.lookup(entries)
        prior = np.maximum(self.calibration_.scale * isolated, 1e-6)
        residual = measured - self.calibration_(block_sum)
        weight = 1.0 / measured
        z = design * prior * weight[:, None]  # corrections in units of their prior, errors relative
        t = residual * weight
        self.alpha_, dual = _ridge_loo(z @ z.T, t, self.alphas)
        self.corrections_ = dict(zip(entries, (prior * (z.T @ dual)).tolist()))
        self.table_ = self._in_context_entries()
        self._summed = LUTPredictor(self.table_[["layer", "block", "key", "median_ms"]], device=lut.device)
        return self

    def _in_context_entries(self) -> pd.DataFrame:
        """The isolated table's rows with ``median_ms`` = a * isolated + correction (at least 0); stem and
        head share a * fixed + b pro rata (a row ``offset`` carries it when the table has neither)."""
        frame = self.lut_.entries.copy()
        frame["isolated_ms"] = frame["median_ms"].astype(float)
        fixed = frame["layer"] == FIXED_LAYER
        corrections = [self.corrections_.get((int(layer), str(block)), 0.0) for layer, block in zip(frame["layer"], frame["block"])]
        frame["median_ms"] = np.maximum(self.calibration_.scale * frame["isolated_ms"] + np.array(corrections), 0.0)
        fixed_ms = max(self.calibration_.scale * self.lut_.fixed_ms + self.calibration_.offset_ms, 0.0)
        isolated_fixed = frame.loc[fixed, "isolated_ms"]
        if float(isolated_fixed.sum()) > 0:
            frame.loc[fixed, "median_ms"] = isolated_fixed / float(isolated_fixed.sum()) * fixed_ms
        else:
            frame = frame[~fixed]
            offset = {"layer": FIXED_LAYER, "block": "offset", "key": "offset", "median_ms": fixed_ms, "isolated_ms": 0.0}
            frame = pd.concat([frame, pd.DataFrame([offset])], ignore_index=True)
        frame["correction_ms"] = frame["median_ms"] - frame["isolated_ms"]
        frame["source"] = np.where(frame["source"] == "lut", "lut+context", frame["source"])
        return frame.reset_index(drop=True)

    def predict(self, archs: Sequence[Sequence[str]]) -> np.ndarray:
        """Network latency, ms: the sum of the in-context entries plus stem and head."""
        return self._summed.predict_archs(archs)

    def table(self) -> pd.DataFrame:
        """The in-context entries as a lookup table (a copy of ``table_``)."""
        return self.table_.copy()


def _ridge_loo(gram: np.ndarray, target: np.ndarray, alphas: Sequence[float]) -> tuple[float, np.ndarray]:
    """Kernel ridge: the alpha with the least leave-one-out error, and its dual coefficients."""
    scale = float(np.trace(gram)) / len(gram) or 1.0
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in alphas:
        inverse = np.linalg.inv(gram + alpha * scale * np.eye(len(gram)))
        dual = inverse @ target
        loo = dual / np.diag(inverse)  # leave-one-out residuals of kernel ridge, closed form
        error = float(np.mean(loo**2))
        if best is None or error < best[0]:
            best = (error, alpha * scale, dual)
    assert best is not None
    return best[1], best[2]
