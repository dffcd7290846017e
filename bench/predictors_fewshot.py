"""Few-shot transfer: predict a new device's network latencies from a known device plus k measurements.

Source: the known device's calibrated block sum for every measured network. Targets: every other
device with the same networks measured. Two ways to use k measurements on the target:
  * networks: k measured networks fit ``log t = a log s + b`` (shrunk toward a = 1);
  * blocks: k measured blocks of the target's table fit the same map with per-family offsets,
    applied to every block of the source table; the target's networks are then the block sum.
Metrics on the target's networks not used, averaged over random draws, for k = 5, 10, 20.
Compare Spearman at k = 10 with HELP's 0.93.

    .venv/bin/python bench/predictors_fewshot.py --store S --source ort-cpu-1t
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from predictors import FewShotTransfer, LUTPredictor, evaluate, few_shot_curve, fit_calibration, measured_entries, network_frame, space_entries
from predictors.evaluation import split_networks
from predictors.features import as_spec
from predictors.lut import CONTENDED_POLICIES
from predictors.metrics import METRICS
from profiler.store import LatencyStore
from search.space import load_space


def block_curve(source: pd.DataFrame, target: pd.DataFrame, networks: pd.DataFrame, ks, repeats: int, seed: int) -> pd.DataFrame:
    """k target blocks -> per-family transfer of the source table -> block sums scored on all target networks."""
    blocks = source[source["median_ms"].notna()].drop_duplicates("key").merge(
        target[["key", "median_ms"]].drop_duplicates("key"), on="key", suffixes=("", "_target"))
    blocks = blocks[blocks["median_ms_target"].notna() & (blocks["median_ms"] > 0) & (blocks["median_ms_target"] > 0)]
    families = [str(as_spec(s).get("op")) for s in source["spec"]]
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        scores = []
        for _ in range(repeats):
            pick = blocks.iloc[rng.permutation(len(blocks))[:k]]
            model = FewShotTransfer().fit(pick["median_ms"], pick["median_ms_target"], [str(as_spec(s).get("op")) for s in pick["spec"]])
            moved = source.assign(median_ms=model.predict(source["median_ms"], families))
            predicted = LUTPredictor(moved).predict_archs(list(networks["layers"]))
            scores.append(evaluate(predicted, networks["median_ms"].to_numpy(float)))
        rows.append({"k": k, "repeats": repeats, **{m: float(np.nanmean([s[m] for s in scores])) for m in METRICS}})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--source", default="ort-cpu-1t")
    parser.add_argument("--targets", nargs="*")
    parser.add_argument("--space", default="default")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--contended", default="cpu", choices=CONTENDED_POLICIES,
                        help="how rows flagged contended are read (predictors.lut.latency_ms)")
    args = parser.parse_args()

    space = load_space(args.space)
    base = space_entries(space)
    with LatencyStore(args.store) as store:
        targets = args.targets or [d for d in store.devices() if d != args.source]
        tables = {device: store.table(device) for device in [args.source, *targets] if device in store.devices()}
    source_entries = measured_entries(base, tables[args.source], contended=args.contended)
    source_nets = network_frame(tables[args.source], space.name, contended=args.contended)
    lut = LUTPredictor(source_entries)
    calib, _ = split_networks(source_nets, calibration_networks=10, seed=0)
    calibration = fit_calibration(lut.predict_archs(list(calib["layers"])), calib["median_ms"])
    source_pred = dict(zip(source_nets["key"], calibration(lut.predict_archs(list(source_nets["layers"])))))
    pd.set_option("display.width", 200)
    for target in targets:
        if target not in tables:
            continue
        nets = network_frame(tables[target], space.name, contended=args.contended)
        nets = nets[nets["key"].isin(source_pred)].reset_index(drop=True)
        if len(nets) < 23:
            print(f"{args.source} -> {target}: only {len(nets)} shared measured networks, skipped")
            continue
        s = np.array([source_pred[key] for key in nets["key"]])
        t = nets["median_ms"].to_numpy(float)
        print(f"\n{args.source} -> {target}: {len(nets)} networks; with no target data, Spearman {evaluate(s, t)['spearman']:.3f}, "
              f"Kendall {evaluate(s, t)['kendall']:.3f}")
        curve = few_shot_curve(s, t, ks=(5, 10, 20), repeats=args.repeats).assign(mode="networks")
        target_entries = measured_entries(base, tables[target], contended=args.contended)
        blocks = block_curve(source_entries, target_entries, nets, (5, 10, 20), args.repeats, 0).assign(mode="blocks")
        both = pd.concat([curve, blocks])
        for column in ("acc5", "acc10"):
            both[column] = 100 * both[column]
        print(both[["mode", "k", *METRICS]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
