"""Accelerator simulators: FPGA (tiled DSP array) and NPU (systolic array) latency models.

::

    ONNX workload ──> graph.load_graph (shapes inferred) ──> simulate.Simulator
        ├── dsp_array.DspArrayEngine / systolic.SystolicEngine   convolutions and products
        ├── units.VectorModel                                    pooling, elementwise, norms, copies
        └── units.HostModel                                      what the fabric cannot run
    ──> SimulationReport (per node and total) ──> backend.SimulatorBackend.measure -> Measurement

numpy and onnx only: no torch, no runtime.
"""

from profiler.simulators.graph import Graph, GraphNode, Tensor, load_graph
from profiler.simulators.simulate import NodeReport, SimulationReport, Simulator
from profiler.simulators.systolic import systolic_cycles

__all__ = ["Graph", "GraphNode", "NodeReport", "SimulationReport", "Simulator", "Tensor", "load_graph", "systolic_cycles"]
