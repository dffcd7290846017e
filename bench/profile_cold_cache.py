"""Bench: does a cold cache bring the sum of block latencies closer to the measured whole network?

    .venv/bin/python bench/profile_cold_cache.py --space default --archs 4 --devices ort-cpu-1t openvino-cpu-1t

For each device: sample ``--archs`` networks (plus the space's reference archs), measure every
block they use plus stem and head twice, with a warm cache (as timed alone) and with a cold
cache (``flush_mb`` flushed before each timed run), and the whole networks with the device's
normal policy. Warm and cold passes are interleaved per block, so machine drift hits both alike.
Prints, per device and mode, the error of (sum of blocks + stem + head) against the whole
network: mean signed error, mean absolute error and the worst case, in percent.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from profiler.backends import create_backend
from profiler.catalog import resolve_device


def with_policy(device, **changes):
    return device.model_copy(update={"measurement": device.measurement.model_copy(update=changes)})


def arch_workloads(space, arch):
    """Block workloads of an arch's layers (skipping nothing: skip blocks are workloads too) + stem/head."""
    by_layer = {(item.layer, item.block): item.workload for item in space.workloads()}
    from search.blocks import parse_block

    blocks = [by_layer[(index, str(parse_block(block)))] for index, block in enumerate(arch.layers)]
    return blocks + list(space.fixed_workloads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="default")
    parser.add_argument("--archs", type=int, default=4, help="random archs besides the reference archs")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--devices", nargs="+", default=["ort-cpu-1t", "openvino-cpu-1t"])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per block and network (fixed, like the design's experiment)")
    parser.add_argument("--flush-mb", type=int, default=64)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from search.space import load_space

    space = load_space(args.space)
    archs = [space.sample(args.seed + i) for i in range(args.archs)] + list(space.reference_archs().values())
    per_arch = [arch_workloads(space, arch) for arch in archs]
    networks = [space.network_workload(arch) for arch in archs]
    blocks = list({w.key: w for ws in per_arch for w in ws}.values())
    print(f"space {args.space}: {len(archs)} archs ({args.archs} sampled + reference), {len(blocks)} unique blocks/stem/head, "
          f"{args.runs} timed runs each, flush {args.flush_mb} MiB")
    print(f"{'device':<18} {'mode':<6} {'mean signed %':>14} {'mean abs %':>11} {'worst abs %':>12} {'sum/whole':>10}  time s")
    for name in args.devices:
        device = resolve_device(name)
        fixed = {"min_runs": args.runs, "max_runs": args.runs, "max_seconds": 600.0, "per_node": False}
        backends = {
            "warm": create_backend(with_policy(device, cold_cache=False, **fixed)),
            "cold": create_backend(with_policy(device, cold_cache=True, flush_mb=args.flush_mb, **fixed)),
        }
        started = time.perf_counter()
        block_ms: dict[str, dict[str, float]] = {"warm": {}, "cold": {}}
        for workload in blocks:
            for mode, backend in backends.items():
                measurement = backend.measure(workload)
                if measurement.status != "ok":
                    raise SystemExit(f"{name}: {workload.key}: {measurement.status}: {measurement.reason}")
                block_ms[mode][workload.key] = measurement.median_ms
        whole = np.array([backends["warm"].measure(network).median_ms for network in networks])
        elapsed = time.perf_counter() - started
        for mode in ("warm", "cold"):
            sums = np.array([sum(block_ms[mode][w.key] for w in ws) for ws in per_arch])
            error = (sums - whole) / whole * 100
            print(f"{name:<18} {mode:<6} {error.mean():>14.2f} {np.abs(error).mean():>11.2f} {np.abs(error).max():>12.2f} "
                  f"{(sums / whole).mean():>10.3f}  {elapsed:.0f}")
        print(f"{name:<18} whole networks, ms: {', '.join(f'{value:.2f}' for value in whole)}")


if __name__ == "__main__":
    main()
