"""Weight sharing across the candidates of a supernet layer (Single-Path NAS superkernels, FBNetV2
channel masks, Once-for-All elastic kernels).

Every bottleneck candidate of a layer (x3d, r2p1d, csn, tsm, me) holds the same three convolutions
in the same roles; one ``WeightBank`` per layer holds the largest of each, and the candidates use
slices of it::

    bank.expand     (E_max*C_in, C_in, 1, 1, 1)   candidate: [:e*C_in]            (expansion = channel mask)
    bank.depthwise  (E_max*C_in, 1, Kt, Kh, Kw)   candidate: [:e*C_in, :, centre kt x kh x kw]
                                                  (x3d k333 / k133 / k311 / k533 / k511; tsm/me use the
                                                   1 x kh x kw centre as their per-frame 2D kernel)
    bank.project    (C_out, E_max*C_in, 1, 1, 1)  candidate: [:, :e*C_in]

What differs between candidates stays private: every batch norm (a kernel or an expansion changes the
statistics), SE (a gated part: the SE candidate is the plain one plus a gate), the (2+1)D and
channel-separated mixers (other shapes), motion excitation, attention. Training one candidate so
trains what the others use, and the layers after it see features that every candidate shares.
``candidate_state_dict`` turns a candidate back into the weights of the same block built alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

ROLES: tuple[str, ...] = ("expand", "depthwise", "project")


def _kernel3d(conv: nn.Conv2d | nn.Conv3d) -> tuple[int, int, int]:
    kernel = tuple(conv.kernel_size)
    return kernel if len(kernel) == 3 else (1, *kernel)  # type: ignore[return-value]


class WeightBank(nn.Module):
    """The largest weight of each shared role of one layer (see the module docstring)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        self.weights = nn.ParameterDict()
        for role, shape in shapes.items():
            weight = torch.empty(shape)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # nn.Conv3d's own initialisation
            self.weights[role] = nn.Parameter(weight)

    def slice(self, role: str, shape: Sequence[int]) -> torch.Tensor:
        """The weight of ``shape`` (O, I, kt, kh, kw) or (O, I, kh, kw): leading channels, centred kernel."""
        bank = self.weights[role]
        out_channels, in_channels, *kernel = shape
        kernel3d = kernel if len(kernel) == 3 else [1, *kernel]
        index: list[slice | int] = [slice(0, out_channels), slice(0, in_channels)]
        for size, largest in zip(kernel3d, bank.shape[2:]):
            start = (largest - size) // 2
            index.append(slice(start, start + size))
        if len(kernel) == 2:
            index[2] = (bank.shape[2] - 1) // 2  # a 2D kernel is the temporal centre of the 3D one
        return bank[tuple(index)]


class SlicedConv(nn.Module):
    """A convolution (2D or 3D, no bias) whose weight is a slice of its layer's ``WeightBank``.

    The bank is held as a plain attribute, not a submodule: it belongs to the mixed layer, so the
    candidates hold no copy of it and ``state_dict`` lists it once.
    """

    def __init__(self, conv: nn.Conv2d | nn.Conv3d, bank: WeightBank, role: str) -> None:
        super().__init__()
        if conv.bias is not None:
            raise ValueError("shared convolutions have no bias")
        self.role = role
        self.shape = tuple(conv.weight.shape)
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        self.conv = F.conv3d if isinstance(conv, nn.Conv3d) else F.conv2d
        object.__setattr__(self, "bank", bank)

    @property
    def weight(self) -> torch.Tensor:
        weight = self.bank.slice(self.role, self.shape)
        return weight.contiguous(memory_format=torch.channels_last_3d) if weight.dim() == 5 else weight.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.weight, None, self.stride, self.padding, 1, self.groups)

    def extra_repr(self) -> str:
        return f"{self.role}, weight {tuple(self.shape)}, stride {tuple(self.stride)}, groups {self.groups}"


def share_weights(candidates: Sequence[nn.Module]) -> WeightBank | None:
    """Replace the shareable convolutions of ``candidates`` (in place) by slices of one new bank.

    Candidates without ``shareable_convs`` (attention, skip) keep their own weights. Returns the bank
    (``None`` when fewer than two candidates share a role: there is nothing to share).
    """
    users: dict[str, list[nn.Sequential]] = {role: [] for role in ROLES}
    for block in candidates:
        for role, conv_bn in getattr(block, "shareable_convs", dict)().items():
            users[role].append(conv_bn)
    users = {role: pairs for role, pairs in users.items() if len(pairs) > 1}
    if not users:
        return None
    shapes = {}
    for role, pairs in users.items():
        convs = [pair[0] for pair in pairs]
        kernels = [_kernel3d(conv) for conv in convs]
        shapes[role] = (
            max(conv.weight.shape[0] for conv in convs),
            max(conv.weight.shape[1] for conv in convs),
            *(max(kernel[d] for kernel in kernels) for d in range(3)),
        )
    bank = WeightBank(shapes)
    for role, pairs in users.items():
        for pair in pairs:
            pair[0] = SlicedConv(pair[0], bank, role)
    return bank


def candidate_state_dict(candidate: nn.Module) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of ``candidate`` as the same block built alone (shared slices made concrete)."""
    state = {name: tensor.detach().clone() for name, tensor in candidate.state_dict().items()}
    for name, module in candidate.named_modules():
        if isinstance(module, SlicedConv):
            state[f"{name}.weight"] = module.weight.detach().clone().contiguous()
    return state


__all__ = ["ROLES", "SlicedConv", "WeightBank", "candidate_state_dict", "share_weights"]
