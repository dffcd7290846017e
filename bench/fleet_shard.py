"""How much faster identical boards fill one table when they share its queue (``--shard``).

::

    N agents on 127.0.0.1 (one per port) ──> profile_fleet(1 board) vs profile_fleet(N boards, shard=True)
    each workload's measurement is capped by the policy's time budget (max_seconds, CI bound never met),
    so every board spends about the same seconds per workload however loaded this machine is: the
    ratio is the queue's parallelism, not a device's speed

    python bench/fleet_shard.py [--boards 4] [--workloads 32] [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from profiler.agent.local import LocalAgent
from profiler.agent.probe import probe_workload
from profiler.backends import create_backend
from profiler.device import parse_device
from profiler.fleet import profile_fleet
from profiler.store import LatencyStore

TOKEN_ENV = "VIDLAT_BENCH_FLEET_TOKEN"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=4)
    parser.add_argument("--workloads", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=0.3, help="time budget of one workload's timed runs")
    args = parser.parse_args()
    token = "fleet-bench-token"
    os.environ[TOKEN_ENV] = token
    policy = {"warmup_runs": 1, "min_runs": 3, "max_runs": 100000, "max_rel_ci": 1e-6, "max_seconds": args.seconds}
    workloads = [probe_workload(channels=8, frames=4, size=16 + 2 * index) for index in range(args.workloads)]
    with tempfile.TemporaryDirectory() as folder:
        agents = [LocalAgent(Path(folder) / f"agent{index}.log", token=token) for index in range(args.boards)]
        try:
            for agent in agents:
                agent.start()
            seconds = {}
            warm = probe_workload(channels=4, frames=2, size=8)
            for count in (1, args.boards):
                backends = [create_backend(parse_device({
                    "name": "bench-board", "description": "an agent on loopback for the fleet bench", "backend": "remote",
                    "options": {"url": agent.url, "token_env": TOKEN_ENV}, "measurement": policy}, "bench"))
                    for agent in agents[:count]]
                for backend in backends:  # each agent starts its measuring process on its first workload: not timed
                    backend.measure(warm)
                with LatencyStore(Path(folder) / f"store-{count}.sqlite") as store:
                    started = time.perf_counter()
                    summary = profile_fleet(backends, store, workloads, shard=count > 1, progress=False)
                    seconds[count] = time.perf_counter() - started
                    assert store.count("bench-board") == len(workloads) and summary.problem() == ""
                print(f"{count} board(s): {len(workloads)} workloads in {seconds[count]:.2f} s "
                      f"(per board: {dict(summary.measured_by)})")
        finally:
            for agent in agents:
                agent.kill()
    print(f"speed-up with {args.boards} boards: {seconds[1] / seconds[args.boards]:.2f}x; "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
