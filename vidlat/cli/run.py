"""``vidlat run``: the whole path on one device, each step the verb a user would run by hand.

::

    profile --space S --networks N   (blocks, stem, head and N + reference whole networks; resumable)
      -> fit                         (regressors + whole-network calibration)
      -> search                      (DNAS with the device's lookup table as cost)
      -> train                       (the derived arch from scratch on the proxy shape)
      -> export                      (ONNX at the deployment shape, verified, predicted latency in metadata)
      -> profile --onnx              (the exported model measured on the device: predicted vs measured)

Every step resumes: a second ``vidlat run`` reuses the stored measurements and the search checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from search.data.names import DATA_HELP, DEFAULT_DATA

from profiler.catalog import DEFAULT_DEVICE, resolve_device
from profiler.store import LatencyStore, default_store_path


def _step(title: str) -> float:
    click.secho(f"\n== {title}", bold=True)
    return time.perf_counter()


@click.command("run")
@click.option("--device", "device_name", default=DEFAULT_DEVICE, show_default=True, help="shipped device name or .yaml path")
@click.option("--space", "space_name", default="default", show_default=True, help="search space name or YAML path")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help=DATA_HELP)
@click.option("--networks", type=click.IntRange(1, 10), default=5, show_default=True,
              help="random whole networks measured for the calibration (plus the space's reference archs)")
@click.option("--search-epochs", type=click.IntRange(2), default=6, show_default=True)
@click.option("--train-epochs", type=click.IntRange(1), default=8, show_default=True)
@click.option("--train-clips", type=click.IntRange(10), default=1500, show_default=True, help="moving-digits training clips")
@click.option("--target-ms", type=float, default=None, help="latency budget: the search's target loss instead of FBNet's")
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True,
              help="torch threads of the search and training steps (profiling keeps the device file's threads)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="[default: runs/<device>-<space>]")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help="latency store file [default: $VIDLAT_STORE or user data dir]")
@click.pass_context
def run(ctx: click.Context, device_name: str, space_name: str, data: str, networks: int, search_epochs: int,
        train_epochs: int, train_clips: int, target_ms: float | None, threads: int, seed: int, out_dir: str | None,
        store_path: str | None) -> None:
    """Profile, fit, search, train, export and measure on one device; prints where every file went."""
    from vidlat.cli.predict import fit, predict_arch
    from vidlat.cli.profile import profile
    from vidlat.cli.search import search
    from vidlat.cli.space import export
    from vidlat.cli.train import train

    device = resolve_device(device_name)
    store = str(Path(store_path) if store_path else default_store_path())
    out = Path(out_dir) if out_dir else Path("runs") / f"{device.name}-{Path(space_name).stem}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    begin = _step(f"1/6 profile {space_name} on {device.name} (blocks, stem, head, {networks} networks + references)")
    ctx.invoke(profile, device_name=device_name, space_name=space_name, networks=networks, seed=seed, store_path=store)
    seconds["profile"] = time.perf_counter() - begin

    begin = _step("2/6 fit the latency predictors")
    ctx.invoke(fit, device_name=device_name, space_name=space_name, store_path=store, calibration_networks=min(networks + 2, 10),
               seed=seed)
    seconds["fit"] = time.perf_counter() - begin

    begin = _step("3/6 search (DNAS with the device's lookup table as latency cost)")
    search_dir = out / "search"
    ctx.invoke(search, device=device_name, space_name=space_name, data=data, target_ms=target_ms, epochs=search_epochs, threads=threads,
               train_clips=train_clips, seed=seed, out_dir=str(search_dir), store_path=store)
    seconds["search"] = time.perf_counter() - begin

    begin = _step("4/6 train the derived arch from scratch")
    train_dir = out / "train"
    ctx.invoke(train, arch_file=str(search_dir / "arch.yaml"), data=data, epochs=train_epochs, train_clips=train_clips, threads=threads,
               seed=seed, out_dir=str(train_dir))
    seconds["train"] = time.perf_counter() - begin

    begin = _step("5/6 export to ONNX (verified against torch)")
    arch_file = train_dir / "arch.yaml"
    prediction = predict_arch(device_name, str(arch_file), store_path=store, space_name=space_name)
    model_file = out / "model.onnx"
    ctx.invoke(export, arch_file=str(arch_file), out=str(model_file), weights=str(train_dir / "weights.pt"),
               meta=(f"vidlat.predicted_latency_ms={prediction['total_ms']:.4f}", f"vidlat.device={device.name}"))
    seconds["export"] = time.perf_counter() - begin

    begin = _step(f"6/6 measure the exported model on {device.name}")
    ctx.invoke(profile, device_name=device_name, onnx_path=str(model_file), store_path=store, resume=False)
    seconds["measure"] = time.perf_counter() - begin

    from profiler.onnx_file import onnx_file_workload

    with LatencyStore(Path(store)) as latency_store:
        row = latency_store.table(device.name, keys=[onnx_file_workload(model_file).key]).iloc[0]
    measured = float(row["median_ms"]) if row["status"] == "ok" else None
    train_summary = json.loads((train_dir / "train.json").read_text())
    summary = {
        "device": device.name, "space": space_name, "data": data,
        "arch": prediction["layers"], "predicted_ms": prediction["total_ms"], "measured_ms": measured,
        "measured_status": row["status"], "test_acc": train_summary.get("test_acc"),
        "seconds": {**{k: round(v, 1) for k, v in seconds.items()}, "total": round(time.perf_counter() - started, 1)},
        "files": {
            "store": store, "search": str(search_dir), "arch": str(arch_file), "weights": str(train_dir / "weights.pt"),
            "train_report": str(train_dir / "train.json"), "model": str(model_file), "summary": str(out / "summary.json"),
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))

    click.secho("\n== done", bold=True)
    click.echo(f"arch: {' | '.join(prediction['layers'])}")
    if measured is not None:
        error = 100 * (prediction["total_ms"] - measured) / measured
        click.echo(f"latency on {device.name}: predicted {prediction['total_ms']:.3f} ms, measured {measured:.3f} ms ({error:+.1f}%)")
    else:
        click.echo(f"latency on {device.name}: predicted {prediction['total_ms']:.3f} ms; measuring it: {row['status']} ({row['reason']})")
    click.echo(f"test accuracy: {train_summary.get('test_acc', float('nan')):.3f}; took {summary['seconds']['total']:.0f} s "
               f"({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())})")
    for name, path in summary["files"].items():
        click.echo(f"  {name:<13}{path}")
