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

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from search.data.clips import ClipSet, ClipSplits, DataError

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
        if self.num_classes not in range(2, len(CLASSES) + 1, 2):
            raise DataError(f"moving-digits: num_classes must be an even number from 2 to {len(CLASSES)} (whole pairs), got {self.num_classes}")
        if self.channels not in (1, 3):
            raise DataError(f"moving-digits: channels must be 1 or 3, got {self.channels}")
        if self.frames < 2:
            raise DataError(f"moving-digits: frames must be at least 2, got {self.frames}")
        if self.size < 16:
            raise DataError(f"moving-digits: size must be at least 16 pixels, got {self.size}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise DataError("moving-digits: n_train, n_val and n_test must be at least 1")


def sprite_split(seed: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> tuple[np.ndarray, ...]:
    """Disjoint index sets (train, val, test) over the 1797 digit sprites."""
    n = _sprites().shape[0]
    order = np.random.default_rng(seed).permutation(n)
    cut1 = int(round(fractions[0] * n))
    cut2 = cut1 + int(round(fractions[1] * n))
    return order[:cut1], order[cut1:cut2], order[cut2:]


def make_moving_digits(config: MovingDigitsConfig = MovingDigitsConfig()) -> ClipSplits:
    """Train, val and test sets of moving-digit clips, fully determined by ``config``."""
    pools = sprite_split(config.seed)
    sets = []
    for offset, (count, pool) in enumerate(zip((config.n_train, config.n_val, config.n_test), pools)):
        rng = np.random.default_rng([config.seed, offset])
        sets.append(_render_set(count, pool, rng, config))
    return ClipSplits(train=sets[0], val=sets[1], test=sets[2], classes=list(CLASSES[: config.num_classes]))


@functools.lru_cache(maxsize=1)
def _sprites() -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    return images


def _render_set(count: int, pool: np.ndarray, rng: np.random.Generator, config: MovingDigitsConfig) -> ClipSet:
    labels = np.arange(count) % config.num_classes
    rng.shuffle(labels)
    sprite_ids = rng.choice(pool, size=count, replace=True)
    params = _trajectories(labels // 2, rng, config)  # each (count, T): the forward motion of the pair
    for name in params:
        params[name][labels % 2 == 1] = params[name][labels % 2 == 1, ::-1]  # odd class: time reversal
    sprites = torch.from_numpy(_sprites()[sprite_ids])
    frames = _draw(sprites, params, config.size)  # (N, T, H, W) in [0, 1]
    colours = rng.uniform(0.5, 1.0, size=(count, config.channels)).astype(np.float32)
    if config.channels == 1:
        colours[:] = 1.0
    clips = frames[:, None] * torch.from_numpy(colours)[:, :, None, None, None]
    clips = clips + config.noise * torch.from_numpy(rng.standard_normal(clips.shape, dtype=np.float32))
    clips = (clips.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return ClipSet(clips=clips, labels=torch.from_numpy(labels.astype(np.int64)))


def _trajectories(motion: np.ndarray, rng: np.random.Generator, config: MovingDigitsConfig) -> dict[str, np.ndarray]:
    """Per-frame centre (cx, cy in pixels), angle (radians), size (pixels), opacity for each clip."""
    n, steps, canvas = motion.shape[0], config.frames, float(config.size)
    ramp = np.linspace(0.0, 1.0, steps, dtype=np.float64)[None, :]
    size = rng.uniform(0.45, 0.6, size=(n, 1)) * canvas
    tilt = np.deg2rad(rng.uniform(-20.0, 20.0, size=(n, 1)))
    margin = 0.3 * size  # the digit fills about the middle 60% of its sprite
    cx = rng.uniform(margin, canvas - margin, size=(n, 1)) * np.ones_like(ramp)
    cy = rng.uniform(margin, canvas - margin, size=(n, 1)) * np.ones_like(ramp)
    angle = tilt * np.ones_like(ramp)
    scale = size * np.ones_like(ramp)
    alpha = np.ones((n, steps))
    for axis, centre in ((0, cx), (1, cy)):  # move-right/left (x) and move-down/up (y)
        rows = motion == axis
        span = rng.uniform(0.3, 0.45, size=(rows.sum(), 1)) * canvas
        start = rng.uniform(margin[rows], canvas - margin[rows] - span)
        centre[rows] = start + span * ramp
    rows = motion == 2  # turn clockwise by 90..180 degrees
    turn = np.deg2rad(rng.uniform(90.0, 180.0, size=(rows.sum(), 1)))
    angle[rows] = tilt[rows] + turn * ramp
    rows = motion == 3  # zoom in from about 0.45x to 1.2x of the base size
    low = rng.uniform(0.4, 0.55, size=(rows.sum(), 1))
    scale[rows] = size[rows] * (low + (1.25 - low) * ramp)
    cx[rows] = canvas / 2 + rng.uniform(-2.0, 2.0, size=(rows.sum(), 1))
    cy[rows] = canvas / 2 + rng.uniform(-2.0, 2.0, size=(rows.sum(), 1))
    rows = motion == 4  # appear: opacity ramps up from 0
    alpha[rows] = np.clip(ramp * rng.uniform(1.0, 1.4, size=(rows.sum(), 1)), 0.0, 1.0)
    cx += rng.normal(0.0, config.jitter, size=cx.shape)
    cy += rng.normal(0.0, config.jitter, size=cy.shape)
    return {"cx": cx, "cy": cy, "angle": angle, "scale": scale, "alpha": alpha}


def _draw(sprites: torch.Tensor, params: dict[str, np.ndarray], canvas: int) -> torch.Tensor:
    """Render every (clip, frame) with one batched ``affine_grid`` + ``grid_sample``."""
    n, steps = params["cx"].shape
    p = {name: torch.from_numpy(np.ascontiguousarray(value)).float().reshape(-1) for name, value in params.items()}
    cos, sin = torch.cos(p["angle"]), torch.sin(p["angle"])
    k = canvas / p["scale"]  # canvas units per sprite unit, in normalised coordinates
    # input = R(-angle) * (k * output + 2 * (canvas / 2 - centre) / size)
    ox = (canvas / 2 - p["cx"]) * 2 / p["scale"]
    oy = (canvas / 2 - p["cy"]) * 2 / p["scale"]
    theta = torch.stack(
        [
            torch.stack([cos * k, sin * k, cos * ox + sin * oy], dim=-1),
            torch.stack([-sin * k, cos * k, -sin * ox + cos * oy], dim=-1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [n * steps, 1, canvas, canvas], align_corners=False)
    source = sprites[:, None].expand(n, steps, 8, 8).reshape(n * steps, 1, 8, 8)
    frames = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (frames.reshape(n, steps, canvas, canvas) * p["alpha"].reshape(n, steps, 1, 1)).clamp(0.0, 1.0)


__all__ = ["CLASSES", "PAIRS", "MovingDigitsConfig", "make_moving_digits", "sprite_split"]
