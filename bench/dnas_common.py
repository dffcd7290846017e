"""Helpers shared by the DNAS benchmarks: run library jobs two at a time, measure whole networks.

::

    jobs (name -> vidlat.api call) --run_parallel(N processes, one torch thread each)--> logs in OUT/*.log
    ArchSpec --space.network_workload--> Workload --device backend.measure--> median ms
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path


def _run_job(call: Callable[[], object], log_path: Path) -> bool:
    """``call()`` in this worker with one torch thread, its output (and the library's log) into ``log_path``."""
    import torch

    from vidlat.cli.common import show_library_log

    with open(log_path, "w") as log, redirect_stdout(log), redirect_stderr(log):
        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        show_library_log()
        try:
            call()
        except Exception:
            traceback.print_exc()
            return False
    return True


def run_parallel(jobs: dict[str, Callable[[], object]], *, workers: int, log_dir: Path, done: dict[str, Path] | None = None) -> None:
    """Run every library call in ``jobs`` (name -> picklable call, e.g. a ``functools.partial`` of
    ``vidlat.api.search``), ``workers`` processes at a time; stop on the first failure.

    A job whose ``done[name]`` file exists already is skipped (re-running a bench only redoes what is missing).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    jobs = {name: call for name, call in jobs.items() if not (done and name in done and done[name].is_file())}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch thread pool inherited by fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {name: pool.submit(_run_job, call, log_dir / f"{name}.log") for name, call in jobs.items()}
        for name, future in futures.items():
            if not future.result():
                raise SystemExit(f"{name} failed; see {log_dir / (name + '.log')}")


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
