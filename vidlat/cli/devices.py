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
