"""The block registry: one ``BlockFamily`` per family, registered by its builder's module.

::

    @register_block("x3d", required=("k", "e"), optional=("se", "hs"), summary=...)
    def create_x3d_block(*, in_channels, out_channels, stride, kernel, expansion, se, act) -> nn.Module

``create_block(spec)`` checks the spec's tokens against the family, then calls the builder with
the shapes and the spec fields its tokens name (k -> kernel, e -> expansion, h -> heads, se -> se,
hs -> act; ``act`` is always passed to families that take ``hs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from profiler.errors import short_repr
from search.blocks.spec import BlockSpec, tokenize
from search.errors import BlockSpecError

Stride = tuple[int, int, int]
_TOKEN_FIELD = {"k": "kernel", "e": "expansion", "h": "heads", "se": "se", "hs": "act"}
_TOKEN_HELP = {"k": "k<t><h><w>", "e": "e<N>", "h": "h<N>", "se": "se", "hs": "hs"}
MAX_BLOCK_CHARS = 64  # the longest block string of any family is about 20


@dataclass(frozen=True)
class BlockFamily:
    """A registered family: its builder, which tokens it needs or allows, and its shape rules."""

    name: str
    builder: Callable[..., nn.Module]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    summary: str
    frame_only: bool = False  # 2D-only: temporal kernel 1, temporal stride 1, needs T >= 2
    identity_only: bool = False  # only where in == out channels and stride 1

    def usage(self) -> str:
        """``x3d_k<t><h><w>_e<N>[_se][_hs]``."""
        required = "".join(f"_{_TOKEN_HELP[t]}" for t in self.required)
        return self.name + required + "".join(f"[_{_TOKEN_HELP[t]}]" for t in self.optional)


BLOCKS: dict[str, BlockFamily] = {}


def register_block(name: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = (), summary: str,
                   frame_only: bool = False, identity_only: bool = False) -> Callable:
    """Decorator registering a ``create_*`` builder as the family ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        BLOCKS[name] = BlockFamily(name, builder, required, optional, summary, frame_only, identity_only)
        return builder

    return decorate


def families_help() -> str:
    """One line listing every family with its options."""
    return "; ".join(family.usage() for family in BLOCKS.values())


def parse_block(text: str) -> BlockSpec:
    """Parse and check a block string; ``BlockSpecError`` lists the families and their options."""
    if not isinstance(text, str) or len(text) > MAX_BLOCK_CHARS:
        raise BlockSpecError(f"a block is a string of at most {MAX_BLOCK_CHARS} characters such as 'x3d_k333_e3_se', "
                             f"got {short_repr(text)}")
    name = text.strip().split("_")[0]
    family = BLOCKS.get(name)
    if family is None:
        raise BlockSpecError(f"unknown block family {short_repr(name)} in {short_repr(text)}; families: {families_help()}")
    try:
        spec = tokenize(text)
    except BlockSpecError as exc:
        raise BlockSpecError(f"{exc}; expected {family.usage()}") from exc
    tokens = spec.tokens()
    missing = [t for t in family.required if t not in tokens]
    extra = sorted(tokens - set(family.required) - set(family.optional))
    if missing or extra:
        what = f"missing {', '.join(_TOKEN_HELP[t] for t in missing)}" if missing else f"'{family.name}' takes no {', '.join(extra)}"
        raise BlockSpecError(f"block {short_repr(text)}: {what}; expected {family.usage()}")
    if family.frame_only and spec.kernel is not None and spec.kernel[0] != 1:
        raise BlockSpecError(f"block {short_repr(text)}: '{family.name}' is 2D-only, its kernel must be k1<h><w>")
    if spec.expansion is not None and not 1 <= spec.expansion <= 8:
        raise BlockSpecError(f"block {short_repr(text)}: expansion must be 1..8")
    return spec


def check_shapes(spec: BlockSpec, *, in_channels: int, out_channels: int, stride: Stride) -> None:
    """Raise ``BlockSpecError`` if ``spec`` cannot map ``in_channels`` to ``out_channels`` at ``stride``."""
    family = BLOCKS[spec.family]
    if len(stride) != 3 or any(s not in (1, 2) for s in stride):
        raise BlockSpecError(f"block '{spec}': stride must be three of 1 or 2 (t, h, w), got {tuple(stride)}")
    if in_channels < 1 or out_channels < 1:
        raise BlockSpecError(f"block '{spec}': channels must be positive, got {in_channels} -> {out_channels}")
    if family.identity_only and (in_channels != out_channels or tuple(stride) != (1, 1, 1)):
        raise BlockSpecError(f"block '{spec}' is an identity: needs in == out channels and stride 111, "
                             f"got {in_channels} -> {out_channels}, stride {''.join(map(str, stride))}")
    if family.frame_only and stride[0] != 1:
        raise BlockSpecError(f"block '{spec}' is 2D-only: temporal stride must be 1")
    if spec.heads is not None and out_channels % spec.heads:
        raise BlockSpecError(f"block '{spec}': {out_channels} channels do not split into {spec.heads} heads")


def create_block(spec: BlockSpec | str, *, in_channels: int, out_channels: int, stride: Stride) -> nn.Module:
    """Build the block: (N, in_channels, T, H, W) -> (N, out_channels, ceil(T/st), ceil(H/sh), ceil(W/sw))."""
    spec = parse_block(spec) if isinstance(spec, str) else parse_block(str(spec))
    stride = tuple(int(s) for s in stride)
    check_shapes(spec, in_channels=in_channels, out_channels=out_channels, stride=stride)
    family = BLOCKS[spec.family]
    options = {_TOKEN_FIELD[t]: getattr(spec, _TOKEN_FIELD[t]) for t in family.required + family.optional}
    options = {key: value for key, value in options.items() if value is not None}
    return family.builder(in_channels=in_channels, out_channels=out_channels, stride=stride, **options)


def output_shape(input_shape: tuple[int, int, int, int], *, out_channels: int, stride: Stride) -> tuple[int, int, int, int]:
    """(C, T, H, W) after a block: every block pads odd kernels by k // 2, so sizes are ceil(size / stride)."""
    _, t, h, w = input_shape
    return (out_channels, -(-t // stride[0]), -(-h // stride[1]), -(-w // stride[2]))
