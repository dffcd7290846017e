"""Does the accuracy of a generated task depend on the arch? Train cheap and strong models the same way.

::

    frame-CNN   2D convs on every frame, features averaged over time     order-blind: ceiling 50%
    x3d-xs      the default space's X3D-XS-like reference arch
    table-min   the space's fastest arch on --device (per-layer minimum of the lookup table)
    random-S    space.sample(S) for S in 0 .. --random - 1

Every model trains at the default budget (``search.train``: AdamW + one-cycle, best epoch by val)
on the same clips, for each ``--seeds`` seed (the seed fixes the data and the weights); the table
gives test accuracy, accuracy within time-reversal pairs' classes, the lookup-table latency of the
arch on ``--device`` and the training seconds.

    .venv/bin/python bench/data_difficulty.py --store ~/.local/share/vidlat/latency.sqlite --random 3 --seeds 0,1
    .venv/bin/python bench/data_difficulty.py --store S --models x3d-xs,table-min --set scale=0.5 --set amplitude=0.2

``--set KEY=VALUE`` changes a field of the set's config (``DigitOrderConfig``, ``DigitActionsConfig``, ...): a variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch
from data_temporal import FrameCNN, pair_accuracy, train_module

from profiler.store import LatencyStore
from search.config import TrainConfig
from search.data import DEFAULT_DATA, GENERATED, GENERATORS
from search.device_search import device_latency_table
from search.space import load_space
from search.train import train_arch


def table_min_arch(space, table):
    """The arch with the fastest candidate of every layer."""
    return space.make_arch([slot.candidates[min(range(len(row)), key=row.__getitem__)] for slot, row in zip(space.layers, table)], name="table-min")


def table_ms(space, table, fixed, arch) -> float:
    """Lookup-table latency of ``arch``: fixed stem + head plus the chosen candidate of every layer."""
    return fixed + sum(row[slot.candidates.index(block)] for slot, row, block in zip(space.layers, table, arch.layers))


def parse_setting(item: str, config_type: type, parser: argparse.ArgumentParser) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--set``: VALUE as JSON (numbers, lists) or else as a string."""
    key, sep, value = item.partition("=")
    fields = {f.name for f in dataclasses.fields(config_type)}
    if not sep or key not in fields:
        parser.error(f"--set {item}: give KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, choices=GENERATED)
    parser.add_argument("--store", required=True, help="latency store with the space's lookup table on --device (opened read-only in spirit: only read)")
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--space", default="default")
    parser.add_argument("--random", type=int, default=3, help="random archs of the space to train (seeds 0 .. N-1)")
    parser.add_argument("--seeds", default="0", help="comma-separated data + training seeds")
    parser.add_argument("--train", type=int, default=1500, help="training clips")
    parser.add_argument("--test", type=int, default=1000, help="test clips")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--models", default="", help="comma-separated subset of frame-cnn, x3d-xs, table-min, random-S (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a field of the generated set's config, e.g. --set scale=0.5 --set label=digit (repeatable)")
    args = parser.parse_args()
    config_type, make = GENERATORS[args.data]
    overrides = dict(parse_setting(item, config_type, parser) for item in args.set)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    space = load_space(args.space)
    with LatencyStore(args.store) as store:
        table, fixed = device_latency_table(space, device=args.device, store=store)
    archs = {"x3d-xs": space.reference_archs()["x3d-xs"], "table-min": table_min_arch(space, table)}
    archs.update({f"random-{s}": space.sample(s) for s in range(args.random)})
    wanted = [name for name in args.models.split(",") if name] or ["frame-cnn", *archs]
    unknown = sorted(set(wanted) - {"frame-cnn", *archs})
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}: choose from frame-cnn, {', '.join(archs)}")
    archs = {name: arch for name, arch in archs.items() if name in wanted}

    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        sizes = {"channels": space.input_shape[0], "frames": args.frames, "size": args.size, "seed": seed, "n_train": args.train,
                 "n_val": max(100, args.train // 5), "n_test": args.test, "num_classes": space.num_classes}
        data = make(config_type(**{**sizes, **overrides}))
        config = TrainConfig(epochs=args.epochs, batch_size=32, lr=3e-3, seed=seed)
        if "frame-cnn" in wanted:
            started = time.perf_counter()
            acc, model = train_module(FrameCNN(data.clip_shape[0], data.num_classes), data, config)
            rows.append(("frame-CNN (order-blind)", seed, acc, pair_accuracy(model, data), None, time.perf_counter() - started))
            print(f"  frame-cnn seed {seed}: test {acc:.3f} ({rows[-1][-1]:.0f} s)", flush=True)
        for name, arch in archs.items():
            result = train_arch(arch, data, config, progress=False)
            rows.append((name, seed, result.test_acc, pair_accuracy(result.model, data), table_ms(space, table, fixed, arch), result.seconds))
            print(f"  {name} seed {seed}: test {result.test_acc:.3f} ({result.seconds:.0f} s)", flush=True)

    print(f"{args.data} {overrides or ''} {data.clip_shape}, train {len(data.train)}, test {len(data.test)}, {args.epochs} epochs, "
          f"space {args.space}, latency on {args.device}")
    print(f"{'model':<24} {'seed':>4} {'test acc':>8} {'pair acc':>8} {'LUT ms':>7} {'train s':>8}")
    for name, seed, acc, pair, ms, seconds in rows:
        print(f"{name:<24} {seed:>4} {acc:>8.3f} {pair:>8.3f} {'-' if ms is None else f'{ms:.1f}':>7} {seconds:>8.0f}")
    print(f"chance {1 / data.num_classes:.3f}; order-blind ceiling 0.500 (each class and its time reversal hold the same frames)")
    for name, arch in archs.items():
        print(f"{name}: {' '.join(arch.layers)}")


if __name__ == "__main__":
    main()
