"""Temporal shift (TSM, 2D-only): shift 1/8 of the channels one frame forward and 1/8 back, then 2D convs."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from search.blocks.common import FrameBottleneck
from search.blocks.registry import register_block


class TemporalShift(nn.Module):
    """(N, T, C, H, W): channels [0, C/d) take frame t-1, [C/d, 2C/d) take frame t+1, zeros at the ends.

    Written as Slice + Pad + Concat so it exports without ScatterND (no in-place writes).
    """

    def __init__(self, channels: int, *, fold_div: int = 8) -> None:
        super().__init__()
        self.fold = channels // fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = self.fold
        forward = F.pad(x[:, :-1, :fold], (0, 0, 0, 0, 0, 0, 1, 0))
        backward = F.pad(x[:, 1:, fold:2 * fold], (0, 0, 0, 0, 0, 0, 0, 1))
        return torch.cat([forward, backward, x[:, :, 2 * fold:]], dim=2)


@register_block("tsm", required=("k", "e"), optional=("se", "hs"), frame_only=True,
                summary="temporal shift + 2D inverted bottleneck (2D-only, kernel k1<h><w>)")
def create_tsm_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                     kernel: tuple[int, int, int], expansion: int, se: bool = False, act: str = "silu") -> nn.Module:
    """shift -> per frame: 1x1 expand -> depthwise kh x kw at the spatial stride -> [SE] -> 1x1 project."""
    return FrameBottleneck(temporal=TemporalShift(in_channels), in_channels=in_channels, out_channels=out_channels,
                           spatial_stride=stride[1], kernel=kernel[1:], expansion=expansion, se=se, act=act)
