"""Does moving-digits need time? An order-blind 2D baseline against 3D models, trained the same way.

::

    frame-CNN (2D convs on every frame, average over time, linear)   order-blind: ceiling 50%
    clip-CNN  (the same widths with 3x3x3 convs, global pool, linear)  reads order
    x3d-xs    (the default space's X3D-XS-like reference arch)          reads order

All three train with ``search.train`` settings (AdamW + one-cycle, best epoch by val) on the same
clips; the table gives test accuracy, accuracy within time-reversal pairs, and the share of test
clips whose pair (motion up to direction) is right.

    .venv/bin/python bench/data_temporal.py --train 1500 --epochs 6
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from search.data import MovingDigitsConfig, make_moving_digits
from search.space import load_space
from search.config import TrainConfig
from search.train import channels_last_input, evaluate_accuracy, to_channels_last, train_arch


class FrameCNN(nn.Module):
    """Order-blind: the same 2D CNN on every frame, features averaged over time."""

    def __init__(self, channels: int, classes: int, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers, c = [], channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        feats = self.features(frames).mean(dim=(2, 3)).view(n, t, -1).mean(dim=1)
        return self.classifier(feats)


class ClipCNN(nn.Module):
    """The same widths with 3x3x3 convolutions (stride 1 in time): sees frame order."""

    def __init__(self, channels: int, classes: int, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers, c = [], channels
        for w in widths:
            layers += [nn.Conv3d(c, w, 3, stride=(1, 2, 2), padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3, 4)))


def train_module(model: nn.Module, data, config: TrainConfig) -> tuple[float, nn.Module]:
    """The loop of ``search.train.train_arch`` for a plain module; returns (test accuracy, best model)."""
    torch.manual_seed(config.seed)
    model = to_channels_last(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(data.train) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    best, best_val = copy.deepcopy(model.state_dict()), -1.0
    for epoch in range(config.epochs):
        model.train()
        for x, y in data.train.batches(config.batch_size, generator=torch.Generator().manual_seed(epoch), shuffle=True):
            loss = F.cross_entropy(model(channels_last_input(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        val = evaluate_accuracy(model, data.val)
        if val > best_val:
            best, best_val = copy.deepcopy(model.state_dict()), val
    model.load_state_dict(best)
    return evaluate_accuracy(model, data.test), model.eval()


def pair_accuracy(model: nn.Module, data) -> float:
    """Share of test clips whose predicted class is in the right time-reversal pair."""
    hits = 0
    with torch.no_grad():
        for x, y in data.test.batches(128):
            hits += int(((model(channels_last_input(x)).argmax(1) // 2) == (y // 2)).sum())
    return hits / len(data.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    data = make_moving_digits(MovingDigitsConfig(n_train=args.train, n_val=300, n_test=1000, seed=args.seed))
    config = TrainConfig(epochs=args.epochs, seed=args.seed)
    c = data.clip_shape[0]
    rows = []
    for name, build in (("frame-CNN (2D, order-blind)", lambda: FrameCNN(c, 10)), ("clip-CNN (3D)", lambda: ClipCNN(c, 10))):
        started = time.perf_counter()
        acc, model = train_module(build(), data, config)
        rows.append((name, acc, pair_accuracy(model, data), time.perf_counter() - started))
    arch = load_space("default").reference_archs()["x3d-xs"]
    started = time.perf_counter()
    result = train_arch(arch, data, config, progress=False)
    rows.append(("x3d-xs (default space)", result.test_acc, pair_accuracy(result.model, data), time.perf_counter() - started))
    print(f"moving-digits {data.clip_shape}, train {len(data.train)}, test {len(data.test)}, {args.epochs} epochs, seed {args.seed}")
    print(f"{'model':<30} {'test acc':>8} {'pair acc':>8} {'train s':>8}")
    for name, acc, pair, seconds in rows:
        print(f"{name:<30} {acc:>8.3f} {pair:>8.3f} {seconds:>8.0f}")
    print("order-blind ceiling: 0.500 (each class and its time reversal hold the same frames)")


if __name__ == "__main__":
    main()
