"""Weight-stationary systolic array NPU (the SCALE-Sim analytical model).

::

    filter matrix Sr x Sc   (Sr = window = C/g x kt x kh x kw, Sc = filters M/g)
    ifmap stream  T rows    (T = output pixels per filter = frames x Ho x Wo)

    compute = groups x ceil(Sr / R) x ceil(Sc / C) x (2R + C + T - 2)

Each fold pins an R x C block of weights (R cycles to load), streams the T input rows through
(T + R + C - 2 cycles to fill and drain). The fold is bounded below by DRAM traffic:

    bytes = ifmap (again for every column fold when a group's ifmap does not fit the ifmap SRAM)
            + the cheaper of two loop orders for the partial sums when a group's ofmap does not fit
              the ofmap SRAM: (a) all row folds per ofmap chunk that fits, filters refetched per
              chunk unless they fit the filter SRAM; (b) filters once, partial sums spilled to DRAM
              (read and written) for every extra row fold
    cycles = max(compute, bytes / BW) + layer overhead

A depthwise convolution is ``groups`` folds of Sr = kt x kh x kw, Sc = 1: one column of the array
busy, as on real weight-stationary NPUs. A 3D convolution is a GEMM with Sr = C x kt x kh x kw.
"""

from __future__ import annotations

import math

from profiler.device import SystolicHardware
from profiler.simulators.cost import NodeCost
from profiler.simulators.ops import MacShape
from profiler.simulators.units import ELEMENT_BYTES


def systolic_cycles(sr: int, sc: int, t: int, rows: int, cols: int) -> int:
    """Compute cycles of one weight-stationary GEMM: ceil(Sr/R) * ceil(Sc/C) * (2R + C + T - 2)."""
    return math.ceil(sr / rows) * math.ceil(sc / cols) * (2 * rows + cols + t - 2)


class SystolicEngine:
    """Costs convolutions and products on a ``SystolicHardware`` at one precision."""

    def __init__(self, hardware: SystolicHardware, precision: str) -> None:
        self.hardware = hardware
        self.element_bytes = ELEMENT_BYTES[precision]
        self.clock_mhz = hardware.clock_mhz
        self.bytes_per_cycle = hardware.dram_gbps * 1e9 / (hardware.clock_mhz * 1e6)
        self.peak_macs_per_cycle = float(hardware.rows * hardware.cols)
        self.overhead_cycles = float(hardware.layer_overhead_cycles)

    def dram_bytes(self, shape: MacShape, input_elements: int) -> float:
        """DRAM traffic of ``shape`` under the cheaper of two loop orders (see the module doc)."""
        hw, size = self.hardware, self.element_bytes
        filters = shape.out_channels * shape.window * size
        ifmap = input_elements * size / shape.groups
        ofmap = shape.out_channels * shape.outputs_per_filter * size
        row_folds = math.ceil(shape.window / hw.rows)
        col_folds = math.ceil(shape.out_channels / hw.cols)
        ifmap_traffic = ifmap * (1 if ifmap <= hw.ifmap_sram_kb * 1024 else col_folds)
        # a: all row folds per chunk of outputs that fits the ofmap SRAM; filters refetched per chunk
        chunks = math.ceil(ofmap / (hw.ofmap_sram_kb * 1024)) if row_folds > 1 else 1
        chunked = filters * (chunks if filters > hw.filter_sram_kb * 1024 else 1) + ofmap
        # b: whole folds; partial sums that do not fit spill to DRAM, read and written per extra row fold
        spilled = filters + ofmap * (1 + 2 * (row_folds - 1) * (ofmap > hw.ofmap_sram_kb * 1024))
        return shape.groups * (ifmap_traffic + min(chunked, spilled))

    def mac(self, shape: MacShape, input_elements: int) -> NodeCost:
        """Cost of a convolution or product: the fold formula, bounded below by DRAM traffic."""
        hw = self.hardware
        compute = shape.groups * systolic_cycles(shape.window, shape.out_channels, shape.outputs_per_filter, hw.rows, hw.cols)
        return NodeCost.overlapped(
            "native",
            "array",
            compute=float(compute),
            memory=self.dram_bytes(shape, input_elements) / self.bytes_per_cycle,
            overhead=self.overhead_cycles,
            macs=shape.macs,
            peak_macs_per_cycle=self.peak_macs_per_cycle,
        )
