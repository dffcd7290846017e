"""``vidlat lut``: a device's lookup table for a search space, shown or written as CSV/Parquet.

::

    space entries (layer, block, key; stem/head at layer -1) ──join on key──> store.table(device)
        ──> one row per (layer, candidate): key, layer, block, status, median_ms, stats, spec columns

Entries the store does not hold have status ``missing``.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from profiler.errors import VidlatError
from vidlat.cli.common import space_option, store_option

SHOWN = ["layer", "block", "status", "median_ms", "p10_ms", "p90_ms", "runs", "contended", "key"]


class LutExportError(VidlatError):
    """The lookup table cannot be written where asked."""


def _lut_table(device: str, space_name: str, store_path: str | None) -> tuple[str, pd.DataFrame]:
    """(the device's name in the store, the table of ``predictors.lut.lut_table``)."""
    from predictors.lut import lut_table
    from search.space import load_space
    from vidlat.api import open_store, stored_device_name

    with open_store(store_path) as store:
        name = stored_device_name(store, device, required=False)
        return name, lut_table(store, name, load_space(space_name))


@click.group()
def lut() -> None:
    """Lookup tables: a device's measured latency of every (layer, candidate) of a space."""


_device = click.option("--device", required=True, help="device name (shipped, in the store, or a .yaml path)")


@lut.command("show")
@_device
@space_option
@store_option
def show(device: str, space_name: str, store_path: str | None) -> None:
    """Print the lookup table (main columns; `lut export` writes all of them)."""
    _, table = _lut_table(device, space_name, store_path)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        click.echo(table[SHOWN].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    counts = table["status"].value_counts()
    click.echo(", ".join(f"{count} {status}" for status, count in counts.items()))


@lut.command("export")
@_device
@space_option
@store_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="output file, .csv or .parquet (missing folders are created; an existing file is replaced)")
def export(device: str, space_name: str, store_path: str | None, out: str) -> None:
    """Write the lookup table as CSV or Parquet (the spec dict as JSON in column `spec`)."""
    from predictors.lut import LUT_SUFFIXES, write_lut_file

    target = Path(out)
    if target.suffix not in LUT_SUFFIXES:
        raise LutExportError(f"--out {out}: the file must end in {' or '.join(LUT_SUFFIXES)}")
    name, table = _lut_table(device, space_name, store_path)
    write_lut_file(table, target)
    missing = int((table["status"] == "missing").sum())
    click.echo(f"wrote {len(table)} rows ({name}, space {space_name}) to {target}")
    if missing:
        click.echo(f"warning: {missing} entries are not measured yet (status 'missing'); "
                   f"run `vidlat profile --device {device} --space {space_name}`", err=True)
