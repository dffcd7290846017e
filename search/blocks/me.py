"""Motion excitation (TEA, 2D-only): differences of neighbouring frames' features gate the channels."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from search.blocks.common import ConvBN, FrameBottleneck
from search.blocks.registry import register_block


class MotionExcitation(nn.Module):
    """(N, T, C, H, W) -> x + x * sigmoid(expand(mean_hw(conv3x3(r[t+1]) - r[t]))), r = reduce(x).

    All convolutions are 2D over frames; the last frame's difference is zero.
    """

    def __init__(self, channels: int, *, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(4, channels // reduction)
        self.reduce = ConvBN(channels, hidden, (1, 1))
        self.transform = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        self.expand = ConvBN(hidden, channels, (1, 1))
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, frames, channels, height, width = x.shape
        reduced = self.reduce(x.reshape(-1, channels, height, width))
        moved = self.transform(reduced)
        reduced = reduced.reshape(-1, frames, *reduced.shape[1:])
        moved = moved.reshape(-1, frames, *moved.shape[1:])
        motion = F.pad(moved[:, 1:] - reduced[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))
        pooled = motion.mean(dim=(3, 4), keepdim=True)
        gate = self.gate(self.expand(pooled.reshape(-1, pooled.shape[2], 1, 1)))
        return x + x * gate.reshape(-1, frames, channels, 1, 1)


@register_block("me", required=("k", "e"), optional=("se", "hs"), frame_only=True,
                summary="motion excitation + 2D inverted bottleneck (2D-only, kernel k1<h><w>)")
def create_me_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                    kernel: tuple[int, int, int], expansion: int, se: bool = False, act: str = "silu") -> nn.Module:
    """motion excitation -> per frame: 1x1 expand -> depthwise kh x kw -> [SE] -> 1x1 project."""
    return FrameBottleneck(temporal=MotionExcitation(in_channels), in_channels=in_channels, out_channels=out_channels,
                           spatial_stride=stride[1], kernel=kernel[1:], expansion=expansion, se=se, act=act)
