"""Layers shared by the block families: conv + BN, activations, squeeze-excite, bottlenecks.

Two bottleneck skeletons cover the convolutional families::

    Bottleneck3d (x3d, r2p1d, csn)      (N, C, T, H, W)
        1x1x1 expand -> BN -> act -> mixer (the family's spatio-temporal conv(s), + BN)
        -> [SE] -> act -> 1x1x1 project -> BN -> (+ input when shapes allow)

    FrameBottleneck (tsm, me: 2D-only)  (N, C, T, H, W) -> (N, T, C, H, W)
        temporal op on whole frames (shift / motion excitation)
        -> reshape (N*T, C, H, W) -> 2D 1x1 expand -> depthwise k x k -> [SE] -> 1x1 project
        -> (+ input when shapes allow) -> reshape back to (N, C_out, T, H', W')
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "hardswish": nn.Hardswish, "relu": nn.ReLU}


def create_activation(name: str) -> nn.Module:
    """``nn.SiLU`` / ``nn.Hardswish`` / ``nn.ReLU`` by name."""
    return ACTIVATIONS[name]()


def same_padding(kernel: tuple[int, ...]) -> tuple[int, ...]:
    """k // 2 per dimension: with odd kernels the output size is ceil(size / stride)."""
    return tuple(size // 2 for size in kernel)


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, 2D or 3D by the length of ``kernel``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, ...], *,
                 stride: tuple[int, ...] | None = None, groups: int = 1) -> None:
        conv_cls, norm_cls = (nn.Conv3d, nn.BatchNorm3d) if len(kernel) == 3 else (nn.Conv2d, nn.BatchNorm2d)
        super().__init__(
            conv_cls(in_channels, out_channels, kernel, stride=stride or (1,) * len(kernel),
                     padding=same_padding(kernel), groups=groups, bias=False),
            norm_cls(out_channels),
        )


class SqueezeExcite(nn.Module):
    """Channel gate from the global mean: x * sigmoid(W2 relu(W1 mean(x))), 2D or 3D."""

    def __init__(self, channels: int, *, dims: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        conv_cls = nn.Conv3d if dims == 3 else nn.Conv2d
        self.reduce = conv_cls(channels, hidden, 1)
        self.act = nn.ReLU()
        self.expand = conv_cls(hidden, channels, 1)
        self.gate = nn.Sigmoid()
        self.dims = tuple(range(2, 2 + dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=self.dims, keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


class Bottleneck3d(nn.Module):
    """Inverted bottleneck over (N, C, T, H, W) around a family-specific ``mixer`` (mid -> mid)."""

    def __init__(self, *, in_channels: int, out_channels: int, stride: tuple[int, int, int], mid_channels: int,
                 mixer: nn.Module, se: bool, act: str) -> None:
        super().__init__()
        self.expand = nn.Sequential(ConvBN(in_channels, mid_channels, (1, 1, 1)), create_activation(act))
        self.mixer = mixer
        self.se = SqueezeExcite(mid_channels, dims=3) if se else nn.Identity()
        self.act = create_activation(act)
        self.project = ConvBN(mid_channels, out_channels, (1, 1, 1))
        self.residual = in_channels == out_channels and tuple(stride) == (1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.act(self.se(self.mixer(self.expand(x)))))
        return x + y if self.residual else y

    def shareable_convs(self) -> dict[str, ConvBN]:
        """The conv + BN pairs whose convolution a supernet may share with other candidates, by role:
        ``expand`` and ``project`` always, ``depthwise`` when the mixer is one depthwise conv (x3d)."""
        convs = {"expand": self.expand[0], "project": self.project}
        if isinstance(self.mixer, ConvBN) and self.mixer[0].groups == self.mixer[0].in_channels:
            convs["depthwise"] = self.mixer
        return convs


class FrameBottleneck(nn.Module):
    """2D-only block: a temporal op on (N, T, C, H, W), then a 2D inverted bottleneck per frame."""

    def __init__(self, *, temporal: nn.Module, in_channels: int, out_channels: int, spatial_stride: int,
                 kernel: tuple[int, int], expansion: int, se: bool, act: str) -> None:
        super().__init__()
        mid = in_channels * expansion
        self.temporal = temporal
        self.expand = nn.Sequential(ConvBN(in_channels, mid, (1, 1)), create_activation(act))
        self.depthwise = ConvBN(mid, mid, kernel, stride=(spatial_stride, spatial_stride), groups=mid)
        self.se = SqueezeExcite(mid, dims=2) if se else nn.Identity()
        self.act = create_activation(act)
        self.project = ConvBN(mid, out_channels, (1, 1))
        self.residual = in_channels == out_channels and spatial_stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, channels, frames, height, width = x.shape
        x = x.transpose(1, 2)  # (N, T, C, H, W)
        y = self.temporal(x).reshape(-1, channels, height, width)
        y = self.project(self.act(self.se(self.depthwise(self.expand(y)))))
        if self.residual:
            y = y + x.reshape(-1, channels, height, width)
        return y.reshape(-1, frames, *y.shape[1:]).transpose(1, 2)

    def shareable_convs(self) -> dict[str, ConvBN]:
        """As ``Bottleneck3d.shareable_convs``: the per-frame 2D convs are 1 x k x k slices of the 3D ones."""
        return {"expand": self.expand[0], "depthwise": self.depthwise, "project": self.project}


def group_count(channels: int, group_width: int) -> int:
    """Groups of (at most) ``group_width`` channels that divide ``channels`` evenly."""
    return channels // math.gcd(channels, group_width)
