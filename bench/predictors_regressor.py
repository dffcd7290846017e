"""Regressor accuracy on block configurations it was not fitted on, per block family.

Two protocols on one device's measured blocks (the space's table plus the configurations that
``vidlat fit --sample N`` measured around it):
  * out-of-fold: 5 folds stratified by family over every measured block;
  * extrapolate: fit on the space's own blocks only, test on the sampled variants (other widths,
    resolutions and frame counts).
For each model family (gbm, rf, linear): acc10, acc5 and MAPE per block family and overall.

    .venv/bin/python bench/predictors_regressor.py --store S --device ort-cpu-1t
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from predictors.features import as_spec
from predictors.fit import block_rows
from predictors.lut import CONTENDED_POLICIES, space_entries
from predictors.metrics import accuracy_within, mape
from predictors.regressors import REGRESSORS, LatencyRegressor, out_of_fold_ms
from profiler.store import LatencyStore
from search.space import load_space


def per_family(ops: np.ndarray, predicted: np.ndarray, measured: np.ndarray) -> pd.DataFrame:
    """acc5, acc10 and MAPE over all blocks and per family (``predictors.metrics``)."""
    ops, predicted, measured = np.asarray(ops), np.asarray(predicted, float), np.asarray(measured, float)

    def row(family: str, mask: np.ndarray) -> dict:
        pred, true = predicted[mask], measured[mask]
        return {"family": family, "n": int(mask.sum()), "acc5": accuracy_within(pred, true, 0.05),
                "acc10": accuracy_within(pred, true, 0.10), "mape": mape(pred, true)}

    return pd.DataFrame([row("all", np.ones(len(ops), bool))] + [row(family, ops == family) for family in sorted(set(ops))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--contended", default="cpu", choices=CONTENDED_POLICIES,
                        help="how rows flagged contended are read (predictors.lut.latency_ms)")
    args = parser.parse_args()

    space_keys = set(space_entries(load_space(args.space))["key"])
    with LatencyStore(args.store) as store:
        blocks = block_rows(store.table(args.device), contended=args.contended)
    blocks = blocks[[as_spec(s).get("op") not in ("stem", "head") for s in blocks["spec"]]].reset_index(drop=True)
    ops = np.array([as_spec(s)["op"] for s in blocks["spec"]])
    measured = blocks["median_ms"].to_numpy(float)
    in_space = blocks["key"].isin(space_keys).to_numpy()
    print(f"{args.device}: {len(blocks)} measured blocks ({in_space.sum()} of the space, {(~in_space).sum()} sampled variants)")
    tables = []
    for kind in REGRESSORS:
        oof = out_of_fold_ms(kind, list(blocks["spec"]), measured, folds=5)
        tables.append(per_family(ops, oof, measured).assign(protocol="out-of-fold", model=kind))
        if (~in_space).sum() >= 5:
            model = LatencyRegressor(kind).fit(list(blocks["spec"][in_space]), measured[in_space])
            held = ~in_space & np.isin(ops, model.features.op_kinds)
            predicted = model.predict(list(blocks["spec"][held]))
            tables.append(per_family(ops[held], predicted, measured[held]).assign(protocol="extrapolate", model=kind))
    frame = pd.concat(tables)
    frame["acc5"] *= 100
    frame["acc10"] *= 100
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        for protocol, group in frame.groupby("protocol", sort=False):
            print(f"\n{protocol}: acc10 % per family (acc5 %, MAPE % in the other tables)")
            print(group.pivot(index="family", columns="model", values="acc10").round(1).to_string())
            print(group.pivot(index="family", columns="model", values="mape").round(1).add_suffix(" mape").to_string())
            counts = group[group["model"] == "gbm"].set_index("family")["n"]
            print("n per family:", ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
