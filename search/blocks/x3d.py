"""X3D-style inverted bottleneck: 1x1x1 expand, depthwise kt x k x k, optional SE, 1x1x1 project."""

from __future__ import annotations

import torch.nn as nn

from search.blocks.common import Bottleneck3d, ConvBN
from search.blocks.registry import register_block


@register_block("x3d", required=("k", "e"), optional=("se", "hs"),
                summary="X3D inverted bottleneck with a depthwise kt x kh x kw conv")
def create_x3d_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                     kernel: tuple[int, int, int], expansion: int, se: bool = False, act: str = "silu") -> nn.Module:
    """(N, C_in, T, H, W) -> expand x``expansion`` -> depthwise ``kernel`` at ``stride`` -> [SE] -> C_out."""
    mid = in_channels * expansion
    mixer = ConvBN(mid, mid, kernel, stride=stride, groups=mid)
    return Bottleneck3d(in_channels=in_channels, out_channels=out_channels, stride=stride, mid_channels=mid,
                        mixer=mixer, se=se, act=act)
