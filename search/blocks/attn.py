"""Multi-head self-attention over space-time tokens, pre-norm, with an MLP (a ViT/MViT block)."""

from __future__ import annotations

import torch
import torch.nn as nn

from search.blocks.common import ConvBN
from search.blocks.registry import register_block


class SpaceTimeAttention(nn.Module):
    """(N, C, T, H, W) -> tokens (N, T*H*W, C) -> x + MHSA(LN(x)) -> x + MLP(LN(x)) -> (N, C, T, H, W).

    Where channels or stride change, a strided 1x1x1 conv + BN maps the input first.
    Attention is written with explicit matmuls so it exports to plain MatMul/Softmax nodes.
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: tuple[int, int, int], heads: int,
                 mlp_ratio: int) -> None:
        super().__init__()
        reshape = in_channels != out_channels or tuple(stride) != (1, 1, 1)
        self.entry = ConvBN(in_channels, out_channels, (1, 1, 1), stride=stride) if reshape else nn.Identity()
        self.heads = heads
        self.scale = (out_channels // heads) ** -0.5
        self.norm1 = nn.LayerNorm(out_channels)
        self.qkv = nn.Linear(out_channels, 3 * out_channels)
        self.proj = nn.Linear(out_channels, out_channels)
        self.norm2 = nn.LayerNorm(out_channels)
        self.mlp = nn.Sequential(nn.Linear(out_channels, mlp_ratio * out_channels), nn.GELU(),
                                 nn.Linear(mlp_ratio * out_channels, out_channels))

    def attention(self, tokens: torch.Tensor) -> torch.Tensor:
        length, channels = tokens.shape[1:]
        qkv = self.qkv(tokens).reshape(-1, length, 3, self.heads, channels // self.heads).permute(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax(torch.matmul(query * self.scale, key.transpose(-2, -1)), dim=-1)
        mixed = torch.matmul(weights, value).transpose(1, 2).reshape(-1, length, channels)
        return self.proj(mixed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(x)
        _, channels, frames, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(-1, channels, frames, height, width)


@register_block("attn", required=("h",), optional=("e",),
                summary="pre-norm multi-head self-attention over T*H*W tokens + MLP (e = MLP ratio, default 2)")
def create_attn_block(*, in_channels: int, out_channels: int, stride: tuple[int, int, int], heads: int,
                      expansion: int = 2) -> nn.Module:
    """Space-time MHSA with ``heads`` heads and an MLP of ``expansion`` x the channels."""
    return SpaceTimeAttention(in_channels=in_channels, out_channels=out_channels, stride=stride, heads=heads,
                              mlp_ratio=expansion)
