"""Latency regressors: scikit-learn estimators fitted on log latency of workload specs.

::

    specs ──FeatureSet──> X ──estimator (gbm | rf | linear)──> log ms ──exp──> ms
    latency ms ──log──> y ──┘
    specs ──FeatureSet──> per-op [GFLOPs, MB, hidden elems, 1] ──non-negative least squares
                          on relative error (additive)──> ms

"additive" is the roofline-like model: each op kind costs a x compute + b x traffic + c x
activations + a fixed overhead, all non-negative, fitted so every block's relative error counts
alike; it extrapolates to other widths and resolutions where trees cannot.

``REGRESSORS`` maps a name to a builder of a fresh estimator; a new model family is one builder.
``select_regressor`` fits every family on a training split, scores each on a validation split
(held out by group, e.g. block family and width, when groups are given), keeps the best by MAPE
and refits it on everything. ``out_of_fold_ms`` gives honest predictions for workloads the
regressor was not fitted on, for the "regressor only" evaluation row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from predictors.errors import PredictorError
from predictors.features import WORK_FEATURES, FeatureSet, as_spec
from predictors.metrics import evaluate

Estimator = Any


def _gbm(seed: int) -> Estimator:
    return GradientBoostingRegressor(
        n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
    )


def _rf(seed: int) -> Estimator:
    return RandomForestRegressor(n_estimators=200, min_samples_leaf=1, max_features=0.6, random_state=seed, n_jobs=1)


def _linear(seed: int) -> Estimator:
    del seed  # deterministic
    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 2, 13)))


def _additive(seed: int) -> Estimator:
    del seed  # deterministic
    return LinearRegression(positive=True, fit_intercept=False)


REGRESSORS: dict[str, Callable[[int], Estimator]] = {"gbm": _gbm, "rf": _rf, "linear": _linear, "additive": _additive}
LOG_TARGET: frozenset[str] = frozenset({"gbm", "rf", "linear"})


def additive_design(features: FeatureSet, matrix: np.ndarray) -> np.ndarray:
    """Per op kind: its one-hot times [work terms..., 1] (columns grouped by op kind)."""
    names = features.names
    work = matrix[:, [names.index(name) for name in WORK_FEATURES]]
    terms = np.hstack([work, np.ones((len(matrix), 1))])
    onehot = matrix[:, [names.index(f"op={op}") for op in features.op_kinds]]
    return (onehot[:, :, None] * terms[:, None, :]).reshape(len(matrix), -1)


class LatencyRegressor:
    """One model family fitted on log latency; ``fit(specs, ms)`` / ``predict(specs) -> ms``."""

    def __init__(self, kind: str = "gbm", *, seed: int = 0) -> None:
        if kind not in REGRESSORS:
            raise PredictorError(f"unknown regressor '{kind}'; choose one of {', '.join(REGRESSORS)}")
        self.kind = kind
        self.seed = seed
        self.features: FeatureSet | None = None
        self.estimator: Estimator | None = None

    def fit(self, specs: Sequence[Mapping[str, Any] | str], latency_ms: Sequence[float]) -> "LatencyRegressor":
        specs = [as_spec(spec) for spec in specs]
        y = np.asarray(latency_ms, dtype=float)
        if len(specs) != len(y):
            raise PredictorError(f"{len(specs)} specs but {len(y)} latencies")
        if len(specs) < 3:
            raise PredictorError(f"need at least 3 measured workloads to fit a regressor, got {len(specs)}")
        if np.any(~np.isfinite(y)) or np.any(y <= 0):
            raise PredictorError("latencies to fit on must be finite and > 0 ms")
        self.features = FeatureSet.from_specs(specs)
        matrix = self.features.transform(specs)
        estimator = REGRESSORS[self.kind](self.seed)
        if self.kind in LOG_TARGET:
            self.estimator = estimator.fit(matrix, np.log(y))
        else:
            self.estimator = estimator.fit(additive_design(self.features, matrix), y, sample_weight=1.0 / y**2)
        return self

    def predict(self, specs: Sequence[Mapping[str, Any] | str]) -> np.ndarray:
        if self.estimator is None or self.features is None:
            raise PredictorError("regressor is not fitted; call fit() or load a fitted predictor")
        if len(specs) == 0:
            return np.zeros(0)
        matrix = self.features.transform(specs)
        if self.kind in LOG_TARGET:
            return np.exp(self.estimator.predict(matrix))
        return np.maximum(self.estimator.predict(additive_design(self.features, matrix)), 1e-6)

    @classmethod
    def from_parts(cls, kind: str, seed: int, features: FeatureSet, estimator: Estimator) -> "LatencyRegressor":
        """A fitted regressor from saved parts (see ``predictors.persist``)."""
        regressor = cls(kind, seed=seed)
        regressor.features, regressor.estimator = features, estimator
        return regressor


@dataclass
class RegressorSelection:
    """The best family refitted on all data, and every family's validation metrics."""

    best: LatencyRegressor
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    validation_size: int = 0


def select_regressor(
    specs: Sequence[Mapping[str, Any] | str],
    latency_ms: Sequence[float],
    *,
    kinds: Sequence[str] = tuple(REGRESSORS),
    val_fraction: float = 0.2,
    groups: Sequence[Any] | None = None,
    seed: int = 0,
) -> RegressorSelection:
    """Fit each of ``kinds`` on a split, score on the rest (MAPE decides), refit the best on all."""
    specs = [as_spec(spec) for spec in specs]
    y = np.asarray(latency_ms, dtype=float)
    if len(specs) < 10:
        raise PredictorError(f"need at least 10 measured workloads to select a regressor, got {len(specs)}")
    splitter = (
        GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        if groups is not None
        else ShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    )
    train, val = next(splitter.split(np.zeros(len(y)), y, groups))
    # op kinds only in validation would be unseen at predict time: move them to training
    seen = {specs[i].get("op") for i in train}
    moved = [i for i in val if specs[i].get("op") not in seen]
    train, val = np.concatenate([train, moved]).astype(int), np.setdiff1d(val, moved)
    scores = {}
    for kind in kinds:
        model = LatencyRegressor(kind, seed=seed).fit([specs[i] for i in train], y[train])
        scores[kind] = evaluate(model.predict([specs[i] for i in val]), y[val])
    best = min(scores, key=lambda kind: scores[kind]["mape"])
    return RegressorSelection(LatencyRegressor(best, seed=seed).fit(specs, y), scores, len(val))


def out_of_fold_ms(
    kind: str,
    specs: Sequence[Mapping[str, Any] | str],
    latency_ms: Sequence[float],
    *,
    folds: int = 5,
    extra_specs: Sequence[Mapping[str, Any] | str] = (),
    extra_ms: Sequence[float] = (),
    seed: int = 0,
) -> np.ndarray:
    """Each workload predicted by a regressor fitted on the other folds (never on itself).

    Folds are stratified by op kind so every fold's regressor has seen every kind; a kind with a
    single workload cannot be held out and is an error. ``extra_specs`` / ``extra_ms`` (e.g. sampled
    block configurations outside the space) join every fold's training set.
    """
    specs = [as_spec(spec) for spec in specs]
    y = np.asarray(latency_ms, dtype=float)
    extra = [as_spec(spec) for spec in extra_specs]
    extra_y = np.asarray(extra_ms, dtype=float)
    ops = np.array([str(spec.get("op", "")) for spec in specs])
    kinds, counts = np.unique(ops, return_counts=True)
    if counts.min() < 2:
        lonely = ", ".join(kinds[counts < 2])
        raise PredictorError(f"op kind(s) {lonely} have one workload only; out-of-fold prediction needs two of each")
    splitter = StratifiedKFold(n_splits=int(min(folds, counts.min())), shuffle=True, random_state=seed)
    predicted = np.empty(len(y))
    for train, test in splitter.split(np.zeros(len(y)), ops):
        model = LatencyRegressor(kind, seed=seed).fit([specs[i] for i in train] + extra, np.concatenate([y[train], extra_y]))
        predicted[test] = model.predict([specs[i] for i in test])
    return predicted


def family_errors(
    specs: Sequence[Mapping[str, Any] | str], latency_ms: Sequence[float], *, kind: str = "gbm", seed: int = 0
) -> dict[str, float]:
    """Out-of-fold MAPE (percent) of the regressor per op kind: where more samples would help most."""
    specs = [as_spec(spec) for spec in specs]
    y = np.asarray(latency_ms, dtype=float)
    ops = np.array([str(spec.get("op", "")) for spec in specs])
    kinds, counts = np.unique(ops, return_counts=True)
    keep = np.isin(ops, kinds[counts >= 2])
    predicted = out_of_fold_ms(kind, [s for s, k in zip(specs, keep) if k], y[keep], seed=seed)
    errors = np.abs(predicted / y[keep] - 1.0) * 100.0
    return {str(op): float(errors[ops[keep] == op].mean()) for op in np.unique(ops[keep])}
