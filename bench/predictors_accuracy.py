"""Whole-network accuracy of the predictors per device (the issue-6 targets).

For each device with measured networks of the space in the store: calibrate on 10 networks, test on
the rest, and print acc5 / acc10 / MAPE / RMSE / Kendall / Spearman for FLOPs (ranking only), block
sum, block sum + calibration and regressor + calibration. Repeats the calibration/test split over
several seeds and reports the mean and the range, since one split of ~50 networks is noisy.

    .venv/bin/python bench/predictors_accuracy.py --store /path/latency.sqlite \
        --devices ort-cpu-1t openvino-cpu-1t torch-cpu-1t --plot docs/predictors-scatter.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from predictors import evaluate_networks, measured_entries, network_frame, space_entries
from predictors.lut import CONTENDED_POLICIES
from predictors.metrics import METRICS
from profiler.store import LatencyStore
from search.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--space", default="default")
    parser.add_argument("--devices", nargs="+", default=["ort-cpu-1t", "openvino-cpu-1t", "torch-cpu-1t"])
    parser.add_argument("--seeds", type=int, default=5, help="calibration/test splits to average")
    parser.add_argument("--calibration-networks", type=int, default=10)
    parser.add_argument("--plot", help="scatter PNG of the first device (seed 0)")
    parser.add_argument("--contended", default="cpu", choices=CONTENDED_POLICIES,
                        help="how rows flagged contended are read (predictors.lut.latency_ms)")
    args = parser.parse_args()

    space = load_space(args.space)
    base = space_entries(space)
    with LatencyStore(args.store) as store:
        tables = {device: store.table(device) for device in args.devices if device in store.devices()}
    summary = []
    for index, (device, table) in enumerate(tables.items()):
        entries = measured_entries(base, table, contended=args.contended)
        networks = network_frame(table, space.name, contended=args.contended)
        misses = int(entries["median_ms"].isna().sum())
        if misses or len(networks) < args.calibration_networks + 3:
            print(f"{device}: skipped ({misses} table misses, {len(networks)} measured networks)")
            continue
        reports = [
            evaluate_networks(entries, networks, device=device, space=space.name,
                              calibration_networks=args.calibration_networks, seed=seed)
            for seed in range(args.seeds)
        ]
        print(reports[0].table_text())
        if index == 0 and args.plot:
            out = Path(args.plot)
            reports[0].save(out.parent / f"{out.stem}_files")
            (out.parent / f"{out.stem}_files" / "scatter.png").replace(out)
        for row in reports[0].rows:
            values = pd.DataFrame([report.rows[row] for report in reports])
            summary.append({"device": device, "predictor": row, "test": len(reports[0].predictions),
                            **{m: values[m].mean() for m in METRICS},
                            "acc10_min": values["acc10"].min(), "kendall_min": values["kendall"].min()})
        print()
    frame = pd.DataFrame(summary)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"mean over {args.seeds} calibration/test splits (acc in %, MAPE in %, RMSE in ms):")
        shown = frame.copy()
        for column in ("acc5", "acc10", "acc10_min"):
            shown[column] = 100 * shown[column]
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}" if np.isfinite(v) else "-"))


if __name__ == "__main__":
    main()
