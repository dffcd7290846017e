"""Few-shot transfer to a new device from a known device's predictions and k measurements.

::

    known device: predicted ms of every network / block ──┐
                                                          ├─ fit in log space with shrinkage ──> FewShotTransfer
    new device: k measured (k = 5, 10, 20) ───────────────┘        log t = a log s + b (+ c_op)
                                                                   a -> 1, c_op -> 0 when k is small

    few_shot_curve: for each k, repeat (random k-subset -> fit -> score on the others) and average.

Latency on two CPUs (or a CPU and an accelerator) is far from proportional op by op, but a shared
log-log slope with small per-op offsets is a good prior that k points can pin down. Spearman is
invariant to a monotone map, so with network-level transfer it measures how well the known
device ranks the new one; block-level transfer with per-op offsets can also re-rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from predictors.errors import PredictorError
from predictors.metrics import METRICS, evaluate

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)


@dataclass
class FewShotTransfer:
    """``log t = slope * log s + intercept + offset[group]``, ridge-shrunk toward slope 1 and no offsets."""

    shrinkage: float = 1.0
    slope: float = 1.0
    intercept: float = 0.0
    offsets: dict[str, float] = field(default_factory=dict)

    def fit(self, source_ms: Sequence[float], target_ms: Sequence[float], groups: Sequence[str] | None = None) -> "FewShotTransfer":
        s, t = np.log(np.asarray(source_ms, dtype=float)), np.log(np.asarray(target_ms, dtype=float))
        if s.shape != t.shape or len(s) < 2:
            raise PredictorError(f"few-shot transfer needs >= 2 paired latencies, got {len(s)} and {len(t)}")
        names = sorted(set(groups)) if groups is not None else []
        # unknowns: (slope - 1), intercept, offsets; rows: data, then the ridge rows
        columns = [s - s.mean(), np.ones_like(s)] + [np.array([g == name for g in groups], dtype=float) for name in names]
        design = np.stack(columns, axis=1)
        target = t - s
        penalty = np.sqrt(self.shrinkage) * np.eye(design.shape[1])
        penalty[1, 1] = 0.0  # the intercept is free
        solution, *_ = np.linalg.lstsq(np.vstack([design, penalty]), np.concatenate([target, np.zeros(design.shape[1])]), rcond=None)
        self.slope = 1.0 + float(solution[0])
        self.intercept = float(solution[1] - solution[0] * s.mean())
        self.offsets = {name: float(value) for name, value in zip(names, solution[2:])}
        return self

    def predict(self, source_ms: Sequence[float], groups: Sequence[str] | None = None) -> np.ndarray:
        """Target ms; a source latency of 0 (an identity on a simulator) stays 0."""
        source = np.asarray(source_ms, dtype=float)
        s = np.log(np.where(source > 0, source, 1.0))
        offset = np.array([self.offsets.get(g, 0.0) for g in groups]) if groups is not None else 0.0
        return np.where(source > 0, np.exp(self.slope * s + self.intercept + offset), 0.0)


def few_shot_curve(
    source_ms: Sequence[float],
    target_ms: Sequence[float],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    repeats: int = 20,
    shrinkage: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Metrics against k: fit on k random networks of the new device, score on all the others."""
    source, target = np.asarray(source_ms, dtype=float), np.asarray(target_ms, dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        if k + 3 > len(target):
            raise PredictorError(f"k = {k} needs at least {k + 3} measured networks on the new device, got {len(target)}")
        scores = []
        for _ in range(repeats):
            order = rng.permutation(len(target))
            fit, test = order[:k], order[k:]
            model = FewShotTransfer(shrinkage).fit(source[fit], target[fit])
            scores.append(evaluate(model.predict(source[test]), target[test]))
        rows.append({"k": k, "repeats": repeats, **{m: float(np.nanmean([s[m] for s in scores])) for m in METRICS}})
    return pd.DataFrame(rows)
