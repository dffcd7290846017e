"""From an ONNX graph to the kernels a device runs: nodes grouped by the device's fusion rules.

::

    ONNX bytes + input shapes ──load_graph (shapes inferred, constants folded)──> nodes in order
        ──group_kernels(rules)──> KernelGraph(kernels: [Kernel(type, ops, nodes, features)],
                                              free: no-op nodes, unpriced: [Unpriced(node, op, reason)])

    Conv ─> BatchNormalization ─> Relu        one ``conv`` kernel if the device fuses conv>BatchNormalization
         (single consumer each)                 and conv>Relu, else conv + norm + elementwise kernels
    MatMul ─> Add(bias)                         one ``matmul`` kernel if the device fuses matmul>Add
    Div ─> Erf ─> Add ─> Mul ─> Mul             GELU as the exporter writes it: always one ``elementwise`` kernel
    Add ─> Relu                                 one ``elementwise`` kernel if elementwise>Relu fuses
    Reshape, Flatten, Squeeze, Unsqueeze        free: a view, run in place (listed under ``free``)

``FusionRules.from_table`` decides each rule from the fusion-rule tests in the store (A, B and A->B
of ``profiler.operators.fusion_workloads``): fused when A->B costs less than A plus half of B.
An op the predictors do not cover, or one whose shapes inference could not tell, is ``unpriced``:
listed with the reason, never counted as zero. Features are computed from the graph alone, so a
measured operator workload and the same kernel inside a model get the same features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from profiler.errors import WorkloadError
from profiler.operators import FUSION_PAIRS, fusion_workloads
from profiler.simulators.graph import Graph, GraphNode, load_graph
from profiler.simulators.ops import LoweringError, lower_conv

FREE = frozenset({"Identity", "Dropout", "Constant"})
# ops that only relabel a tensor's shape: the runtimes run them in place inside a model (alone, in a
# one-op graph, they copy to the graph output, so measuring them alone would count a copy that never runs)
VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Tanh", "Sigmoid", "Elu", "Softplus"})
TRANSCENDENTAL = frozenset({"Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Pow", "Div", "Softplus", "Elu", "Reciprocal", "Gelu"})
ELEMENTWISE = ACTIVATIONS | TRANSCENDENTAL | frozenset({
    "Add", "Sub", "Mul", "Neg", "Abs", "Max", "Min", "Where", "Equal", "Greater", "Less", "Not", "And", "Or", "Cast", "Mod",
    "Floor", "Ceil", "Round", "Sign"})
MOVEMENT_GROUPS = {
    "Transpose": 1, "Concat": 2, "Slice": 3, "Split": 3, "Gather": 3, "Pad": 4, "Expand": 5, "Tile": 5,
}
POOL_CODES = {"MaxPool": 0, "AveragePool": 1, "GlobalAveragePool": 2, "GlobalMaxPool": 2, "ReduceMean": 3, "ReduceMax": 3, "ReduceSum": 3}
TYPE_OF = {
    "Conv": "conv", "MatMul": "matmul", "Gemm": "matmul", **{op: "pool" for op in POOL_CODES},
    "LayerNormalization": "norm", "BatchNormalization": "norm", "InstanceNormalization": "norm",
    "Softmax": "softmax", "LogSoftmax": "softmax", **{op: "movement" for op in MOVEMENT_GROUPS}, "Resize": "resize",
    **{op: "elementwise" for op in ELEMENTWISE},
}
# the features of each kernel type, in the order the regressors see them
FEATURES: dict[str, tuple[str, ...]] = {
    "conv": ("log_macs", "log_in", "log_out", "log_weight", "cin_g", "cout_g", "log_groups", "depthwise", "kt", "kh", "kw",
             "stride_t", "stride_h", "log_out_pixels", "rank", "f_bn", "f_act", "f_sigmoid", "f_add", "log_cin_g", "log_cout_g",
             "log_gemm_k", "log_valid_share", "patchify"),
    "matmul": ("log_macs", "log_batch", "log_m", "log_k", "log_n", "b_const", "gemm", "f_add", "f_act"),
    "pool": ("kind", "log_in", "log_out", "window", "rank"),
    "norm": ("layer", "log_elems", "channels"),
    "softmax": ("log_elems", "axis"),
    "elementwise": ("log_out", "log_in", "ops", "transcendental", "binary", "broadcast"),
    "movement": ("kind", "log_in", "log_out", "inputs", "log_block"),
    "resize": ("log_in", "log_out", "linear"),
}


@dataclass(frozen=True)
class Kernel:
    """One kernel: its type, the ONNX ops and node names it runs, and its features."""

    type: str
    ops: tuple[str, ...]
    nodes: tuple[str, ...]
    features: dict[str, float]

    @property
    def label(self) -> str:
        return "+".join(self.ops)

    def signature(self) -> tuple[Any, ...]:
        """What a table hit must match: type and every feature (rounded)."""
        return (self.type, *(round(float(self.features[name]), 6) for name in FEATURES[self.type]))


@dataclass(frozen=True)
class Unpriced:
    """A node no kernel predictor covers, and why."""

    node: str
    op_type: str
    reason: str


@dataclass
class KernelGraph:
    """The kernels of a model, the no-op nodes, and the nodes that cannot be priced."""

    kernels: list[Kernel] = field(default_factory=list)
    free: list[str] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)


@dataclass(frozen=True)
class FusionRules:
    """Which anchor>follower pairs the device runs as one kernel (see ``profiler.operators.FUSION_PAIRS``)."""

    fused: frozenset[str] = frozenset()
    evidence: dict[str, float] = field(default_factory=dict, compare=False)

    def fuses(self, anchor: str, follower: str) -> bool:
        if follower in ACTIVATIONS and follower != "Sigmoid":
            follower = "Relu"  # Relu stands for the cheap activations in the tests
        return f"{anchor}>{follower}" in self.fused

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, threshold: float = 0.5) -> "FusionRules":
        """Rules from the fusion-rule tests in a store table: fused when T(A->B) - T(A) < threshold x T(B)
        (median over the test cases). Pairs not measured are taken as not fused."""
        fused, evidence = set(), {}
        current = {workload.key for workload in fusion_workloads()}  # the tests of this vidlat, not older ones
        rows = table[table["key"].isin(current) & (table["status"] == "ok")] if len(table) else table
        for pair in FUSION_PAIRS:
            ratios = []
            for case in sorted({row["spec"]["case"] for _, row in rows.iterrows() if row["spec"]["pair"] == pair}):
                times = {row["spec"]["part"]: row_latency(row) for _, row in rows.iterrows()
                         if row["spec"]["pair"] == pair and row["spec"]["case"] == case}
                if {"A", "B", "AB"} <= set(times) and times["B"] > 0:
                    ratios.append((times["AB"] - times["A"]) / times["B"])
            if ratios:
                evidence[pair] = float(np.median(ratios))
                if evidence[pair] < threshold:
                    fused.add(pair)
        return cls(frozenset(fused), evidence)


def row_latency(row: pd.Series) -> float:
    """A row's latency: its thread CPU time when the sweep left it flagged contended (one-thread runtimes)."""
    if bool(row.get("contended")) and row.get("cpu_ms") and row["cpu_ms"] > 0:
        return float(row["cpu_ms"])
    return float(row["median_ms"])


# --------------------------------------------------------------------------- features
def _log(value: float) -> float:
    return math.log(max(float(value), 1.0))


def _elements(tensors: Iterable[Any], *, constant: bool | None = None) -> int:
    return sum(t.elements for t in tensors if t.name and (constant is None or t.constant == constant))


def _epilogue_flags(ops: tuple[str, ...]) -> dict[str, float]:
    rest = ops[1:]
    return {
        "f_bn": float("BatchNormalization" in rest),
        "f_act": float(any(op in ACTIVATIONS and op != "Sigmoid" for op in rest)),
        "f_sigmoid": float("Sigmoid" in rest),
        "f_add": float("Add" in rest),
    }


def _valid_share(anchor: GraphNode) -> float:
    """The share of a convolution's kernel taps that land inside its input rather than on padding.

    One frame under a 3x3x3 kernel reads a third of its taps; ONNX Runtime multiplies the padded ones
    too (its time follows all MACs), OpenVINO skips them (its time follows the valid ones: 45-56 GMAC/s
    on both one-frame and four-frame layers of r3d_18 on the 2-core EPYC here)."""
    n_in, n_out = anchor.inputs[0].shape[2:], anchor.outputs[0].shape[2:]
    kernel = anchor.inputs[1].shape[2:]
    rank = len(kernel)
    strides = list(anchor.attrs.get("strides") or [1] * rank)
    dilations = list(anchor.attrs.get("dilations") or [1] * rank)
    auto_pad = anchor.attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    pads = list(anchor.attrs.get("pads") or [0] * (2 * rank))
    share = 1.0
    for axis, (n, o, k, s, d) in enumerate(zip(n_in, n_out, kernel, strides, dilations)):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            total = max((o - 1) * s + (k - 1) * d + 1 - n, 0)
            begin = total // 2 if auto_pad == "SAME_UPPER" else (total + 1) // 2
        else:
            begin = pads[axis] if auto_pad == "NOTSET" else 0
        valid = sum(1 for i in range(o) for j in range(k) if 0 <= i * s - begin + j * d < n)
        share *= valid / max(o * k, 1)
    return share


def _conv_features(anchor: GraphNode, ops: tuple[str, ...]) -> dict[str, float]:
    mac = lower_conv(anchor)
    rank = len(anchor.inputs[1].shape) - 2
    strides = list(anchor.attrs.get("strides") or [1] * rank)
    stride_t = strides[0] if rank == 3 else 1
    return {
        "log_macs": _log(mac.macs), "log_in": _log(anchor.inputs[0].elements), "log_out": _log(anchor.outputs[0].elements),
        "log_weight": _log(anchor.inputs[1].elements), "cin_g": float(mac.in_channels), "cout_g": float(mac.out_channels),
        "log_groups": _log(mac.groups), "depthwise": float(mac.groups > 1 and mac.in_channels == 1),
        "kt": float(mac.kt), "kh": float(mac.kh), "kw": float(mac.kw), "stride_t": float(stride_t), "stride_h": float(mac.stride_h),
        "log_out_pixels": _log(mac.outputs_per_filter), "rank": float(rank), **_epilogue_flags(ops),
        # the convolution as the GEMM the runtimes lower it to: cout_g x (cin_g kt kh kw) @ (cin_g kt kh kw) x pixels
        "log_cin_g": _log(mac.in_channels), "log_cout_g": _log(mac.out_channels),
        "log_gemm_k": _log(mac.in_channels * mac.kt * mac.kh * mac.kw), "log_valid_share": math.log(max(_valid_share(anchor), 1e-6)),
        "patchify": float(_patchify(anchor)),
    }


def _patchify(anchor: GraphNode) -> bool:
    """A patch embedding: kernel = stride in every dimension (> 1 somewhere), no padding, no dilation, so the
    input is cut into disjoint patches and the convolution is one GEMM over them (runtimes take other paths)."""
    kernel = list(anchor.inputs[1].shape[2:])
    strides = list(anchor.attrs.get("strides") or [1] * len(kernel))
    pads = list(anchor.attrs.get("pads") or [0] * 2 * len(kernel))
    dilations = list(anchor.attrs.get("dilations") or [1] * len(kernel))
    auto_pad = anchor.attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    return kernel == strides and max(kernel) > 1 and not any(pads) and set(dilations) <= {1} and auto_pad in ("NOTSET", "VALID")


def _matmul_features(anchor: GraphNode, ops: tuple[str, ...]) -> dict[str, float]:
    a, b, y = anchor.inputs[0].shape, anchor.inputs[1].shape, anchor.outputs[0].shape
    if anchor.op_type == "Gemm":
        k = a[0] if anchor.attrs.get("transA", 0) else a[1]
        batch, m, n = 1, y[0], y[1]
    else:
        k, m = a[-1], (a[-2] if len(a) > 1 else 1)
        n = b[-1] if len(b) > 1 else 1
        batch = math.prod(y[:-2]) if len(y) > 2 else 1
        if len(b) <= 2:  # shared weights: the batch is more rows
            m, batch = m * batch, 1
    flags = _epilogue_flags(ops)
    return {"log_macs": _log(batch * m * k * n), "log_batch": _log(batch), "log_m": _log(m), "log_k": _log(k), "log_n": _log(n),
            "b_const": float(anchor.inputs[1].constant), "gemm": float(anchor.op_type == "Gemm"),
            "f_add": flags["f_add"], "f_act": float(flags["f_act"] or flags["f_sigmoid"])}


def _pool_features(node: GraphNode) -> dict[str, float]:
    x, y = node.inputs[0], node.outputs[0]
    spatial = x.shape[2:]
    if node.op_type in ("MaxPool", "AveragePool"):
        window = math.prod(node.attrs.get("kernel_shape", [1]))
    else:
        window = x.elements // max(y.elements, 1)
    return {"kind": float(POOL_CODES[node.op_type]), "log_in": _log(x.elements), "log_out": _log(y.elements),
            "window": float(window), "rank": float(len(spatial))}


def _features(kernel_type: str, nodes: list[GraphNode]) -> dict[str, float]:
    anchor = nodes[0]
    ops = tuple(node.op_type for node in nodes)
    if kernel_type == "conv":
        return _conv_features(anchor, ops)
    if kernel_type == "matmul":
        return _matmul_features(anchor, ops)
    if kernel_type == "pool":
        return _pool_features(anchor)
    y = nodes[-1].outputs[0]
    if kernel_type == "norm":
        return {"layer": float(anchor.op_type == "LayerNormalization"), "log_elems": _log(y.elements),
                "channels": float(anchor.inputs[0].shape[-1] if anchor.op_type == "LayerNormalization" else anchor.inputs[0].shape[1])}
    if kernel_type == "softmax":
        axis = int(anchor.attrs.get("axis", -1))
        return {"log_elems": _log(y.elements), "axis": float(anchor.inputs[0].shape[axis])}
    if kernel_type == "elementwise":
        inside = {t.name for node in nodes for t in node.outputs}
        outside = [t for node in nodes for t in node.inputs if t.name and t.name not in inside]
        activations = [t for t in outside if not t.constant]
        largest = max((t.elements for t in activations), default=0)
        return {"log_out": _log(y.elements), "log_in": _log(sum(t.elements for t in activations)), "ops": float(len(nodes)),
                "transcendental": float(sum(op in TRANSCENDENTAL for op in ops)),
                "binary": float(len({t.name for t in activations}) > 1),
                "broadcast": float(any(t.constant and t.elements > 1 for t in outside) or any(t.elements < largest for t in activations))}
    if kernel_type == "movement":
        activations = [t for t in anchor.inputs if t.name and not t.constant]
        return {"kind": float(MOVEMENT_GROUPS[anchor.op_type]), "log_in": _log(sum(t.elements for t in activations)),
                "log_out": _log(sum(t.elements for t in anchor.outputs if t.name)),
                "inputs": float(len(activations)), "log_block": _log(_contiguous_block(anchor))}
    if kernel_type == "resize":
        return {"log_in": _log(anchor.inputs[0].elements), "log_out": _log(y.elements),
                "linear": float(str(anchor.attrs.get("mode", b"nearest")).find("linear") >= 0)}
    raise ValueError(f"unknown kernel type '{kernel_type}'")


# --------------------------------------------------------------------------- grouping
def _contiguous_block(node: GraphNode) -> int:
    """Elements copied in one contiguous run: for a Transpose the trailing input axes it leaves in place,
    for the other movement ops the output's last axis."""
    shape = node.outputs[0].shape
    if node.op_type != "Transpose":
        return shape[-1] if shape else 1
    rank = len(node.inputs[0].shape)
    perm = list(node.attrs.get("perm") or reversed(range(rank)))
    block, axis = 1, rank - 1
    while axis >= 0 and perm[axis] == axis:
        block *= node.inputs[0].shape[axis]
        axis -= 1
    return block


def _is_gelu(start: GraphNode, consumers: dict[str, list[GraphNode]], outputs: frozenset[str]) -> list[GraphNode] | None:
    """The nodes Div -> Erf -> Add -> Mul -> Mul of an exported GELU starting at ``start`` (a Div), else None."""
    chain, node = [start], start
    for op in ("Erf", "Add", "Mul"):
        readers = consumers.get(node.outputs[0].name, [])
        if len(readers) != 1 or readers[0].op_type != op or node.outputs[0].name in outputs:
            return None
        node = readers[0]
        chain.append(node)
    readers = consumers.get(node.outputs[0].name, [])
    if len(readers) != 1 or readers[0].op_type != "Mul" or node.outputs[0].name in outputs:
        return None
    return [*chain, readers[0]]


def _absorbs(kernel_type: str, tail: GraphNode, follower: GraphNode, rules: FusionRules) -> bool:
    op = follower.op_type
    if kernel_type == "conv" and op == "BatchNormalization":
        return rules.fuses("conv", op) and all(t.constant for t in follower.inputs[1:])
    if op == "Add" and kernel_type in ("conv", "matmul"):
        other = [t for t in follower.inputs if t.name != tail.outputs[0].name]
        return len(other) == 1 and other[0].shape is not None and rules.fuses(kernel_type, "Add") and (
            other[0].constant or other[0].shape == tail.outputs[0].shape)
    if op in ACTIVATIONS and kernel_type in ("conv", "matmul", "elementwise"):
        return rules.fuses(kernel_type, op) and all(t.constant for t in follower.inputs[1:] if t.name)
    return False


def group_kernels(graph: Graph, rules: FusionRules) -> KernelGraph:
    """The kernels of ``graph`` in execution order under ``rules`` (see the module doc)."""
    consumers = graph.consumers()
    result = KernelGraph()
    taken: set[str] = set()
    for node in graph.nodes:
        if node.name in taken:
            continue
        if node.op_type in FREE or node.op_type in VIEWS or (node.inputs and all(t.constant for t in node.inputs if t.name) and node.op_type not in TYPE_OF):
            result.free.append(node.name)
            continue
        kernel_type = TYPE_OF.get(node.op_type)
        if kernel_type is None:
            result.unpriced.append(Unpriced(node.name, node.op_type, "no operator predictor covers this op"))
            continue
        unknown = node.unknown_shapes()
        if unknown:
            result.unpriced.append(Unpriced(node.name, node.op_type, f"shape of {unknown[0]} unknown after shape inference"))
            continue
        if kernel_type == "elementwise" and all(t.constant for t in node.inputs if t.name):
            result.free.append(node.name)  # computed once when the runtime loads the model
            continue
        nodes = [node]
        if node.op_type == "Div":
            nodes = _is_gelu(node, consumers, graph.outputs) or nodes
        tail = nodes[-1]
        while True:
            readers = consumers.get(tail.outputs[0].name, [])
            if len(readers) != 1 or tail.outputs[0].name in graph.outputs or readers[0].unknown_shapes():
                break
            if readers[0].name in taken or not _absorbs(kernel_type, tail, readers[0], rules):
                break
            tail = readers[0]
            nodes.append(tail)
        try:
            features = _features(kernel_type, nodes)
        except (LoweringError, TypeError, IndexError, ValueError) as exc:
            result.unpriced.append(Unpriced(node.name, node.op_type, f"cannot read its shapes ({exc})"))
            continue
        taken.update(n.name for n in nodes)  # a residual Add joins the first of its two producers only
        result.kernels.append(Kernel(kernel_type, tuple(n.op_type for n in nodes), tuple(n.name for n in nodes), features))
    return result


def model_kernels(onnx_bytes: bytes, inputs: dict[str, tuple[int, ...]], rules: FusionRules) -> KernelGraph:
    """Kernels of an ONNX model at the given input shapes (``WorkloadError`` for a model that cannot be read)."""
    try:
        graph = load_graph(onnx_bytes, inputs)
    except RecursionError:
        raise WorkloadError("the ONNX model is nested too deeply to read") from None
    return group_kernels(graph, rules)
