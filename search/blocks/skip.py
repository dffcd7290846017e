"""Skip: the identity, a candidate on layers beyond a stage's minimum depth."""

from __future__ import annotations

import torch.nn as nn

from search.blocks.registry import register_block


@register_block("skip", identity_only=True, summary="identity (only where in == out channels and stride 111)")
def create_skip_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int]) -> nn.Module:
    """``nn.Identity``; shapes were checked by ``create_block``."""
    return nn.Identity()
