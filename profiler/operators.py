"""Operator (kernel) workloads: small ONNX graphs of the operators video models are made of.

::

    kernel type ──sample_config(rng)──> config {cin, cout, t, h, w, kernel, stride, groups, epilogue, ...}
                ──mutate_config(cfg)──> a neighbour of a config (adaptive sampling around large errors)
    config ──operator_workload──> Workload(key "op|<type>|<readable config>", ONNX of one kernel,
                                          spec {op: "operator", kernel, config, round})
    fusion pair "conv>Relu" ──fusion_workloads──> A, B and A->B (spec {op: "fusion", pair, part, case})
    stream_workloads ──> chains of linear layers on 4-128 MiB of weights (spec {kernel: "stream", config})

Kernel types: ``conv`` (Conv 1D/2D/3D: dense, depthwise, grouped; t x k x k, 1 x k x k, t x 1 x 1; an
epilogue of BatchNormalization / activation / residual Add), ``matmul`` (MatMul of attention and
linear shapes, Gemm, optional bias Add and activation), ``pool`` (max / average 2D and 3D, global,
ReduceMean), ``norm`` (LayerNormalization, BatchNormalization), ``softmax``, ``elementwise`` (unary
and binary, GELU as the exporter writes it), ``movement`` (Reshape, Transpose, Concat, Slice, Pad,
Expand), ``resize``; plus ``overhead``: the smallest graph, whose time is the runtime's per-run cost,
and ``stream``: what reading weights costs in cache and past it. Two fifths of the convolutions are drawn
shaped as inside video CNNs (``_network_conv``), a tenth as transformer patch embeddings (``_patch_conv``),
half anywhere in the ranges (``_any_conv``).
numpy and onnx only; every graph has one float32 input ``x`` (two for binary ops: ``x``, ``y``).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from profiler.workload import Workload

OPSET = 17
KERNEL_TYPES: tuple[str, ...] = ("conv", "matmul", "pool", "norm", "softmax", "elementwise", "movement", "resize")
# how many configurations the first round samples per kernel type (conv covers 2D and 3D)
INITIAL_SAMPLES: dict[str, int] = {
    "conv": 280, "matmul": 60, "pool": 24, "norm": 24, "softmax": 16, "elementwise": 50, "movement": 48, "resize": 10,
}
# fusion-rule tests: anchor kernel type > follower op
FUSION_PAIRS: tuple[str, ...] = (
    "conv>BatchNormalization", "conv>Relu", "conv>Add", "conv>Sigmoid", "matmul>Add", "matmul>Relu", "elementwise>Relu",
)
# weight streaming: chains of 1, 2, 4, ... 32 linear layers on 32 tokens, each on its own float32 4 MiB
# weights, from inside the caches to well past them
STREAM_SIDE = 1024
STREAM_ROWS = 32
STREAM_MATRICES = (1, 2, 4, 8, 16, 32)
MAX_MACS = 6e9
MAX_ELEMENTS = 8_000_000

_CHANNELS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
_FRAMES = (1, 2, 4, 8, 16)
_SIZES = (4, 7, 8, 14, 16, 28, 32, 56, 64, 112)
_KERNELS_3D = ((1, 1, 1), (1, 3, 3), (3, 1, 1), (3, 3, 3), (1, 5, 5), (3, 5, 5), (1, 7, 7), (3, 7, 7), (2, 4, 4), (5, 1, 1))
_STRIDES_3D = ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 1, 1), (2, 4, 4))
# patch embeddings of video transformers (video Swin, VideoMAE / ViViT tubelets, TimeSformer frames)
_PATCHES = ((2, 4, 4), (2, 16, 16), (1, 16, 16))
_EPILOGUES = ((), ("BatchNormalization",), ("Relu",), ("BatchNormalization", "Relu"), ("Add",), ("Add", "Relu"), ("Sigmoid",))
UNARY = ("Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Neg", "Gelu", "HardSigmoid", "Clip")
BINARY = ("Add", "Mul", "Sub", "Div", "Pow")
MOVEMENT = ("Transpose", "Concat", "Slice", "Pad", "Expand")  # Reshape & co. are views, free inside a model


# --------------------------------------------------------------------------- graph building helpers
class _Graph:
    """Collects nodes and initializers; ``tensor`` makes a fresh name."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weights(self, shape: tuple[int, ...], stem: str = "w") -> str:
        scale = 1.0 / math.sqrt(max(1, math.prod(shape[1:])))
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), stem)

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def model(self, inputs: dict[str, tuple[int, ...]], output: str) -> bytes:
        graph = helper.make_graph(
            self.nodes, "operator",
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name, shape in inputs.items()],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
            initializer=self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vidlat-operators")
        model.ir_version = 8
        return model.SerializeToString()


def _bn(g: _Graph, x: str, channels: int) -> str:
    ones = np.ones(channels, dtype=np.float32)
    return g.node("BatchNormalization", [x, g.const(ones * 1.1), g.const(ones * 0.1), g.const(ones * 0.05), g.const(ones * 0.9)],
                  epsilon=1e-5)


def _activation(g: _Graph, op: str, x: str) -> str:
    if op == "Gelu":  # as torch.onnx writes nn.GELU at opset < 20: x * 0.5 * (1 + erf(x / sqrt 2))
        scaled = g.node("Div", [x, g.const(np.array(math.sqrt(2.0), dtype=np.float32))])
        erf = g.node("Erf", [scaled])
        shifted = g.node("Add", [erf, g.const(np.array(1.0, dtype=np.float32))])
        product = g.node("Mul", [x, shifted])
        return g.node("Mul", [product, g.const(np.array(0.5, dtype=np.float32))])
    if op == "Clip":
        return g.node("Clip", [x, g.const(np.array(0.0, dtype=np.float32)), g.const(np.array(6.0, dtype=np.float32))])
    if op == "HardSigmoid":
        return g.node("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)
    return g.node(op, [x])


def _epilogue(g: _Graph, x: str, ops: tuple[str, ...], channels: int, out_shape: tuple[int, ...], inputs: dict[str, tuple[int, ...]]) -> str:
    for op in ops:
        if op == "BatchNormalization":
            x = _bn(g, x, channels)
        elif op == "Add":  # a residual: a second activation input of the output's shape
            inputs["y"] = out_shape
            x = g.node("Add", [x, "y"])
        else:
            x = _activation(g, op, x)
    return x


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


# --------------------------------------------------------------------------- builders per kernel type
def _build_conv(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    spatial = tuple(c["size"])
    x_shape = (1, c["cin"], *spatial)
    inputs = {"x": x_shape}
    pads = [k // 2 if k > s else 0 for k, s in zip(c["kernel"], c["stride"])]
    out_spatial = tuple(_conv_out(n, k, s, p) for n, k, s, p in zip(spatial, c["kernel"], c["stride"], pads))
    weight = g.weights((c["cout"], c["cin"] // c["groups"], *c["kernel"]))
    y = g.node("Conv", ["x", weight, g.const(np.zeros(c["cout"], dtype=np.float32), "b")], kernel_shape=list(c["kernel"]),
               strides=list(c["stride"]), pads=pads * 2, group=c["groups"])
    y = _epilogue(g, y, tuple(c["epilogue"]), c["cout"], (1, c["cout"], *out_spatial), inputs)
    return g.model(inputs, y), inputs


def _build_matmul(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    batch, m, k, n = c["batch"], c["m"], c["k"], c["n"]
    if c["form"] == "gemm":
        inputs = {"x": (m, k)}
        y = g.node("Gemm", ["x", g.weights((n, k)), g.const(np.zeros(n, dtype=np.float32), "b")], transB=1)
    elif c["form"] == "attention":  # both operands are activations: (B, heads, m, k) @ (B, heads, k, n)
        inputs = {"x": (1, batch, m, k), "z": (1, batch, k, n)}
        y = g.node("MatMul", ["x", "z"])
    else:  # linear: (1, batch * m, k) @ W(k, n)
        inputs = {"x": (1, batch * m, k)}
        y = g.node("MatMul", ["x", g.weights((k, n))])
    out_shape = (m, n) if c["form"] == "gemm" else ((1, batch, m, n) if c["form"] == "attention" else (1, batch * m, n))
    for op in c["epilogue"]:
        if op == "Add":  # a bias, or an attention mask / relative position bias
            attention = c["form"] == "attention"
            y = g.node("Add", [y, g.const(np.zeros(out_shape[1:] if attention else (n,), dtype=np.float32), "m" if attention else "b")])
        else:
            y = _activation(g, op, y)
    return g.model(inputs, y), inputs


def _build_pool(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    inputs = {"x": (1, c["channels"], *c["size"])}
    if c["op"] in ("GlobalAveragePool", "GlobalMaxPool"):
        y = g.node(c["op"], ["x"])
    elif c["op"] == "ReduceMean":
        y = g.node("ReduceMean", ["x"], axes=list(range(2, 2 + len(c["size"]))), keepdims=1)
    else:
        pads = [k // 2 if k > s else 0 for k, s in zip(c["kernel"], c["stride"])]
        y = g.node(c["op"], ["x"], kernel_shape=list(c["kernel"]), strides=list(c["stride"]), pads=pads * 2)
    return g.model(inputs, y), inputs


def _build_norm(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    if c["op"] == "LayerNormalization":
        inputs = {"x": (1, c["rows"], c["channels"])}
        ones = np.ones(c["channels"], dtype=np.float32)
        y = g.node("LayerNormalization", ["x", g.const(ones), g.const(ones * 0)], axis=-1, epsilon=1e-5)
    else:
        inputs = {"x": (1, c["channels"], *c["size"])}
        y = _bn(g, "x", c["channels"])
    return g.model(inputs, y), inputs


def _build_softmax(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    inputs = {"x": (1, c["batch"], c["rows"], c["cols"])}
    return g.model(inputs, g.node("Softmax", ["x"], axis=-1)), inputs


def _build_elementwise(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    shape = tuple(c["shape"])
    inputs = {"x": shape}
    if c["op"] in BINARY:
        if c["broadcast"]:  # a per-channel operand (bias, scale)
            other = g.const(np.full((shape[1],) + (1,) * (len(shape) - 2), 1.5, dtype=np.float32))
        else:
            inputs["y"] = shape
            other = "y"
        y = g.node(c["op"], ["x", other])
    else:
        y = _activation(g, c["op"], "x")
    for op in c.get("then", ()):  # a second elementwise op after it (the elementwise>Relu fusion test)
        y = _activation(g, op, y)
    return g.model(inputs, y), inputs


def _build_movement(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    shape = tuple(c["shape"])
    inputs = {"x": shape}
    op = c["op"]
    if op == "Reshape":
        y = g.node("Reshape", ["x", g.const(np.array([shape[0], -1, shape[-1]], dtype=np.int64))])
    elif op == "Transpose":
        perm = list(c["perm"]) if "perm" in c else list(range(len(shape)))
        if "perm" not in c:  # the first sampler: swap axes 1 and -1 (and 2 and -2)
            perm[1], perm[-1] = perm[-1], perm[1]
            if len(perm) > 3:
                perm[2], perm[-2] = perm[-2], perm[2]
        y = g.node("Transpose", ["x"], perm=perm)
    elif op == "Concat":
        inputs["y"] = shape
        y = g.node("Concat", ["x", "y"], axis=1)
    elif op == "Slice":
        half = max(1, shape[-1] // 2)
        y = g.node("Slice", ["x", g.const(np.array([0], dtype=np.int64)), g.const(np.array([half], dtype=np.int64)),
                            g.const(np.array([len(shape) - 1], dtype=np.int64))])
    elif op == "Pad":
        pads = [0, 0] + [1] * (len(shape) - 2) + [0, 0] + [1] * (len(shape) - 2)
        y = g.node("Pad", ["x", g.const(np.array(pads, dtype=np.int64))])
    else:  # Expand a singleton axis
        inputs["x"] = (shape[0], 1, *shape[2:])
        y = g.node("Expand", ["x", g.const(np.array(shape, dtype=np.int64))])
    return g.model(inputs, y), inputs


def _build_resize(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    inputs = {"x": (1, c["channels"], *c["size"])}
    scales = np.array([1.0, 1.0] + [float(c["scale"])] * len(c["size"]), dtype=np.float32)
    y = g.node("Resize", ["x", "", g.const(scales)], mode=c["mode"])
    return g.model(inputs, y), inputs


def _build_stream(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    """A chain of linear layers on ``rows`` tokens, each with its own STREAM_SIDE x STREAM_SIDE weights."""
    inputs = {"x": (c["rows"], STREAM_SIDE)}
    y = "x"
    for _ in range(c["matrices"]):
        y = g.node("MatMul", [y, g.weights((STREAM_SIDE, STREAM_SIDE))])
    return g.model(inputs, y), inputs


def _build_overhead(c: dict[str, Any], g: _Graph) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    inputs = {"x": (1, 1)}
    return g.model(inputs, g.node("Relu", ["x"])), inputs


_BUILDERS = {
    "conv": _build_conv, "matmul": _build_matmul, "pool": _build_pool, "norm": _build_norm, "softmax": _build_softmax,
    "elementwise": _build_elementwise, "movement": _build_movement, "resize": _build_resize, "overhead": _build_overhead,
    "stream": _build_stream,
}


# --------------------------------------------------------------------------- sampling
def _pick(rng: np.random.Generator, values: tuple[Any, ...]) -> Any:
    return values[int(rng.integers(len(values)))]


def _video_shape(rng: np.random.Generator, channels: int) -> tuple[int, ...]:
    side = _pick(rng, _SIZES)
    return (1, channels, _pick(rng, _FRAMES), side, side)


def _sample_conv(rng: np.random.Generator) -> dict[str, Any]:
    """A tenth of the convolutions are transformer patch embeddings (``_patch_conv``), two fifths as video CNNs
    use them (``_network_conv``), half anywhere in the ranges."""
    draw = rng.random()
    if draw < 0.1:
        return _patch_conv(rng)
    return _network_conv(rng) if draw < 0.5 else _any_conv(rng)


def _patch_conv(rng: np.random.Generator) -> dict[str, Any]:
    """A patch embedding as video transformers run it: kernel = stride (a tubelet or a frame patch), mostly on the
    RGB clip, a frame size that the patch divides, the widths transformers embed to."""
    kernel = _pick(rng, _PATCHES)
    cin = 3 if rng.random() < 0.75 else _pick(rng, _CHANNELS)
    side = _pick(rng, tuple(n for n in (32, 48, 64, 96, 112, 128, 160, 224) if n % kernel[1] == 0))
    frames = _pick(rng, tuple(n for n in _FRAMES if n >= kernel[0]))
    return {"cin": cin, "cout": _pick(rng, (48, 64, 96, 128, 192, 256, 384, 512, 768)), "groups": 1, "kernel": list(kernel),
            "stride": list(kernel), "size": [frames, side, side], "epilogue": []}


def _any_conv(rng: np.random.Generator) -> dict[str, Any]:
    two_d = rng.random() < 0.2
    kernel = _pick(rng, _KERNELS_3D)
    stride = _pick(rng, _STRIDES_3D)
    if stride == (2, 4, 4):
        kernel = stride = _pick(rng, _PATCHES)  # a patch embedding: kernel = stride
    stride = tuple(min(s, k) if k > 1 else s for s, k in zip(stride, kernel))
    cin, cout = _pick(rng, _CHANNELS), _pick(rng, _CHANNELS)
    style = _pick(rng, ("dense", "dense", "dense", "depthwise", "grouped"))
    if rng.random() < 0.08:
        cin = 3  # a stem
        style = "dense"
    if style == "depthwise":
        cout, groups = cin, cin
    elif style == "grouped":
        groups = _pick(rng, tuple(gr for gr in (2, 4, 8, 16, 32) if cin % gr == 0 and cout % gr == 0) or (1,))
    else:
        groups = 1
    side = _pick(rng, _SIZES)
    size = (_pick(rng, _FRAMES), side, side)
    if two_d:
        kernel, stride, size = kernel[1:], stride[1:], size[1:]
    # a padded dimension may be smaller than the kernel (deep layers of a video network: 1 frame, 3 x 3 x 3)
    size = tuple(n if k > st else max(n, k) for n, k, st in zip(size, kernel, stride))
    return {"cin": cin, "cout": cout, "groups": groups, "kernel": list(kernel), "stride": list(stride), "size": list(size),
            "epilogue": list(_pick(rng, _EPILOGUES))}


def _network_conv(rng: np.random.Generator) -> dict[str, Any]:
    """A convolution shaped like those inside video CNNs (nn-Meter samples from a model-zoo prior the same way):
    output channels 1/4x to 4x the input's, the common 3D kernels, same padding, mostly stride 1, and a
    feature map that shrinks as the channels grow (channels x height x width between 2^12 and 2^18)."""
    cin = _pick(rng, _CHANNELS)
    cout = min(max(int(cin * _pick(rng, (1, 1, 1, 2, 4, 0.5, 0.25))), 8), 512)
    style = _pick(rng, ("dense", "dense", "dense", "dense", "depthwise"))
    groups = cin if style == "depthwise" else 1
    if style == "depthwise":
        cout = cin
    kernel = _pick(rng, ((3, 3, 3), (3, 3, 3), (1, 3, 3), (1, 3, 3), (3, 1, 1), (1, 1, 1), (1, 1, 1), (5, 1, 1), (1, 5, 5)))
    stride = _pick(rng, ((1, 1, 1),) * 5 + ((1, 2, 2), (2, 2, 2)))
    stride = tuple(min(s, k) if k > 1 else s for s, k in zip(stride, kernel))
    sides = tuple(side for side in _SIZES if 2**12 <= cin * side * side <= 2**18) or (_SIZES[0],)
    side = _pick(rng, sides)
    frames = _pick(rng, _FRAMES)
    return {"cin": cin, "cout": cout, "groups": groups, "kernel": list(kernel), "stride": list(stride),
            "size": [frames if kernel[0] > stride[0] else max(frames, kernel[0]), side, side],
            "epilogue": list(_pick(rng, _EPILOGUES))}


def _sample_matmul(rng: np.random.Generator) -> dict[str, Any]:
    form = _pick(rng, ("linear", "linear", "attention", "attention", "gemm"))
    tokens = _pick(rng, (16, 49, 64, 98, 196, 256, 392, 784, 1568))
    width = _pick(rng, (32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536))
    if form == "gemm":
        return {"form": form, "batch": 1, "m": 1, "k": width, "n": _pick(rng, (10, 101, 400, 512, 1000)), "epilogue": []}
    if form == "attention":
        heads = _pick(rng, (1, 2, 3, 4, 6, 8, 12, 16, 24, 48))
        windows = _pick(rng, (1, 1, 2, 4, 8, 16, 32))
        dim = _pick(rng, (32, 64))
        rows = min(tokens, 392)
        scores = rng.random() < 0.5  # q @ k^T (rows x dim @ dim x rows) or attn @ v (rows x rows @ rows x dim)
        k, n = (dim, rows) if scores else (rows, dim)
        return {"form": form, "batch": heads * windows, "m": rows, "k": k, "n": n, "epilogue": ["Add"] if rng.random() < 0.3 else []}
    out = _pick(rng, (width, width * 2, width * 3, width * 4, max(32, width // 4)))
    epilogue = _pick(rng, ([], ["Add"], ["Add"], ["Add"], ["Add", "Relu"]))
    return {"form": form, "batch": 1, "m": tokens, "k": width, "n": out, "epilogue": list(epilogue)}


def _sample_pool(rng: np.random.Generator) -> dict[str, Any]:
    op = _pick(rng, ("MaxPool", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"))
    shape = _video_shape(rng, _pick(rng, _CHANNELS))
    kernel = _pick(rng, ((1, 3, 3), (3, 3, 3), (2, 2, 2), (1, 2, 2), (3, 1, 1)))
    stride = _pick(rng, ((1, 2, 2), (2, 2, 2), (1, 1, 1)))
    size = [max(n, k) for n, k in zip(shape[2:], kernel)]
    if rng.random() < 0.2:
        kernel, stride, size = kernel[1:], stride[1:], size[1:]
    return {"op": op, "channels": shape[1], "size": size, "kernel": list(kernel), "stride": list(stride)}


def _sample_norm(rng: np.random.Generator) -> dict[str, Any]:
    if rng.random() < 0.6:
        return {"op": "LayerNormalization", "rows": _pick(rng, (49, 196, 392, 784, 1568, 3136)),
                "channels": _pick(rng, (64, 96, 128, 192, 384, 768))}
    shape = _video_shape(rng, _pick(rng, _CHANNELS))
    return {"op": "BatchNormalization", "channels": shape[1], "size": list(shape[2:])}


def _sample_softmax(rng: np.random.Generator) -> dict[str, Any]:
    rows = _pick(rng, (16, 49, 98, 196, 392, 784))
    return {"batch": _pick(rng, (1, 3, 6, 12, 24, 48, 96)), "rows": rows, "cols": rows}


def _sample_elementwise(rng: np.random.Generator) -> dict[str, Any]:
    op = _pick(rng, UNARY + BINARY)
    if rng.random() < 0.5:
        shape = list(_video_shape(rng, _pick(rng, _CHANNELS)))
    else:
        shape = [1, _pick(rng, (49, 196, 392, 784, 1568, 3136)), _pick(rng, (64, 96, 192, 384, 768, 1536))]
    return {"op": op, "shape": shape, "broadcast": bool(op in BINARY and rng.random() < 0.4)}


def _sample_movement(rng: np.random.Generator) -> dict[str, Any]:
    op = _pick(rng, MOVEMENT)
    if rng.random() < 0.5:
        shape = list(_video_shape(rng, _pick(rng, _CHANNELS)))
    else:
        shape = [1, _pick(rng, (1, 4, 16, 64)), _pick(rng, (49, 98, 196, 392)), _pick(rng, (32, 64, 96, 192, 384))]
    if op != "Transpose":
        return {"op": op, "shape": shape}
    # a random permutation; half of them keep the innermost axis (a contiguous copy per row, as in
    # attention head splits), the others move it (a strided gather)
    perm = [int(v) for v in rng.permutation(len(shape))]
    if rng.random() < 0.5 and perm[-1] != len(shape) - 1:
        perm.remove(len(shape) - 1)
        perm.append(len(shape) - 1)
    return {"op": op, "shape": shape, "perm": perm}


def _sample_resize(rng: np.random.Generator) -> dict[str, Any]:
    shape = _video_shape(rng, _pick(rng, (8, 16, 32, 64, 128)))
    return {"channels": shape[1], "size": [min(n, 16) for n in shape[2:]], "scale": 2, "mode": _pick(rng, ("nearest", "linear"))}


_SAMPLERS = {
    "conv": _sample_conv, "matmul": _sample_matmul, "pool": _sample_pool, "norm": _sample_norm, "softmax": _sample_softmax,
    "elementwise": _sample_elementwise, "movement": _sample_movement, "resize": _sample_resize,
}


def config_size(kernel: str, config: dict[str, Any]) -> tuple[float, int]:
    """(multiply-accumulates, largest tensor's elements) of a config, to keep workloads affordable."""
    if kernel == "conv":
        out = [(-(-n // s)) for n, s in zip(config["size"], config["stride"])]
        macs = config["cout"] * math.prod(out) * (config["cin"] // config["groups"]) * math.prod(config["kernel"])
        return macs, max(config["cin"] * math.prod(config["size"]), config["cout"] * math.prod(out))
    if kernel == "matmul":
        return config["batch"] * config["m"] * config["k"] * config["n"], config["batch"] * max(config["m"], config["k"]) * max(config["k"], config["n"])
    if kernel in ("pool", "resize") or (kernel == "norm" and "size" in config):
        return 0.0, config["channels"] * math.prod(config["size"]) * (8 if kernel == "resize" else 1)
    if kernel == "norm":
        return 0.0, config["rows"] * config["channels"]
    if kernel == "softmax":
        return 0.0, config["batch"] * config["rows"] * config["cols"]
    return 0.0, math.prod(config["shape"])


def affordable(kernel: str, config: dict[str, Any]) -> bool:
    macs, elements = config_size(kernel, config)
    return macs <= MAX_MACS and elements <= MAX_ELEMENTS


def sample_config(kernel: str, rng: np.random.Generator) -> dict[str, Any]:
    """One affordable random configuration of a kernel type."""
    if kernel not in _SAMPLERS:
        raise ValueError(f"unknown kernel type '{kernel}'; kernel types: {', '.join(KERNEL_TYPES)}")
    while True:
        config = _SAMPLERS[kernel](rng)
        if affordable(kernel, config):
            return config


def mutate_config(kernel: str, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A neighbour of ``config``: one or two of its fields taken from a fresh sample (kept affordable and valid)."""
    for _ in range(50):
        fresh = sample_config(kernel, rng)
        child = copy.deepcopy(config)
        fields = [name for name in fresh if name in child]
        for name in rng.choice(fields, size=min(len(fields), int(rng.integers(1, 3))), replace=False):
            child[name] = fresh[name]
        if _valid(kernel, child) and affordable(kernel, child) and child != config:
            return child
    return sample_config(kernel, rng)


def _valid(kernel: str, c: dict[str, Any]) -> bool:
    if kernel == "conv":
        return (len(c["kernel"]) == len(c["stride"]) == len(c["size"]) and c["cin"] % c["groups"] == 0
                and c["cout"] % c["groups"] == 0
                and all(n >= k or k > st for n, k, st in zip(c["size"], c["kernel"], c["stride"])))
    if kernel == "pool":
        return c["op"] in ("GlobalAveragePool", "ReduceMean") or (
            len(c["kernel"]) == len(c["stride"]) == len(c["size"]) and all(n >= k for n, k in zip(c["size"], c["kernel"])))
    if kernel == "norm":
        return ("rows" in c) == (c["op"] == "LayerNormalization")
    if kernel == "elementwise":
        return not c.get("broadcast") or c["op"] in BINARY
    if kernel == "matmul":
        return c["form"] != "gemm" or c["batch"] == 1
    return True


def _describe(config: dict[str, Any]) -> str:
    parts = []
    for name, value in config.items():
        if isinstance(value, (list, tuple)):
            value = "x".join(str(v) for v in value) or "-"
        parts.append(f"{name}={value}")
    return ",".join(parts)


def operator_workload(kernel: str, config: dict[str, Any], *, round_: int = 0) -> Workload:
    """The workload of one kernel configuration (deterministic bytes for one config)."""
    seed = int.from_bytes(_describe(config).encode()[-8:].ljust(8, b"\0"), "little") % (2**32)
    data, inputs = _BUILDERS[kernel](config, _Graph(seed))
    return Workload(key=f"op|{kernel}|{_describe(config)}", onnx=data, inputs=inputs,
                    spec={"op": "operator", "kernel": kernel, "config": config, "round": round_})


def overhead_workload() -> Workload:
    """The smallest graph (Relu of one element): its time is what a runtime spends per run on anything."""
    data, inputs = _build_overhead({}, _Graph(0))
    return Workload(key="op|overhead", onnx=data, inputs=inputs, spec={"op": "operator", "kernel": "overhead", "config": {}, "round": 0})


def stream_workloads() -> list[Workload]:
    """Chains of linear layers whose weights add up to 4 to 128 MiB: the time per MiB of weights, in cache and
    out of it (a model whose weights exceed the caches reads every linear layer's weights from memory)."""
    workloads = []
    for matrices in STREAM_MATRICES:
        config = {"rows": STREAM_ROWS, "matrices": matrices}
        data, inputs = _build_stream(config, _Graph(0))
        workloads.append(Workload(key=f"op|stream|rows={STREAM_ROWS},matrices={matrices}", onnx=data, inputs=inputs,
                                  spec={"op": "operator", "kernel": "stream", "config": config, "round": 0}))
    return workloads


def sample_workloads(counts: dict[str, int], *, seed: int = 0, round_: int = 0) -> list[Workload]:
    """``counts[type]`` distinct random configurations per kernel type (seeded: the same call gives the same list)."""
    workloads: list[Workload] = []
    for index, kernel in enumerate(KERNEL_TYPES):
        rng = np.random.default_rng([seed, round_, index])
        seen: set[str] = set()
        for _ in range(counts.get(kernel, 0) * 5):
            if len(seen) >= counts.get(kernel, 0):
                break
            workload = operator_workload(kernel, sample_config(kernel, rng), round_=round_)
            if workload.key not in seen:
                seen.add(workload.key)
                workloads.append(workload)
    return workloads


# --------------------------------------------------------------------------- fusion-rule tests
_FUSION_CASES: dict[str, tuple[str, list[dict[str, Any]]]] = {  # anchors about as cheap as the follower, so a fused B shows
    "conv": ("conv", [
        {"cin": 8, "cout": 8, "groups": 1, "kernel": [1, 1, 1], "stride": [1, 1, 1], "size": [8, 56, 56], "epilogue": []},
        {"cin": 16, "cout": 16, "groups": 1, "kernel": [1, 3, 3], "stride": [1, 1, 1], "size": [4, 28, 28], "epilogue": []},
    ]),
    "matmul": ("matmul", [
        {"form": "linear", "batch": 1, "m": 784, "k": 32, "n": 64, "epilogue": []},
        {"form": "linear", "batch": 1, "m": 392, "k": 64, "n": 96, "epilogue": []},
    ]),
    "elementwise": ("elementwise", [
        {"op": "Add", "shape": [1, 64, 8, 28, 28], "broadcast": False},
        {"op": "Add", "shape": [1, 392, 384], "broadcast": False},
    ]),
}


def _out_shape(kernel: str, config: dict[str, Any]) -> list[int]:
    if kernel == "conv":
        pads = [k // 2 if k > s else 0 for k, s in zip(config["kernel"], config["stride"])]
        return [1, config["cout"], *(_conv_out(n, k, s, p) for n, k, s, p in zip(config["size"], config["kernel"], config["stride"], pads))]
    if kernel == "matmul":
        return [1, config["batch"] * config["m"], config["n"]]
    return list(config["shape"])


def fusion_workloads() -> list[Workload]:
    """For every pair of ``FUSION_PAIRS`` and case: A alone, B alone (on A's output shape) and A->B."""
    workloads = []
    for pair in FUSION_PAIRS:
        anchor, follower = pair.split(">")
        kernel, cases = _FUSION_CASES[anchor]
        for case, config in enumerate(cases):
            shape = _out_shape(kernel, config)
            if follower == "BatchNormalization":
                b_kernel, b_config = "norm", {"op": "BatchNormalization", "channels": shape[1], "size": shape[2:]}
                if len(shape) == 3:
                    continue
            else:
                b_kernel, b_config = "elementwise", {"op": follower, "shape": shape, "broadcast": False}
            if kernel == "elementwise":
                fused = {**config, "then": [follower]}
            else:
                fused = {**config, "epilogue": [*config["epilogue"], follower]}
            for part, (k, c) in (("A", (kernel, config)), ("B", (b_kernel, b_config)), ("AB", (kernel, fused))):
                base = operator_workload(k, c)
                workloads.append(Workload(key=f"fusion|{pair}|{part}|{_describe(config)}", onnx=base.onnx, inputs=base.inputs,
                                          spec={"op": "fusion", "pair": pair, "part": part, "case": case}))
    return workloads
