"""What a hardware model says about one node: cycles, split into compute, memory and overhead.

Every unit double-buffers, so a node costs about ``max(compute, memory) + overhead`` cycles; the
``bound`` is whichever of the three dominates. Cycles are counted at the accelerator's clock,
also for work handed to the host, so that a whole graph adds up on one clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

NodeStatus = Literal["native", "decomposed", "host_fallback", "unsupported"]
Bound = Literal["compute", "memory", "overhead"]


@dataclass(frozen=True)
class NodeCost:
    """Cost of one node on one unit (``array``, ``vector``, ``dma``, ``host``, ``fused`` or ``none``)."""

    status: NodeStatus
    unit: str
    cycles: float = 0.0
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    overhead_cycles: float = 0.0
    macs: int = 0
    utilisation: float = 0.0
    reason: str = ""
    fused_into: str = ""

    @property
    def bound(self) -> Bound:
        if self.overhead_cycles >= max(self.compute_cycles, self.memory_cycles):
            return "overhead"
        return "compute" if self.compute_cycles >= self.memory_cycles else "memory"

    @classmethod
    def unsupported(cls, reason: str) -> "NodeCost":
        return cls(status="unsupported", unit="none", reason=reason)

    @classmethod
    def overlapped(cls, status: NodeStatus, unit: str, *, compute: float, memory: float, overhead: float, macs: int = 0, peak_macs_per_cycle: float = 0.0) -> "NodeCost":
        """A double-buffered node: ``max(compute, memory) + overhead`` cycles."""
        cycles = max(compute, memory) + overhead
        utilisation = macs / (cycles * peak_macs_per_cycle) if cycles > 0 and peak_macs_per_cycle > 0 else 0.0
        return cls(status, unit, cycles, compute, memory, overhead, macs, utilisation)


def chain(costs: list[NodeCost], *, status: NodeStatus, peak_macs_per_cycle: float, reason: str = "") -> NodeCost:
    """Several passes run one after another (e.g. the 2D slices of a decomposed 3D convolution)."""
    cycles = sum(cost.cycles for cost in costs)
    macs = sum(cost.macs for cost in costs)
    return replace(
        costs[0],
        status=status,
        cycles=cycles,
        compute_cycles=sum(cost.compute_cycles for cost in costs),
        memory_cycles=sum(cost.memory_cycles for cost in costs),
        overhead_cycles=sum(cost.overhead_cycles for cost in costs),
        macs=macs,
        utilisation=macs / (cycles * peak_macs_per_cycle) if cycles > 0 and peak_macs_per_cycle > 0 else 0.0,
        reason=reason,
    )
