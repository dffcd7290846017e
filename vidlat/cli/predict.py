"""``vidlat fit``, ``vidlat evaluate`` and ``vidlat predict``: latency predictors from the store.

::

    store (device) + space ──fit──────> <store dir>/predictors/<device>--<space>.skops
                           ──evaluate─> table of acc5/acc10/MAPE/RMSE/Kendall/Spearman per predictor
                                        + evaluation.json, metrics.csv, predictions.csv, scatter.png
    ARCH.yaml | MODEL.onnx ──predict──> per-block and total ms (fitted predictor, else the plain table)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from predictors import FittedPredictor, LUTPredictor, NetworkPredictor, evaluate_networks, fit_predictor, network_frame
from predictors.errors import PredictorError
from predictors.lut import CONTENDED_POLICIES, measured_entries, space_entries
from predictors.fit import block_rows
from predictors.persist import predictor_path
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
def fit(device_name: str, space_name: str, store_path: str | None, calibration_networks: int, seed: int, contended: str,
        out: str | None, sample: int) -> None:
    """Fit the latency regressors and the whole-network calibration of a device and space."""
    from search.space import load_space

    space = load_space(space_name)
    with _open_store(store_path, read_only=not sample) as store:
        device = _device_in_store(device_name, store)
        if sample:
            _measure_samples(store, device_name, space, sample, seed)
        fitted = fit_predictor(store.table(device), space_entries(space), device=device, space=space.name,
                               fingerprint=store.fingerprint(device), calibration_networks=calibration_networks,
                               contended=contended, seed=seed)
        path = fitted.save(Path(out) if out else predictor_path(store.path, device, space_name))
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
def evaluate(device_name: str, space_name: str, store_path: str | None, calibration_networks: int, seed: int,
             contended: str, regressor: str, out: str | None, as_json: bool) -> None:
    """Judge the predictors on measured whole networks they were not fitted on."""
    from search.space import load_space

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


def predict_arch(device_name: str, arch_path: str, *, space_name: str | None = None, store_path: str | None = None,
                 predictor_file: str | None = None) -> dict[str, Any]:
    """Per-block and total predicted latency of an arch file or exported model (the fitted predictor, else the table)."""
    from search.export import read_arch
    from search.space import load_space

    arch = read_arch(arch_path)
    space = load_space(space_name or arch.space)
    layers = space.check_arch(arch)
    with _open_store(store_path) as store:
        device = _device_in_store(device_name, store)
        path = Path(predictor_file) if predictor_file else predictor_path(store.path, device, space_name or arch.space)
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
def predict(device_name: str, arch_path: str, space_name: str | None, store_path: str | None, predictor_file: str | None, as_json: bool) -> None:
    """Predicted latency of an arch or an exported vidlat ONNX model on a device, per block and total."""
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
