"""Kernel-level latency prediction for any ONNX model, and the adaptive operator profiling it learns from.

::

    store table (operator workloads, fusion tests, overhead) ──KernelPredictor.fit──>
        rules (FusionRules), overhead_ms, stream costs, per kernel type: ridge on features + random forest
        on its residuals (log ms per unit of work), table {kernel signature: measured ms}
    MODEL.onnx ──model_kernels(rules)──> kernels ──table hit, else the type's regressor──> ms each
        + cold weights: a linear layer (MatMul / Gemm on constant weights) of a model whose weights exceed
          what stays cached also reads them from memory: its weight MiB x (the stream cost per MiB at the
          model's weight footprint - the cost in cache), from the device's weight-streaming chains
        total = (overhead + sum over kernel types of factor_t x the type's kernels) x scale, the scale and the
        per-type factors fitted on measured whole models (1 without; see ``KernelPredictor.calibrate``)

    profile_operators(backend, store): fusion tests + overhead + weight-streaming chains ──> rules ──> round 0: sampled configs
        that run as one kernel under the rules ──> rounds 1..R: out-of-fold error per type decides how
        many new configs each type gets; they are neighbours of the configs predicted worst

A kernel's time is the workload's median less the runtime's per-run overhead (the smallest graph's
time; at least ``FLOOR_SHARE`` of the median), so a model of hundreds of small kernels does not count
that overhead hundreds of times; and less the share of its layout conversions where the runtime
reports them (``layout_share``): alone, an operator on OpenVINO's blocked layouts converts its input
and output from and to the plain layout, which inside a model happens once, not per kernel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from scipy.optimize import minimize
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from predictors.errors import PredictorError
from predictors.kernels import FEATURES, VIEWS, FusionRules, Kernel, KernelGraph, model_kernels, row_latency
from predictors.metrics import evaluate
from predictors.persist import load_checked
from profiler.backends.base import Backend
from profiler.operators import (INITIAL_SAMPLES, KERNEL_TYPES, STREAM_SIDE, fusion_workloads, mutate_config, operator_workload,
                                overhead_workload, sample_config, stream_workloads)
from profiler.store import LatencyStore
from profiler.sweep import SweepSummary, profile_workloads
from profiler.workload import Workload

FORMAT = "vidlat-kernel-predictor/4"  # 2: regressors learn log(ms / work); weight-streaming costs; 3: conv feature patchify;
# 4: per-kernel-type calibration factors
CALIBRATION_PRIOR = 0.3  # weight of the prior that holds each kernel type's factor at 1 (see KernelPredictor.calibrate)
MIN_SAMPLES = 5
EXTRA_PER_ROUND = 120  # configurations each adaptive round adds
FLOOR_SHARE = 0.2  # a kernel's time is at least this share of its workload's measured time
MIN_MS = 1e-6  # and positive (a simulator may take 0 ms for a reshape), for the regressors' log


def _of(table: pd.DataFrame, op: str) -> pd.DataFrame:
    if table.empty:
        return table
    ok = table[(table["status"] == "ok") & table["spec"].map(lambda s: isinstance(s, dict) and s.get("op") == op)]
    return ok.assign(ms=ok.apply(row_latency, axis=1)) if len(ok) else ok.assign(ms=[])


def _recorded_kernel(spec: dict[str, Any], rules: FusionRules) -> Kernel | None:
    """The kernel of an operator workload from the features its spec records (see ``with_features``), if every
    op of its epilogue is one the rules fuse; else None (the graph must be grouped again)."""
    if not isinstance(spec.get("features"), dict) or not set(FEATURES[spec["kernel"]]) <= set(spec["features"]):
        return None  # recorded before a feature was added
    anchor = spec["kernel"]
    followers = spec["config"].get("then" if anchor == "elementwise" else "epilogue", [])
    if not all(rules.fuses(anchor, op) for op in followers):
        return None
    return Kernel(anchor, (), (), {name: float(spec["features"][name]) for name in FEATURES[anchor]})


def with_features(workload: Workload, kernel: Kernel) -> Workload:
    """The workload with its kernel's features recorded in the spec, so fitting need not rebuild its graph."""
    return Workload(workload.key, workload.onnx, workload.inputs, {**workload.spec, "features": kernel.features})


def kernel_ms(workload_ms: np.ndarray | float, overhead_ms: float) -> np.ndarray:
    """A kernel's time from its workload's: less the runtime's per-run overhead, at least ``FLOOR_SHARE`` of it."""
    workload_ms = np.asarray(workload_ms, dtype=float)
    return np.maximum(np.maximum(workload_ms - overhead_ms, FLOOR_SHARE * workload_ms), MIN_MS)


def workload_ms(kernel: np.ndarray | float, overhead_ms: float) -> np.ndarray:
    """The inverse of ``kernel_ms``: the workload's time that gave a kernel time (above ``MIN_MS``)."""
    kernel = np.asarray(kernel, dtype=float)
    return np.minimum(kernel + overhead_ms, kernel / FLOOR_SHARE)


def layout_share(node_times: list[dict[str, Any]] | None) -> float:
    """The share of a workload's node time spent in layout conversions (nodes marked ``layout`` by the
    backend, e.g. OpenVINO's ``Reorder``); 0 without per-node times.

    Measured on OpenVINO here (2026-12-05): an r3d_18 convolution of 64 channels at 4x32x32 took 9.4 ms
    alone, of which 1.4 ms were the two reorders at its ends; inside the model the convolutions ran
    52.1 ms and the model's reorders 0.03 ms. Over one operator sample, reorders were a median 27% of a
    convolution workload (and of 27 of 57 pooling workloads), 0% of every other type.
    """
    times = [(float(node.get("median_ms", 0.0)), bool(node.get("layout"))) for node in node_times or []]
    total = sum(ms for ms, _ in times)
    return sum(ms for ms, layout in times if layout) / total if total > 0 else 0.0


def operator_rows(table: pd.DataFrame, rules: FusionRules, overhead_ms: float) -> pd.DataFrame:
    """Measured operator workloads that run as one kernel under ``rules``: type, features, signature, kernel ms
    (less the runtime's overhead and the workload's ``layout_share``), round."""
    records = []
    for _, row in _of(table, "operator").iterrows():
        spec = row["spec"]
        if spec["kernel"] not in FEATURES or spec["config"].get("op") in VIEWS:
            continue
        kernel = _recorded_kernel(spec, rules)
        if kernel is None:
            workload = operator_workload(spec["kernel"], spec["config"])
            graph = model_kernels(workload.onnx, workload.inputs, rules)
            if len(graph.kernels) != 1 or graph.unpriced:
                continue  # an epilogue this device does not fuse: the time is of several kernels
            kernel = graph.kernels[0]
        ms = float(kernel_ms(row["ms"], overhead_ms)) * (1.0 - layout_share(row.get("node_times")))
        records.append({"key": row["key"], "type": kernel.type, "features": kernel.features, "signature": kernel.signature(),
                        "ms": max(ms, MIN_MS), "round": int(spec.get("round", 0))})
    return pd.DataFrame.from_records(records, columns=["key", "type", "features", "signature", "ms", "round"])


def operator_count(table: pd.DataFrame) -> int:
    """How many operator and fusion-test measurements a store table holds (what a kernel predictor is fitted on)."""
    if table.empty:
        return 0
    return int(table["spec"].map(lambda s: isinstance(s, dict) and s.get("op") in ("operator", "fusion")).sum())


def stream_costs(table: pd.DataFrame, overhead_ms: float) -> tuple[tuple[float, float], ...]:
    """(MiB of weights, ms per MiB) of the device's weight-streaming chains, by footprint (empty if not measured)."""
    rows = _of(table, "operator")
    rows = rows[rows["spec"].map(lambda s: s.get("kernel") == "stream")] if len(rows) else rows
    costs: dict[float, float] = {}
    for _, row in rows.iterrows():  # the latest measurement of a chain wins
        mib = row["spec"]["config"]["matrices"] * STREAM_SIDE * STREAM_SIDE * 4 / 2**20
        costs[mib] = max(row["ms"] - overhead_ms, MIN_MS) / mib
    return tuple(sorted(costs.items()))


def weight_mib(kernel: Kernel) -> float:
    """MiB of constant float32 weights a conv or a matmul on constant weights reads (0 for other kernels)."""
    if kernel.type == "conv":
        return math.exp(kernel.features["log_weight"]) * 4 / 2**20
    if kernel.type == "matmul" and kernel.features["b_const"]:
        return math.exp(kernel.features["log_k"] + kernel.features["log_n"]) * 4 / 2**20
    return 0.0


def overhead_of(table: pd.DataFrame) -> float:
    """The per-run time of the smallest graph on the device (0 if not measured)."""
    rows = _of(table, "operator")
    rows = rows[rows["spec"].map(lambda s: s.get("kernel") == "overhead")] if len(rows) else rows
    return float(rows["ms"].iloc[-1]) if len(rows) else 0.0


# the size each kernel type's time scales with (its work): the regressors learn log(ms / work)
WORK: dict[str, str] = {
    "conv": "log_macs", "matmul": "log_macs", "pool": "log_in", "norm": "log_elems", "softmax": "log_elems",
    "elementwise": "log_out", "movement": "log_out", "resize": "log_out",
}


@dataclass
class TypeRegressor:
    """Log time per unit of work (``WORK``) from a kernel type's features: ridge plus a random forest on its residuals.

    Every feature is held to the range measured, so beyond it a kernel's time grows in proportion to
    its work (the measured time per MAC or per element of the largest kernels) instead of following a
    fitted power law out of range: a 64-channel 3x3x3 convolution ran at 46 GMAC/s on ONNX Runtime here
    both at 0.45 and at 2.0 GMAC (1.4x the largest sampled then), where a power law over log sizes had
    the larger one at 32 ms instead of 44.
    """

    kernel_type: str
    base: Any = None
    residual: Any = None
    low_: np.ndarray | None = None
    high_: np.ndarray | None = None

    def _matrix(self, features: list[dict[str, float]]) -> np.ndarray:
        x = np.array([[f[name] for name in FEATURES[self.kernel_type]] for f in features], dtype=float)
        if self.low_ is not None and self.high_ is not None:
            x = np.clip(x, self.low_, self.high_)
        return x

    def _work(self, features: list[dict[str, float]]) -> np.ndarray:
        return np.array([f[WORK[self.kernel_type]] for f in features], dtype=float)

    def fit(self, features: list[dict[str, float]], ms: np.ndarray, *, seed: int = 0) -> "TypeRegressor":
        x = np.array([[f[name] for name in FEATURES[self.kernel_type]] for f in features], dtype=float)
        y = np.log(np.asarray(ms, dtype=float)) - self._work(features)
        self.low_, self.high_ = x.min(axis=0), x.max(axis=0)
        self.base = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 2, 11))).fit(x, y)
        self.residual = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, max_features=0.7, random_state=seed,
                                              n_jobs=1).fit(x, y - self.base.predict(x))
        return self

    def predict(self, features: list[dict[str, float]]) -> np.ndarray:
        if not features:
            return np.zeros(0)
        x = self._matrix(features)
        return np.exp(self._work(features) + self.base.predict(x) + self.residual.predict(x))


def out_of_fold(rows: pd.DataFrame, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Predictions of every row of one kernel type by a regressor fitted without its fold."""
    predicted = np.full(len(rows), np.nan)
    if len(rows) < max(MIN_SAMPLES, folds):
        return predicted
    features, ms = list(rows["features"]), rows["ms"].to_numpy()
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(ms):
        model = TypeRegressor(rows["type"].iloc[0]).fit([features[i] for i in train], ms[train], seed=seed)
        predicted[test] = model.predict([features[i] for i in test])
    return predicted


def type_sums(kernels: list[dict[str, Any]]) -> dict[str, float]:
    """Priced kernel rows (``price(...)["kernels"]``) summed per kernel type, in ms (unpriced rows left out)."""
    sums: dict[str, float] = {}
    for row in kernels:
        if row["ms"] is not None:
            sums[row["type"]] = sums.get(row["type"], 0.0) + float(row["ms"])
    return sums


@dataclass
class KernelPredictor:
    """Predicts any ONNX model's latency on one device from its operator measurements."""

    device: str
    fingerprint: dict[str, str] = field(default_factory=dict)
    rules: FusionRules = field(default_factory=FusionRules)
    overhead_ms: float = 0.0
    scale: float = 1.0
    type_scales: dict[str, float] = field(default_factory=dict)
    calibration_models: int = 0
    measurements: int = 0
    regressors_: dict[str, TypeRegressor] = field(default_factory=dict)
    table_: dict[tuple[Any, ...], float] = field(default_factory=dict)
    samples_: dict[str, int] = field(default_factory=dict)
    stream_: tuple[tuple[float, float], ...] = ()

    @classmethod
    def fit(cls, table: pd.DataFrame, *, device: str, fingerprint: dict[str, str] | None = None, seed: int = 0) -> "KernelPredictor":
        """Rules, overhead, table and one regressor per kernel type with at least ``MIN_SAMPLES`` measurements."""
        rules = FusionRules.from_table(table)
        overhead = overhead_of(table)
        rows = operator_rows(table, rules, overhead)
        if rows.empty:
            raise PredictorError(f"no operator measurements of device '{device}'; run `vidlat profile --device {device} --operators` first")
        predictor = cls(device, dict(fingerprint or {}), rules, overhead, measurements=operator_count(table),
                        stream_=stream_costs(table, overhead))
        for kernel_type, group in rows.groupby("type"):
            predictor.samples_[kernel_type] = len(group)
            if len(group) >= MIN_SAMPLES:
                predictor.regressors_[kernel_type] = TypeRegressor(kernel_type).fit(list(group["features"]), group["ms"].to_numpy(), seed=seed)
        predictor.table_ = {sig: float(ms) for sig, ms in zip(rows["signature"], rows["ms"])}
        return predictor

    # ------------------------------------------------------------------ prediction
    def price(self, graph: KernelGraph) -> dict[str, Any]:
        """Per-kernel ms and source, the sum, the total, and what could not be priced (op, node, reason)."""
        rows, unpriced = [], [{"node": u.node, "op_type": u.op_type, "reason": u.reason} for u in graph.unpriced]
        pending: dict[str, list[int]] = {}
        for kernel in graph.kernels:
            hit = self.table_.get(kernel.signature())
            rows.append({"kernel": kernel.label, "type": kernel.type, "node": kernel.nodes[0], "nodes": len(kernel.nodes),
                         "ms": hit, "source": "table" if hit is not None else "regressor"})
            if hit is None:
                if kernel.type in self.regressors_:
                    pending.setdefault(kernel.type, []).append(len(rows) - 1)
                else:
                    rows[-1]["source"] = "unpriced"
                    unpriced.append({"node": kernel.nodes[0], "op_type": kernel.label,
                                     "reason": f"too few measured '{kernel.type}' operators on this device "
                                               f"({self.samples_.get(kernel.type, 0)} < {MIN_SAMPLES}); run `vidlat profile --operators`"})
        for kernel_type, indices in pending.items():
            values = self.regressors_[kernel_type].predict([graph.kernels[i].features for i in indices])
            for index, value in zip(indices, values):
                rows[index]["ms"] = float(value)
        for row, cold in zip(rows, self.cold_weights_ms(graph.kernels)):
            row["cold_ms"] = cold
            if row["ms"] is not None:
                row["ms"] += cold
        kernel_sum = float(sum(row["ms"] for row in rows if row["ms"] is not None))
        by_type = type_sums(rows)
        return {"kernels": rows, "kernel_sum_ms": kernel_sum, "overhead_ms": self.overhead_ms,
                "cold_weights_ms": float(sum(row["cold_ms"] for row in rows if row["ms"] is not None)),
                "type_ms": by_type, "total_ms": self.total_ms(by_type), "scale": self.scale, "type_scales": dict(self.type_scales),
                "free_nodes": len(graph.free), "unpriced": unpriced}

    def total_ms(self, type_ms: dict[str, float]) -> float:
        """A model's calibrated total from its uncalibrated kernel ms per type: (overhead + sum of factor x ms) x scale."""
        return (self.overhead_ms + sum(self.type_scales.get(t, 1.0) * ms for t, ms in type_ms.items())) * self.scale

    def cold_weights_ms(self, kernels: list[Kernel]) -> list[float]:
        """Per kernel, the time a linear layer adds by reading its weights from memory rather than from cache.

        The model's weight footprint sets the stream cost per MiB (interpolated in log footprint over the
        device's chains, held at their ends); the extra is the layer's MiB times that cost less the cost in
        cache (the cheapest chain), which its isolated measurement already paid. Only MatMul / Gemm kernels
        pay it: on ONNX Runtime here a 512-channel 3x3x3 convolution with 27 MiB of weights ran as fast in a
        126 MiB model as alone (it computes long enough per weight to hide the read), while the linear
        layers of a 105 MiB video Swin ran up to 1.9x their isolated time (docs/any-model.md).
        """
        if len(self.stream_) < 2:
            return [0.0] * len(kernels)
        footprint = sum(weight_mib(kernel) for kernel in kernels)
        sizes, costs = np.log([mib for mib, _ in self.stream_]), [cost for _, cost in self.stream_]
        extra = max(float(np.interp(math.log(max(footprint, 1e-9)), sizes, costs)) - min(costs), 0.0)
        return [weight_mib(kernel) * extra if kernel.type == "matmul" else 0.0 for kernel in kernels]

    def predict_onnx(self, onnx_bytes: bytes, inputs: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """``price`` of an ONNX model at the given input shapes."""
        return self.price(model_kernels(onnx_bytes, inputs, self.rules))

    def calibrate(self, type_ms: list[dict[str, float]], measured_ms: list[float], *, prior: float = CALIBRATION_PRIOR
                  ) -> "KernelPredictor":
        """Fit the scale and the per-type factors on measured models, from each model's uncalibrated kernel ms
        per type (``price(...)["type_ms"]``) and its measured time.

        Least squares on log time, ``log m = log scale + log(overhead + sum_t f_t s_t)``, plus
        ``prior x sum_t (log f_t)^2``: one model, or models that agree, give a single scale (the factors stay
        at 1), and a type's factor leaves 1 only as far as several models pull it. Kernels measured alone
        and kernels inside a model differ by type on some runtimes, which one scale cannot follow: fitted on
        six zoo models at two sizes (docs/any-model.md), OpenVINO's convolutions ran 1.03-1.19x and its
        linear layers 0.88-0.98x their isolated prices inside the models.
        """
        pairs = [(dict(t), float(m)) for t, m in zip(type_ms, measured_ms) if m > 0 and sum(t.values()) > 0]
        if not pairs:
            raise PredictorError("calibration needs at least one measured model with a positive prediction")
        types = sorted({name for t, _ in pairs for name, ms in t.items() if ms > 0})
        sums = np.array([[t.get(name, 0.0) for name in types] for t, _ in pairs])
        log_measured = np.log([m for _, m in pairs])

        def loss(z: np.ndarray) -> float:
            predicted = self.overhead_ms + sums @ np.exp(z[1:])
            return float(np.sum((z[0] + np.log(predicted) - log_measured) ** 2) + prior * np.sum(z[1:] ** 2))

        fitted = minimize(loss, np.zeros(len(types) + 1), method="L-BFGS-B").x
        self.scale = float(math.exp(fitted[0]))
        self.type_scales = {name: float(math.exp(z)) for name, z in zip(types, fitted[1:])}
        self.calibration_models = len(pairs)
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT, "device": self.device, "fingerprint": {str(k): str(v) for k, v in self.fingerprint.items()},
            "rules": sorted(self.rules.fused), "evidence": {k: float(v) for k, v in self.rules.evidence.items()},
            "overhead_ms": float(self.overhead_ms), "scale": float(self.scale),
            "type_scales": {str(k): float(v) for k, v in self.type_scales.items()}, "calibration_models": int(self.calibration_models),
            "measurements": int(self.measurements), "samples": {k: int(v) for k, v in self.samples_.items()},
            "regressors": {t: {"base": r.base, "residual": r.residual, "low": r.low_, "high": r.high_} for t, r in self.regressors_.items()},
            "table": [[str(sig[0]), [float(v) for v in sig[1:]], float(ms)] for sig, ms in self.table_.items()],
            "stream": [[float(mib), float(cost)] for mib, cost in self.stream_],
        }
        sio.dump(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, fingerprint: dict[str, str] | None = None) -> "KernelPredictor":
        """A saved kernel predictor, its file's types checked against the trusted list before loading."""
        path = Path(path)
        payload = load_checked(path, kind="kernel predictor", fmt=FORMAT, fit_command="vidlat fit --device {device} --operators",
                               device=device, fingerprint=fingerprint)
        try:
            saved = {str(k): str(v) for k, v in payload["fingerprint"].items()}
            regressors = {}
            for kernel_type, parts in payload["regressors"].items():
                if kernel_type not in FEATURES:
                    raise PredictorError(f"'{path}': unknown kernel type '{kernel_type}'")
                regressors[kernel_type] = TypeRegressor(kernel_type, parts["base"], parts["residual"],
                                                        np.asarray(parts["low"], dtype=float), np.asarray(parts["high"], dtype=float))
            table = {(str(t), *(float(v) for v in values)): float(ms) for t, values, ms in payload["table"]}
            type_scales = {str(k): float(v) for k, v in payload["type_scales"].items()}
            if not all(math.isfinite(v) and v > 0 for v in [float(payload["scale"]), *type_scales.values()]):
                raise PredictorError(f"'{path}': calibration scales must be finite and positive")
            return cls(
                device=str(payload["device"]), fingerprint=saved,
                rules=FusionRules(frozenset(str(r) for r in payload["rules"]), {str(k): float(v) for k, v in payload["evidence"].items()}),
                overhead_ms=float(payload["overhead_ms"]), scale=float(payload["scale"]),
                type_scales=type_scales,
                calibration_models=int(payload["calibration_models"]), measurements=int(payload["measurements"]),
                regressors_=regressors, table_=table, samples_={str(k): int(v) for k, v in payload["samples"].items()},
                stream_=tuple((float(mib), float(cost)) for mib, cost in payload["stream"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PredictorError(f"'{path}' is not a saved vidlat kernel predictor ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- evaluation
def evaluate_operators(table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Out-of-fold accuracy of each kernel type's regressor on the measured operators: samples, then acc10,
    MAPE and Kendall on the workload's time (the kernel's prediction plus the runtime overhead; layout
    conversions left out, see ``layout_share``),
    then ``kernel_acc10`` and ``kernel_mape`` on the kernel's time alone (what a model's sum adds up), which
    the overhead does not soften for the smallest kernels."""
    rules = FusionRules.from_table(table)
    overhead = overhead_of(table)
    rows = operator_rows(table, rules, overhead)
    columns = ["type", "samples", "acc10", "mape", "kendall", "kernel_acc10", "kernel_mape"]
    records = []
    for kernel_type, group in rows.groupby("type"):
        predicted = out_of_fold(group.reset_index(drop=True), seed=seed)
        if np.isnan(predicted).all():
            records.append({"type": kernel_type, "samples": len(group), **{name: math.nan for name in columns[2:]}})
            continue
        kernel = group["ms"].to_numpy()
        measured = workload_ms(kernel, overhead)
        scores = evaluate(predicted + (measured - kernel), measured)
        alone = evaluate(predicted, kernel)
        records.append({"type": kernel_type, "samples": len(group), "acc10": scores["acc10"], "mape": scores["mape"],
                        "kendall": scores["kendall"], "kernel_acc10": alone["acc10"], "kernel_mape": alone["mape"]})
    return pd.DataFrame.from_records(records, columns=columns)


# --------------------------------------------------------------------------- adaptive profiling
def _single_kernel(rules: FusionRules) -> Callable[[Workload], Workload | None]:
    """The workload with its kernel's features if it runs as one kernel under ``rules``, else None."""
    def accept(workload: Workload) -> Workload | None:
        graph = model_kernels(workload.onnx, workload.inputs, rules)
        if len(graph.kernels) != 1 or graph.unpriced:
            return None
        return with_features(workload, graph.kernels[0])
    return accept


def _round_workloads(kernel_type: str, count: int, rng: np.random.Generator, accept: Callable[[Workload], Workload | None], round_: int,
                     parents: list[dict[str, Any]] | None = None) -> list[Workload]:
    workloads: dict[str, Workload] = {}
    for attempt in range(count * 6):
        if len(workloads) >= count:
            break
        if parents:
            config = mutate_config(kernel_type, parents[attempt % len(parents)], rng)
        else:
            config = sample_config(kernel_type, rng)
        workload = operator_workload(kernel_type, config, round_=round_)
        if workload.key not in workloads and (accepted := accept(workload)) is not None:
            workloads[workload.key] = accepted
    return list(workloads.values())


def _merge(total: SweepSummary, part: SweepSummary) -> None:
    for name in ("measured", "skipped", "unsupported", "failed", "contended", "remeasured_contended", "left"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.keys.extend(part.keys)


def profile_operators(backend: Backend, store: LatencyStore, *, scale: float = 1.0, rounds: int = 2, extra_per_round: int = EXTRA_PER_ROUND,
                      seed: int = 0, limit: int | None = None, remeasure: bool = False, progress: bool = True) -> SweepSummary:
    """Fusion tests, overhead, then sampled operator configs in rounds (see the module doc); resumable.

    ``scale`` multiplies the first round's counts (``profiler.operators.INITIAL_SAMPLES``); each later
    round adds ``extra_per_round`` configs, split over the kernel types by their out-of-fold MAPE.
    Every step is seeded and each round fits only on earlier rounds, so a rerun regenerates the same
    workloads and skips the stored ones. ``limit`` caps how many are measured in this call. On a runtime
    that inserts layout conversions (``Backend.layout_nodes``) every workload also records its per-node
    times, so that ``layout_share`` can take the conversions out of the kernel's time.
    """
    if backend.layout_nodes and not backend.policy.per_node:
        backend.policy = backend.policy.model_copy(update={"per_node": True})
    device = backend.device.name
    started = time.perf_counter()
    total = SweepSummary(device=device)
    left = limit

    def run(workloads: list[Workload]) -> bool:
        nonlocal left
        part = profile_workloads(backend, store, workloads, remeasure=remeasure, limit=left, progress=progress)
        _merge(total, part)
        if left is not None:
            left -= part.measured + part.unsupported + part.failed
        return part.left == 0 and (left is None or left > 0)

    keep_going = run([overhead_workload(), *fusion_workloads(), *stream_workloads()])
    rules = FusionRules.from_table(store.table(device))
    accept = _single_kernel(rules)
    first = []
    for index, kernel_type in enumerate(KERNEL_TYPES):
        count = max(3, round(INITIAL_SAMPLES[kernel_type] * scale))
        first += _round_workloads(kernel_type, count, np.random.default_rng([seed, 0, index]), accept, 0)
    keep_going = keep_going and run(first)
    for round_ in range(1, rounds + 1):
        if not keep_going:
            break
        table = store.table(device)
        rows = operator_rows(table, rules, overhead_of(table))
        rows = rows[rows["round"] < round_]
        errors: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        configs = {row["key"]: row["spec"]["config"] for _, row in _of(table, "operator").iterrows()}
        for kernel_type, group in rows.groupby("type"):
            group = group.reset_index(drop=True)
            predicted = out_of_fold(group, seed=seed)
            if np.isnan(predicted).all():
                continue
            error = np.abs(predicted - group["ms"].to_numpy()) / group["ms"].to_numpy()
            worst = np.argsort(-error)[: max(3, len(group) // 5)]
            errors[kernel_type] = (float(np.mean(error)), [configs[group["key"].iloc[i]] for i in worst])
        weight = sum(max(e, 0.02) for e, _ in errors.values())
        batch = []
        for index, kernel_type in enumerate(KERNEL_TYPES):
            if kernel_type not in errors:
                continue
            error, parents = errors[kernel_type]
            count = round(extra_per_round * max(error, 0.02) / weight)
            if count:
                batch += _round_workloads(kernel_type, count, np.random.default_rng([seed, round_, index]), accept, round_, parents)
        keep_going = run(batch)
    total.elapsed_s = time.perf_counter() - started
    return total
