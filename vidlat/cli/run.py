"""``vidlat run``: the whole path on one device (``vidlat.api.run``), each step printed as its verb prints it.

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

from typing import Any

import click

from profiler.catalog import DEFAULT_DEVICE
from search.config import ClipConfig
from search.data.names import DATA_HELP
from vidlat.api import RUN_NETWORKS, RUN_SEARCH_EPOCHS, RUN_THREADS, RUN_TRAIN_EPOCHS
from vidlat.cli.common import space_option, store_option

CLIPS = ClipConfig()


def _echo_step(step: str, result: Any) -> None:
    """Print a finished step as its own verb does."""
    from vidlat.cli.export import echo_export
    from vidlat.cli.fit import echo_fit
    from vidlat.cli.profile import echo_profile
    from vidlat.cli.search import echo_search
    from vidlat.cli.train import echo_train

    echo = {"profile": echo_profile, "fit": echo_fit, "search": echo_search, "train": echo_train,
            "export": echo_export, "measure": echo_profile}[step]
    if result is not None:
        echo(result)


@click.command("run")
@click.option("--device", "device_name", default=DEFAULT_DEVICE, show_default=True, help="shipped device name or .yaml path")
@space_option
@click.option("--data", default=CLIPS.data, show_default=True, help=DATA_HELP)
@click.option("--networks", type=click.IntRange(1, 10), default=RUN_NETWORKS, show_default=True,
              help="random whole networks measured for the calibration (plus the space's reference archs)")
@click.option("--search-epochs", type=click.IntRange(2), default=RUN_SEARCH_EPOCHS, show_default=True)
@click.option("--train-epochs", type=click.IntRange(1), default=RUN_TRAIN_EPOCHS, show_default=True)
@click.option("--train-clips", type=click.IntRange(10), default=CLIPS.train_clips, show_default=True, help="moving-digits training clips")
@click.option("--target-ms", type=float, default=None, help="latency budget: the search's target loss instead of FBNet's")
@click.option("--threads", type=click.IntRange(1), default=RUN_THREADS, show_default=True,
              help="torch threads of the search and training steps (profiling keeps the device file's threads)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="[default: runs/<device>-<space>]")
@store_option
def run(device_name: str, space_name: str, data: str, networks: int, search_epochs: int, train_epochs: int,
        train_clips: int, target_ms: float | None, threads: int, seed: int, out_dir: str | None, store_path: str | None) -> None:
    """Profile, fit, search, train, export and measure on one device; prints where every file went."""
    from search.config import SearchConfig, TrainConfig
    from vidlat import api

    result = api.run(
        device_name, space=space_name, networks=networks, search_config=SearchConfig().with_epochs(search_epochs),
        train_config=TrainConfig(epochs=train_epochs), clips=ClipConfig(data=data, train_clips=train_clips),
        target_ms=target_ms, seed=seed, threads=threads, store=store_path, out=out_dir,
        on_start=lambda title: click.secho(f"\n== {title}", bold=True), on_done=_echo_step,
    )
    click.secho("\n== done", bold=True)
    click.echo(f"arch: {' | '.join(result.arch)}")
    if result.measured_ms is not None:
        error = 100 * (result.predicted_ms - result.measured_ms) / result.measured_ms
        click.echo(f"latency on {result.device}: predicted {result.predicted_ms:.3f} ms, measured {result.measured_ms:.3f} ms ({error:+.1f}%)")
    else:
        click.echo(f"latency on {result.device}: predicted {result.predicted_ms:.3f} ms; measuring it: "
                   f"{result.measured_status} ({result.measured_reason})")
    steps = {k: v for k, v in result.seconds.items() if k != "total"}
    click.echo(f"test accuracy: {result.test_acc:.3f}; took {result.seconds['total']:.0f} s "
               f"({', '.join(f'{k} {v:.0f} s' for k, v in steps.items())})")
    for name, path in result.files.items():
        click.echo(f"  {name:<13}{path}")
