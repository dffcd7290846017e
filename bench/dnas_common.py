"""Helpers shared by the DNAS benchmarks: run CLI jobs two at a time, measure whole networks.

::

    jobs (argv lists) --run_parallel(2 at a time)--> logs in OUT/*.log
    ArchSpec --space.network_workload--> Workload --device backend.measure--> median ms
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VIDLAT = str(Path(sys.executable).parent / "vidlat")


def run_parallel(jobs: dict[str, list[str]], *, workers: int, log_dir: Path, done: dict[str, Path] | None = None) -> None:
    """Run every ``vidlat`` argv in ``jobs`` (name -> argv), ``workers`` at a time; stop on the first failure.

    A job whose ``done[name]`` file exists already is skipped (re-running a bench only redoes what is missing).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    jobs = {name: argv for name, argv in jobs.items() if not (done and name in done and done[name].is_file())}

    def run(name: str) -> tuple[str, int]:
        with open(log_dir / f"{name}.log", "w") as log:
            return name, subprocess.run([VIDLAT, *jobs[name]], stdout=log, stderr=subprocess.STDOUT).returncode

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, code in pool.map(run, jobs):
            if code != 0:
                raise SystemExit(f"{name} failed (exit {code}); see {log_dir / (name + '.log')}")


def measure_network(space, arch, device_name: str) -> tuple[float, float | None]:
    """(median wall ms, thread CPU ms per run) of the whole network ``arch`` at the deployment shape.

    On a shared machine the wall time carries the waits for a core; the CPU time does not.
    """
    from profiler.backends import create_backend
    from profiler.catalog import resolve_device

    measurement = create_backend(resolve_device(device_name)).measure(space.network_workload(arch))
    if measurement.status != "ok":
        raise SystemExit(f"{arch.name} on {device_name}: {measurement.status} ({measurement.reason})")
    return float(measurement.median_ms), measurement.cpu_ms
