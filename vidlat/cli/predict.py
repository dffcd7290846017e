"""``vidlat fit``, ``vidlat evaluate`` and ``vidlat predict``: latency predictors from the store.

::

    store (device) + space ──fit──────> <store dir>/predictors/<device>--<space>.skops
                           ──evaluate─> table of acc5/acc10/MAPE/RMSE/Kendall/Spearman per predictor
                                        + evaluation.json, metrics.csv, predictions.csv, scatter.png
    ARCH.yaml | MODEL.onnx ──predict──> per-block and total ms (fitted predictor, else the plain table)
    any MODEL.onnx ──predict──> per-kernel and total ms (operator tables of `profile --operators`, predictors.any_model)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import onnx

from predictors import FittedPredictor, LUTPredictor, NetworkPredictor, evaluate_networks, fit_predictor, network_frame
from predictors.errors import PredictorError
from predictors.lut import CONTENDED_POLICIES, measured_entries, space_entries
from predictors.fit import block_rows
from predictors.regressors import family_errors
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.errors import StoreError
from profiler.store import LatencyStore, default_store_path
from profiler.sweep import profile_workloads

_device = click.option("--device", "device_name", required=True, help="device name (shipped, in the store, or a .yaml path)")
_space = click.option("--space", "space_name", default="default", show_default=True, help="search space name or YAML path")
_store = click.option("--store", "store_path", type=click.Path(dir_okay=False), help="latency store file [default: $VIDLAT_STORE or user data dir]")
_seed = click.option("--seed", type=int, default=0, show_default=True, help="seed of the calibration / test split")
_contended = click.option("--contended", type=click.Choice(CONTENDED_POLICIES), default="cpu", show_default=True,
                          help="rows still flagged contended after the sweep's re-measures: use their thread CPU time "
                               "(one-thread CPU runtimes), their wall time, or drop them; cpu-all: CPU time for every row "
                               "(a shared machine where nearly every run is contended)")
_calib = click.option("--calibration-networks", type=click.IntRange(0, 10), default=10, show_default=True,
                      help="measured networks used to fit the calibration (the rest are the test set)")


def _fit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `vidlat fit` and `vidlat evaluate` share: device, space, store, calibration, seed, contended."""
    for option in (_contended, _seed, _calib, _store, _space, _device):
        command = option(command)
    return command


def _open_store(store_path: str | None, *, read_only: bool = True) -> LatencyStore:
    path = Path(store_path) if store_path else default_store_path()
    if not path.is_file():
        raise StoreError(f"{path}: no latency store here; run `vidlat profile --device D --space S` first or pass --store")
    return LatencyStore(path, read_only=read_only)


def _device_in_store(name: str, store: LatencyStore) -> str:
    """The device's name as the store knows it (a .yaml path resolves to the name inside)."""
    device = name if name in store.devices() else resolve_device(name).name
    if device not in store.devices():
        raise StoreError(f"{store.path}: nothing measured on device '{device}'; devices here: {', '.join(store.devices()) or 'none'}")
    return device


def predictor_path(store: LatencyStore, device: str, space: str) -> Path:
    """Where ``vidlat fit`` saves the predictor of ``device`` and ``space``: beside the store."""
    return store.path.parent / "predictors" / f"{device}--{Path(space).stem}.skops"


def _measure_samples(store: LatencyStore, device_name: str, space: Any, count: int, seed: int) -> None:
    """Measure ``count`` sampled block configurations, weighted by the regressor's error per family."""
    from search.block_sampler import sample_block_configs

    device = resolve_device(device_name)
    blocks = block_rows(store.table(device.name))
    try:
        weights = family_errors(list(blocks["spec"]), blocks["median_ms"], seed=seed) if len(blocks) >= 10 else {}
    except PredictorError:
        weights = {}
    if weights:
        click.echo("regressor error per family (out-of-fold MAPE %): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(weights.items())))
    configs = sample_block_configs(space, count, family_weights=weights, seed=seed)
    backend = create_backend(device)
    try:
        summary = profile_workloads(backend, store, [config.workload() for config in configs], progress=True)
    finally:
        backend.close()
    click.echo(f"sampled blocks: {summary}")


def _format_scores(scores: dict[str, dict[str, float]]) -> str:
    lines = [f"{'regressor':<10}{'acc5':>9}{'acc10':>9}{'MAPE %':>9}{'Kendall':>9}"]
    for kind, metrics in scores.items():
        lines.append(f"{kind:<10}{100 * metrics['acc5']:>8.1f}%{100 * metrics['acc10']:>8.1f}%{metrics['mape']:>9.2f}{metrics['kendall']:>9.3f}")
    return "\n".join(lines)


@click.command("fit")
@_fit_options
@click.option("--out", type=click.Path(dir_okay=False), help="predictor file [default: beside the store, predictors/<device>--<space>.skops]")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
              help="first measure N extra block configurations around the space (more where the regressor errs most)")
@click.option("--operators", "by_operators", is_flag=True, help="fit the kernel predictor of `profile --operators` instead (any ONNX model)")
@click.option("--calibrate", "calibrate_models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="with --operators: an ONNX model measured with `vidlat profile --onnx`, for the whole-model scale (repeatable)")
def fit(device_name: str, space_name: str, store_path: str | None, calibration_networks: int, seed: int, contended: str,
        out: str | None, sample: int, by_operators: bool, calibrate_models: tuple[str, ...]) -> None:
    """Fit the latency regressors and the whole-network calibration of a device and space (or its kernel predictor)."""
    from search.space import load_space

    if by_operators:
        _fit_operators(device_name, store_path, out=out, models=calibrate_models, seed=seed)
        return

    space = load_space(space_name)
    with _open_store(store_path, read_only=not sample) as store:
        device = _device_in_store(device_name, store)
        if sample:
            _measure_samples(store, device_name, space, sample, seed)
        fitted = fit_predictor(store.table(device), space_entries(space), device=device, space=space.name,
                               fingerprint=store.fingerprint(device), calibration_networks=calibration_networks,
                               contended=contended, seed=seed)
        path = fitted.save(Path(out) if out else predictor_path(store, device, space_name))
    scores = fitted.scores
    click.echo(f"{device} / {space.name}: {scores['training_blocks']} measured blocks, "
               f"validation on {scores['validation_size']} held-out blocks")
    if scores["validation"]:
        click.echo(_format_scores(scores["validation"]))
        click.echo(f"kept: {scores['regressor']}")
    c = fitted.calibration
    click.echo(f"calibration: {c.kind} (x{c.scale:.4f} {c.offset_ms:+.3f} ms) on {c.networks} measured networks")
    misses = int((fitted.entries["median_ms"].isna()).sum())
    if misses:
        how = f"predicted by the {fitted.regressor.kind} regressor" if fitted.regressor else "misses (no regressor: too few blocks)"
        click.echo(f"note: {misses} table entries are not measured: {how}; measure them with `vidlat profile`")
    click.echo(f"saved {path}")


@click.command("evaluate")
@_fit_options
@click.option("--regressor", type=click.Choice(["gbm", "rf", "linear", "additive", "none"]), default="gbm", show_default=True,
              help="model family of the regressor-only row ('none' skips the row)")
@click.option("--out", type=click.Path(file_okay=False), help="folder for evaluation.json, metrics.csv, predictions.csv, scatter.png "
              "[default: ./vidlat-evaluate/<device>--<space>]")
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
@click.option("--operators", "by_operators", is_flag=True, help="judge the kernel predictor: per kernel type (out of fold) and on --model files")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="with --operators: an ONNX model measured with `vidlat profile --onnx` (repeatable)")
def evaluate(device_name: str, space_name: str, store_path: str | None, calibration_networks: int, seed: int,
             contended: str, regressor: str, out: str | None, as_json: bool, by_operators: bool, models: tuple[str, ...]) -> None:
    """Judge the predictors on measured whole networks they were not fitted on (or the kernel predictor)."""
    from search.space import load_space

    if by_operators:
        _evaluate_operators(device_name, store_path, models=models, seed=seed, as_json=as_json)
        return

    space = load_space(space_name)
    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        table = store.table(device)
    entries = measured_entries(space_entries(space), table, contended=contended)
    blocks = block_rows(table, contended=contended)
    outside = blocks[~blocks["key"].isin(set(entries["key"]))]
    report = evaluate_networks(entries, network_frame(table, space.name, contended=contended), device=device, space=space.name,
                               calibration_networks=calibration_networks, seed=seed,
                               regressor_kind=None if regressor == "none" else regressor, extra_blocks=outside)
    paths = report.save(Path(out) if out else Path("vidlat-evaluate") / f"{device}--{Path(space_name).stem}")
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "files": {k: str(v) for k, v in paths.items()}}, indent=2))
        return
    click.echo(report.table_text())
    click.echo(f"wrote {paths['json'].parent}/ (evaluation.json, metrics.csv, predictions.csv, scatter.png)")


def read_arch(path: str | Path) -> Any:
    """An ``ArchSpec`` from a YAML/JSON arch file or from an exported vidlat ONNX model's metadata."""
    from search.arch import ArchSpec, load_arch

    path = Path(path)
    if path.suffix != ".onnx":
        return load_arch(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise PredictorError(f"{path}: cannot read the ONNX model ({type(exc).__name__})") from None
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    if "vidlat.arch" not in metadata:
        raise PredictorError(f"{path}: not an exported vidlat model (no 'vidlat.arch' metadata); export it with `vidlat export`")
    try:
        data = json.loads(metadata["vidlat.arch"])
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; RecursionError: nested too deep
        raise PredictorError(f"{path}: its 'vidlat.arch' metadata is not an arch spec in JSON "
                             f"({getattr(exc, 'msg', type(exc).__name__)}); re-export the model with `vidlat export`") from None
    return ArchSpec.from_dict(data, source=f"{path} (metadata 'vidlat.arch')")


def _check_fits(arch: Any, space: Any) -> list[str]:
    """The arch's canonical layers, after checking it is an arch of ``space`` at its deployment shape."""
    expected = space.make_arch(arch.layers)
    for field in ("input_shape", "channels", "strides", "stem", "head", "num_classes"):
        if getattr(expected, field) != getattr(arch, field):
            raise PredictorError(
                f"arch's {field} {getattr(arch, field)} differs from space '{space.name}' ({getattr(expected, field)}); "
                "its latency tables are measured at the space's shapes"
            )
    return expected.layers


def predict_arch(device_name: str, arch_path: str, *, space_name: str | None = None, store_path: str | None = None,
                 predictor_file: str | None = None) -> dict[str, Any]:
    """Per-block and total predicted latency of an arch file or exported model (the fitted predictor, else the table)."""
    from search.space import load_space

    arch = read_arch(arch_path)
    space = load_space(space_name or arch.space)
    layers = _check_fits(arch, space)
    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        path = Path(predictor_file) if predictor_file else predictor_path(store, device, space_name or arch.space)
        if path.is_file() or predictor_file:
            fitted = FittedPredictor.load(path, device=device, fingerprint=store.fingerprint(device))
            predictor, source = fitted.network_predictor(), f"fitted predictor {path}"
        else:
            predictor = NetworkPredictor(LUTPredictor.from_store(store, device, space_entries(space)))
            source = "lookup table only (no calibration: run `vidlat fit` for calibrated totals)"
    return {"device": device, "space": space.name, "arch": arch.name or Path(arch_path).stem, "predictor": source,
            "layers": layers, **predictor.breakdown(layers)}


@click.command("predict")
@_device
@click.argument("arch_path", metavar="ARCH.yaml|MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("--space", "space_name", help="search space [default: the one the arch names]")
@_store
@click.option("--predictor", "predictor_file", type=click.Path(dir_okay=False), help="fitted predictor file [default: the one `vidlat fit` saved]")
@click.option("--json", "as_json", is_flag=True, help="print per-block and total latency as JSON (total under total_ms)")
@click.option("--operators", "by_operators", is_flag=True, help="price a vidlat model kernel by kernel too (any other ONNX model always is)")
@click.option("--partial", is_flag=True, help="ONNX models: price what can be priced and list the ops that cannot (else exit 2)")
def predict(device_name: str, arch_path: str, space_name: str | None, store_path: str | None, predictor_file: str | None, as_json: bool,
            by_operators: bool, partial: bool) -> None:
    """Predicted latency of an arch or any ONNX model on a device, per block (vidlat archs) or per kernel, and total."""
    if arch_path.endswith(".onnx") and (by_operators or not _is_vidlat_model(arch_path)):
        _predict_any(device_name, arch_path, store_path=store_path, predictor_file=predictor_file, as_json=as_json, partial=partial)
        return
    result = predict_arch(device_name, arch_path, space_name=space_name, store_path=store_path, predictor_file=predictor_file)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['arch']} on {result['device']} ({result['predictor']})")
    click.echo(f"{'layer':>5}  {'block':<20}{'ms':>9}  source")
    for block in result["blocks"]:
        click.echo(f"{block['layer']:>5}  {block['block']:<20}{block['ms']:>9.3f}  {block['source']}")
    click.echo(f"stem + head {result['fixed_ms']:.3f} ms; block sum {result['block_sum_ms']:.3f} ms; "
               f"total {result['total_ms']:.3f} ms ({result['calibration']['kind']} calibration)")


def _is_vidlat_model(path: str) -> bool:
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise PredictorError(f"{path}: cannot read the ONNX model ({type(exc).__name__})") from None
    return any(prop.key == "vidlat.arch" for prop in model.metadata_props)


def _predict_any(device_name: str, path: str, *, store_path: str | None, predictor_file: str | None, as_json: bool, partial: bool) -> None:
    from predictors.any_model import operator_predictor, predict_workload
    from vidlat.cli.profile import onnx_file_workload

    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        try:
            predictor = operator_predictor(store, device, path=predictor_file)
        except PredictorError as exc:
            raise PredictorError(f"{path}: not an exported vidlat model, so it is priced per kernel: {exc}") from None
    workload = onnx_file_workload(path)
    result = predict_workload(predictor, workload, partial=partial)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['model']} on {result['device']}: {len(result['kernels'])} kernels, fused on this device: "
               f"{', '.join(result['rules']) or 'none'}")
    click.echo(f"{'#':>4}  {'kernel':<32}{'type':<12}{'ms':>10}  source")
    for index, row in enumerate(result["kernels"]):
        ms = "-" if row["ms"] is None else f"{row['ms']:.4f}"
        click.echo(f"{index:>4}  {row['kernel'][:31]:<32}{row['type']:<12}{ms:>10}  {row['source']}")
    click.echo(f"kernels {result['kernel_sum_ms']:.3f} ms + runtime overhead {result['overhead_ms']:.3f} ms, "
               f"x{result['scale']:.3f} calibration: total {result['total_ms']:.3f} ms")
    for item in result["unpriced"]:
        click.echo(f"not priced: {item['node']} ({item['op_type']}): {item['reason']}")


def _fit_operators(device_name: str, store_path: str | None, *, out: str | None, models: tuple[str, ...], seed: int) -> None:
    from predictors.any_model import evaluate_models, operator_predictor_path
    from predictors.kernel_predictor import KernelPredictor
    from vidlat.cli.profile import onnx_file_workload

    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        predictor = KernelPredictor.fit(store.table(device), device=device, fingerprint=store.fingerprint(device), seed=seed)
        if models:
            rows = evaluate_models(predictor, store, [onnx_file_workload(m) for m in models])["models"]
            predictor.calibrate([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])
        path = predictor.save(Path(out) if out else operator_predictor_path(store, device))
    click.echo(f"{device}: kernel regressors for {', '.join(sorted(predictor.regressors_))} "
               f"({sum(predictor.samples_.values())} measured operators); fused: {', '.join(sorted(predictor.rules.fused)) or 'none'}")
    click.echo(f"calibration: x{predictor.scale:.4f} on {predictor.calibration_models} measured models")
    click.echo(f"saved {path}")


def _evaluate_operators(device_name: str, store_path: str | None, *, models: tuple[str, ...], seed: int, as_json: bool) -> None:
    from predictors.any_model import evaluate_models, operator_predictor
    from predictors.kernel_predictor import evaluate_operators
    from vidlat.cli.profile import onnx_file_workload

    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        per_type = evaluate_operators(store.table(device), seed=seed)
        whole = evaluate_models(operator_predictor(store, device), store, [onnx_file_workload(m) for m in models]) if models else None
    if as_json:
        click.echo(json.dumps({"device": device, "kernel_types": per_type.to_dict(orient="records"), "models": whole}, indent=2, default=float))
        return
    click.echo(f"{device}: kernel regressors, out-of-fold on the measured operators")
    click.echo(per_type.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if whole:
        click.echo("\nwhole models (measured with `vidlat profile --onnx`)")
        for row in whole["models"]:
            click.echo(f"  {row['model']:<30} predicted {row['predicted_ms']:9.3f} ms  measured {row['measured_ms']:9.3f} ms")
        click.echo("  " + ", ".join(f"{k} {v:.3f}" for k, v in whole["scores"].items()))
