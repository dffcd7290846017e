"""Tiled DSP-array FPGA engine: the loop-tiling model of FPGA CNN accelerators (Zhang et al., FPGA'15).

::

    for m in ceil(M / Tm):  for r in ceil(R / Tr):  for c in ceil(C / Tc):      # outer tiles
        for n in ceil(N / Tn):                                                  # reduction tiles
            load input tile, load weight tile, compute     (double-buffered: the max of the three)
        write the output tile back

    t_comp = kt*kh*kw * Tr * Tc                     (Tm x Tn MACs per cycle, one kernel tap per cycle)
    t_in   = Tn * kt * ((Tr-1)*S + kh) * ((Tc-1)*S + kw) * bytes / BW
    t_w    = Tm * Tn * kt*kh*kw * bytes / BW
    t_out  = Tm * Tr * Tc * bytes / BW
    cycles = n_m * n_r * n_c * (n_n * max(t_comp, t_in, t_w) + t_out) + layer overhead

``R`` is every output row of every frame (batch and output frames stacked), ``C`` the output
columns, BW the DDR bytes per cycle (bandwidth x efficiency / clock). ``Tm x Tn`` is fixed in the
fabric; ``Tr x Tc`` is chosen per layer as the fastest tile whose input, weight and output tiles fit
half of their buffers (the other half is the double buffer). A grouped convolution packs
``P = min(Tm // (M/g), Tn // (C/g), g)`` groups block-diagonally into one pass and runs
``ceil(g / P)`` passes; a depthwise convolution (one input channel per output) packs
``min(Tm, Tn)`` channels with one MAC each busy, so its utilisation is at most ``1 / max(Tm, Tn)``.
Groups wider than the array run one after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from profiler.device import DspArrayHardware
from profiler.simulators.cost import NodeCost
from profiler.simulators.ops import MacShape
from profiler.simulators.units import ELEMENT_BYTES


@dataclass(frozen=True)
class GroupMapping:
    """Groups packed side by side (block-diagonal) into one pass of the array, and the passes."""

    out_channels: int  # M of one pass
    in_channels: int  # N of one pass
    weights_per_tap: int  # weights of one Tm x Tn tile per kernel tap (block-diagonal when packed)
    repeats: int  # passes, one after another


@dataclass(frozen=True)
class TilePlan:
    """One tiling of a layer: tile sizes, tile counts and the per-tile cycle terms."""

    tr: int
    tc: int
    n_m: int
    n_n: int
    n_r: int
    n_c: int
    t_comp: float
    t_in: float
    t_w: float
    t_out: float
    repeats: int = 1  # groups run one after another

    @property
    def outer_tiles(self) -> int:
        return self.n_m * self.n_r * self.n_c

    @property
    def tiles(self) -> int:
        return self.outer_tiles * self.n_n * self.repeats

    @property
    def compute_cycles(self) -> float:
        return self.repeats * self.outer_tiles * self.n_n * self.t_comp

    @property
    def memory_cycles(self) -> float:
        return self.repeats * self.outer_tiles * (self.n_n * max(self.t_in, self.t_w) + self.t_out)

    @property
    def cycles(self) -> float:
        return self.repeats * self.outer_tiles * (self.n_n * max(self.t_comp, self.t_in, self.t_w) + self.t_out)


def _tile_candidates(extent: int) -> np.ndarray:
    """Every tile size that gives a distinct tile count (ceil(extent / k)), largest first."""
    return np.array(sorted({math.ceil(extent / k) for k in range(1, extent + 1)}, reverse=True), dtype=np.int64)


class DspArrayEngine:
    """Costs convolutions and products on a ``DspArrayHardware`` at one precision."""

    def __init__(self, hardware: DspArrayHardware, precision: str) -> None:
        self.hardware = hardware
        self.element_bytes = ELEMENT_BYTES[precision]
        self.clock_mhz = hardware.clock_mhz
        self.bytes_per_cycle = hardware.ddr_gbps * 1e9 * hardware.ddr_efficiency / (hardware.clock_mhz * 1e6)
        self.peak_macs_per_cycle = float(hardware.tm * hardware.tn)
        self.overhead_cycles = float(hardware.layer_overhead_cycles)
        # tiles live in half of each buffer; the other half is the double buffer
        self._half = {
            kind: kb * 1024 / 2 / self.element_bytes
            for kind, kb in (("in", hardware.input_buffer_kb), ("w", hardware.weight_buffer_kb), ("out", hardware.output_buffer_kb))
        }
        self.plan = lru_cache(maxsize=4096)(self._plan)

    def mapping(self, shape: MacShape) -> GroupMapping:
        """How ``shape``'s groups map onto the ``Tm x Tn`` array (see the module doc)."""
        hw = self.hardware
        m, n = shape.out_channels, shape.in_channels
        packed = min(hw.tm // m, hw.tn // n, shape.groups) if shape.groups > 1 and m <= hw.tm and n <= hw.tn else 1
        return GroupMapping(
            out_channels=packed * m,
            in_channels=packed * n,
            weights_per_tap=packed * min(hw.tm, m) * min(hw.tn, n),
            repeats=math.ceil(shape.groups / packed),
        )

    def _terms(self, shape: MacShape, tr: np.ndarray, tc: np.ndarray) -> dict[str, np.ndarray | int]:
        """Tile counts and per-tile cycle terms for arrays of tile sizes, and whether they fit."""
        hw = self.hardware
        group = self.mapping(shape)
        m, n, weight_per_tap = group.out_channels, group.in_channels, group.weights_per_tap
        taps = shape.kt * shape.kh * shape.kw
        per_byte = self.element_bytes / self.bytes_per_cycle
        in_tile = min(hw.tn, n) * shape.kt * ((tr - 1) * shape.stride_h + shape.kh) * ((tc - 1) * shape.stride_w + shape.kw)
        out_tile = min(hw.tm, m) * tr * tc
        return {
            "n_m": math.ceil(m / hw.tm),
            "n_n": math.ceil(n / hw.tn),
            "n_r": -(-(shape.frames * shape.out_h) // tr),
            "n_c": -(-shape.out_w // tc),
            "t_comp": taps * tr * tc,
            "t_in": in_tile * per_byte,
            "t_w": np.full(tr.shape, weight_per_tap * taps * per_byte),
            "t_out": out_tile * per_byte,
            "repeats": group.repeats,
            "fits": (in_tile <= self._half["in"]) & (out_tile <= self._half["out"]) & (weight_per_tap * taps <= self._half["w"]),
        }

    def tile_plan(self, shape: MacShape, tr: int, tc: int) -> TilePlan:
        """The cycle terms of ``shape`` tiled with ``Tr x Tc`` (buffer fit not checked)."""
        terms = self._terms(shape, np.array([tr]), np.array([tc]))
        scalar = {key: value if isinstance(value, int) else value[0].item() for key, value in terms.items() if key != "fits"}
        return TilePlan(tr=tr, tc=tc, **scalar)

    def fits(self, shape: MacShape, tr: int, tc: int) -> bool:
        """Whether the ``Tr x Tc`` tiles of ``shape`` fit half of each on-chip buffer."""
        return bool(self._terms(shape, np.array([tr]), np.array([tc]))["fits"][0])

    def _plan(self, shape: MacShape) -> TilePlan | None:
        """The fastest ``Tr x Tc`` whose tiles fit the buffers, or ``None`` if none does."""
        grid = np.meshgrid(_tile_candidates(shape.frames * shape.out_h), _tile_candidates(shape.out_w), indexing="ij")
        tr, tc = (values.ravel() for values in grid)
        terms = self._terms(shape, tr, tc)
        fit = terms["fits"]
        if not fit.any():
            return None
        step = np.maximum(np.maximum(terms["t_comp"], terms["t_in"]), terms["t_w"])
        cycles = terms["n_r"] * terms["n_c"] * (terms["n_n"] * step + terms["t_out"])
        best = int(np.argmin(np.where(fit, cycles, np.inf)))  # first minimum: the largest tiles among equals
        return self.tile_plan(shape, int(tr[best]), int(tc[best]))

    def mac(self, shape: MacShape, input_elements: int) -> NodeCost:
        """Cost of a convolution or product; unsupported if no tile fits the on-chip buffers."""
        del input_elements  # the tiles say what is read
        plan = self.plan(shape)
        if plan is None:
            return NodeCost.unsupported("no Tr x Tc tile of this layer fits the on-chip buffers")
        return NodeCost(
            status="native",
            unit="array",
            cycles=plan.cycles + self.overhead_cycles,
            compute_cycles=plan.compute_cycles,
            memory_cycles=plan.memory_cycles,
            overhead_cycles=self.overhead_cycles,
            macs=shape.macs,
            utilisation=shape.macs / ((plan.cycles + self.overhead_cycles) * self.peak_macs_per_cycle),
        )
