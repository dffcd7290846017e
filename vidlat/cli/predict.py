"""``vidlat predict``: predicted latency of an arch or an exported vidlat model (``vidlat.api.load_latency_predictor``).

::

    ARCH.yaml | MODEL.onnx ──predict──> per-block and total ms (fitted predictor, else the plain table)
    any MODEL.onnx ──predict──> per-kernel and total ms (operator tables of `profile --operators`, vidlat.api.predict_model)
"""

from __future__ import annotations

import json

import click
import onnx

from predictors.errors import PredictorError
from vidlat.cli.common import store_option, stored_device_option


@click.command("predict")
@stored_device_option
@click.argument("arch_path", metavar="ARCH.yaml|MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("--space", "space_name", help="search space [default: the one the arch names]")
@store_option
@click.option("--predictor", "predictor_file", type=click.Path(dir_okay=False), help="fitted predictor file [default: the one `vidlat fit` saved]")
@click.option("--json", "as_json", is_flag=True, help="print per-block and total latency as JSON (total under total_ms)")
@click.option("--operators", "by_operators", is_flag=True, help="price a vidlat model kernel by kernel too (any other ONNX model always is)")
@click.option("--partial", is_flag=True, help="ONNX models: price what can be priced and list the ops that cannot (else exit 2)")
def predict(device_name: str, arch_path: str, space_name: str | None, store_path: str | None, predictor_file: str | None,
            as_json: bool, by_operators: bool, partial: bool) -> None:
    """Predicted latency of an arch or any ONNX model on a device, per block (vidlat archs) or per kernel, and total."""
    from search.export import read_arch
    from vidlat import api

    if arch_path.endswith(".onnx") and (by_operators or not _is_vidlat_model(arch_path)):
        _echo_model(api.predict_model(device_name, arch_path, store=store_path, predictor=predictor_file, partial=partial), as_json)
        return

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


def _is_vidlat_model(path: str) -> bool:
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise PredictorError(f"{path}: cannot read the ONNX model ({type(exc).__name__})") from None
    return any(prop.key == "vidlat.arch" for prop in model.metadata_props)


def _echo_model(result: dict, as_json: bool) -> None:
    """What `vidlat predict` prints of any ONNX model priced per kernel."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['model']} on {result['device']}: {len(result['kernels'])} kernels, fused on this device: "
               f"{', '.join(result['rules']) or 'none'}")
    click.echo(f"{'#':>4}  {'kernel':<32}{'type':<12}{'ms':>10}  source")
    for index, row in enumerate(result["kernels"]):
        ms = "-" if row["ms"] is None else f"{row['ms']:.4f}"
        click.echo(f"{index:>4}  {row['kernel'][:31]:<32}{row['type']:<12}{ms:>10}  {row['source']}")
    cold = f" (of which weights read from memory {result['cold_weights_ms']:.3f} ms)" if result.get("cold_weights_ms") else ""
    factors = ", ".join(f"{name} x{value:.3f}" for name, value in sorted(result.get("type_scales", {}).items()))
    click.echo(f"kernels {result['kernel_sum_ms']:.3f} ms{cold} + runtime overhead {result['overhead_ms']:.3f} ms, "
               f"x{result['scale']:.3f} calibration{f' ({factors})' if factors else ''}: total {result['total_ms']:.3f} ms")
    for item in result["unpriced"]:
        click.echo(f"not priced: {item['node']} ({item['op_type']}): {item['reason']}")
