"""Does a workload measured through the agent agree with the same workload measured locally?

    python bench/agent_agreement.py --space tiny --passes 3

Starts an agent on 127.0.0.1 (ONNX Runtime, one thread) and measures every workload of the space
locally (ONNX Runtime backend, in this process) and remotely (remote backend -> agent -> the same
backend in the agent's worker process), interleaved: each pass alternates which side goes first.
The noise reference is local against local in the next pass; the agent "agrees within the noise"
when remote-vs-local differences are no larger than local-vs-local ones. Also prints the per-request
overhead of the HTTP round trip (client wall time minus the device's measuring time).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from profiler.agent.local import LocalAgent
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.device import parse_device


def _abs_rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a / b - 1.0)


def _describe(label: str, values: np.ndarray) -> str:
    return f"{label:<34} median {np.median(values) * 100:5.1f}%  p90 {np.percentile(values, 90) * 100:5.1f}%  max {values.max() * 100:5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--device", default="ort-cpu-1t", help="the local device whose options and policy both sides use")
    args = parser.parse_args()

    from search.space import load_space

    space = load_space(args.space)
    unique = {item.workload.key: item.workload for item in space.workloads()}
    unique.update({workload.key: workload for workload in space.fixed_workloads()})
    workloads = list(unique.values())

    local_device = resolve_device(args.device)
    token_env = "VIDLAT_BENCH_AGENT_TOKEN"
    with tempfile.TemporaryDirectory() as folder, LocalAgent(Path(folder) / "agent.log", "--threads", str(local_device.backend_options.intra_op_threads)) as agent:
        os.environ[token_env] = agent.token
        remote_device = parse_device({
            "name": "bench-agent", "description": "the agent on 127.0.0.1 for this benchmark", "backend": "remote",
            "options": {"url": agent.url, "token_env": token_env, "threads": local_device.backend_options.intra_op_threads},
            "measurement": local_device.measurement.model_dump(),
        }, "bench")
        local, remote = create_backend(local_device), create_backend(remote_device)
        remote.fingerprint()
        load_before = os.getloadavg()[0]
        local_ms = np.zeros((args.passes, len(workloads)))
        remote_ms = np.zeros_like(local_ms)
        overhead_s: list[float] = []
        for p in range(args.passes):
            for w, workload in enumerate(workloads):
                order = ("local", "remote") if (p + w) % 2 == 0 else ("remote", "local")
                for side in order:
                    if side == "local":
                        local_ms[p, w] = local.measure(workload).median_ms or np.nan
                    else:
                        started = time.perf_counter()
                        measurement = remote.measure(workload)
                        wall = time.perf_counter() - started
                        remote_ms[p, w] = measurement.median_ms or np.nan
                        overhead_s.append(wall - measurement.extra["agent_elapsed_s"])
        load_after = os.getloadavg()[0]

    keep = ~np.isnan(local_ms).any(axis=0) & ~np.isnan(remote_ms).any(axis=0)
    local_ms, remote_ms = local_ms[:, keep], remote_ms[:, keep]
    names = [workload.key for workload, kept in zip(workloads, keep) if kept]
    local_med, remote_med = np.median(local_ms, axis=0), np.median(remote_ms, axis=0)

    print(f"space {args.space}: {len(names)} workloads, {args.passes} interleaved passes, device options of {args.device}")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after (2-core shared machine)")
    print(f"{'workload':<48} {'local ms':>9} {'remote ms':>10} {'diff':>7}")
    for name, a, b in zip(names, local_med, remote_med):
        print(f"{name[:48]:<48} {a:9.4f} {b:10.4f} {(b / a - 1) * 100:6.1f}%")
    print()
    print(_describe("remote vs local, same pass", _abs_rel(remote_ms, local_ms).ravel()))
    if args.passes > 1:
        print(_describe("local vs local, next pass (noise)", _abs_rel(local_ms[1:], local_ms[:-1]).ravel()))
        print(_describe("remote vs remote, next pass", _abs_rel(remote_ms[1:], remote_ms[:-1]).ravel()))
    print(_describe(f"median of {args.passes} passes: remote vs local", _abs_rel(remote_med, local_med)))
    ratio = remote_med.sum() / local_med.sum()
    print(f"sum of the table: remote / local = {ratio:.3f}")
    print(f"HTTP round-trip overhead per request (wall minus device time): median {np.median(overhead_s) * 1000:.1f} ms, p90 {np.percentile(overhead_s, 90) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
