"""Accuracy of architectures on a trained supernet, with its shared weights (no training).

::

    supernet --copy, eval mode, BN on batch statistics--> probe
    probe(x, path=[i_0 .. i_L-1]) --top-1 on clips--> accuracy of that one arch     (path_accuracy, SupernetScorer)
    probe(x, sample=True)         --top-1 on clips--> accuracy of softmax(logits)   (sampled_accuracy)

Batch norm uses each batch's statistics: the running averages mix every path the supernet trained and
fit no single one (default space after 9 weight-only epochs: 0.20 val accuracy with batch statistics,
0.11 with the running ones). All scoring runs on a copy, so the supernet is left as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn

from search.data.clips import ClipSet
from search.supernet import Supernet
from search.train import channels_last_input


def batch_statistics_probe(supernet: Supernet) -> Supernet:
    """A copy of ``supernet`` in eval mode whose batch-norm layers normalise with each batch's statistics."""
    probe = copy.deepcopy(supernet).eval()
    for module in probe.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
    return probe


def _accuracy(probe: Supernet, clips: ClipSet, batch_size: int, **forward) -> float:
    correct = 0
    with torch.no_grad():
        for x, y in clips.batches(batch_size):
            logits, _ = probe(channels_last_input(x), **forward)
            correct += int((logits.argmax(dim=1) == y).sum())
    return correct / max(1, len(clips))


def sampled_accuracy(supernet: Supernet, clips: ClipSet, *, batch_size: int = 100) -> float:
    """Accuracy of archs drawn from softmax(logits), one per batch and layer, on the shared weights."""
    return _accuracy(batch_statistics_probe(supernet), clips, batch_size, sample=True)


def path_accuracy(supernet: Supernet, clips: ClipSet, path: Sequence[int], *, batch_size: int = 100) -> float:
    """Accuracy of the single architecture ``path`` (one candidate index per layer) on the shared weights."""
    return _accuracy(batch_statistics_probe(supernet), clips, batch_size, path=list(path))


class SupernetScorer:
    """Scores many architectures on one probe copy of a trained supernet; results are cached per path."""

    def __init__(self, supernet: Supernet, clips: ClipSet, *, batch_size: int = 100) -> None:
        self.probe = batch_statistics_probe(supernet)
        self.clips = clips
        self.batch_size = batch_size
        self.scores_: dict[tuple[int, ...], float] = {}

    def __call__(self, path: Sequence[int]) -> float:
        key = tuple(int(index) for index in path)
        if key not in self.scores_:
            self.scores_[key] = _accuracy(self.probe, self.clips, self.batch_size, path=list(key))
        return self.scores_[key]


__all__ = ["SupernetScorer", "batch_statistics_probe", "path_accuracy", "sampled_accuracy"]
