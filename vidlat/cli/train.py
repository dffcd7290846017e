"""``vidlat train ARCH``: train an arch from scratch on clips and report its test accuracy (``vidlat.api.train``).

::

    ARCH.yaml --build_model--> --train_arch (data at the proxy shape)--> OUT/weights.pt (tensors only)
                                                                   \\--> OUT/train.json (accuracy, history)
"""

from __future__ import annotations

import click

from search.config import ClipConfig, TrainConfig
from search.data.names import DATA_HELP

TRAIN, CLIPS = TrainConfig(), ClipConfig()


def echo_train(run) -> None:
    """What `vidlat train` prints of a ``vidlat.api.TrainRun`` once it is done."""
    result = run.result
    click.echo(f"test accuracy {result.test_acc:.3f} (val {result.val_acc:.3f} at epoch {result.best_epoch}), "
               f"{result.seconds:.0f} s; wrote {run.weights}, {run.arch_file}, {run.report_file}")


@click.command("train")
@click.argument("arch_file", metavar="ARCH")
@click.option("--data", default=CLIPS.data, show_default=True, help=DATA_HELP)
@click.option("--epochs", type=click.IntRange(1), default=TRAIN.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=TRAIN.batch_size, show_default=True)
@click.option("--lr", type=float, default=TRAIN.lr, show_default=True, help="peak learning rate (AdamW, one-cycle)")
@click.option("--train-clips", type=click.IntRange(10), default=CLIPS.train_clips, show_default=True, help="moving-digits training clips")
@click.option("--test-clips", type=click.IntRange(10), default=CLIPS.test_clips, show_default=True, help="moving-digits test clips")
@click.option("--frames", type=click.IntRange(2), default=CLIPS.frames, show_default=True, help="proxy clip length")
@click.option("--size", type=click.IntRange(16), default=CLIPS.size, show_default=True, help="proxy clip height and width")
@click.option("--seed", type=int, default=TRAIN.seed, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch intra-op threads")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="[default: runs/train-<arch name>]")
def train(arch_file: str, data: str, epochs: int, batch_size: int, lr: float, train_clips: int, test_clips: int,
          frames: int, size: int, seed: int, threads: int, out_dir: str | None) -> None:
    """Train ARCH (a file or SPACE:REFERENCE, e.g. default:x3d-xs) from scratch; writes OUT/weights.pt,
    OUT/arch.yaml and OUT/train.json and prints the test accuracy."""
    import torch

    from vidlat import api

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    clips = ClipConfig(data=data, train_clips=train_clips, test_clips=test_clips, frames=frames, size=size)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    echo_train(api.train(arch_file, clips=clips, config=config, out=out_dir))
