"""Digit actions: what does the target digit do, while brighter-moving distractors do something else?

Sprites are scikit-learn's ``load_digits`` (nothing is downloaded). Every clip shows one target digit
(one of ``target_digits``, 0-4 by default) doing a small version (``amplitude`` of moving-digits'
extent) of one of the five moving-digits motions or its time reversal, and ``distractors`` digits of
the other kind (5-9), dimmer (``contrast`` times the target's brightness), each doing a full-size
random motion of its own. The layers are stacked in a random depth order, so a distractor can pass
in front of the target and hide part of it::

    target sprite (a 0-4)     --affine per frame: the class's forward motion, x amplitude--+
    distractor sprites (5-9)  --affine per frame: full random motions, half reversed-------+
        --stack back to front (random order), colour (distractors x contrast)--> + noise
        --> forward clip uint8 (C, T, H, W) --odd class: frames reversed--> clip

The ten classes are the target's motion: five motions and their exact time reversals. A clip of an
odd class is a clip of the even class before it played backwards (distractors and noise included),
and distractor motions are drawn reversal-symmetric, so a model that ignores frame order sees the
same frames for both classes of a pair: its ceiling is 50%. Reading the class needs frame order, a
motion of a few pixels (or a small turn, zoom or fade) seen at full resolution, and binding it to the
right digit while larger motions of other digits go on around it.

Train, val and test draw from disjoint sprites (``sprite_split(seed)``, then each split's sprites by
the digit they show) and everything is fixed by the seed; ``num_classes`` keeps the first pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from search.data.clips import ClipSplits, DataError
from search.data.sprites import (MOTIONS, REVERSED_MOTIONS, check_clip_settings, digit_labels, digit_sprites, draw_sprites, reversal_pair_splits,
                                 reverse_rows, sprites_showing, stack_layers, to_uint8, trajectories)

#: class names (the target's motion); classes 2k and 2k+1 are exact time reversals of each other.
CLASSES: tuple[str, ...] = tuple(name for pair in zip(MOTIONS, REVERSED_MOTIONS) for name in pair)
#: (class, its time reversal)
PAIRS: tuple[tuple[int, int], ...] = tuple((k, k + 1) for k in range(0, len(CLASSES), 2))
#: what a class names: ``motion`` (``CLASSES``) or ``digit`` (class 2k: the k-th target digit doing any
#: forward motion, 2k + 1: the same clip played backwards)
LABELS: tuple[str, ...] = ("motion", "digit")


@dataclass(frozen=True)
class DigitActionsConfig:
    """Size and shape of the generated set (clip = ``channels`` x ``frames`` x ``size`` x ``size``) and its difficulty."""

    n_train: int = 1500
    n_val: int = 300
    n_test: int = 1000
    num_classes: int = 10
    channels: int = 3
    frames: int = 8
    size: int = 32
    seed: int = 0
    distractors: int = 2  # digits that move but do not define the class
    target_digits: tuple[int, ...] = (0, 1, 2, 3, 4)  # the target shows one of these, distractors the others
    contrast: float = 0.5  # distractor brightness over the target's
    amplitude: float = 0.3  # the target's motion extent, as a share of moving-digits' (distractors: 1.0)
    scale: float = 0.85  # sprite size, as a share of moving-digits'
    noise: float = 0.06
    jitter: float = 0.6
    label: str = "motion"  # what the class is: the target's motion, or its digit and the direction of time

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise DataError(f"digit-actions: label must be one of {', '.join(LABELS)}, got '{self.label}'")
        check_clip_settings("digit-actions", classes=2 * len(self.target_digits) if self.label == "digit" else len(CLASSES), num_classes=self.num_classes, channels=self.channels,
                            frames=self.frames, size=self.size, counts=(self.n_train, self.n_val, self.n_test))
        if self.distractors < 0:
            raise DataError(f"digit-actions: distractors must be 0 or more, got {self.distractors}")
        if not self.target_digits or not set(self.target_digits) < set(range(10)):
            raise DataError(f"digit-actions: target_digits must be some (not all) of the digits 0-9, got {self.target_digits}")
        if not 0.0 < self.contrast <= 1.0:
            raise DataError(f"digit-actions: contrast (distractor over target brightness) must be in (0, 1], got {self.contrast}")
        if not 0.0 < self.amplitude <= 1.0:
            raise DataError(f"digit-actions: amplitude (the target's share of moving-digits' motion extent) must be in (0, 1], got {self.amplitude}")
        if not 0.0 < self.scale <= 1.5:
            raise DataError(f"digit-actions: scale (sprite size factor) must be in (0, 1.5], got {self.scale}")
        if self.noise < 0.0 or self.jitter < 0.0:
            raise DataError(f"digit-actions: noise and jitter must be 0 or more, got {self.noise} and {self.jitter}")


def make_digit_actions(config: DigitActionsConfig = DigitActionsConfig()) -> ClipSplits:
    """Train, val and test sets of digit-action clips, fully determined by ``config``."""
    return reversal_pair_splits(counts=(config.n_train, config.n_val, config.n_test), seed=config.seed, stream=1,
                                num_classes=config.num_classes, classes=class_names(config),
                                render_forward=lambda pair, pool, rng: _render_forward(pair, _split_pool(pool, config), rng, config))


def class_names(config: DigitActionsConfig) -> list[str]:
    """The names of the set's classes, in label order."""
    if config.label == "motion":
        return list(CLASSES[: config.num_classes])
    return [f"{digit}-{way}" for digit in config.target_digits for way in ("forward", "backward")][: config.num_classes]


def _split_pool(pool: np.ndarray, config: DigitActionsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(target sprites, distractor sprites) of a split's pool, by the digit they show."""
    is_target = np.isin(digit_labels()[pool], config.target_digits)
    return pool[is_target], pool[~is_target]


def _pick_sprites(pools: tuple[np.ndarray, np.ndarray], count: int, distractors: int, rng: np.random.Generator) -> np.ndarray:
    """Sprite ids (count, 1 + distractors): column 0 the target (from ``pools[0]``), then the distractors."""
    return np.concatenate(
        [rng.choice(pools[0], size=(count, 1), replace=True), rng.choice(pools[1], size=(count, distractors), replace=True)], axis=1
    )


def _pick_digit_sprites(pair: np.ndarray, pools: tuple[np.ndarray, np.ndarray], config: DigitActionsConfig,
                        rng: np.random.Generator) -> np.ndarray:
    """Sprite ids (count, 1 + distractors): column 0 a sprite of the digit ``target_digits[pair]``, then the distractors."""
    target = sprites_showing(pair, config.target_digits, pools[0], rng)
    return np.concatenate([target[:, None], rng.choice(pools[1], size=(len(pair), config.distractors), replace=True)], axis=1)


def _render_forward(
    motion: np.ndarray, pools: tuple[np.ndarray, np.ndarray], rng: np.random.Generator, config: DigitActionsConfig
) -> torch.Tensor:
    """uint8 clips (N, C, T, H, W) whose target does the forward ``motion`` (``label`` "digit": shows the
    pair's digit and does any forward motion); the random draws do not depend on the class parity."""
    count, layers = motion.shape[0], 1 + config.distractors
    if config.label == "motion":
        sprite_ids = _pick_sprites(pools, count, config.distractors, rng)
    else:  # ``motion`` holds the pair: the target's digit; its motion is any of the five
        sprite_ids = _pick_digit_sprites(motion, pools, config, rng)
        motion = rng.integers(0, len(MOTIONS), size=count)
    motions = np.concatenate([motion[:, None], rng.integers(0, len(MOTIONS), size=(count, config.distractors))], axis=1)
    flips = np.concatenate([np.zeros((count, 1), bool), rng.random((count, config.distractors)) < 0.5], axis=1)
    amplitude = np.ones((count, layers))
    amplitude[:, 0] = config.amplitude  # the target's motion is (by default) subtler than the distractors'
    params = trajectories(
        motions.reshape(-1), rng, frames=config.frames, size=config.size, jitter=config.jitter, scale=config.scale, amplitude=amplitude.reshape(-1)
    )
    reverse_rows(params, flips.reshape(-1))  # half the distractors do a reversed motion
    alpha = draw_sprites(torch.from_numpy(digit_sprites()[sprite_ids.reshape(-1)]), params, config.size)
    alpha = alpha.reshape(count, layers, config.frames, config.size, config.size)
    colours = rng.uniform(0.6, 1.0, size=(count, layers, config.channels)).astype(np.float32)
    colours[:, 1:] *= config.contrast  # distractors are dimmer than the target
    depth = np.argsort(rng.random((count, layers)), axis=1)  # back-to-front order of the layers
    return to_uint8(stack_layers(alpha, colours, depth), config.noise, rng)


__all__ = ["CLASSES", "LABELS", "PAIRS", "DigitActionsConfig", "class_names", "make_digit_actions"]
