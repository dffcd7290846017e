"""The units beside the MAC array: a vector unit, a DMA engine for data movement, the host CPU.

::

    vector  pooling, elementwise, activations, reductions, norms:
            compute = ceil(elements x ops per element / lanes), memory = (inputs + outputs) bytes / BW
    dma     Transpose, Slice, Concat, Split, Pad, ...: memory = (input + output) bytes / BW
    host    what the fabric cannot run: tensors cross DDR to the host and back, the host computes at
            cores x clock x flops/cycle x efficiency, plus a hand-over (sync) time; nothing overlaps

All costs are in accelerator cycles; each fabric node also pays the layer overhead.
"""

from __future__ import annotations

import math

from profiler.device import HostCpu, VectorUnit
from profiler.simulators.cost import NodeCost

ELEMENT_BYTES: dict[str, int] = {"int8": 1, "int16": 2, "fp16": 2, "fp32": 4}


class VectorModel:
    """Pooling, elementwise ops, activations and reductions on ``lanes`` parallel lanes."""

    def __init__(self, unit: VectorUnit, *, bytes_per_cycle: float, element_bytes: int, overhead_cycles: float) -> None:
        self.lanes = unit.lanes
        self.bytes_per_cycle = bytes_per_cycle
        self.element_bytes = element_bytes
        self.overhead_cycles = overhead_cycles

    def run(self, *, operations: int, elements_moved: int) -> NodeCost:
        """``operations`` lane operations while ``elements_moved`` elements cross DDR."""
        return NodeCost.overlapped(
            "native",
            "vector",
            compute=float(math.ceil(operations / self.lanes)),
            memory=elements_moved * self.element_bytes / self.bytes_per_cycle,
            overhead=self.overhead_cycles,
        )

    def copy(self, *, elements_moved: int) -> NodeCost:
        """A data-movement node: the DMA engine reads and writes, nothing computes."""
        return NodeCost.overlapped(
            "native", "dma", compute=0.0, memory=elements_moved * self.element_bytes / self.bytes_per_cycle, overhead=self.overhead_cycles
        )


class HostModel:
    """The host CPU: runs a node's FLOPs after its tensors cross DDR, then sends the result back."""

    def __init__(self, host: HostCpu, *, clock_mhz: float, bytes_per_cycle: float, element_bytes: int) -> None:
        self.flops_per_cycle = host.cores * host.clock_ghz * 1e3 * host.flops_per_cycle * host.efficiency / clock_mhz
        self.bytes_per_cycle = bytes_per_cycle
        self.element_bytes = element_bytes
        self.sync_cycles = host.sync_us * clock_mhz

    def run(self, *, flops: float, elements_moved: int, reason: str, macs: int = 0) -> NodeCost:
        """Host fallback: transfer in, compute, transfer out, one hand-over; ``reason`` says why."""
        compute = flops / self.flops_per_cycle
        memory = elements_moved * self.element_bytes / self.bytes_per_cycle
        return NodeCost(
            status="host_fallback",
            unit="host",
            cycles=compute + memory + self.sync_cycles,
            compute_cycles=compute,
            memory_cycles=memory,
            overhead_cycles=self.sync_cycles,
            macs=macs,
            reason=reason,
        )
