"""Proof bench: `vidlat predict` on video models written outside vidlat, predicted vs measured.

::

    for each device: profile_operators (resumable; its cost is the span of the operator rows' timestamps)
        ──> KernelPredictor.fit ──> predict every zoo model at every input size (uncalibrated, and
            calibrated on the other models: KernelPredictor.calibrate, leave one model family out)
    all models loaded in one process, timed as a sweep times its workloads (profiler.sweep.measure_interleaved):
        rounds of a few runs each, order shuffled per round, the canary before each model, one intra-op
        thread ──> measured ms (median over rounds, scaled to the store's canary reference like the
        operator rows) and raw ms (the plain round medians, the host's drift left in)
    ──> metrics.csv (per device), models.csv (per model), kernel_types.csv (out of fold per type),
        summary.json, docs/any-model-scatter.png

Run: ``PYTHONPATH=. python bench/predict_any_model.py --store /tmp/anymodel/ops.sqlite`` (needs
``pip install 'vidlat[zoo]'``). Weights are random; nothing is downloaded. ``--seed N`` draws another
operator sample (use a new store) and writes its files under ``predict_any_model_files/seedN/``;
``--scale S`` measures S times the default sample (``.../seedN-scaleS/``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.zoo import zoo_onnx  # noqa: E402
from predictors.kernel_predictor import EXTRA_PER_ROUND, KernelPredictor, evaluate_operators, profile_operators  # noqa: E402
from predictors.metrics import evaluate  # noqa: E402
from profiler.backends import create_backend  # noqa: E402
from profiler.catalog import resolve_device  # noqa: E402
from profiler.device import DeviceConfig  # noqa: E402
from profiler.store import LatencyStore  # noqa: E402
from profiler.sweep import measure_interleaved  # noqa: E402
from profiler.workload import Workload  # noqa: E402

# (model, (C, T, H, W)): six architectures from two libraries, two input sizes each
MODELS: list[tuple[str, tuple[int, int, int, int]]] = [
    (name, shape) for name in ("r3d_18", "mc3_18", "r2plus1d_18", "swin3d_t", "videomae", "timesformer")
    for shape in ((3, 4, 64, 64), (3, 8, 96, 96))
]
OUT = Path(__file__).with_name("predict_any_model_files")
SCATTER = Path(__file__).resolve().parents[1] / "docs" / "any-model-scatter.png"


def model_workloads(models: list[tuple[str, tuple[int, ...]]]) -> list[Workload]:
    workloads = []
    for name, shape in models:
        data = zoo_onnx(name, shape)
        label = f"{name}@{'x'.join(map(str, shape[1:]))}"
        workloads.append(Workload(key=label, onnx=data, inputs={"input": (1, *shape)}, spec={"file": label, "model": name}))
    return workloads


def measure_models(device: DeviceConfig, workloads: list[Workload], *, reference_ms: float | None, rounds: int, runs: int
                   ) -> dict[str, dict[str, float]]:
    """Every model loaded at once and timed as a sweep times its workloads (``profiler.sweep``): ``rounds``
    rounds of ``runs`` runs, order shuffled, canary before each model; ``ms`` is scaled to the store's
    canary reference (the table's scale), ``raw_ms`` is the median over rounds of the plain round medians."""
    policy = device.measurement.model_copy(update={"min_rounds": rounds, "max_rounds": rounds, "round_runs": runs,
                                                   "max_seconds": 3600.0, "max_runs": 10_000})
    backend = create_backend(device.model_copy(update={"measurement": policy}))
    try:
        measurements, _ = measure_interleaved(backend, workloads, canary_reference_ms=reference_ms)
    finally:
        backend.close()
    result = {}
    for workload, measurement in zip(workloads, measurements):
        if measurement.status != "ok":
            raise SystemExit(f"{workload.key} on {device.name}: {measurement.status}: {measurement.reason}")
        by_round: dict[int, list[float]] = {}
        for ms, index in zip(measurement.raw_ms, measurement.extra["run_rounds"]):
            by_round.setdefault(index, []).append(ms)
        speeds = measurement.extra.get("round_speeds", [1.0])
        result[workload.key] = {"ms": measurement.median_ms, "raw_ms": statistics.median(statistics.median(v) for v in by_round.values()),
                                "cpu_ms": measurement.cpu_ms, "contended": measurement.contended,
                                "speed": statistics.median(speeds), "flagged_rounds": measurement.extra.get("flagged_rounds", 0)}
    return result


def operator_cost(store: LatencyStore, device: str) -> dict[str, float]:
    table = store.table(device)
    ops = table[table["spec"].map(lambda s: isinstance(s, dict) and s.get("op") in ("operator", "fusion"))]
    stamps = pd.to_datetime(ops["measured_at"])
    return {"workloads": int(len(ops)), "span_min": float((stamps.max() - stamps.min()).total_seconds() / 60)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--devices", nargs="+", default=["ort-cpu-1t", "openvino-cpu-1t"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="*", help="subset of model names")
    parser.add_argument("--no-profile", action="store_true", help="use the operator rows already in the store")
    parser.add_argument("--seed", type=int, default=0, help="seed of the operator sampling (a new store per seed)")
    parser.add_argument("--scale", type=float, default=1.0, help="x the default operator sample (first round and each later round)")
    args = parser.parse_args()
    name = f"seed{args.seed}" + (f"-scale{args.scale:g}" if args.scale != 1 else "")
    out = OUT if name == "seed0" else OUT / name  # seed 0 at the default scale is the docs' run
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    models = [m for m in MODELS if not args.models or m[0] in args.models]
    workloads = model_workloads(models)
    records, costs, per_type = [], {}, []
    for device_name in args.devices:
        device = resolve_device(device_name)
        with LatencyStore(args.store) as store:
            if not args.no_profile:
                backend = create_backend(device)
                try:
                    profile_operators(backend, store, seed=args.seed, scale=args.scale, extra_per_round=round(EXTRA_PER_ROUND * args.scale),
                                      progress=False)
                finally:
                    backend.close()
            costs[device.name] = {**operator_cost(store, device.name), "load_after": os.getloadavg()[0]}
            table = store.table(device.name)
            predictor = KernelPredictor.fit(table, device=device.name, fingerprint=store.fingerprint(device.name))
            kinds = evaluate_operators(table)
            reference = store.canary_reference(device.name)
        per_type += [{"device": device.name, **row} for row in kinds.to_dict(orient="records")]
        predicted = {w.key: predictor.predict_onnx(w.onnx, w.inputs) for w in workloads}
        load_before = os.getloadavg()[0]
        measured = measure_models(device, workloads, reference_ms=reference, rounds=args.rounds, runs=args.runs)
        for workload in workloads:
            result = predicted[workload.key]
            others = [w.key for w in workloads if w.spec["model"] != workload.spec["model"]]
            calibrated = copy.copy(predictor).calibrate([predicted[key]["type_ms"] for key in others],
                                                         [measured[key]["ms"] for key in others])
            records.append({"device": device.name, "model": workload.key, "family": workload.spec["model"],
                            "predicted_ms": result["total_ms"], "measured_ms": measured[workload.key]["ms"],
                            "calibrated_ms": calibrated.total_ms(result["type_ms"]),
                            **{k: measured[workload.key][k] for k in ("raw_ms", "cpu_ms", "speed", "flagged_rounds", "contended")},
                            "kernels": len(result["kernels"]),
                            "table_hits": sum(r["source"] == "table" for r in result["kernels"]),
                            "unpriced": len(result["unpriced"]), "load_during": load_before,
                            **{f"ms_{t}": v for t, v in result["type_ms"].items()}})
    frame = pd.DataFrame.from_records(records)
    frame["error_pct"] = 100 * (frame["predicted_ms"] / frame["measured_ms"] - 1)
    frame["calibrated_error_pct"] = 100 * (frame["calibrated_ms"] / frame["measured_ms"] - 1)
    frame["raw_error_pct"] = 100 * (frame["predicted_ms"] / frame["raw_ms"] - 1)
    metrics = []
    for device_name, group in frame.groupby("device"):
        for column, truth in (("predicted_ms", "measured_ms"), ("calibrated_ms", "measured_ms"), ("predicted_ms", "raw_ms")):
            scores = evaluate(group[column].to_numpy(), group[truth].to_numpy())
            metrics.append({"device": device_name, "prediction": column.removesuffix("_ms"), "against": truth.removesuffix("_ms"), **scores})
    metrics_frame = pd.DataFrame.from_records(metrics)
    frame.to_csv(out / "models.csv", index=False, float_format="%.4f")
    metrics_frame.to_csv(out / "metrics.csv", index=False, float_format="%.4f")
    pd.DataFrame.from_records(per_type).to_csv(out / "kernel_types.csv", index=False, float_format="%.4f")
    summary = {"started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "cpu": resolve_cpu(), "cores": os.cpu_count(), "rounds": args.rounds, "runs": args.runs,
               "operator_profiling": costs, "command": " ".join(sys.argv)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    scatter(frame, SCATTER if out == OUT else out / "scatter.png")
    print(metrics_frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(frame[["device", "model", "predicted_ms", "calibrated_ms", "measured_ms", "error_pct", "raw_ms", "speed"]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(pd.DataFrame.from_records(per_type).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(summary, indent=2))


def resolve_cpu() -> str:
    from profiler.backends.base import cpu_model

    return cpu_model()


def scatter(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(frame["device"].unique())
    fig, axes = plt.subplots(1, len(devices), figsize=(5.5 * len(devices), 5), squeeze=False)
    for ax, device in zip(axes[0], devices):
        group = frame[frame["device"] == device]
        for family, rows in group.groupby("family"):
            ax.scatter(rows["measured_ms"], rows["predicted_ms"], label=family, s=36)
        low, high = group[["measured_ms", "predicted_ms"]].min().min() * 0.8, group[["measured_ms", "predicted_ms"]].max().max() * 1.25
        line = np.array([low, high])
        ax.plot(line, line, "k-", lw=0.8)
        ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.2, label="within 10%")
        ax.set(xscale="log", yscale="log", xlabel="measured ms", ylabel="predicted ms (kernel sum, uncalibrated)", title=device)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
