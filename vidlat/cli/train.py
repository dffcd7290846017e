"""``vidlat train ARCH``: train an arch from scratch on clips and report its test accuracy.

::

    ARCH.yaml --build_model--> --train_arch (data at the proxy shape)--> OUT/weights.pt (tensors only)
                                                                   \\--> OUT/train.json (accuracy, history)
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from search.data.names import DATA_HELP, DEFAULT_DATA


@click.command("train")
@click.argument("arch_file", metavar="ARCH")
@click.option("--data", default=DEFAULT_DATA, show_default=True, help=DATA_HELP)
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True, help="peak learning rate (AdamW, one-cycle)")
@click.option("--train-clips", type=click.IntRange(10), default=1500, show_default=True, help="moving-digits training clips")
@click.option("--test-clips", type=click.IntRange(10), default=1000, show_default=True, help="moving-digits test clips")
@click.option("--frames", type=click.IntRange(2), default=8, show_default=True, help="proxy clip length")
@click.option("--size", type=click.IntRange(16), default=32, show_default=True, help="proxy clip height and width")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch intra-op threads")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="[default: runs/train-<arch name>]")
def train(arch_file: str, data: str, epochs: int, batch_size: int, lr: float, train_clips: int, test_clips: int,
          frames: int, size: int, seed: int, threads: int, out_dir: str | None) -> None:
    """Train ARCH (a file or SPACE:REFERENCE, e.g. default:x3d-xs) from scratch; writes OUT/weights.pt,
    OUT/arch.yaml and OUT/train.json and prints the test accuracy."""
    import dataclasses

    import torch

    from search.data import load_data
    from search.space import resolve_arch
    from search.train import TrainConfig, save_weights, train_arch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    arch = resolve_arch(arch_file)
    classes = arch.num_classes if arch.num_classes in range(2, 11, 2) else 10
    clips = load_data(data, channels=arch.input_shape[0], frames=frames, size=size, seed=seed,
                      n_train=train_clips, n_val=max(100, train_clips // 5), n_test=test_clips, num_classes=classes)
    if clips.num_classes != arch.num_classes:
        arch = dataclasses.replace(arch, num_classes=clips.num_classes)
    out = Path(out_dir) if out_dir else Path("runs") / f"train-{Path(arch_file).stem.replace(':', '-')}"
    click.echo(f"train {arch.name or arch_file} on {data} {clips.clip_shape} x {len(clips.train)} clips, {epochs} epochs -> {out}")
    result = train_arch(arch, clips, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed))
    save_weights(result.model, out / "weights.pt")
    arch.save(out / "arch.yaml")
    summary = {"arch": arch_file, "data": data, "clip_shape": list(clips.clip_shape), **result.summary()}
    (out / "train.json").write_text(json.dumps(summary, indent=1))
    click.echo(f"test accuracy {result.test_acc:.3f} (val {result.val_acc:.3f} at epoch {result.best_epoch}), "
               f"{result.seconds:.0f} s; wrote {out / 'weights.pt'}, {out / 'arch.yaml'}, {out / 'train.json'}")
