"""``vidlat export ARCH``: verified ONNX of an arch (``vidlat.api.export``)."""

from __future__ import annotations

import click

from profiler.errors import VidlatError
from search.export import DEFAULT_OPSET


def _shape(shape: tuple[int | str, ...]) -> str:
    return "x".join(str(size) for size in shape)


def echo_export(report) -> None:
    """What `vidlat export` prints of a ``search.export.ExportReport``."""
    click.echo(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, opset {report.opset})")
    click.echo(f"input {_shape(report.input_shape)} -> output {_shape(report.output_shape)}")
    click.echo("onnx.checker: ok")
    click.echo(f"max abs diff ONNX Runtime vs torch (batch {report.batch_checked}): {report.max_abs_diff:.3g}")
    click.echo(f"{report.macs * 2 / 1e6:.2f} MFLOPs, {report.params:,} parameters")
    click.echo(f"metadata: {', '.join(sorted(report.metadata))}")


@click.command("export")
@click.argument("arch_file", metavar="ARCH")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ONNX file to write; an existing file there is overwritten, missing folders are created")
@click.option("--opset", type=click.IntRange(18, 23), default=DEFAULT_OPSET, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="trained weights (a state_dict .pt from `vidlat train`); default: fresh initial weights")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="extra metadata entry (repeatable)")
def export(arch_file: str, out: str, opset: int, weights: str | None, meta: tuple[str, ...]) -> None:
    """Export ARCH (a file or SPACE:REFERENCE) to ONNX, check it and compare ONNX Runtime with torch."""
    from vidlat import api

    metadata = {}
    for entry in meta:
        if "=" not in entry:
            raise VidlatError(f"--meta '{entry}': expected KEY=VALUE")
        key, value = entry.split("=", 1)
        metadata[key] = value
    echo_export(api.export(arch_file, out=out, weights=weights, opset=opset, metadata=metadata))
