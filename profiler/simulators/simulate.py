"""Walk an ONNX graph on a simulated accelerator: one cost per node, summed on one clock.

::

    Graph ──> fuse activations into the convolution/product that feeds them (applied at write-back)
          ──> per node, the unit that runs it:
                Conv, Gemm, MatMul      -> MAC array (DspArrayEngine | SystolicEngine)
                   kt > 1 and conv3d: native    -> one 3D pass
                                      decompose -> kt 2D passes + kt-1 partial-sum additions
                                      host      -> host CPU
                   no tile fits                 -> host CPU
                pooling, elementwise, activations, reductions, norms -> vector unit
                Softmax                 -> vector unit or host CPU (device's ``softmax``)
                Transpose, Slice, Concat, ...      -> DMA copy
                Reshape, Flatten, Squeeze, shape arithmetic -> free
                control flow, unknown shapes       -> unsupported (with the reason)
                any other op            -> host CPU, costed by its element count
          ──> SimulationReport: per node {name, op_type, status, unit, cycles, latency_ms, bound,
              utilisation, ...} and the total (latency only when every node is supported)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from profiler.device import DeviceConfig, DspArrayHardware, SystolicHardware
from profiler.errors import WorkloadError
from profiler.simulators.cost import NodeCost, chain
from profiler.simulators.dsp_array import DspArrayEngine
from profiler.simulators.graph import Graph, GraphNode, load_graph
from profiler.simulators.ops import LoweringError, MacShape, lower_conv, lower_product
from profiler.simulators.systolic import SystolicEngine
from profiler.simulators.units import ELEMENT_BYTES, HostModel, VectorModel

# lane operations per output element on the vector unit
ELEMENTWISE_OPS: dict[str, int] = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 4, "Max": 1, "Min": 1, "Neg": 1, "Abs": 1, "Where": 1,
    "Relu": 1, "LeakyRelu": 1, "PRelu": 1, "Clip": 1, "HardSigmoid": 2, "HardSwish": 3, "Sigmoid": 2,
    "Tanh": 2, "Exp": 2, "Sqrt": 2, "Reciprocal": 2, "Pow": 4, "Erf": 4, "Gelu": 6,
    "BatchNormalization": 2, "Cast": 1, "LayerNormalization": 6,
}
SOFTMAX_OPS = {"Softmax": 5, "LogSoftmax": 6}
POOL_OPS = {"AveragePool", "MaxPool"}
REDUCE_OPS = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"}
COPY_OPS = {"Transpose", "Slice", "Concat", "Split", "Pad", "Expand", "Tile", "Gather"}
FREE_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Constant", "ConstantOfShape", "Size"}
SHAPE_TENSOR_LIMIT = 64  # integer outputs this small are shape arithmetic: no data moves
CONTROL_FLOW_OPS = {"If", "Loop", "Scan"}
ARRAY_OPS = {"Conv", "Gemm", "MatMul"}
FUSABLE_ACTIVATIONS = {"Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "BatchNormalization"}
FUSABLE_AFFINE = {"Add", "Sub", "Mul", "Div"}  # with a constant operand: a bias or a scale


@dataclass(frozen=True)
class NodeReport:
    """One node's simulated cost."""

    name: str
    op_type: str
    cost: NodeCost
    latency_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """The ``node_times`` row, named as the runtime backends name theirs (node, op_type, median_ms),
        plus the simulator's own columns: status, unit, cycles, bound, utilisation, ..."""
        cost = self.cost
        return {
            "node": self.name,
            "op_type": self.op_type,
            "status": cost.status,
            "unit": cost.unit,
            "cycles": None if cost.status == "unsupported" else round(cost.cycles, 1),
            "median_ms": self.latency_ms,
            "bound": None if cost.status == "unsupported" or not cost.cycles else cost.bound,
            "utilisation": round(cost.utilisation, 4),
            "macs": cost.macs,
            "fused_into": cost.fused_into,
            "reason": cost.reason,
        }


@dataclass(frozen=True)
class SimulationReport:
    """Every node's cost and the totals; ``latency_ms`` is ``None`` when a node is unsupported."""

    device: str
    template: str
    clock_mhz: float
    peak_macs_per_cycle: float
    nodes: list[NodeReport]

    @property
    def unsupported(self) -> list[NodeReport]:
        return [node for node in self.nodes if node.cost.status == "unsupported"]

    @property
    def cycles(self) -> float:
        return sum(node.cost.cycles for node in self.nodes if node.cost.status != "unsupported")

    @property
    def latency_ms(self) -> float | None:
        return None if self.unsupported else self.cycles / (self.clock_mhz * 1e3)

    @property
    def macs(self) -> int:
        """Every MAC of the model, wherever it runs (array or host)."""
        return sum(node.cost.macs for node in self.nodes)

    @property
    def array_macs(self) -> int:
        """The MACs the MAC array runs (not those that fell back to the host)."""
        return sum(node.cost.macs for node in self.nodes if node.cost.unit == "array")

    def totals(self) -> dict[str, Any]:
        """Cycles, MACs, the MAC array's utilisation (its MACs over its peak for every cycle) and the
        milliseconds per status, unit and bound."""
        by: dict[str, dict[str, float]] = {"status_ms": {}, "unit_ms": {}, "bound_ms": {}}
        for node in self.nodes:
            if node.cost.status == "unsupported" or not node.latency_ms:
                continue
            for group, key in (("status_ms", node.cost.status), ("unit_ms", node.cost.unit), ("bound_ms", node.cost.bound)):
                by[group][key] = round(by[group].get(key, 0.0) + node.latency_ms, 6)
        cycles = self.cycles
        return {
            "template": self.template,
            "clock_mhz": self.clock_mhz,
            "cycles": round(cycles, 1),
            "latency_ms": self.latency_ms,
            "macs": self.macs,
            "utilisation": round(self.array_macs / (cycles * self.peak_macs_per_cycle), 4) if cycles > 0 else 0.0,
            "nodes": len(self.nodes),
            **by,
        }


class Simulator:
    """A device's hardware model: the MAC array, the vector unit, the DMA engine and the host."""

    def __init__(self, device: DeviceConfig) -> None:
        hardware = device.hardware
        if hardware is None:
            raise WorkloadError(f"device '{device.name}' has no hardware section to simulate")
        precision = device.backend_options.precision
        self.device = device
        self.hardware = hardware
        self.engine: DspArrayEngine | SystolicEngine
        if isinstance(hardware, DspArrayHardware):
            self.engine = DspArrayEngine(hardware, precision)
        elif isinstance(hardware, SystolicHardware):
            self.engine = SystolicEngine(hardware, precision)
        element_bytes = ELEMENT_BYTES[precision]
        bytes_per_cycle = self.engine.bytes_per_cycle
        self.vector = VectorModel(hardware.vector, bytes_per_cycle=bytes_per_cycle, element_bytes=element_bytes, overhead_cycles=self.engine.overhead_cycles)
        self.host = HostModel(hardware.host, clock_mhz=hardware.clock_mhz, bytes_per_cycle=bytes_per_cycle, element_bytes=element_bytes)

    # ------------------------------------------------------------------ whole graphs
    def simulate_onnx(self, onnx_bytes: bytes, inputs: dict[str, tuple[int, ...]]) -> SimulationReport:
        """Simulate an ONNX model at the given input shapes."""
        return self.simulate(load_graph(onnx_bytes, inputs))

    def simulate(self, graph: Graph) -> SimulationReport:
        """Cost every node of ``graph`` in order."""
        fused = fused_nodes(graph)
        reports = []
        for node in graph.nodes:
            if node.name in fused:
                cost = NodeCost("native", "fused", fused_into=fused[node.name])
            else:
                cost = self.node_cost(node)
            latency = None if cost.status == "unsupported" else cost.cycles / (self.hardware.clock_mhz * 1e3)
            reports.append(NodeReport(node.name, node.op_type, cost, latency))
        return SimulationReport(self.device.name, self.hardware.template, self.hardware.clock_mhz, self.engine.peak_macs_per_cycle, reports)

    # ------------------------------------------------------------------ one node
    def node_cost(self, node: GraphNode) -> NodeCost:
        """The cost of one (unfused) node on the unit that runs it."""
        op = node.op_type
        if op in CONTROL_FLOW_OPS:
            return NodeCost.unsupported(f"control flow ({op}) is not modelled by the simulator")
        if op in FREE_OPS or (node.outputs and all(not t.is_float and t.elements <= SHAPE_TENSOR_LIMIT for t in node.outputs)):
            return NodeCost("native", "none", reason="no data moves (shape or metadata only)")
        unknown = node.unknown_shapes()
        if unknown:
            return NodeCost.unsupported(f"shape inference could not tell the shape of {', '.join(unknown)}")
        moved = _moved_elements(node)
        if op in ARRAY_OPS:
            return self._array(node)
        if op in SOFTMAX_OPS:
            operations = SOFTMAX_OPS[op] * node.outputs[0].elements
            if self.hardware.softmax == "host":
                return self.host.run(flops=operations, elements_moved=moved, reason=f"{op} is not on the fabric of this device (softmax: host)")
            return self.vector.run(operations=operations, elements_moved=moved)
        if op in ELEMENTWISE_OPS:
            return self.vector.run(operations=ELEMENTWISE_OPS[op] * node.outputs[0].elements, elements_moved=moved)
        if op in POOL_OPS:
            window = math.prod(node.attrs.get("kernel_shape", [1]))
            return self.vector.run(operations=window * node.outputs[0].elements, elements_moved=moved)
        if op in REDUCE_OPS:
            return self.vector.run(operations=node.inputs[0].elements, elements_moved=moved)
        if op in COPY_OPS:
            return self.vector.copy(elements_moved=moved)
        return self.host.run(
            flops=sum(t.elements for t in node.outputs), elements_moved=moved, reason=f"{op} has no fabric kernel; host cost by element count"
        )

    def _array(self, node: GraphNode) -> NodeCost:
        try:
            shape = lower_conv(node) if node.op_type == "Conv" else lower_product(node)
        except LoweringError as exc:
            return NodeCost.unsupported(f"{node.op_type}: {exc}")
        moved = _moved_elements(node)
        input_elements = node.inputs[0].elements
        mode = self.hardware.conv3d
        if shape.kt > 1 and mode == "host":
            return self._on_host(shape, moved, "3D convolutions run on the host on this device (conv3d: host)")
        if shape.kt > 1 and mode == "decompose":
            return self._decomposed(shape, input_elements, moved)
        cost = self.engine.mac(shape, input_elements)
        if cost.status == "unsupported":
            return self._on_host(shape, moved, cost.reason)
        return cost

    def _decomposed(self, shape: MacShape, input_elements: int, moved: int) -> NodeCost:
        """kt 2D passes over all frames; each later pass adds its partial sums to the previous ones."""
        slice_cost = self.engine.mac(shape.temporal_slice(), input_elements)
        if slice_cost.status == "unsupported":
            return self._on_host(shape, moved, slice_cost.reason)
        outputs = shape.groups * shape.out_channels * shape.outputs_per_filter
        accumulate = self.vector.run(operations=outputs, elements_moved=3 * outputs)  # read both partials, write the sum
        return chain(
            [slice_cost] * shape.kt + [accumulate] * (shape.kt - 1),
            status="decomposed",
            peak_macs_per_cycle=self.engine.peak_macs_per_cycle,
            reason=f"{shape.kt}x{shape.kh}x{shape.kw} convolution as {shape.kt} 2D passes of {shape.kh}x{shape.kw} plus {shape.kt - 1} partial-sum additions",
        )

    def _on_host(self, shape: MacShape, moved: int, reason: str) -> NodeCost:
        return self.host.run(flops=2 * shape.macs, elements_moved=moved, reason=reason, macs=shape.macs)


def _moved_elements(node: GraphNode) -> int:
    """Elements a node reads and writes (every input, weights included, and every output)."""
    return sum(t.elements for t in node.inputs if t.name) + sum(t.elements for t in node.outputs)


def fused_nodes(graph: Graph) -> dict[str, str]:
    """Nodes applied at the write-back of the convolution or product feeding them: name -> producer.

    Follows the producer's output while it has one reader that is an activation, a batch norm or
    a constant bias/scale, and the SiLU pair ``x * Sigmoid(x)``. A graph output is never fused away.
    """
    readers = graph.consumers()
    fused: dict[str, str] = {}
    for node in graph.nodes:
        if node.op_type not in ARRAY_OPS or not node.outputs:
            continue
        tensor = node.outputs[0].name
        while tensor not in graph.outputs:
            users = readers.get(tensor, [])
            if len(users) == 1 and _fusable_single(users[0], tensor):
                fused[users[0].name] = node.name
                tensor = users[0].outputs[0].name
                continue
            silu = _silu_pair(users, tensor, graph, readers)
            if silu is None:
                break
            sigmoid, mul = silu
            fused[sigmoid.name] = fused[mul.name] = node.name
            tensor = mul.outputs[0].name
    return fused


def _fusable_single(user: GraphNode, tensor: str) -> bool:
    if user.op_type in FUSABLE_ACTIVATIONS:
        return user.inputs[0].name == tensor and all(t.constant or not t.name for t in user.inputs[1:])
    if user.op_type in FUSABLE_AFFINE and len(user.inputs) == 2:
        other = user.inputs[1] if user.inputs[0].name == tensor else user.inputs[0]
        shape = user.outputs[0].shape
        channels = max(shape[1], shape[-1]) if shape is not None and len(shape) > 1 else 1
        return other.constant and other.elements <= channels  # per-channel or per-feature
    return False


def _silu_pair(users: list[GraphNode], tensor: str, graph: Graph, readers: dict[str, list[GraphNode]]) -> tuple[GraphNode, GraphNode] | None:
    if len(users) != 2:
        return None
    sigmoid = next((user for user in users if user.op_type == "Sigmoid"), None)
    mul = next((user for user in users if user.op_type == "Mul"), None)
    if sigmoid is None or mul is None or sigmoid.outputs[0].name in graph.outputs or readers.get(sigmoid.outputs[0].name) != [mul]:
        return None
    if {t.name for t in mul.inputs} != {tensor, sigmoid.outputs[0].name}:
        return None
    return sigmoid, mul
