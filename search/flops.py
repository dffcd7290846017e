"""Cost counts of a module at an input shape: MACs, FLOPs, parameters, bytes moved.

Convention (as fvcore and ``torch.utils.flop_counter``): FLOPs = 2 x MACs of convolutions, linear
layers and matrix products; element-wise ops (BN, activations, SE/ME gating, residual adds, softmax)
are not counted. The count comes from torch's own ``FlopCounterMode`` over one forward pass; the
tests check it against hand formulas for every block family.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

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
