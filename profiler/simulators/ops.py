"""Convolutions and matrix products lowered to one shape that both array templates cost.

::

    Conv  X(N, C, [T], H, W) * W(M, C/g, [kt], kh, kw) -> Y(N, M, [To], Ho, Wo)
    Gemm / MatMul  A(..., rows, K) @ B(..., K, N) -> (..., rows, N)
                 └──> MacShape(groups, out_channels, in_channels, frames, out_h, out_w, kt, kh, kw, stride)

``frames`` is every output image the same weights slide over (batch x output frames for a
convolution); a product is a 1x1 convolution with ``out_h = rows``, and a batch of products whose
right-hand sides differ (attention scores) is one group per product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from profiler.simulators.graph import GraphNode


class LoweringError(ValueError):
    """A node's shapes or attributes do not describe a convolution or product the models cover."""


@dataclass(frozen=True)
class MacShape:
    """A multiply-accumulate workload per group: ``out_channels`` filters of ``in_channels x kt x kh x kw``."""

    groups: int
    out_channels: int
    in_channels: int
    frames: int
    out_h: int
    out_w: int
    kt: int = 1
    kh: int = 1
    kw: int = 1
    stride_h: int = 1
    stride_w: int = 1

    @property
    def window(self) -> int:
        """Reduction length of one output: in_channels x kt x kh x kw."""
        return self.in_channels * self.kt * self.kh * self.kw

    @property
    def outputs_per_filter(self) -> int:
        return self.frames * self.out_h * self.out_w

    @property
    def macs(self) -> int:
        return self.groups * self.out_channels * self.window * self.outputs_per_filter

    def temporal_slice(self) -> "MacShape":
        """One of the ``kt`` 2D convolutions that a kt x kh x kw convolution decomposes into."""
        return replace(self, kt=1)


def _ints(values: object, rank: int, default: int) -> list[int]:
    if values is None:
        return [default] * rank
    return [int(v) for v in values]  # type: ignore[union-attr]


def lower_conv(node: GraphNode) -> MacShape:
    """A Conv node (1D, 2D or 3D, grouped or depthwise) as a ``MacShape``."""
    x, w = node.inputs[0], node.inputs[1]
    y = node.outputs[0]
    if x.shape is None or w.shape is None or y.shape is None:
        raise LoweringError("the shapes of its input, weight or output are unknown")
    rank = len(w.shape) - 2
    if rank not in (1, 2, 3):
        raise LoweringError(f"only 1D, 2D and 3D convolutions are modelled, this one has {rank} spatial dims")
    groups = int(node.attrs.get("group", 1))
    kernel = list(w.shape[2:])
    strides = _ints(node.attrs.get("strides"), rank, 1)
    out_spatial = list(y.shape[2:])
    while len(kernel) < 3:  # pad to (t, h, w): 1D convs run along w, 2D convs have kt = 1
        kernel.insert(0, 1)
        strides.insert(0, 1)
        out_spatial.insert(0, 1)
    batch, out_total = y.shape[0], y.shape[1]
    return MacShape(
        groups=groups,
        out_channels=out_total // groups,
        in_channels=int(w.shape[1]),
        frames=batch * out_spatial[0],
        out_h=out_spatial[1],
        out_w=out_spatial[2],
        kt=kernel[0],
        kh=kernel[1],
        kw=kernel[2],
        stride_h=strides[1],
        stride_w=strides[2],
    )


def lower_product(node: GraphNode) -> MacShape:
    """A Gemm or MatMul node as a ``MacShape`` (a 1x1 convolution over ``rows``)."""
    a, b = node.inputs[0], node.inputs[1]
    y = node.outputs[0]
    if a.shape is None or b.shape is None or y.shape is None:
        raise LoweringError("the shapes of its operands or output are unknown")
    if node.op_type == "Gemm":
        k = a.shape[0] if node.attrs.get("transA", 0) else a.shape[1]
        rows, cols = y.shape
        return MacShape(groups=1, out_channels=cols, in_channels=k, frames=1, out_h=rows, out_w=1)
    if len(a.shape) < 1 or len(b.shape) < 1:
        raise LoweringError("MatMul of scalars")
    k = a.shape[-1]
    cols = b.shape[-1] if len(b.shape) > 1 else 1
    rows = a.shape[-2] if len(a.shape) > 1 else 1
    out_batch = math.prod(y.shape[:-2]) if len(y.shape) > 2 else 1
    if len(b.shape) <= 2:  # shared weights: every batch row streams through the same filters
        return MacShape(groups=1, out_channels=cols, in_channels=k, frames=1, out_h=rows * out_batch, out_w=1)
    # a batch of products with their own right-hand sides (attention): independent GEMMs, as groups
    return MacShape(groups=out_batch, out_channels=cols, in_channels=k, frames=1, out_h=rows, out_w=1)
