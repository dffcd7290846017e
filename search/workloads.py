"""Workloads of blocks, stem, head and whole networks: seeded module -> ONNX + spec + stable key.

::

    block string + input (C, T, H, W) + out + stride
        --key--> "x3d_k333_e3_se|in=24x8x28x28|out=48|s=122"
        --seed from the key--> module (same weights every time) --> ONNX (cached) + cost counts
        --> Workload(key, onnx, inputs={"input": (1, C, T, H, W)}, spec, builder)

``network_workload`` is a whole arch at the deployment shape (key ``net|<space>|<digest>``, what
``vidlat profile --networks`` measures); ``arch_workload`` exports it once under its name for
``vidlat simulate``, which stores nothing. Block, stem, head and network weights are seeded from
the key, so the same workload has the same ONNX bytes (and hash) in every
process. The spec carries what regressors learn from; absent options are 0 / "none".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn

from profiler.workload import Workload
from search.arch import ArchSpec, build_model, create_head, create_stem
from search.blocks import create_block, parse_block
from search.export import INPUT_NAME, module_to_onnx
from search.flops import count_cost

Shape = tuple[int, int, int, int]


def seeded(key: str, builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """A zero-arg builder giving ``builder()`` in eval mode with weights seeded from ``key``."""

    def build() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
            return builder().eval()

    return build


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def block_key(block: str, input_shape: Shape, out_channels: int, stride: tuple[int, int, int]) -> str:
    """``<block>|in=CxTxHxW|out=C|s=<t><h><w>`` with the canonical block string."""
    return f"{parse_block(block)}|in={shape_text(input_shape)}|out={out_channels}|s={''.join(map(str, stride))}"


def _workload(key: str, builder: Callable[[], nn.Module], input_shape: Shape, spec: dict[str, Any]) -> Workload:
    build = seeded(key, builder)
    module = build()
    cost = count_cost(module, (1, *input_shape))
    spec = {**spec, "macs": cost.macs, "flops": cost.flops, "params": cost.params, "bytes": cost.bytes}
    return Workload(key=key, onnx=module_to_onnx(module, input_shape), inputs={INPUT_NAME: (1, *input_shape)},
                    spec=spec, builder=build)


def _shape_spec(op: str, block: str, input_shape: Shape, out_channels: int, stride: tuple[int, int, int]) -> dict[str, Any]:
    c, t, h, w = input_shape
    return {"op": op, "block": block, "c_in": c, "c_out": out_channels, "t": t, "h": h, "w": w,
            "kt": 0, "kh": 0, "kw": 0, "stride_t": stride[0], "stride_s": stride[1], "expansion": 0, "se": False,
            "act": "none", "heads": 0}


@lru_cache(maxsize=1024)
def block_workload(block: str, *, input_shape: Shape, out_channels: int, stride: tuple[int, int, int]) -> Workload:
    """The workload of one block at one input shape (memoised per process)."""
    spec = parse_block(block)
    key = block_key(block, input_shape, out_channels, stride)
    fields = _shape_spec(spec.family, str(spec), input_shape, out_channels, stride)
    if spec.kernel is not None:
        fields.update(kt=spec.kernel[0], kh=spec.kernel[1], kw=spec.kernel[2])
    fields.update(expansion=spec.expansion or (2 if spec.family == "attn" else 0), se=spec.se, heads=spec.heads or 0,
                  act={"skip": "none", "attn": "gelu"}.get(spec.family, spec.act))
    return _workload(key, lambda: create_block(spec, in_channels=input_shape[0], out_channels=out_channels,
                                               stride=stride), input_shape, fields)


@lru_cache(maxsize=64)
def stem_workload(*, input_shape: Shape, channels: int, temporal_kernel: int) -> Workload:
    """The stem at the deployment shape; spec op "stem"."""
    key = f"stem_t{temporal_kernel}|in={shape_text(input_shape)}|out={channels}|s=122"
    fields = _shape_spec("stem", f"stem_t{temporal_kernel}", input_shape, channels, (1, 2, 2))
    fields.update(kt=temporal_kernel, kh=3, kw=3, act="relu")
    return _workload(key, lambda: create_stem(in_channels=input_shape[0], out_channels=channels,
                                              temporal_kernel=temporal_kernel), input_shape, fields)


@lru_cache(maxsize=64)
def head_workload(*, input_shape: Shape, hidden_channels: int, num_classes: int) -> Workload:
    """The head (conv, pool, classifier) at its input shape; spec op "head"."""
    key = f"head_c{hidden_channels}|in={shape_text(input_shape)}|out={num_classes}|s=111"
    fields = _shape_spec("head", f"head_c{hidden_channels}", input_shape, num_classes, (1, 1, 1))
    fields.update(kt=1, kh=1, kw=1, act="relu")
    return _workload(key, lambda: create_head(in_channels=input_shape[0], hidden_channels=hidden_channels,
                                              num_classes=num_classes), input_shape, fields)


def arch_digest(arch: ArchSpec) -> str:
    """12 hex digits identifying the network (name and notes excluded)."""
    data = arch.to_dict()
    data.pop("name", None)
    data.pop("notes", None)
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:12]


def network_workload(arch: ArchSpec) -> Workload:
    """The whole network at the deployment shape: key ``net|<space>|<digest>``, spec op "network"."""
    key = f"net|{arch.space}|{arch_digest(arch)}"
    c, t, h, w = arch.input_shape
    fields = {"op": "network", "space": arch.space, "arch": arch.to_dict(), "c_in": c, "t": t, "h": h, "w": w,
              "c_out": arch.num_classes, "layers": len(arch.layers)}
    return _workload(key, lambda: build_model(arch), arch.input_shape, fields)


def arch_workload(arch: ArchSpec, *, name: str = "") -> Workload:
    """The whole network of ``arch`` exported once at its input shape (batch 1): key ``arch|<arch.name or name>``."""
    onnx_bytes = module_to_onnx(build_model(arch), arch.input_shape)
    return Workload(key=f"arch|{arch.name or name}", onnx=onnx_bytes, inputs={INPUT_NAME: (1, *arch.input_shape)})


def stem_and_head(arch_like: Any, input_shape: Shape, last_shape: Shape) -> list[Workload]:
    """Stem at ``input_shape`` and head at ``last_shape`` for an object with ``stem``, ``head``, ``num_classes``."""
    stem = stem_workload(input_shape=input_shape, channels=arch_like.stem["channels"],
                         temporal_kernel=arch_like.stem.get("temporal_kernel", 5))
    head = head_workload(input_shape=last_shape, hidden_channels=arch_like.head["channels"],
                         num_classes=arch_like.num_classes)
    return [stem, head]


__all__ = ["arch_digest", "arch_workload", "block_key", "block_workload", "head_workload", "network_workload", "seeded",
           "stem_and_head", "stem_workload"]
