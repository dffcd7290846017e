"""The architecture-step losses of the search and the Gumbel-softmax temperature schedule.

Loss forms (LAT = expected network latency in ms, a tensor in the logits):

- ``fbnet``: ``CE * alpha * log(LAT / unit_ms) ** beta`` (FBNet, alpha 0.2, beta 0.6); the log is
  clamped at a small positive value so that a network faster than one unit still gives a finite loss;
  ``fbnet_unit_ms`` picks the unit that keeps FBNet's trade-off on any device;
- ``target``: ``CE + weight * max(0, LAT / target_ms - 1)``: no cost below the budget, a linear
  relative penalty above it.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from search.config import SearchConfig


def temperature_at(epoch: int, *, initial: float = 5.0, decay: float = 0.045) -> float:
    """Gumbel-softmax temperature of ``epoch`` (0-based): ``initial * exp(-decay * epoch)``."""
    return initial * math.exp(-decay * epoch)


def fbnet_loss(ce: torch.Tensor, latency_ms: torch.Tensor, *, alpha: float = 0.2, beta: float = 0.6, unit_ms: float = 1.0) -> torch.Tensor:
    """FBNet: ``CE * alpha * log(LAT) ** beta`` with LAT in units of ``unit_ms``."""
    return ce * alpha * torch.log(latency_ms / unit_ms).clamp_min(1e-3) ** beta


def fbnet_unit_ms(latency_table: list[list[float]], fixed_ms: float, *, start_units: float = 28.0) -> float:
    """A latency unit for the FBNet loss so that the uniform starting supernet sits at ``start_units``.

    FBNet's phone networks ran at about 28 ms, where ``log(LAT)`` is 3.3 and a 10% latency cut is
    worth about 2% of CE (beta 0.6). Video blocks on another device may take 0.2 ms or 200 ms in
    total; measuring LAT in this unit keeps the same trade-off on every device.
    """
    uniform = fixed_ms + sum(sum(row) / len(row) for row in latency_table)
    return max(uniform, 1e-9) / start_units


def with_unit_ms(config: SearchConfig, latency_table: list[list[float]], fixed_ms: float) -> SearchConfig:
    """``config`` with ``unit_ms`` set: as given, or ``fbnet_unit_ms`` of the table when it is None."""
    if config.unit_ms is not None:
        return config
    return dataclasses.replace(config, unit_ms=fbnet_unit_ms(latency_table, fixed_ms))


def target_loss(ce: torch.Tensor, latency_ms: torch.Tensor, *, target_ms: float, weight: float = 2.0) -> torch.Tensor:
    """``CE + weight * max(0, LAT / target - 1)``: free below the budget, linear above it."""
    return ce + weight * F.relu(latency_ms / target_ms - 1.0)


def arch_loss(ce: torch.Tensor, latency_ms: torch.Tensor, config: SearchConfig) -> torch.Tensor:
    """The architecture-step loss of ``config``."""
    if config.loss == "fbnet":
        if config.unit_ms is None:
            raise ValueError("the FBNet loss needs config.unit_ms; run_search resolves None with fbnet_unit_ms")
        return fbnet_loss(ce, latency_ms, alpha=config.alpha, beta=config.beta, unit_ms=config.unit_ms)
    return target_loss(ce, latency_ms, target_ms=float(config.target_ms), weight=config.latency_weight)


__all__ = ["arch_loss", "fbnet_loss", "fbnet_unit_ms", "target_loss", "temperature_at", "with_unit_ms"]
