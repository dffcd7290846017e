"""The ONNX graph walker: nodes in execution order, with every tensor's shape inferred.

::

    ONNX bytes + input shapes ──> fix the graph inputs' dims ──> fold constant subgraphs
          ──> onnx.shape_inference ──> Shape nodes of known shapes become constants ──┐
                      ^─────────────── fold again while any did ────────────────────┘
          ──> Graph(nodes=[GraphNode(name, op_type, inputs: [Tensor], outputs: [Tensor], attrs)] in topological order, outputs)

A ``Tensor`` knows its shape (``None`` where inference could not tell), its element type and
whether it is a constant (an initializer or a ``Constant`` output), so the cost models can tell
weights from activations. numpy and onnx only: no torch, no runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from profiler.errors import WorkloadError

NOT_FOLDABLE = {"If", "Loop", "Scan", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


@dataclass(frozen=True)
class Tensor:
    """One value of the graph: name, shape (``None`` if unknown), element type, constant or not."""

    name: str
    shape: tuple[int, ...] | None
    elem_type: int = onnx.TensorProto.FLOAT
    constant: bool = False

    @property
    def elements(self) -> int:
        """Number of elements (0 when the shape is unknown)."""
        return math.prod(self.shape) if self.shape is not None else 0

    @property
    def is_float(self) -> bool:
        return self.elem_type in FLOAT_TYPES


@dataclass(frozen=True)
class GraphNode:
    """One ONNX node with its tensors resolved; ``name`` is never empty."""

    name: str
    op_type: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    def unknown_shapes(self) -> list[str]:
        """Names of the (non-empty) inputs and outputs whose shape inference could not tell."""
        return [tensor.name for tensor in (*self.inputs, *self.outputs) if tensor.name and tensor.shape is None]


def _shape_of(type_proto: onnx.TypeProto) -> tuple[int, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in type_proto.tensor_type.shape.dim:
        if not dim.HasField("dim_value") or dim.dim_value < 0:
            return None
        dims.append(int(dim.dim_value))
    return tuple(dims)


def _fix_input_shapes(model: onnx.ModelProto, inputs: dict[str, tuple[int, ...]]) -> None:
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        if value.name not in inputs:
            if _shape_of(value.type) is None:
                raise WorkloadError(f"graph input '{value.name}' has no fixed shape and the workload gives none; inputs given: {', '.join(inputs) or 'none'}")
            continue
        shape = inputs[value.name]
        dims = value.type.tensor_type.shape
        dims.ClearField("dim")
        for size in shape:
            dims.dim.add().dim_value = int(size)


@dataclass(frozen=True)
class Graph:
    """The nodes in execution order and the names of the graph's outputs."""

    nodes: list[GraphNode]
    outputs: frozenset[str]

    def consumers(self) -> dict[str, list[GraphNode]]:
        """Tensor name -> the nodes that read it."""
        readers: dict[str, list[GraphNode]] = {}
        for node in self.nodes:
            for tensor in node.inputs:
                if tensor.name:
                    readers.setdefault(tensor.name, []).append(node)
        return readers


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Evaluate the nodes that read only constants (shape arithmetic the exporter left in the graph).

    They become initializers, so shape inference can see e.g. the pads of a ``Pad`` that the
    exporter computed with ``ConstantOfShape -> Concat -> Reshape -> Slice -> Cast``. Evaluated
    with onnx's numpy reference evaluator; if it cannot run them, the model is returned unchanged.
    """
    graph = model.graph
    known = {init.name for init in graph.initializer}
    foldable = []
    for node in graph.node:
        if node.domain in ("", "ai.onnx") and node.op_type not in NOT_FOLDABLE and all(not name or name in known for name in node.input):
            foldable.append(node)
            known.update(name for name in node.output if name)
    if not foldable:
        return model
    outputs = [name for node in foldable for name in node.output if name]
    used = {name for node in foldable for name in node.input}
    constants = helper.make_graph(
        foldable, "constants", [], [helper.make_empty_tensor_value_info(name) for name in outputs],
        initializer=[init for init in graph.initializer if init.name in used],
    )
    try:
        values = ReferenceEvaluator(helper.make_model(constants, opset_imports=model.opset_import)).run(None, {})
    except Exception:  # an op the reference evaluator lacks: leave the graph as it is
        return model
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    folded_names = {id(node) for node in foldable}
    del folded.graph.node[:]
    folded.graph.node.extend(node for node in graph.node if id(node) not in folded_names)
    folded.graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name) for name, value in zip(outputs, values))
    return folded


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inference errors carry the op and the reason
        raise WorkloadError(f"ONNX shape inference failed: {str(exc).splitlines()[0]}") from None


def shapes_as_constants(model: onnx.ModelProto) -> bool:
    """Replace every ``Shape`` node whose input shape is known by an initializer; whether any was.

    ONNX's data propagation stops at ops such as ``Div`` (the exporter's ``channels // heads``), so
    a ``Reshape`` fed by such arithmetic would keep an unknown shape; as constants, the next
    ``fold_constants`` evaluates the arithmetic and shape inference sees the target shape.
    """
    graph = model.graph
    shapes = {init.name: tuple(int(d) for d in init.dims) for init in graph.initializer}
    for value in (*graph.input, *graph.value_info, *graph.output):
        shape = _shape_of(value.type)
        if shape is not None:
            shapes.setdefault(value.name, shape)
    kept: list[onnx.NodeProto] = []
    constants: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type == "Shape" and node.domain in ("", "ai.onnx") and node.input[0] in shapes:
            attrs = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
            dims = shapes[node.input[0]][attrs.get("start", 0):attrs.get("end")]  # ONNX clamps like Python slicing
            constants.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), node.output[0]))
        else:
            kept.append(node)
    if not constants:
        return False
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(constants)
    return True


def load_graph(onnx_bytes: bytes, inputs: dict[str, tuple[int, ...]]) -> Graph:
    """The nodes of an ONNX model in execution order, shapes inferred at the given input shapes."""
    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as exc:  # onnx raises DecodeError and others for bad bytes
        raise WorkloadError(f"workload is not a valid ONNX model: {exc}") from None
    _fix_input_shapes(model, inputs)
    model = _infer_shapes(fold_constants(model))
    while shapes_as_constants(model):  # each round turns at least one Shape node into a constant
        model = _infer_shapes(fold_constants(model))

    graph = model.graph
    tensors: dict[str, Tensor] = {}
    for init in graph.initializer:
        tensors[init.name] = Tensor(init.name, tuple(int(d) for d in init.dims), init.data_type, constant=True)
    for value in (*graph.input, *graph.value_info, *graph.output):
        if value.name in tensors:
            continue
        tensor_type = value.type.tensor_type
        tensors[value.name] = Tensor(value.name, _shape_of(value.type), tensor_type.elem_type or onnx.TensorProto.FLOAT)

    nodes: list[GraphNode] = []
    for index, node in enumerate(graph.node):
        attrs = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            array = numpy_helper.to_array(attrs["value"])
            tensors[node.output[0]] = Tensor(node.output[0], tuple(array.shape), attrs["value"].data_type, constant=True)
        resolved_inputs = tuple(tensors.get(name, Tensor(name, None)) if name else Tensor("", None) for name in node.input)
        resolved_outputs = tuple(tensors.get(name, Tensor(name, None)) for name in node.output)
        nodes.append(GraphNode(node.name or f"{node.op_type}_{index}", node.op_type, resolved_inputs, resolved_outputs, attrs))
    return Graph(nodes, frozenset(value.name for value in graph.output))
