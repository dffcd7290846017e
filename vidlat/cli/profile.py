"""``vidlat profile``: measure a search space (or one ONNX model) on a device into the store.

::

    --space S ──> space.profiling_workloads(networks=N): blocks, stem, head (+ N sampled nets + reference archs)
    --onnx F  ──> onnx_file_workload(F): one workload, whole model and per node
                         │
                         v
    profile_workloads(backend, store, ...)  resumable: stored keys are skipped unless --remeasure
"""

from __future__ import annotations

from pathlib import Path

import click

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.onnx_file import onnx_file_workload
from profiler.store import LatencyStore, default_store_path
from profiler.sweep import profile_workloads


@click.command("profile")
@click.option("--device", "device_name", required=True, help="shipped device name or path to a device .yaml")
@click.option("--space", "space_name", help="search space name ('default', 'tiny') or YAML path: measure all its workloads")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="one ONNX model: measured whole and per node")
@click.option("--limit", type=click.IntRange(min=1), help="measure at most N workloads now (the rest on the next run)")
@click.option("--resume/--remeasure", default=True, show_default=True,
              help="skip workloads the store already has (default), or measure everything again; "
                   "--remeasure also lets a changed device file replace the configuration its name meant")
@click.option("--networks", type=click.IntRange(min=0), default=0, show_default=True,
              help="also measure N random whole networks of the space plus its reference archs")
@click.option("--seed", type=int, default=0, show_default=True, help="first seed of the sampled networks")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help="latency store file [default: $VIDLAT_STORE or user data dir]")
@click.option("--per-node", is_flag=True, help="also record per-node times (ONNX Runtime profiler, OpenVINO counters)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def profile(device_name: str, space_name: str | None, onnx_path: str | None, limit: int | None, resume: bool,
            networks: int, seed: int, store_path: str | None, per_node: bool, quiet: bool) -> None:
    """Measure every workload of a search space (or one ONNX model) on a device into the store.

    Resumes by default: workloads already in the store are skipped, so an interrupted run picks up
    where it stopped. A device name means one configuration (backend options, measurement policy,
    simulator hardware, machine fingerprint): profiling a changed device file under a name that
    already holds measurements is refused, changing nothing; give it a new name, or pass
    --remeasure to measure everything again under the new configuration (old rows stay as history).
    """
    if (space_name is None) == (onnx_path is None):
        raise click.UsageError("give exactly one of --space S or --onnx F")
    if onnx_path is not None and networks:
        raise click.UsageError("--networks needs --space")
    device = resolve_device(device_name)
    if onnx_path is not None:
        workloads = [onnx_file_workload(onnx_path)]
    else:
        from search.space import load_space

        workloads = load_space(space_name).profiling_workloads(networks=networks, seed=seed)
    if per_node or onnx_path is not None:
        device = device.with_per_node()
    backend = create_backend(device)
    path = Path(store_path) if store_path else default_store_path()
    try:
        with LatencyStore(path) as store:
            summary = profile_workloads(backend, store, workloads, remeasure=not resume, limit=limit, progress=not quiet)
            click.echo(f"{summary}; store: {path}")
            if onnx_path is not None:
                _echo_onnx_result(store, device.name, workloads[0].key)
    finally:
        backend.close()


TOP_NODES = 15


def _echo_onnx_result(store: LatencyStore, device_name: str, key: str) -> None:
    row = store.table(device_name, keys=[key]).iloc[0]
    if row["status"] != "ok":
        click.echo(f"{key}: {row['status']}: {row['reason']}")
        return
    click.echo(f"{key}: median {row['median_ms']:.3f} ms (p10 {row['p10_ms']:.3f}, p90 {row['p90_ms']:.3f}, {row['runs']} runs)")
    nodes = store.node_times(device_name, key)
    if nodes.empty:
        return
    ms = lambda v: f"{v:.4f}"  # noqa: E731
    nodes = nodes.sort_values("median_ms", ascending=False)
    click.echo(f"\nslowest nodes (of {len(nodes)}; all are in the store):")
    click.echo(nodes.head(TOP_NODES)[["node", "op_type", "median_ms", "share"]].to_string(index=False, float_format=ms))
    by_op = nodes.groupby("op_type")[["median_ms", "share"]].sum().sort_values("median_ms", ascending=False)
    by_op.insert(0, "nodes", nodes.groupby("op_type").size())
    click.echo("\nper operator type:")
    click.echo(by_op.to_string(float_format=ms))
