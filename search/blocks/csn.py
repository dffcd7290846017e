"""Channel-separated bottleneck: the kt x k x k conv is grouped (a few channels per group), as in CSN."""

from __future__ import annotations

import torch.nn as nn

from search.blocks.common import Bottleneck3d, ConvBN, group_count
from search.blocks.registry import register_block

GROUP_WIDTH = 8  # channels per group of the separated 3D conv


@register_block("csn", required=("k", "e"), optional=("se", "hs"),
                summary=f"channel-separated bottleneck: grouped kt x kh x kw conv, {GROUP_WIDTH} channels per group")
def create_csn_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                     kernel: tuple[int, int, int], expansion: int, se: bool = False, act: str = "silu") -> nn.Module:
    """expand -> grouped ``kernel`` conv (``GROUP_WIDTH`` channels per group) at ``stride`` -> [SE] -> project."""
    mid = in_channels * expansion
    mixer = ConvBN(mid, mid, kernel, stride=stride, groups=group_count(mid, GROUP_WIDTH))
    return Bottleneck3d(in_channels=in_channels, out_channels=out_channels, stride=stride, mid_channels=mid,
                        mixer=mixer, se=se, act=act)
