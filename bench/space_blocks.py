"""Bench: the default search space's workloads: build/export time, per-block cost, export fidelity.

    .venv/bin/python bench/space_blocks.py [--space default] [--runs 15]

Prints three tables, all from one run:
1. building every unique workload (torch module -> FLOP count -> ONNX) with a cold and a warm
   export cache;
2. per unique block workload: MFLOPs, ONNX Runtime latency (1 intra-op thread, median of timed
   runs under the project's measurement protocol), grouped per family and stage, plus the sum of all
   medians (the lower bound of what profiling the space costs);
3. reference archs (and one random sample): whole-network MFLOPs, params, ONNX Runtime latency and
   the max |ONNX Runtime - torch| of the exported model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict

import numpy as np
import onnxruntime as ort
import torch

from profiler.device import MeasurementPolicy
from profiler.protocol import measure_callable
from search import build_model, load_space, module_to_onnx
from search import export as export_module
from search import workloads as workload_module
from search.export import onnx_max_abs_diff
from search.flops import count_cost


def session_for(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def latency_ms(data: bytes, shape: tuple[int, ...], policy: MeasurementPolicy) -> tuple[float, float, bool]:
    """(median ms, median CPU ms, contended) of one ONNX model under ``policy``."""
    session = session_for(data)
    feed = {"input": np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    measurement = measure_callable(lambda: session.run(None, feed), policy)
    return measurement.median_ms, measurement.cpu_ms or 0.0, measurement.contended


def clear_memory_caches() -> None:
    workload_module.block_workload.cache_clear()
    workload_module.stem_workload.cache_clear()
    workload_module.head_workload.cache_clear()
    export_module._MEMORY_CACHE.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="default")
    parser.add_argument("--runs", type=int, default=15, help="max timed runs per workload")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    policy = MeasurementPolicy(warmup_runs=3, min_runs=5, max_runs=args.runs, max_rel_ci=0.05, max_seconds=2.0)
    os.environ["VIDLAT_CACHE_DIR"] = tempfile.mkdtemp(prefix="vidlat-bench-cache-")
    space = load_space(args.space)
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")

    print(f"## 1. building the workloads of space '{space.name}' ({len(space.layers)} layers, "
          f"{sum(len(s.candidates) for s in space.layers)} (layer, candidate) pairs)")
    print(f"{'cache':<6} {'workloads':>9} {'wall s':>8} {'cpu s':>7} {'ms/workload':>12}")
    for label in ("cold", "warm"):
        clear_memory_caches()
        wall, cpu = time.perf_counter(), time.process_time()
        unique = space.unique_workloads()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{label:<6} {len(unique):>9} {wall:>8.1f} {cpu:>7.1f} {1000 * wall / len(unique):>12.0f}")

    print("\n## 2. ONNX Runtime, 1 thread, per unique workload (median ms), grouped by family and stage")
    stage_of = {}
    for slot in space.layers:
        for block in slot.candidates:
            stage_of.setdefault(workload_module.block_key(block, slot.input_shape, slot.out_channels, slot.stride),
                                slot.stage)
    rows = []
    total_wall = time.perf_counter()
    for workload in unique:
        median, cpu, contended = latency_ms(workload.onnx, workload.inputs["input"], policy)
        rows.append((workload, median, cpu, contended))
    total_wall = time.perf_counter() - total_wall
    groups: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for workload, median, cpu, _ in rows:
        stage = stage_of.get(workload.key)
        groups[(workload.spec["op"], "fixed" if stage is None else str(stage))].append((median, cpu, workload.spec["flops"]))
    print(f"{'family':<7} {'stage':>5} {'n':>3} {'min ms':>8} {'median ms':>10} {'max ms':>8} {'cpu ms med':>10} "
          f"{'MFLOPs med':>11} {'cpu ms/GFLOP':>12}")
    for (family, stage), values in sorted(groups.items()):
        ms = [v[0] for v in values]
        gflops = sum(v[2] for v in values) / 1e9
        per = sum(v[1] for v in values) / gflops if gflops else float("nan")
        print(f"{family:<7} {stage:>5} {len(ms):>3} {min(ms):>8.3f} {statistics.median(ms):>10.3f} {max(ms):>8.3f} "
              f"{statistics.median(v[1] for v in values):>10.3f} {statistics.median(v[2] for v in values) / 1e6:>11.1f} "
              f"{per:>12.1f}")
    medians = [row[1] for row in rows]
    slowest = max(rows, key=lambda row: row[1])
    print(f"all {len(rows)} workloads: sum of medians {sum(medians):.1f} ms (cpu {sum(row[2] for row in rows):.1f} ms), median {statistics.median(medians):.3f} ms, "
          f"max {slowest[1]:.2f} ms ({slowest[0].key}); contended: {sum(row[3] for row in rows)}; "
          f"timing pass wall {total_wall:.1f} s")

    print("\n## 3. whole networks (deployment shape, batch 1)")
    print(f"{'arch':<16} {'MFLOPs':>8} {'params':>10} {'ORT ms':>8} {'cpu ms':>7} {'max|ORT-torch|':>15}")
    archs = dict(space.reference_archs())
    archs["sample-seed0"] = space.sample(0)
    for name, arch in archs.items():
        torch.manual_seed(0)
        model = build_model(arch).eval()
        cost = count_cost(model, (1, *arch.input_shape))
        data = module_to_onnx(model, arch.input_shape, dynamic_batch=True)
        diff = onnx_max_abs_diff(model, data, (2, *arch.input_shape))
        median, cpu, _ = latency_ms(data, (1, *arch.input_shape), policy)
        print(f"{name:<16} {cost.flops / 1e6:>8.1f} {cost.params:>10,} {median:>8.2f} {cpu:>7.2f} {diff:>15.2e}")


if __name__ == "__main__":
    main()
