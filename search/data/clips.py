"""Clip sets: uint8 clips in memory plus labels, and the train/val/test triple the search uses.

Clips are stored as uint8 ``(N, C, T, H, W)`` (a quarter of float32) and turned into float
``[0, 1]`` batches on the fly::

    ClipSet.clips uint8 (N, C, T, H, W) --batches(idx)--> float32 (B, C, T, H, W), labels (B,)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from profiler.errors import VidlatError


class DataError(VidlatError):
    """A data set name, folder or option is wrong."""


@dataclass
class ClipSet:
    """Clips (uint8, ``N x C x T x H x W``) and integer labels (``N``)."""

    clips: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip."""
        return tuple(int(v) for v in self.clips.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> "ClipSet":
        """The clips at ``index`` (a view-free copy)."""
        return ClipSet(clips=self.clips[index], labels=self.labels[index])

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Float batches in [0, 1]; shuffled with ``generator`` when ``shuffle``."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            index = order[start : start + batch_size]
            yield self.clips[index].float().div_(255.0), self.labels[index]


@dataclass
class ClipSplits:
    """Train, val and test clip sets with the class names."""

    train: ClipSet
    val: ClipSet
    test: ClipSet
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        return self.train.clip_shape


__all__ = ["ClipSet", "ClipSplits", "DataError"]
