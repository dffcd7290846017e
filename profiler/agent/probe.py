"""The self-test workload of `vidlat devices check`: one small 3D convolution, built with onnx.helper.

No torch: the check runs wherever the profiler core runs. ::

    x (1, C, T, S, S) ──Conv3d C->C, k=3x3x3, pad 1──> Relu ──> y (1, C, T, S, S)    (default C=8, T=4, S=16)

The workload's ``builder`` makes the same network as a torch module (torch imported only when it is
called), so a torch device passes the check too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from profiler.workload import Workload

OPSET = 18


def probe_workload(*, channels: int = 8, frames: int = 4, size: int = 16) -> Workload:
    """A deterministic 3D conv + ReLU workload (by default about 1.8 M multiply-adds)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((channels, channels, 3, 3, 3)) * 0.1).astype(np.float32)
    bias = np.zeros(channels, dtype=np.float32)
    shape = [1, channels, frames, size, size]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3, 3], pads=[1] * 6),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "vidlat_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vidlat-probe")
    model.ir_version = 8
    onnx.checker.check_model(model)
    macs = channels * channels * 27 * frames * size * size
    return Workload(
        key=f"probe_conv3d_k333|in={channels}x{frames}x{size}x{size}|out={channels}",
        onnx=model.SerializeToString(),
        inputs={"x": tuple(shape)},
        spec={"op": "probe", "macs": macs, "flops": 2 * macs},
        builder=_torch_builder(weight, bias),
    )


def _torch_builder(weight: np.ndarray, bias: np.ndarray) -> Callable[[], Any]:
    """A zero-arg builder of the probe as ``Conv3d + ReLU`` with the ONNX model's weights."""

    def build() -> Any:
        import torch

        conv = torch.nn.Conv3d(weight.shape[1], weight.shape[0], 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))
        return torch.nn.Sequential(conv, torch.nn.ReLU()).eval()

    return build
