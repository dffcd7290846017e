"""Any ONNX model on a profiled device: the library behind `vidlat predict MODEL.onnx` and `evaluate --operators`.

::

    store (device) ──operator_predictor──> KernelPredictor (the saved one beside the store while it is
                                           fitted on what the store holds now, else fitted afresh)
    MODEL.onnx ──onnx_file_workload (inputs; dynamic dims as 1)──> predict_onnx ──> per-kernel rows,
        total_ms, unpriced ops (a PredictorError naming them unless partial=True)
    measured models (`vidlat profile --onnx M`) ──evaluate_models──> predicted vs measured per model
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from predictors.errors import PredictorError
from predictors.kernel_predictor import KernelPredictor, operator_count
from predictors.metrics import evaluate
from profiler.store import LatencyStore
from profiler.workload import Workload


def operator_predictor_path(store: LatencyStore, device: str) -> Path:
    """Where `vidlat fit --operators` saves a device's kernel predictor: beside the store."""
    return store.path.parent / "predictors" / f"{device}--operators.skops"


def operator_predictor(store: LatencyStore, device: str, *, path: str | Path | None = None) -> KernelPredictor:
    """The device's kernel predictor: ``path`` if given; else the saved one if it was fitted on exactly the
    operator measurements the store holds now; else one fitted from the store."""
    fingerprint = store.fingerprint(device)
    if path is not None:
        return KernelPredictor.load(path, device=device, fingerprint=fingerprint)
    table = store.table(device)
    saved = operator_predictor_path(store, device)
    if saved.is_file():
        predictor = KernelPredictor.load(saved, device=device, fingerprint=fingerprint)
        if predictor.measurements == operator_count(table):
            return predictor
    return KernelPredictor.fit(table, device=device, fingerprint=fingerprint)


def predict_workload(predictor: KernelPredictor, workload: Workload, *, partial: bool = False) -> dict[str, Any]:
    """Per-kernel and total latency of a model; unpriced ops are a ``PredictorError`` unless ``partial``."""
    result = predictor.predict_onnx(workload.onnx, workload.inputs)
    if result["unpriced"] and not partial:
        ops = sorted({item["op_type"] for item in result["unpriced"]})
        raise PredictorError(
            f"{len(result['unpriced'])} node(s) cannot be priced on '{predictor.device}' ({', '.join(ops)}: "
            f"{result['unpriced'][0]['reason']}); --partial prices the rest and lists them"
        )
    return {"device": predictor.device, "model": workload.spec.get("file", workload.key), "inputs": {k: list(v) for k, v in workload.inputs.items()},
            "rules": sorted(predictor.rules.fused), **result}


def evaluate_models(predictor: KernelPredictor, store: LatencyStore, workloads: list[Workload]) -> dict[str, Any]:
    """Predicted vs measured whole models (each measured on the device with `vidlat profile --onnx`)."""
    table = store.table(predictor.device, keys=[w.key for w in workloads])
    measured = {row["key"]: row for _, row in table.iterrows() if row["status"] == "ok"}
    rows = []
    for workload in workloads:
        if workload.key not in measured:
            raise PredictorError(f"{workload.spec.get('file', workload.key)}: not measured on '{predictor.device}'; "
                                 f"run `vidlat profile --device {predictor.device} --onnx FILE` first")
        result = predictor.predict_onnx(workload.onnx, workload.inputs)
        rows.append({"model": workload.spec.get("file", workload.key), "predicted_ms": result["total_ms"],
                     "measured_ms": float(measured[workload.key]["median_ms"]), "unpriced": len(result["unpriced"]),
                     "type_ms": result["type_ms"]})
    scores = evaluate([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]) if rows else {}
    return {"models": rows, "scores": scores}
