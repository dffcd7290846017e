"""``vidlat fit`` and ``vidlat evaluate``: latency predictors from the store (``vidlat.api.fit``, ``evaluate``).

::

    store (device) + space ──fit──────> <store dir>/predictors/<device>--<space>.skops
                           ──evaluate─> table of acc5/acc10/MAPE/RMSE/Kendall/Spearman per predictor
                                        + evaluation.json, metrics.csv, predictions.csv, scatter.png
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from predictors.fit import FitConfig
from predictors.lut import CONTENDED_POLICIES
from vidlat.cli.common import space_option, store_option, stored_device_option

DEFAULTS = FitConfig()

_seed = click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help="seed of the calibration / test split")
_contended = click.option("--contended", type=click.Choice(CONTENDED_POLICIES), default=DEFAULTS.contended, show_default=True,
                          help="rows still flagged contended after the sweep's re-measures: use their thread CPU time "
                               "(one-thread CPU runtimes), their wall time, or drop them; cpu-all: CPU time for every row "
                               "(a shared machine where nearly every run is contended)")
_calib = click.option("--calibration-networks", type=click.IntRange(0, 10), default=DEFAULTS.calibration_networks,
                      show_default=True, help="measured networks used to fit the calibration (the rest are the test set)")


def _fit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `vidlat fit` and `vidlat evaluate` share: device, space, store, calibration, seed, contended."""
    for option in (_contended, _seed, _calib, store_option, space_option, stored_device_option):
        command = option(command)
    return command


def _format_scores(scores: dict[str, dict[str, float]]) -> str:
    lines = [f"{'regressor':<10}{'acc5':>9}{'acc10':>9}{'MAPE %':>9}{'Kendall':>9}"]
    for kind, metrics in scores.items():
        lines.append(f"{kind:<10}{100 * metrics['acc5']:>8.1f}%{100 * metrics['acc10']:>8.1f}%{metrics['mape']:>9.2f}{metrics['kendall']:>9.3f}")
    return "\n".join(lines)


def echo_fit(result: Any) -> None:
    """What `vidlat fit` prints of a ``vidlat.api.FitResult``."""
    if result.family_errors:
        click.echo("regressor error per family (out-of-fold MAPE %): "
                   + ", ".join(f"{k} {v:.1f}" for k, v in sorted(result.family_errors.items())))
    if result.sampled is not None:
        click.echo(f"sampled blocks: {result.sampled}")
    fitted = result.predictor
    scores = fitted.scores
    click.echo(f"{fitted.device} / {fitted.space}: {scores['training_blocks']} measured blocks, "
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
    click.echo(f"saved {result.path}")


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
    from vidlat import api

    if by_operators:
        predictor, path = api.fit_operators(device_name, store=store_path, out=out, calibrate=calibrate_models, seed=seed)
        click.echo(f"{predictor.device}: kernel regressors for {', '.join(sorted(predictor.regressors_))} "
                   f"({sum(predictor.samples_.values())} measured operators); fused: {', '.join(sorted(predictor.rules.fused)) or 'none'}")
        factors = ", ".join(f"{name} x{value:.3f}" for name, value in sorted(predictor.type_scales.items()))
        click.echo(f"calibration: x{predictor.scale:.4f} on {predictor.calibration_models} measured models"
                   + (f"; per kernel type: {factors}" if factors else ""))
        click.echo(f"saved {path}")
        return

    config = FitConfig(calibration_networks=calibration_networks, contended=contended, seed=seed)
    echo_fit(api.fit(device_name, space=space_name, store=store_path, out=out, config=config, sample=sample))


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
    from vidlat import api

    if by_operators:
        per_type, whole = api.evaluate_operators(device_name, store=store_path, models=models, seed=seed)
        _echo_operators(device_name, per_type, whole, as_json)
        return

    config = FitConfig(calibration_networks=calibration_networks, contended=contended, seed=seed)
    report = api.evaluate(device_name, space=space_name, store=store_path, config=config,
                          regressor=None if regressor == "none" else regressor)
    paths = report.save(Path(out) if out else Path("vidlat-evaluate") / f"{report.device}--{Path(space_name).stem}")
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "files": {k: str(v) for k, v in paths.items()}}, indent=2))
        return
    click.echo(report.table_text())
    click.echo(f"wrote {paths['json'].parent}/ (evaluation.json, metrics.csv, predictions.csv, scatter.png)")


def _echo_operators(device: str, per_type: Any, whole: dict[str, Any] | None, as_json: bool) -> None:
    """What `vidlat evaluate --operators` prints: per kernel type, then whole models."""
    if as_json:
        click.echo(json.dumps({"device": device, "kernel_types": per_type.to_dict(orient="records"), "models": whole},
                              indent=2, default=float))
        return
    click.echo(f"{device}: kernel regressors, out-of-fold on the measured operators")
    click.echo(per_type.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if whole:
        click.echo("\nwhole models (measured with `vidlat profile --onnx`)")
        for row in whole["models"]:
            click.echo(f"  {row['model']:<30} predicted {row['predicted_ms']:9.3f} ms  measured {row['measured_ms']:9.3f} ms")
        click.echo("  " + ", ".join(f"{k} {v:.3f}" for k, v in whole["scores"].items()))
