"""``vidlat devices``: the device catalogue."""

from __future__ import annotations

import click
import yaml

from profiler.backends import availability
from profiler.catalog import load_catalog, resolve_device
from profiler.device import load_device_file


@click.group()
def devices() -> None:
    """List, show and validate device files."""


@devices.command("list")
def list_devices() -> None:
    """A table of shipped devices: name, backend, and whether it runs here (and why not)."""
    rows = []
    for device in load_catalog():
        status = availability(device)
        rows.append((device.name, device.backend, "yes" if status.ok else "no", status.reason))
    widths = [max(len(row[i]) for row in rows + [("name", "backend", "here", "")]) for i in range(3)]
    click.echo(f"{'name':<{widths[0]}}  {'backend':<{widths[1]}}  {'here':<{widths[2]}}  why not")
    for name, backend, here, reason in rows:
        click.echo(f"{name:<{widths[0]}}  {backend:<{widths[1]}}  {here:<{widths[2]}}  {reason}".rstrip())


@devices.command("show")
@click.argument("device")
def show_device(device: str) -> None:
    """Print one device (a shipped name or a path to your YAML) with every default filled in."""
    config = resolve_device(device)
    data = config.model_dump(mode="json", exclude_none=True)
    data["options"] = config.backend_options.model_dump(mode="json")
    click.echo(f"# {config.source}")
    click.echo(yaml.safe_dump(data, sort_keys=False, width=100).rstrip())
    status = availability(config)
    click.echo(f"# available here: {'yes' if status.ok else 'no, ' + status.reason}")


@devices.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate_device(file: str) -> None:
    """Check a device YAML file against the schema."""
    config = load_device_file(file)
    click.echo(f"{file}: ok (device '{config.name}', backend '{config.backend}')")


@devices.command("check")
@click.argument("device")
def check_device(device: str) -> None:
    """Connection self-test: reach the device (its agent, for a remote device), print its
    fingerprint and time one small 3D convolution built without torch."""
    import time

    from profiler.agent.probe import probe_workload
    from profiler.backends import create_backend
    from profiler.errors import BackendUnavailableError

    config = resolve_device(device)
    backend = create_backend(config)
    try:
        started = time.perf_counter()
        fingerprint = backend.fingerprint()
        click.echo(f"{config.name}: reached ({config.backend}) in {(time.perf_counter() - started) * 1000:.0f} ms")
        for key, value in fingerprint.items():
            click.echo(f"  {key}: {value}")
        probe = probe_workload()
        started = time.perf_counter()
        measurement = backend.measure(probe)
        elapsed = time.perf_counter() - started
    finally:
        backend.close()
    if measurement.status != "ok":
        raise BackendUnavailableError(f"device '{config.name}' answered, but the self-test workload came back {measurement.status}: {measurement.reason}")
    click.echo(
        f"probe {probe.key}: median {measurement.median_ms:.3f} ms (p10 {measurement.p10_ms:.3f}, p90 {measurement.p90_ms:.3f}, "
        f"{measurement.runs} runs{', contended' if measurement.contended else ''}); whole request {elapsed:.2f} s"
    )
