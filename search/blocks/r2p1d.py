"""(2+1)D bottleneck: the kt x k x k conv factored into a spatial 1 x k x k and a temporal kt x 1 x 1 conv."""

from __future__ import annotations

import torch.nn as nn

from search.blocks.common import Bottleneck3d, ConvBN, create_activation
from search.blocks.registry import register_block


@register_block("r2p1d", required=("k", "e"), optional=("se", "hs"),
                summary="(2+1)D bottleneck: depthwise spatial 1 x kh x kw, act, depthwise temporal kt x 1 x 1")
def create_r2p1d_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                       kernel: tuple[int, int, int], expansion: int, se: bool = False, act: str = "silu") -> nn.Module:
    """expand -> depthwise (1, kh, kw) at the spatial stride -> BN -> act -> depthwise (kt, 1, 1) at the
    temporal stride -> BN -> [SE] -> act -> project. Both factors are depthwise to keep the cost of a
    mobile-sized space; the extra nonlinearity between them is what (2+1)D adds over a 3D kernel."""
    mid = in_channels * expansion
    kt, kh, kw = kernel
    mixer = nn.Sequential(
        ConvBN(mid, mid, (1, kh, kw), stride=(1, stride[1], stride[2]), groups=mid),
        create_activation(act),
        ConvBN(mid, mid, (kt, 1, 1), stride=(stride[0], 1, 1), groups=mid),
    )
    return Bottleneck3d(in_channels=in_channels, out_channels=out_channels, stride=stride, mid_channels=mid,
                        mixer=mixer, se=se, act=act)
