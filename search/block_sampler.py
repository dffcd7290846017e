"""Extra block configurations around a search space, so regressors see more than the table.

::

    space layers ──every (slot, candidate) but skip──> base configs (in shape, out, stride)
        │  widths x {0.5, 0.75, 1.25, 1.5}   (in and out channels, multiples of 8)
        │  resolution x {0.5, 1.5}           (H and W, at least 2)
        │  frames {4, 16}                    (T; 2D-only blocks too)
        v
    variants not in the space ──weighted draw without replacement──> block workloads
                                   weight = family's regressor error (more where error is high)

The draw is seeded, so the same call gives the same workloads; measure them with
``profiler.sweep.profile_workloads`` and refit (``vidlat fit --sample N`` does both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from profiler.workload import Workload
from search.blocks import parse_block
from search.blocks.registry import check_shapes
from search.errors import BlockSpecError
from search.space import SearchSpace
from search.workloads import block_key, block_workload

WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.25, 1.5)
RESOLUTIONS: tuple[float, ...] = (0.5, 1.5)
FRAMES: tuple[int, ...] = (4, 16)


@dataclass(frozen=True)
class BlockConfig:
    """One block at one shape: what ``block_workload`` needs."""

    block: str
    input_shape: tuple[int, int, int, int]
    out_channels: int
    stride: tuple[int, int, int]

    @property
    def family(self) -> str:
        return parse_block(self.block).family

    @property
    def key(self) -> str:
        return block_key(self.block, self.input_shape, self.out_channels, self.stride)

    def workload(self) -> Workload:
        return block_workload(self.block, input_shape=self.input_shape, out_channels=self.out_channels, stride=self.stride)


def _round8(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


def variants(space: SearchSpace) -> list[BlockConfig]:
    """Every width / resolution / frame-count variant of the space's blocks that the space lacks."""
    own = {item.workload.key for item in space.workloads()}
    found: dict[str, BlockConfig] = {}
    for slot in space.layers:
        c, t, h, w = slot.input_shape
        shapes = [((_round8(c * f), t, h, w), _round8(slot.out_channels * f)) for f in WIDTHS]
        shapes += [((c, t, max(2, round(h * f)), max(2, round(w * f))), slot.out_channels) for f in RESOLUTIONS]
        shapes += [((c, frames, h, w), slot.out_channels) for frames in FRAMES if frames != t]
        for block in slot.candidates:
            spec = parse_block(block)
            if spec.family == "skip":
                continue
            for shape, out in shapes:
                if slot.in_channels == slot.out_channels and slot.stride == (1, 1, 1):
                    out = shape[0]  # keep residual layers residual
                try:
                    check_shapes(spec, in_channels=shape[0], out_channels=out, stride=slot.stride)
                except BlockSpecError:
                    continue
                config = BlockConfig(block, shape, out, slot.stride)
                if config.key not in own:
                    found.setdefault(config.key, config)
    return list(found.values())


def sample_block_configs(
    space: SearchSpace, count: int, *, family_weights: Mapping[str, float] | None = None, seed: int = 0
) -> list[BlockConfig]:
    """``count`` variants drawn without replacement, each family weighted by ``family_weights``
    (e.g. the regressor's MAPE per family; families not named get the mean weight)."""
    pool = variants(space)
    if count <= 0 or not pool:
        return []
    weights = dict(family_weights or {})
    default = float(np.mean(list(weights.values()))) if weights else 1.0
    families = [config.family for config in pool]
    share = np.array([max(weights.get(family, default), 1e-6) for family in families], dtype=float)
    per_family = {family: families.count(family) for family in set(families)}
    probability = share / np.array([per_family[family] for family in families])  # weight is per family, not per variant
    probability /= probability.sum()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False, p=probability)
    return [pool[i] for i in sorted(chosen)]
