"""Prediction speed: latency of 10,000 archs of a space from a lookup table plus calibration.

Times ``LUTPredictor.predict_archs`` + the calibration on 10,000 sampled archs (sampling and
parsing the arch specs are not timed: the search hands over block strings). Median of 5 runs,
one thread, on whatever store is given (a synthetic table when none is).

    .venv/bin/python bench/predictors_speed.py [--store S --device D]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from predictors import Calibration, LUTPredictor, NetworkPredictor, measured_entries, space_entries
from profiler.store import LatencyStore
from search.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store")
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--archs", type=int, default=10_000)
    args = parser.parse_args()

    space = load_space(args.space)
    entries = space_entries(space)
    if args.store:
        with LatencyStore(args.store) as store:
            entries = measured_entries(entries, store.table(args.device, keys=list(entries["key"].unique())))
    else:
        entries["median_ms"] = np.random.default_rng(0).uniform(0.05, 2.0, len(entries))
    rng = random.Random(0)
    archs = [[rng.choice(slot.candidates) for slot in space.layers] for _ in range(args.archs)]
    predictor = NetworkPredictor(LUTPredictor(entries, device=args.device), Calibration("affine", 1.05, 0.2, 10))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        totals = predictor.predict(archs)
        times.append(time.perf_counter() - start)
    print(f"{args.archs} archs of space '{space.name}' ({len(space.layers)} layers): "
          f"median {1e3 * np.median(times):.1f} ms, min {1e3 * min(times):.1f} ms over 5 runs "
          f"(target < 1000 ms); mean predicted {totals.mean():.2f} ms")


if __name__ == "__main__":
    main()
