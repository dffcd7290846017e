"""``vidlat predict``: predicted latency of an arch or an exported vidlat model (``vidlat.api.load_latency_predictor``).

::

    ARCH.yaml | MODEL.onnx ──predict──> per-block and total ms (fitted predictor, else the plain table)
"""

from __future__ import annotations

import json

import click

from vidlat.cli.common import store_option, stored_device_option


@click.command("predict")
@stored_device_option
@click.argument("arch_path", metavar="ARCH.yaml|MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("--space", "space_name", help="search space [default: the one the arch names]")
@store_option
@click.option("--predictor", "predictor_file", type=click.Path(dir_okay=False), help="fitted predictor file [default: the one `vidlat fit` saved]")
@click.option("--json", "as_json", is_flag=True, help="print per-block and total latency as JSON (total under total_ms)")
def predict(device_name: str, arch_path: str, space_name: str | None, store_path: str | None, predictor_file: str | None, as_json: bool) -> None:
    """Predicted latency of an arch or an exported vidlat ONNX model on a device, per block and total."""
    from search.export import read_arch
    from vidlat import api

    space = space_name or read_arch(arch_path).space
    predictor = api.load_latency_predictor(device_name, space=space, store=store_path, predictor=predictor_file)
    result = predictor.predict(arch_path)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(f"{result.arch} on {result.device} ({result.predictor})")
    click.echo(f"{'layer':>5}  {'block':<20}{'ms':>9}  source")
    for block in result.blocks:
        click.echo(f"{block['layer']:>5}  {block['block']:<20}{block['ms']:>9.3f}  {block['source']}")
    click.echo(f"stem + head {result.fixed_ms:.3f} ms; block sum {result.block_sum_ms:.3f} ms; "
               f"total {result.total_ms:.3f} ms ({result.calibration['kind']} calibration)")
