"""Digit sprites and their rendering, shared by the generated data sets (moving-digits, digit-actions).

::

    sklearn load_digits (1797 x 8x8) --digit_sprites--> float32 [0, 1]
        --sprite_split(seed)--> disjoint (train, val, test) index sets
    motion id per clip --trajectories--> per-frame centre, angle, size, opacity (N, T)
        --draw_sprites--> frames (N, T, H, W) in [0, 1]
    layers of a clip --stack_layers (colours, depth order)--> (N, C, T, H, W) --to_uint8 (noise)--> clips
    labels --reversal_pair_splits / render_pairs--> splits whose odd classes are their even twins played backwards

Motions (ids 0..4, each drawn forward; its time reversal is the same parameters with the frame
axis flipped): 0 move-right, 1 move-down, 2 turn-cw, 3 zoom-in, 4 appear.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from search.data.clips import ClipSet, ClipSplits, DataError

#: the forward motions ``trajectories`` draws, by id; the reversal of each is its frames flipped
MOTIONS: tuple[str, ...] = ("move-right", "move-down", "turn-cw", "zoom-in", "appear")
#: the names of the reversed motions, by the same id
REVERSED_MOTIONS: tuple[str, ...] = ("move-left", "move-up", "turn-ccw", "zoom-out", "vanish")


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def digit_sprites() -> np.ndarray:
    """scikit-learn's 1797 8x8 digit images, float32 in [0, 1] (they ship with the package)."""
    return _load_digits()[0]


def digit_labels() -> np.ndarray:
    """The digit (0-9) each sprite shows."""
    return _load_digits()[1]


def sprites_showing(index: np.ndarray, digits: Sequence[int], pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One sprite id from ``pool`` per row, showing the digit ``digits[index[row]]`` (drawn digit by digit, in ``digits`` order)."""
    shown = digit_labels()[pool]
    ids = np.empty(len(index), dtype=pool.dtype)
    for k, digit in enumerate(digits):
        rows = index == k
        ids[rows] = rng.choice(pool[shown == digit], size=int(rows.sum()), replace=True)
    return ids


def sprite_split(seed: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> tuple[np.ndarray, ...]:
    """Disjoint index sets (train, val, test) over the 1797 digit sprites."""
    n = digit_sprites().shape[0]
    order = np.random.default_rng(seed).permutation(n)
    cut1 = int(round(fractions[0] * n))
    cut2 = cut1 + int(round(fractions[1] * n))
    return order[:cut1], order[cut1:cut2], order[cut2:]


def trajectories(
    motion: np.ndarray, rng: np.random.Generator, *, frames: int, size: int, jitter: float,
    scale: float = 1.0, amplitude: float | np.ndarray = 1.0,
) -> dict[str, np.ndarray]:
    """Per-frame centre (cx, cy in pixels), angle (radians), size (pixels), opacity for each clip.

    ``motion`` holds one forward motion id (``MOTIONS``) per clip; ``scale`` multiplies the sprite
    size and ``amplitude`` (one value, or one per clip) the extent of every motion (1.0 and 1.0:
    moving-digits' values).
    """
    n, steps, canvas = motion.shape[0], frames, float(size)
    amp = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), (n,))[:, None]
    scaled = bool(np.any(amp != 1.0))
    ramp = np.linspace(0.0, 1.0, steps, dtype=np.float64)[None, :]
    size_px = rng.uniform(0.45, 0.6, size=(n, 1)) * canvas
    if scale != 1.0:
        size_px = size_px * scale
    tilt = np.deg2rad(rng.uniform(-20.0, 20.0, size=(n, 1)))
    margin = 0.3 * size_px  # the digit fills about the middle 60% of its sprite
    cx = rng.uniform(margin, canvas - margin, size=(n, 1)) * np.ones_like(ramp)
    cy = rng.uniform(margin, canvas - margin, size=(n, 1)) * np.ones_like(ramp)
    angle = tilt * np.ones_like(ramp)
    scale_px = size_px * np.ones_like(ramp)
    alpha = np.ones((n, steps))
    for axis, centre in ((0, cx), (1, cy)):  # move-right/left (x) and move-down/up (y)
        rows = motion == axis
        span = rng.uniform(0.3, 0.45, size=(rows.sum(), 1)) * canvas
        if scaled:
            span = span * amp[rows]
        start = rng.uniform(margin[rows], canvas - margin[rows] - span)
        centre[rows] = start + span * ramp
    rows = motion == 2  # turn clockwise by 90..180 degrees
    turn = np.deg2rad(rng.uniform(90.0, 180.0, size=(rows.sum(), 1)))
    if scaled:
        turn = turn * amp[rows]
    angle[rows] = tilt[rows] + turn * ramp
    rows = motion == 3  # zoom in from about 0.45x to 1.2x of the base size
    low = rng.uniform(0.4, 0.55, size=(rows.sum(), 1))
    top = 1.25
    if scaled:
        low, top = 1.0 - (1.0 - low) * amp[rows], 1.0 + 0.25 * amp[rows]
    scale_px[rows] = size_px[rows] * (low + (top - low) * ramp)
    cx[rows] = canvas / 2 + rng.uniform(-2.0, 2.0, size=(rows.sum(), 1))
    cy[rows] = canvas / 2 + rng.uniform(-2.0, 2.0, size=(rows.sum(), 1))
    rows = motion == 4  # appear: opacity ramps up from 0
    alpha[rows] = np.clip(ramp * rng.uniform(1.0, 1.4, size=(rows.sum(), 1)), 0.0, 1.0)
    if scaled:  # a subtler appear starts at opacity 1 - amplitude
        alpha[rows] = 1.0 - amp[rows] * (1.0 - alpha[rows])
    cx += rng.normal(0.0, jitter, size=cx.shape)
    cy += rng.normal(0.0, jitter, size=cy.shape)
    return {"cx": cx, "cy": cy, "angle": angle, "scale": scale_px, "alpha": alpha}


def draw_sprites(sprites: torch.Tensor, params: dict[str, np.ndarray], canvas: int) -> torch.Tensor:
    """Render every (clip, frame) with one batched ``affine_grid`` + ``grid_sample``: (N, T, H, W) in [0, 1]."""
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


def reverse_rows(params: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Flip the frame axis of ``params`` in place for the clips where ``rows`` is true (time reversal)."""
    for name in params:
        params[name][rows] = params[name][rows, ::-1]


def stack_layers(drawn: torch.Tensor, colours: np.ndarray, depth: np.ndarray) -> torch.Tensor:
    """Layers (N, L, T, H, W) of opacity, each in its colour (N, L, C), stacked back to front in the order
    ``depth`` (N, L) gives (``depth[:, 0]`` at the back), on black: (N, C, T, H, W) in [0, 1]."""
    count, layers = drawn.shape[:2]
    canvas = torch.zeros(count, colours.shape[2], *drawn.shape[2:])
    rows, colour = torch.arange(count), torch.from_numpy(colours)
    for level in range(layers):
        layer = torch.from_numpy(depth[:, level])
        a = drawn[rows, layer][:, None]  # (N, 1, T, H, W)
        canvas = canvas * (1.0 - a) + a * colour[rows, layer][:, :, None, None, None]
    return canvas


def render_pairs(labels: np.ndarray, pool: np.ndarray, rng: np.random.Generator,
                 render_forward: Callable[[np.ndarray, np.ndarray, np.random.Generator], torch.Tensor]) -> torch.Tensor:
    """uint8 clips of ``labels``: ``render_forward(labels // 2, pool, rng)`` draws each clip of its pair
    forwards, and a clip of an odd class is that clip played backwards (every layer and the noise)."""
    clips = render_forward(labels // 2, pool, rng)
    odd = torch.from_numpy(labels % 2 == 1)
    clips[odd] = clips[odd].flip(2)
    return clips


def reversal_pair_splits(*, counts: tuple[int, int, int], seed: int, stream: int, num_classes: int, classes: list[str],
                         render_forward: Callable[[np.ndarray, np.ndarray, np.random.Generator], torch.Tensor]) -> ClipSplits:
    """Train, val and test sets of ``counts`` clips from disjoint sprites (``sprite_split(seed)``), each with
    balanced, shuffled labels of ``num_classes`` classes drawn by ``render_pairs``; ``stream`` keeps one
    generator's random draws apart from another's."""
    sets = []
    for offset, (count, pool) in enumerate(zip(counts, sprite_split(seed))):
        rng = np.random.default_rng([seed, offset, stream])
        labels = np.arange(count) % num_classes
        rng.shuffle(labels)
        sets.append(ClipSet(clips=render_pairs(labels, pool, rng, render_forward), labels=torch.from_numpy(labels.astype(np.int64))))
    return ClipSplits(train=sets[0], val=sets[1], test=sets[2], classes=classes)


def to_uint8(clips: torch.Tensor, noise: float, rng: np.random.Generator) -> torch.Tensor:
    """Add Gaussian pixel noise (std ``noise``), clamp to [0, 1] and quantise to uint8."""
    clips = clips + noise * torch.from_numpy(rng.standard_normal(clips.shape, dtype=np.float32))
    return (clips.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


__all__ = ["MOTIONS", "REVERSED_MOTIONS", "digit_labels", "digit_sprites", "draw_sprites", "render_pairs", "reversal_pair_splits", "reverse_rows",
           "sprite_split", "sprites_showing", "stack_layers", "to_uint8", "trajectories"]


def check_clip_settings(name: str, *, classes: int, num_classes: int, channels: int, frames: int, size: int,
                        counts: tuple[int, int, int]) -> None:
    """The checks every generated set makes of its shared settings; ``DataError`` names the set and the field."""
    if num_classes not in range(2, classes + 1, 2):
        raise DataError(f"{name}: num_classes must be an even number from 2 to {classes} (whole pairs), got {num_classes}")
    if channels not in (1, 3):
        raise DataError(f"{name}: channels must be 1 or 3, got {channels}")
    if frames < 2:
        raise DataError(f"{name}: frames must be at least 2, got {frames}")
    if size < 16:
        raise DataError(f"{name}: size must be at least 16 pixels, got {size}")
    if min(counts) < 1:
        raise DataError(f"{name}: n_train, n_val and n_test must be at least 1")
