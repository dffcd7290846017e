"""Bench: isolated table + calibration against the in-context table, as a learning curve.

    .venv/bin/vidlat profile --device ort-cpu-1t --space default --networks 100 --store S.sqlite
    .venv/bin/python bench/predictors_context.py --store S.sqlite --device ort-cpu-1t --sizes 10,20,40,80

The measured networks of the store are split per seed into a test set (``--test``, held out from
every fit) and fitting sets of each size. Rows: the isolated block sum, the block sum with the
calibration (fitted on at most 10 networks, as ``vidlat fit`` does), the in-context table (per-entry
corrections, ``predictors.context``) fitted on all of the fitting set; and the measurement's own
split-half repeat on the test set (the ceiling). Metrics are the mean over seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from predictors.context import InContextTable
from predictors.evaluation import split_half_repeat
from predictors.lut import LUTPredictor, measured_entries, space_entries
from predictors.metrics import evaluate
from predictors.network import MAX_CALIBRATION_NETWORKS, fit_calibration, network_frame
from profiler.store import LatencyStore

METRICS = ("acc5", "acc10", "mape", "kendall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--sizes", default="10,20,40,80")
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--contended", default="cpu")
    args = parser.parse_args()

    from search.space import load_space

    space = load_space(args.space)
    with LatencyStore(args.store, read_only=True) as store:
        table = store.table(args.device)
    lut = LUTPredictor(measured_entries(space_entries(space), table, contended=args.contended), device=args.device)
    networks = network_frame(table, space.name, contended=args.contended)
    sizes = [int(size) for size in args.sizes.split(",") if args.test + int(size) <= len(networks)]
    print(f"{args.device} / {space.name}: {len(networks)} measured networks, test sets of {args.test}, {args.seeds} seeds")
    print(f"{'fitting networks':>16} {'predictor':<28}" + "".join(f"{name:>9}" for name in METRICS))

    results: dict[tuple[int, str], list[dict[str, float]]] = {}
    ceiling: list[dict[str, float]] = []
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(networks))
        test = networks.iloc[order[: args.test]]
        measured = test["median_ms"].to_numpy(float)
        test_sum = lut.predict_archs(list(test["layers"]))
        repeat = split_half_repeat(test.reset_index(drop=True))
        if repeat is not None:
            ceiling.append(evaluate(repeat[1], repeat[0]))
        for size in sizes:
            fit = networks.iloc[order[args.test: args.test + size]]
            calib = fit.iloc[:MAX_CALIBRATION_NETWORKS]
            calibration = fit_calibration(lut.predict_archs(list(calib["layers"])), calib["median_ms"], kind="auto")
            in_context = InContextTable().fit(lut, list(fit["layers"]), fit["median_ms"].to_numpy(float))
            rows = {
                "isolated block sum": test_sum,
                "block sum + calibration": calibration(test_sum),
                "in-context table": in_context.predict(list(test["layers"])),
            }
            for name, predicted in rows.items():
                results.setdefault((size, name), []).append(evaluate(predicted, measured))

    def line(size: str, name: str, scores: list[dict[str, float]]) -> None:
        cells = []
        for metric in METRICS:
            value = float(np.mean([score[metric] for score in scores]))
            cells.append(f"{100 * value:>8.1f}%" if metric.startswith("acc") else f"{value:>9.3f}")
        print(f"{size:>16} {name:<28}" + "".join(cells))

    for (size, name), scores in results.items():
        line(str(size), name, scores)
    if ceiling:
        line("-", "measurement repeat (ceiling)", ceiling)


if __name__ == "__main__":
    main()
