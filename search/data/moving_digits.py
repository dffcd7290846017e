"""Moving digits: a generated action set whose classes need temporal order.

Sprites are scikit-learn's ``load_digits`` (1797 8x8 digits that ship inside the package, so
nothing is downloaded). Every clip shows one sprite that moves, turns, zooms, appears or vanishes::

    sprite (8x8) --affine per frame (centre, angle, size, opacity)--> canvas (H x W)
                 --+ per-frame jitter, colour, noise--> clip uint8 (C, T, H, W)

The ten classes are five motions and their exact time reversals: a clip of an odd class is a clip
of the even class before it with its frames reversed. A model that ignores frame order sees the
same set of frames for both classes of a pair, so it cannot beat 50% on the pair (its ceiling on
the whole set is 50%), while a model that reads order can reach 100%.

Train, val and test draw from disjoint sprites (the 1797 digits are split once, by ``seed``) and
everything (sprites, motions, nuisance) is fixed by the seed; ``num_classes`` keeps the first pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from search.data.clips import ClipSet, ClipSplits
from search.data.sprites import check_clip_settings, digit_sprites, draw_sprites, reverse_rows, sprite_split, to_uint8, trajectories

#: class names; classes 2k and 2k+1 are exact time reversals of each other.
CLASSES: tuple[str, ...] = (
    "move-right", "move-left",
    "move-down", "move-up",
    "turn-cw", "turn-ccw",
    "zoom-in", "zoom-out",
    "appear", "vanish",
)
#: (class, its time reversal)
PAIRS: tuple[tuple[int, int], ...] = tuple((k, k + 1) for k in range(0, len(CLASSES), 2))


@dataclass(frozen=True)
class MovingDigitsConfig:
    """Size and shape of the generated set (clip = ``channels`` x ``frames`` x ``size`` x ``size``)."""

    n_train: int = 3000
    n_val: int = 600
    n_test: int = 1000
    num_classes: int = 10
    channels: int = 3
    frames: int = 8
    size: int = 32
    seed: int = 0
    noise: float = 0.06
    jitter: float = 0.6

    def __post_init__(self) -> None:
        check_clip_settings("moving-digits", classes=len(CLASSES), num_classes=self.num_classes, channels=self.channels,
                            frames=self.frames, size=self.size, counts=(self.n_train, self.n_val, self.n_test))


def make_moving_digits(config: MovingDigitsConfig = MovingDigitsConfig()) -> ClipSplits:
    """Train, val and test sets of moving-digit clips, fully determined by ``config``."""
    pools = sprite_split(config.seed)
    sets = []
    for offset, (count, pool) in enumerate(zip((config.n_train, config.n_val, config.n_test), pools)):
        rng = np.random.default_rng([config.seed, offset])
        sets.append(_render_set(count, pool, rng, config))
    return ClipSplits(train=sets[0], val=sets[1], test=sets[2], classes=list(CLASSES[: config.num_classes]))


def _render_set(count: int, pool: np.ndarray, rng: np.random.Generator, config: MovingDigitsConfig) -> ClipSet:
    labels = np.arange(count) % config.num_classes
    rng.shuffle(labels)
    sprite_ids = rng.choice(pool, size=count, replace=True)
    params = _trajectories(labels // 2, rng, config)  # each (count, T): the forward motion of the pair
    reverse_rows(params, labels % 2 == 1)  # odd class: time reversal
    sprites = torch.from_numpy(digit_sprites()[sprite_ids])
    frames = _draw(sprites, params, config.size)  # (N, T, H, W) in [0, 1]
    colours = rng.uniform(0.5, 1.0, size=(count, config.channels)).astype(np.float32)
    if config.channels == 1:
        colours[:] = 1.0
    clips = frames[:, None] * torch.from_numpy(colours)[:, :, None, None, None]
    return ClipSet(clips=to_uint8(clips, config.noise, rng), labels=torch.from_numpy(labels.astype(np.int64)))


def _trajectories(motion: np.ndarray, rng: np.random.Generator, config: MovingDigitsConfig) -> dict[str, np.ndarray]:
    """Per-frame centre, angle, size and opacity of each clip's forward motion (``sprites.trajectories``)."""
    return trajectories(motion, rng, frames=config.frames, size=config.size, jitter=config.jitter)


_draw = draw_sprites


__all__ = ["CLASSES", "PAIRS", "MovingDigitsConfig", "make_moving_digits", "sprite_split"]
