"""Digit order: which of two digits flashes first?

Sprites are scikit-learn's ``load_digits`` (nothing is downloaded). Every clip shows the two digits of
one pair (0 and 5, 1 and 6, ..., 4 and 9) on opposite halves of the frame; each is visible for
``flash`` frames only, once, the second at least ``gap`` blank frames after the first. ``distractors``
other digits stay visible all along, dimmer (``contrast``)::

    digit a (left or right half)   --visible frames t1 .. t1 + flash - 1--------------------+
    digit b (the other half)       --visible frames t2 .. t2 + flash - 1, t2 >= t1 + flash + gap
    distractor digits (any)        --visible in every frame, x contrast--------------------+
        --stack (random depth order), colour--> + noise --> forward clip (a first)
        --odd class: frames reversed (b first)--> clip

Class 2k: the pair's first digit flashes first; class 2k+1: the same clip played backwards. A flash
looks the same forwards and backwards, so no few-frame window tells the classes of a pair apart:
only the order of two flashes, several frames and half a frame apart, of two recognised digits.
Twins hold the same frames, so an order-blind model's ceiling is 50%.

Train, val and test draw from disjoint sprites (``sprite_split(seed)``); everything is fixed by the
seed; ``num_classes`` keeps the first pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from search.data.clips import ClipSplits, DataError
from search.data.sprites import check_clip_settings, digit_sprites, draw_sprites, reversal_pair_splits, sprites_showing, stack_layers, to_uint8

#: the digit pairs, by pair index
DIGIT_PAIRS: tuple[tuple[int, int], ...] = ((0, 5), (1, 6), (2, 7), (3, 8), (4, 9))
#: class names; classes 2k and 2k+1 are exact time reversals of each other
CLASSES: tuple[str, ...] = tuple(name for a, b in DIGIT_PAIRS for name in (f"{a}-then-{b}", f"{b}-then-{a}"))


@dataclass(frozen=True)
class DigitOrderConfig:
    """Size and shape of the generated set (clip = ``channels`` x ``frames`` x ``size`` x ``size``) and its difficulty."""

    n_train: int = 1500
    n_val: int = 300
    n_test: int = 1000
    num_classes: int = 10
    channels: int = 3
    frames: int = 8
    size: int = 32
    seed: int = 0
    flash: int | None = None  # frames each of the two digits is visible (None: frames // 4, at least 1)
    gap: int | None = None  # least frames between the first flash's end and the second's start (None: frames // 8)
    distractors: int = 1  # digits visible all along
    contrast: float = 0.5  # distractor brightness over the flashing digits'
    scale: float = 0.8  # sprite size, as a share of moving-digits'
    noise: float = 0.06
    jitter: float = 0.6

    def __post_init__(self) -> None:
        check_clip_settings("digit-order", classes=len(CLASSES), num_classes=self.num_classes, channels=self.channels,
                            frames=self.frames, size=self.size, counts=(self.n_train, self.n_val, self.n_test))
        flash, gap = self.flash_length, self.gap_length
        if flash < 1 or gap < 0 or 2 * flash + gap > self.frames:
            raise DataError(f"digit-order: need flash >= 1, gap >= 0 and 2 * flash + gap <= frames ({self.frames}), "
                            f"got flash {flash} and gap {gap}")
        if self.distractors < 0:
            raise DataError(f"digit-order: distractors must be 0 or more, got {self.distractors}")
        if not 0.0 < self.contrast <= 1.0:
            raise DataError(f"digit-order: contrast (distractor over digit brightness) must be in (0, 1], got {self.contrast}")
        if not 0.0 < self.scale <= 1.5:
            raise DataError(f"digit-order: scale (sprite size factor) must be in (0, 1.5], got {self.scale}")
        if self.noise < 0.0 or self.jitter < 0.0:
            raise DataError(f"digit-order: noise and jitter must be 0 or more, got {self.noise} and {self.jitter}")


    @property
    def flash_length(self) -> int:
        """Frames each digit shows: ``flash``, or a quarter of the clip (at least 1)."""
        return max(1, self.frames // 4) if self.flash is None else self.flash

    @property
    def gap_length(self) -> int:
        """Least frames between the two flashes: ``gap``, or an eighth of the clip."""
        return self.frames // 8 if self.gap is None else self.gap


def make_digit_order(config: DigitOrderConfig = DigitOrderConfig()) -> ClipSplits:
    """Train, val and test sets of digit-order clips, fully determined by ``config``."""
    return reversal_pair_splits(counts=(config.n_train, config.n_val, config.n_test), seed=config.seed, stream=2,
                                num_classes=config.num_classes, classes=list(CLASSES[: config.num_classes]),
                                render_forward=lambda pair, pool, rng: _render_forward(pair, pool, rng, config))


def flash_frames(count: int, rng: np.random.Generator, config: DigitOrderConfig) -> tuple[np.ndarray, np.ndarray]:
    """First frames (t1, t2) of the two flashes: t2 >= t1 + flash + gap, both inside the clip."""
    flash, gap = config.flash_length, config.gap_length
    last = config.frames - flash  # the latest first frame of a flash
    t1 = rng.integers(0, last - flash - gap + 1, size=count)
    t2 = t1 + flash + gap + np.floor(rng.random(count) * (last - t1 - flash - gap + 1)).astype(np.int64)
    return t1, t2


def _render_forward(pair: np.ndarray, pool: np.ndarray, rng: np.random.Generator, config: DigitOrderConfig) -> torch.Tensor:
    """uint8 clips (N, C, T, H, W) in which the pair's first digit flashes first."""
    count, layers, frames, size = pair.shape[0], 2 + config.distractors, config.frames, float(config.size)
    sprite_ids = np.empty((count, layers), dtype=pool.dtype)
    for column in (0, 1):  # the pair's first digits, then its second ones
        sprite_ids[:, column] = sprites_showing(pair, [digits[column] for digits in DIGIT_PAIRS], pool, rng)
    sprite_ids[:, 2:] = rng.choice(pool, size=(count, config.distractors), replace=True)
    size_px = rng.uniform(0.45, 0.6, size=(count, layers, 1)) * size * config.scale
    cx = rng.uniform(0.25, 0.75, size=(count, layers, 1)) * size
    cy = rng.uniform(0.25, 0.75, size=(count, layers, 1)) * size
    left = rng.random(count) < 0.5  # the first digit on the left half, the second on the right, or swapped
    cx[:, 0, 0] = np.where(left, 0.28, 0.72) * size + rng.normal(0.0, 2.0, size=count)
    cx[:, 1, 0] = np.where(left, 0.72, 0.28) * size + rng.normal(0.0, 2.0, size=count)
    alpha = np.ones((count, layers, frames))
    alpha[:, :2] = 0.0
    t1, t2 = flash_frames(count, rng, config)
    steps = np.arange(frames)[None, :]
    alpha[:, 0] = (steps >= t1[:, None]) & (steps < t1[:, None] + config.flash_length)
    alpha[:, 1] = (steps >= t2[:, None]) & (steps < t2[:, None] + config.flash_length)
    ones = np.ones((1, 1, frames))
    params = {
        "cx": (cx * ones + rng.normal(0.0, config.jitter, size=(count, layers, frames))).reshape(-1, frames),
        "cy": (cy * ones + rng.normal(0.0, config.jitter, size=(count, layers, frames))).reshape(-1, frames),
        "angle": (np.deg2rad(rng.uniform(-20.0, 20.0, size=(count, layers, 1))) * ones).reshape(-1, frames),
        "scale": (size_px * ones).reshape(-1, frames),
        "alpha": alpha.reshape(-1, frames),
    }
    drawn = draw_sprites(torch.from_numpy(digit_sprites()[sprite_ids.reshape(-1)]), params, config.size)
    drawn = drawn.reshape(count, layers, frames, config.size, config.size)
    colours = rng.uniform(0.6, 1.0, size=(count, layers, config.channels)).astype(np.float32)
    colours[:, 2:] *= config.contrast
    depth = np.argsort(rng.random((count, layers)), axis=1)  # back-to-front order of the layers
    return to_uint8(stack_layers(drawn, colours, depth), config.noise, rng)


__all__ = ["CLASSES", "DIGIT_PAIRS", "DigitOrderConfig", "flash_frames", "make_digit_order"]
