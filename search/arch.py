"""Arch specs: one concrete network of a space, as a small YAML/JSON file, and ``build_model``.

::

    space: default                     arch.yaml --load_arch--> ArchSpec --build_model--> VideoNet
    input_shape: [3, 8, 112, 112]                                             (N, C, T, H, W)
    stem: {channels: 24}                                                       -> stem
    layers: [x3d_k333_e3_se, skip, ...]   one block string per searchable layer -> layers
    channels: [24, 24, ...]               output channels per layer
    strides: [[1, 2, 2], [1, 1, 1], ...]  stride (t, h, w) per layer
    head: {channels: 432}                                                      -> head -> (N, classes)
    num_classes: 10

The head pools globally, so the model also runs at smaller proxy shapes (e.g. 3x8x32x32).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import yaml

from profiler.errors import VidlatError, clip, short_repr
from profiler.yaml_config import read_yaml
from search.blocks import check_shapes, create_block, output_shape, parse_block
from search.blocks.common import ConvBN
from search.errors import ArchSpecError, BlockSpecError

STEM_KEYS = {"channels", "temporal_kernel"}
STEM_TEMPORAL_KERNEL = 5  # the stem's depthwise temporal kernel where an arch does not say
HEAD_KEYS = {"channels"}
MAX_CHANNELS = 4096  # per layer, stem and head (and the stem's temporal kernel): X3D-L's widest is 2048
MAX_INPUT_ELEMENTS = 1 << 26  # C*T*H*W of the deployment input (3x16x224x224 is 2.4M)
MAX_CLASSES = 100_000


def _sizes(values: Any, length: int) -> bool:
    """Whether ``values`` is a list/tuple of ``length`` positive integers (numpy ones too; booleans are not)."""
    return (isinstance(values, list | tuple) and len(values) == length
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) and v >= 1 for v in values))


@dataclass
class ArchSpec:
    """A concrete network: the space it came from, its deployment input (C, T, H, W) and its layers."""

    space: str
    input_shape: tuple[int, int, int, int]
    stem: dict[str, int]
    layers: list[str]
    channels: list[int]
    strides: list[tuple[int, int, int]]
    head: dict[str, int]
    num_classes: int
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()
        self.input_shape = tuple(int(size) for size in self.input_shape)  # type: ignore[assignment]
        # one spelling per network, so that its digest (and network key) does not depend on how the file
        # ordered the stem's keys or whether it spelled out the default temporal kernel
        self.stem = {"channels": int(self.stem["channels"]),
                     "temporal_kernel": int(self.stem.get("temporal_kernel", STEM_TEMPORAL_KERNEL))}
        self.layers = [str(parse_block(block)) for block in self.layers]  # canonical: "x3d_e2_k333" -> "x3d_k333_e2"
        self.channels = [int(size) for size in self.channels]
        self.strides = [tuple(int(size) for size in stride) for stride in self.strides]  # type: ignore[misc]
        self.head = {key: int(value) for key, value in self.head.items()}
        self.num_classes = int(self.num_classes)

    def validate(self) -> None:
        """``ArchSpecError`` naming the first inconsistency (types, sizes, and each block at its shapes)."""
        if not _sizes(self.input_shape, 4):
            raise ArchSpecError(f"input_shape must be four positive sizes [C, T, H, W], got {short_repr(self.input_shape)}")
        for part, keys in (("stem", STEM_KEYS), ("head", HEAD_KEYS)):
            value = getattr(self, part)
            if not isinstance(value, dict) or "channels" not in value or set(value) - keys:
                raise ArchSpecError(f"{part} must be a mapping with 'channels' (allowed keys: {', '.join(sorted(keys))}), got {short_repr(value)}")
            if not _sizes(list(value.values()), len(value)):
                raise ArchSpecError(f"{part} sizes must be positive integers, got {short_repr(value)}")
        if self.stem.get("temporal_kernel", 1) % 2 == 0:
            raise ArchSpecError(f"stem.temporal_kernel must be odd (it pads k // 2), got {self.stem['temporal_kernel']}")
        for name, value in (("space", self.space), ("name", self.name)):
            if not isinstance(value, str):
                raise ArchSpecError(f"{name} must be a string, got {short_repr(value)}")
        if not isinstance(self.notes, dict):
            raise ArchSpecError(f"notes must be a mapping, got {short_repr(self.notes)}")
        if not isinstance(self.layers, list | tuple) or not self.layers or not all(isinstance(b, str) for b in self.layers):
            raise ArchSpecError(f"layers must be a non-empty list of block strings, got {short_repr(self.layers)}")
        if not isinstance(self.channels, list | tuple) or not _sizes(self.channels, len(self.channels)):
            raise ArchSpecError(f"channels must be a list of positive integers, got {short_repr(self.channels)}")
        if not isinstance(self.strides, list | tuple) or not all(_sizes(stride, 3) for stride in self.strides):
            raise ArchSpecError(f"strides must be a list of [t, h, w] positive integers, got {short_repr(self.strides)}")
        if not len(self.layers) == len(self.channels) == len(self.strides):
            raise ArchSpecError(f"layers, channels and strides must have the same length, got "
                                f"{len(self.layers)}, {len(self.channels)}, {len(self.strides)}")
        if not _sizes([self.num_classes], 1):
            raise ArchSpecError(f"num_classes must be a positive integer, got {short_repr(self.num_classes)}")
        self._check_bounds()
        in_channels = self.stem["channels"]
        for index, (block, out, stride) in enumerate(zip(self.layers, self.channels, self.strides)):
            try:
                check_shapes(parse_block(block), in_channels=in_channels, out_channels=out, stride=tuple(stride))
            except BlockSpecError as exc:
                raise ArchSpecError(f"layer {index}: {exc}") from exc
            in_channels = out

    def _check_bounds(self) -> None:
        """``ArchSpecError`` if a size is beyond what any video network here needs (a hostile file's
        10**9 channels would otherwise be allocated by ``build_model``)."""
        widths = {"channels": self.channels, "stem": list(self.stem.values()), "head": list(self.head.values()),
                  "input_shape channels": [self.input_shape[0]]}
        for name, sizes in widths.items():
            if max(sizes) > MAX_CHANNELS:
                raise ArchSpecError(f"{name} must be at most {MAX_CHANNELS}, got {max(sizes)}")
        if math.prod(self.input_shape) > MAX_INPUT_ELEMENTS:
            raise ArchSpecError(f"input_shape {list(self.input_shape)} has {math.prod(self.input_shape)} elements; "
                                f"at most {MAX_INPUT_ELEMENTS}")
        if self.num_classes > MAX_CLASSES:
            raise ArchSpecError(f"num_classes must be at most {MAX_CLASSES}, got {self.num_classes}")

    def layer_shapes(self) -> list[tuple[tuple[int, int, int, int], int, tuple[int, int, int]]]:
        """(input shape (C, T, H, W), out channels, stride) of every layer at the deployment shape."""
        shape = stem_output_shape(self.input_shape, self.stem["channels"])
        result = []
        for out, stride in zip(self.channels, self.strides):
            result.append((shape, out, stride))
            shape = output_shape(shape, out_channels=out, stride=stride)
        return result

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["strides"] = [list(stride) for stride in self.strides]
        if not self.name:
            del data["name"]
        if not self.notes:
            del data["notes"]
        return data

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "arch") -> "ArchSpec":
        """Build and validate from a mapping; ``ArchSpecError`` prefixed with ``source``."""
        if not isinstance(data, dict):
            raise ArchSpecError(f"{source}: an arch spec is a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        required = known - {"name", "notes"}
        unknown = sorted(short_repr(key) if not isinstance(key, str) else clip(key) for key in set(data) - known)
        missing = sorted(required - set(data))
        if unknown or missing:
            what = f"unknown key(s) {', '.join(unknown)}" if unknown else f"missing key(s) {', '.join(missing)}"
            raise ArchSpecError(f"{source}: {what}; keys are {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except ArchSpecError as exc:
            raise ArchSpecError(f"{source}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write YAML (or JSON if the suffix is .json)."""
        path = Path(path)
        if path.suffix == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=110)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ArchSpecError(f"cannot write arch file {path} ({exc})") from None


def load_arch(path: str | Path) -> ArchSpec:
    """Read an arch spec (YAML or JSON); ``ArchSpecError`` names the file and the problem."""
    return ArchSpec.from_dict(read_yaml(path, error=ArchSpecError, what="arch file"), source=str(path))


def stem_output_shape(input_shape: tuple[int, int, int, int], channels: int) -> tuple[int, int, int, int]:
    """The stem halves H and W: (C_in, T, H, W) -> (channels, T, ceil(H/2), ceil(W/2))."""
    return output_shape(input_shape, out_channels=channels, stride=(1, 2, 2))


def create_stem(*, in_channels: int, out_channels: int, temporal_kernel: int = STEM_TEMPORAL_KERNEL) -> nn.Module:
    """X3D stem: 1x3x3 conv at spatial stride 2, depthwise temporal kt x 1 x 1 conv, BN, ReLU."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
        ConvBN(out_channels, out_channels, (temporal_kernel, 1, 1), groups=out_channels),
        nn.ReLU(),
    )


class Head(nn.Module):
    """1x1x1 conv to ``hidden_channels`` + BN + ReLU, global average pool over T, H, W, linear classifier."""

    def __init__(self, *, in_channels: int, hidden_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(ConvBN(in_channels, hidden_channels, (1, 1, 1)), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(hidden_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.conv(x)).flatten(1))


def create_head(*, in_channels: int, hidden_channels: int, num_classes: int) -> nn.Module:
    """(N, C, T, H, W) -> (N, num_classes) at any T, H, W."""
    return Head(in_channels=in_channels, hidden_channels=hidden_channels, num_classes=num_classes)


class VideoNet(nn.Module):
    """stem -> layers (one block per arch layer) -> head."""

    def __init__(self, stem: nn.Module, layers: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.Sequential(*layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


def build_model(arch: ArchSpec) -> VideoNet:
    """The torch module of ``arch`` (train mode, fresh weights): (N, C, T, H, W) -> (N, num_classes)."""
    layers = []
    in_channels = arch.stem["channels"]
    for index, (block, out, stride) in enumerate(zip(arch.layers, arch.channels, arch.strides)):
        try:
            layers.append(create_block(block, in_channels=in_channels, out_channels=out, stride=stride))
        except VidlatError as exc:
            raise ArchSpecError(f"layer {index} ({block}): {exc}") from exc
        in_channels = out
    stem = create_stem(in_channels=arch.input_shape[0], out_channels=arch.stem["channels"],
                       temporal_kernel=arch.stem["temporal_kernel"])
    head = create_head(in_channels=in_channels, hidden_channels=arch.head["channels"], num_classes=arch.num_classes)
    return VideoNet(stem, layers, head)
