"""The searched arch measured as a whole network on a device, beside its predicted latency (GPU check step).

::

    arch.yaml ──> space.network_workload(arch) ──> create_backend(device).measure ──> measured median
              └─> vidlat.load_latency_predictor(...).predict (as `vidlat predict`) ──> predicted total

    python bench/gpu_check_arch.py --device torch-cuda --arch OUT/search/arch.yaml --store STORE

Prints one JSON object (device, arch layers, predicted_ms, measured_ms, runs, error_pct).
"""

from __future__ import annotations

import argparse
import json

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from search.arch import load_arch
from search.space import load_space
from vidlat import load_latency_predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True, help="shipped device name or .yaml path")
    parser.add_argument("--arch", required=True, help="arch file the search wrote")
    parser.add_argument("--store", required=True, help="the latency store the device was profiled into")
    args = parser.parse_args()
    arch = load_arch(args.arch)
    prediction = load_latency_predictor(args.device, space=arch.space, store=args.store).predict(arch)
    backend = create_backend(resolve_device(args.device))
    try:
        measurement = backend.measure(load_space(arch.space).network_workload(arch))
    finally:
        backend.close()
    measured = measurement.median_ms if measurement.status == "ok" else None
    print(json.dumps({
        "device": backend.device.name, "layers": list(arch.layers), "predicted_ms": round(prediction.total_ms, 4),
        "measured_ms": None if measured is None else round(measured, 4), "runs": measurement.runs,
        "status": measurement.status, "reason": measurement.reason,
        "error_pct": None if measured is None else round(100 * (prediction.total_ms - measured) / measured, 2),
    }))


if __name__ == "__main__":
    main()
