"""``vidlat profile``: measure a search space (or one ONNX model) on a device into the store.

::

    --space S ──> space.workloads() + fixed_workloads() (+ --networks N sampled nets + reference archs)
    --onnx F  ──> one workload, whole model and per node
    --operators ──> fusion tests + sampled operator configs in adaptive rounds (predictors.kernel_predictor)
                         │
                         v
    profile_workloads(backend, store, ...)  resumable: stored keys are skipped unless --remeasure
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
import onnx

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.device import DeviceConfig
from profiler.errors import WorkloadError
from profiler.store import LatencyStore, default_store_path
from profiler.sweep import profile_workloads
from profiler.workload import Workload


def space_workloads(space_name: str, *, networks: int = 0, seed: int = 0) -> list[Workload]:
    """Every block workload of a space, its stem and head, and optionally whole networks.

    Whole networks: ``networks`` random archs (``space.sample(seed + i)``) and the space's
    reference archs, each at the deployment shape, so predictors can be judged on them.
    """
    from search.space import load_space

    space = load_space(space_name)
    workloads = [item.workload for item in space.workloads()] + list(space.fixed_workloads())
    if networks:
        archs = [space.sample(seed + index) for index in range(networks)] + list(space.reference_archs().values())
        workloads += [space.network_workload(arch) for arch in archs]
    return workloads


def onnx_file_workload(path: str | Path) -> Workload:
    """A workload of one ONNX file: key ``onnx|<stem>|<hash>``, inputs from the graph (dynamic dims as 1)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read the ONNX file ({exc.strerror or exc})") from None
    except Exception as exc:
        raise WorkloadError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    initializers = {item.name for item in model.graph.initializer}
    inputs: dict[str, tuple[int, ...]] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise WorkloadError(f"{path}: input '{value.name}' is not float32; vidlat feeds float32 inputs")
        inputs[value.name] = tuple(dim.dim_value if dim.dim_value > 0 else 1 for dim in tensor.shape.dim)
    if not inputs:
        raise WorkloadError(f"{path}: the model has no graph inputs to feed")
    spec = {"op": "onnx", "file": path.name, "nodes": len(model.graph.node), "inputs": {k: list(v) for k, v in inputs.items()}}
    return Workload(key=f"onnx|{path.stem}|{hashlib.sha256(data).hexdigest()[:12]}", onnx=data, inputs=inputs, spec=spec)


def with_per_node(device: DeviceConfig) -> DeviceConfig:
    """The same device with per-node times switched on."""
    return device.model_copy(update={"measurement": device.measurement.model_copy(update={"per_node": True})})


@click.command("profile")
@click.option("--device", "device_name", required=True, help="shipped device name or path to a device .yaml")
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
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help="latency store file [default: $VIDLAT_STORE or user data dir]")
@click.option("--per-node", is_flag=True, help="also record per-node times (ONNX Runtime profiler, OpenVINO counters)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def profile(device_name: str, space_name: str | None, onnx_path: str | None, operators: bool, limit: int | None, resume: bool,
            networks: int, seed: int, store_path: str | None, per_node: bool, quiet: bool) -> None:
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
    device = resolve_device(device_name)
    if operators:
        _profile_operators(device, store_path, limit=limit, resume=resume, seed=seed, quiet=quiet, per_node=per_node)
        return
    if onnx_path is not None:
        workloads = [onnx_file_workload(onnx_path)]
    else:
        workloads = space_workloads(space_name, networks=networks, seed=seed)
    if per_node or onnx_path is not None:
        device = with_per_node(device)
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


def _profile_operators(device: DeviceConfig, store_path: str | None, *, limit: int | None, resume: bool, seed: int, quiet: bool,
                       per_node: bool) -> None:
    from predictors.kernel_predictor import profile_operators

    backend = create_backend(with_per_node(device) if per_node else device)
    path = Path(store_path) if store_path else default_store_path()
    try:
        with LatencyStore(path) as store:
            summary = profile_operators(backend, store, seed=seed, limit=limit, remeasure=not resume, progress=not quiet)
    finally:
        backend.close()
    click.echo(f"operators: {summary}; store: {path}")


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
