"""``vidlat profile``: measure a search space (or one ONNX model) on a device into the store.

::

    vidlat.api.profile:
    --space S ──> space.profiling_workloads(networks=N): blocks, stem, head (+ N sampled nets + reference archs)
    --onnx F  ──> onnx_file_workload(F): one workload, whole model and per node
    --operators ──> vidlat.api.profile_operators: fusion tests + sampled operator configs in adaptive rounds
                         │
                         v
    profile_workloads(backend, store, ...)  resumable: stored keys are skipped unless --remeasure
    several --device (vidlat.api.profile_fleet): one table each, remote boards at once; --shard: identical
    boards share one table's queue (profiler/fleet.py)
"""

from __future__ import annotations

import click

from profiler.errors import TransientDeviceError
from profiler.store import LatencyStore
from vidlat.cli.common import store_option


@click.command("profile")
@click.option("--device", "device_name", required=True, multiple=True,
              help="shipped device name or path to a device .yaml; repeat it to measure several devices at once")
@click.option("--shard", is_flag=True, help="devices given under one name are identical boards sharing its table")
@click.option("--space", "space_name", help="search space name ('default', 'tiny') or YAML path: measure all its workloads")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="one ONNX model: measured whole and per node")
@click.option("--operators", is_flag=True, help="measure operator (kernel) configurations, so `vidlat predict` can price any ONNX model")
@click.option("--limit", type=click.IntRange(min=1), help="measure at most N workloads now (the rest on the next run)")
@click.option("--resume/--remeasure", default=True, show_default=True,
              help="skip workloads the store already has (default), or measure everything again; "
                   "--remeasure also lets a changed device file replace the configuration its name meant")
@click.option("--networks", type=click.IntRange(min=0), default=0, show_default=True,
              help="also measure N random whole networks of the space plus its reference archs")
@click.option("--seed", type=int, default=0, show_default=True, help="first seed of the sampled networks")
@store_option
@click.option("--per-node", is_flag=True, help="also record per-node times (ONNX Runtime profiler, OpenVINO counters)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def profile(device_name: tuple[str, ...], shard: bool, space_name: str | None, onnx_path: str | None, operators: bool,
            limit: int | None, resume: bool, networks: int, seed: int, store_path: str | None, per_node: bool,
            quiet: bool) -> None:
    """Measure every workload of a search space (or one ONNX model) on a device into the store.

    Resumes by default: workloads already in the store are skipped, so an interrupted run picks up
    where it stopped. A device name means one configuration (backend options, measurement policy,
    simulator hardware, machine fingerprint): profiling a changed device file under a name that
    already holds measurements is refused, changing nothing; give it a new name, or pass
    --remeasure to measure everything again under the new configuration (old rows stay as history).
    """
    if (space_name is not None) + (onnx_path is not None) + operators != 1:
        raise click.UsageError("give exactly one of --space S or --onnx F (or --operators)")
    if space_name is None and networks:
        raise click.UsageError("--networks needs --space")
    from vidlat import api

    if operators:
        if len(device_name) > 1 or shard:
            raise click.UsageError("--operators measures one device at a time")
        result = api.profile_operators(device_name[0], seed=seed, limit=limit, remeasure=not resume, per_node=per_node,
                                       store=store_path, progress=not quiet)
        click.echo(f"operators: {result.summary}; store: {result.store}")
        return
    if len(device_name) > 1 or shard:
        fleet = api.profile_fleet(list(device_name), shard=shard, space=space_name, onnx=onnx_path, networks=networks,
                                  seed=seed, limit=limit, remeasure=not resume, per_node=per_node, store=store_path,
                                  progress=not quiet)
        click.echo(f"{fleet.summary}\nstore: {fleet.store}")
        if fleet.keys and fleet.keys[0].startswith("onnx|"):
            with LatencyStore(fleet.store, read_only=True) as store:
                for name in fleet.summary.tables:
                    _echo_onnx_result(store, name, fleet.keys[0])
        if fleet.summary.problem():
            raise TransientDeviceError(fleet.summary.problem())
        return
    result = api.profile(device_name[0], space=space_name, onnx=onnx_path, networks=networks, seed=seed, limit=limit,
                         remeasure=not resume, per_node=per_node, store=store_path, progress=not quiet)
    echo_profile(result)


def echo_profile(result) -> None:
    """What `vidlat profile` prints of a ``vidlat.api.ProfileResult``: the sweep, and an ONNX model's times."""
    click.echo(f"{result.summary}; store: {result.store}")
    if result.keys and result.keys[0].startswith("onnx|"):
        with LatencyStore(result.store, read_only=True) as store:
            _echo_onnx_result(store, result.device, result.keys[0])


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
