"""Proof bench: `vidlat predict` on video models written outside vidlat, predicted vs measured.

::

    for each device: profile_operators (resumable; its cost is the span of the operator rows' timestamps)
        ──> KernelPredictor.fit ──> predict every zoo model at every input size (uncalibrated, and
            calibrated by the scale of the other models: leave one model family out)
    all models loaded in one process ──> rounds of a few runs each, order shuffled per round,
        median per round, median over rounds (one intra-op thread) ──> measured ms (the process CPU
        time where the wall time is above contention_ratio x CPU time, as the sweep treats contended rows)
    ──> metrics.csv (per device), models.csv (per model), kernel_types.csv (out of fold per type),
        summary.json, docs/any-model-scatter.png

Run: ``PYTHONPATH=. python bench/predict_any_model.py --store /tmp/anymodel/ops.sqlite`` (needs
``pip install 'vidlat[zoo]'``). Weights are random; nothing is downloaded. ``--seed N`` draws another
operator sample (use a new store) and writes its files under ``predict_any_model_files/seedN/``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.zoo import zoo_onnx  # noqa: E402
from predictors.kernel_predictor import KernelPredictor, evaluate_operators, profile_operators  # noqa: E402
from predictors.metrics import evaluate  # noqa: E402
from profiler.backends import create_backend  # noqa: E402
from profiler.catalog import resolve_device  # noqa: E402
from profiler.store import LatencyStore  # noqa: E402
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


def measure_interleaved(device_name: str, workloads: list[Workload], *, rounds: int, runs: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median over rounds of the per-round median wall (and process CPU) ms; every model loaded at once."""
    device = resolve_device(device_name)
    backend = create_backend(device)
    callables = {}
    for workload in workloads:
        inputs = workload.random_inputs()
        if device.backend == "onnxruntime":
            callables[workload.key] = backend._bound_run(backend._session(workload), inputs)
        else:
            model = backend._ov.convert_model(io.BytesIO(workload.onnx))
            callables[workload.key] = backend._request(model, inputs).infer
    for run in callables.values():  # warm-up
        run()
        run()
    wall: dict[str, list[float]] = {key: [] for key in callables}
    cpu: dict[str, list[float]] = {key: [] for key in callables}
    order = list(callables)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            walls, cpus = [], []
            for _ in range(runs):
                c0, t0 = time.process_time(), time.perf_counter()
                callables[key]()
                walls.append((time.perf_counter() - t0) * 1e3)
                cpus.append((time.process_time() - c0) * 1e3)
            wall[key].append(statistics.median(walls))
            cpu[key].append(statistics.median(cpus))
    backend.close()
    result = {}
    for key in callables:
        wall_ms, cpu_ms = statistics.median(wall[key]), statistics.median(cpu[key])
        contended = wall_ms > device.measurement.contention_ratio * cpu_ms  # the sweep's rule: then the CPU time counts
        result[key] = {"wall_ms": wall_ms, "cpu_ms": cpu_ms, "contended": contended, "ms": cpu_ms if contended else wall_ms}
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
    args = parser.parse_args()
    out = OUT if args.seed == 0 else OUT / f"seed{args.seed}"  # seed 0 is the docs' run
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
                    profile_operators(backend, store, seed=args.seed, progress=False)
                finally:
                    backend.close()
            costs[device.name] = {**operator_cost(store, device.name), "load_after": os.getloadavg()[0]}
            table = store.table(device.name)
            predictor = KernelPredictor.fit(table, device=device.name, fingerprint=store.fingerprint(device.name))
            kinds = evaluate_operators(table)
        per_type += [{"device": device.name, **row} for row in kinds.to_dict(orient="records")]
        predicted = {w.key: predictor.predict_onnx(w.onnx, w.inputs) for w in workloads}
        load_before = os.getloadavg()[0]
        measured = measure_interleaved(device.name, workloads, rounds=args.rounds, runs=args.runs)
        for workload in workloads:
            result = predicted[workload.key]
            types: dict[str, float] = {}
            for row in result["kernels"]:
                types[row["type"]] = types.get(row["type"], 0.0) + (row["ms"] or 0.0)
            records.append({"device": device.name, "model": workload.key, "family": workload.spec["model"],
                            "predicted_ms": result["total_ms"], "measured_ms": measured[workload.key]["ms"],
                            "wall_ms": measured[workload.key]["wall_ms"], "cpu_ms": measured[workload.key]["cpu_ms"],
                            "contended": measured[workload.key]["contended"], "kernels": len(result["kernels"]),
                            "table_hits": sum(r["source"] == "table" for r in result["kernels"]),
                            "unpriced": len(result["unpriced"]), "load_during": load_before,
                            **{f"ms_{t}": v for t, v in types.items()}})
    frame = pd.DataFrame.from_records(records)
    # leave one model family out: scale from the other families' measured / predicted (geometric mean)
    ratio = np.log(frame["measured_ms"] / frame["predicted_ms"])
    frame["calibrated_ms"] = [
        row["predicted_ms"] * float(np.exp(ratio[(frame["device"] == row["device"]) & (frame["family"] != row["family"])].mean()))
        for _, row in frame.iterrows()
    ]
    frame["error_pct"] = 100 * (frame["predicted_ms"] / frame["measured_ms"] - 1)
    frame["calibrated_error_pct"] = 100 * (frame["calibrated_ms"] / frame["measured_ms"] - 1)
    metrics = []
    for device_name, group in frame.groupby("device"):
        for column in ("predicted_ms", "calibrated_ms"):
            scores = evaluate(group[column].to_numpy(), group["measured_ms"].to_numpy())
            metrics.append({"device": device_name, "prediction": column.removesuffix("_ms"), **scores})
    metrics_frame = pd.DataFrame.from_records(metrics)
    frame.to_csv(out / "models.csv", index=False, float_format="%.4f")
    metrics_frame.to_csv(out / "metrics.csv", index=False, float_format="%.4f")
    pd.DataFrame.from_records(per_type).to_csv(out / "kernel_types.csv", index=False, float_format="%.4f")
    summary = {"started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "cpu": resolve_cpu(), "cores": os.cpu_count(), "rounds": args.rounds, "runs": args.runs,
               "operator_profiling": costs, "command": " ".join(sys.argv)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    scatter(frame, SCATTER if args.seed == 0 else out / "scatter.png")
    print(metrics_frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(frame[["device", "model", "predicted_ms", "calibrated_ms", "measured_ms", "error_pct"]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
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
