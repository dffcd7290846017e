"""Blocks of the default space on every simulated device (and measured on ort-cpu-1t), plus sweep times.

::

    default space layers 1 and 4 ──> candidate block workloads ──> simulate on fpga-zcu102-sim,
        fpga-z7020-sim, npu-systolic32-sim; measure on ort-cpu-1t (ONNX Runtime, 1 thread) if available
    ──> table: MACs, ms per device, and each block's ms relative to the 2D-only tsm block of the layer
    ──> the default space's total simulation time per device; the reference networks, whole vs sum of blocks

Run: ``.venv/bin/python bench/simulators_blocks.py [--no-ort]``. Simulated numbers are model outputs,
not measurements; only the ort-cpu-1t column is timed (median of the device's measurement policy).
"""

from __future__ import annotations

import argparse
import time

from profiler.backends import availability, create_backend
from profiler.catalog import resolve_device
from profiler.simulators import Simulator
from search.space import load_space

SIMULATED = ["fpga-zcu102-sim", "fpga-z7020-sim", "npu-systolic32-sim"]
REAL = "ort-cpu-1t"
LAYERS = (1, 4, 7)  # 24x8x28x28, 48x8x14x14 and 96x8x7x7 (the last one has the attention candidate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ort", action="store_true", help="skip the measured ort-cpu-1t column")
    parser.add_argument("--plot", metavar="PNG", help="also draw each block's time relative to tsm, per device")
    args = parser.parse_args()

    space = load_space("default")
    simulators = {name: Simulator(resolve_device(name)) for name in SIMULATED}
    ort = None
    if not args.no_ort and availability(resolve_device(REAL)).ok:
        ort = create_backend(resolve_device(REAL))
    devices = SIMULATED + ([REAL] if ort else [])

    relative: dict[str, dict[str, float]] = {}  # "layer block" -> device -> ms / tsm ms
    by_layer: dict[int, list] = {}
    for item in space.workloads():
        if item.layer in LAYERS and item.block != "skip":
            by_layer.setdefault(item.layer, []).append(item)

    print("| layer input | block | MACs (M) | " + " | ".join(f"{d} ms (x tsm)" for d in devices) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in devices) + " |")
    for layer, items in sorted(by_layer.items()):
        results = {}
        for item in items:
            row = {}
            for name, simulator in simulators.items():
                report = simulator.simulate_onnx(item.workload.onnx, item.workload.inputs)
                row[name] = report.latency_ms
                row["macs"] = report.macs
            if ort:
                row[REAL] = ort.measure(item.workload).median_ms
            results[item.block] = row
        reference = next(row for block, row in results.items() if block.startswith("tsm"))
        shape = "x".join(map(str, space.layers[layer].input_shape))
        for block, row in results.items():
            relative[f"{shape} {block}"] = {d: row[d] / reference[d] for d in devices if row[d] is not None}
            cells = [f"{row[d]:.3f} ({row[d] / reference[d]:.2f})" if row[d] is not None else "unsupported" for d in devices]
            print(f"| {shape} | {block} | {row['macs'] / 1e6:.1f} | " + " | ".join(cells) + " |")

    if args.plot:
        plot_relative(relative, devices, args.plot)

    workloads = {item.workload.key: item.workload for item in space.workloads()}
    workloads.update({w.key: w for w in space.fixed_workloads()})
    print(f"\ndefault space: {len(workloads)} distinct workloads (blocks, stem, head)")
    print("| device | simulation time, whole space (s) | sum of all workloads (ms) |")
    print("| --- | ---: | ---: |")
    for name, simulator in simulators.items():
        start = time.perf_counter()
        total = sum(simulator.simulate_onnx(w.onnx, w.inputs).latency_ms or 0.0 for w in workloads.values())
        print(f"| {name} | {time.perf_counter() - start:.2f} | {total:.1f} |")

    print("\nreference networks at the deployment shape: whole network vs sum of its blocks, stem and head")
    print("| arch | device | whole (ms) | sum of parts (ms) | parts / whole |")
    print("| --- | --- | ---: | ---: | ---: |")
    fixed = {w.spec["op"]: w for w in space.fixed_workloads()}
    per_layer = {(item.layer, item.block): item.workload for item in space.workloads()}
    for arch_name, arch in space.reference_archs().items():
        network = space.network_workload(arch)
        parts = [fixed["stem"], fixed["head"]] + [per_layer[(i, block)] for i, block in enumerate(arch.layers)]
        for name, simulator in simulators.items():
            whole = simulator.simulate_onnx(network.onnx, network.inputs).latency_ms
            summed = sum(simulator.simulate_onnx(w.onnx, w.inputs).latency_ms for w in parts)
            print(f"| {arch_name} | {name} | {whole:.3f} | {summed:.3f} | {summed / whole:.3f} |")


def plot_relative(relative: dict[str, dict[str, float]], devices: list[str], path: str) -> None:
    """Horizontal bars: each block's time relative to the layer's tsm block, one colour per device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(relative)
    height = 0.8 / len(devices)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(labels) * len(devices) / 2 + 1.5))
    for index, device in enumerate(devices):
        values = [relative[label].get(device, np.nan) for label in labels]
        ax.barh(np.arange(len(labels)) + index * height, values, height, label=device)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(labels)) + 0.4 - height / 2, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time relative to the 2D-only tsm block of the same layer (log)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
