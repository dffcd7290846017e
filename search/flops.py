"""Cost counts of a module at an input shape: MACs, FLOPs, parameters, bytes moved.

``layer_costs(arch)`` is the per-layer table of a whole arch (stem, every layer, head), as
``vidlat arch show`` prints it.

Convention (as fvcore and ``torch.utils.flop_counter``): FLOPs = 2 x MACs of convolutions, linear
layers and matrix products; element-wise ops (BN, activations, SE/ME gating, residual adds, softmax)
are not counted. The count comes from torch's own ``FlopCounterMode`` over one forward pass; the
tests check it against hand formulas for every block family.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from search.arch import ArchSpec

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class Cost:
    """MACs, FLOPs (= 2 MACs), parameters, and bytes moved (input + output + weights, float32)."""

    macs: int
    flops: int
    params: int
    bytes: int
    output_shape: tuple[int, ...]


def count_params(module: nn.Module) -> int:
    """Number of parameters (BN running statistics are buffers and not counted)."""
    return sum(parameter.numel() for parameter in module.parameters())


@torch.no_grad()
def count_cost(module: nn.Module, input_shape: tuple[int, ...]) -> Cost:
    """Trace one forward pass on ``input_shape`` (batch included) under ``FlopCounterMode``.

    The pass runs on a copy of the module on the ``meta`` device: shapes only, no arithmetic.
    """
    shadow = copy.deepcopy(module).eval().to("meta")
    x = torch.empty(input_shape, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        y = shadow(x)
    flops = int(counter.get_total_flops())
    params = count_params(module)
    moved = (x.numel() + y.numel() + params) * FLOAT32_BYTES
    return Cost(macs=flops // 2, flops=flops, params=params, bytes=moved, output_shape=tuple(y.shape))


@dataclass(frozen=True)
class LayerCost:
    """One row of an arch's cost table: a layer (``stem``, ``0``, ``1``, ..., ``head``) at its shapes."""

    name: str
    block: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    stride: tuple[int, int, int]
    cost: Cost


def layer_costs(arch: "ArchSpec") -> list[LayerCost]:
    """Stem, every layer and head of ``arch`` with their shapes (C, T, H, W; batch 1) and ``Cost``.

    ::

        arch --build_model--> stem, layers..., head --count_cost at each input shape--> LayerCost rows
    """
    from search.arch import build_model, stem_output_shape
    from search.blocks import output_shape

    model = build_model(arch)
    stem_shape = stem_output_shape(arch.input_shape, arch.stem["channels"])
    rows = [LayerCost("stem", "stem", arch.input_shape, stem_shape, (1, 2, 2), count_cost(model.stem, (1, *arch.input_shape)))]
    for index, ((shape, out, stride), module) in enumerate(zip(arch.layer_shapes(), model.layers)):
        rows.append(LayerCost(str(index), arch.layers[index], shape, output_shape(shape, out_channels=out, stride=stride),
                              stride, count_cost(module, (1, *shape))))
    last = rows[-1].output_shape
    rows.append(LayerCost("head", "head", last, (arch.num_classes,), (1, 1, 1), count_cost(model.head, (1, *last))))
    return rows
