"""Backends on tiny ONNX models built with onnx.helper: statistics, rejection, per-node times."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from profiler.backends import BACKENDS, availability, create_backend
from profiler.backends.onnxruntime import parse_ort_profile
from profiler.catalog import resolve_device
from profiler.device import DeviceConfig, parse_device
from profiler.errors import BackendUnavailableError
from profiler.workload import Workload

FAST = {"warmup_runs": 1, "min_runs": 3, "max_runs": 5, "max_seconds": 0.5}


def conv_workload(channels: int = 4, kernel: int = 3) -> Workload:
    """Conv3d + ReLU on a 1 x C x 2 x 8 x 8 clip."""
    weight = np.random.default_rng(0).standard_normal((channels, channels, kernel, kernel, kernel)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[kernel // 2] * 6, name="conv"),
             helper.make_node("Relu", ["y"], ["z"], name="relu")]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 2, 8, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return Workload(key=f"conv|c={channels}|k={kernel}", onnx=model.SerializeToString(), inputs={"x": (1, channels, 2, 8, 8)},
                    spec={"op": "conv", "c_in": channels})


def unknown_op_workload() -> Workload:
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="vidlat.test")], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("vidlat.test", 1)])
    model.ir_version = 9
    return Workload(key="bad|NoSuchOp", onnx=model.SerializeToString(), inputs={"x": (1, 4)})


def device(backend: str, options: dict | None = None, **measurement: object) -> DeviceConfig:
    return parse_device({"name": f"t-{backend}", "description": "a test device for the backend tests", "backend": backend,
                         "options": options or {}, "measurement": {**FAST, **measurement}})


def test_registry_names_every_local_backend():
    assert {"onnxruntime", "openvino", "torch", "tensorrt"} <= set(BACKENDS)


def test_ort_measures_with_statistics_and_fingerprint():
    backend = create_backend(device("onnxruntime"))
    measurement = backend.measure(conv_workload())
    assert measurement.status == "ok" and 3 <= measurement.runs <= 5
    assert measurement.p10_ms <= measurement.median_ms <= measurement.p90_ms and len(measurement.raw_ms) == measurement.runs
    assert measurement.cpu_ms > 0 and measurement.node_times == []
    fingerprint = backend.fingerprint()
    assert fingerprint["runtime"] == "onnxruntime" and fingerprint["intra_op_threads"] == "1" and fingerprint["cpu"]


def test_ort_rejected_model_is_unsupported_with_runtime_message():
    backend = create_backend(device("onnxruntime"))
    result = backend.measure(unknown_op_workload())
    assert result.status == "unsupported" and "NoSuchOp" in result.reason and "\n" not in result.reason
    garbage = backend.measure(Workload(key="garbage", onnx=b"not onnx", inputs={"x": (1,)}))
    assert garbage.status == "unsupported" and "protobuf" in garbage.reason.lower()


def test_ort_wrong_input_names_is_failed():
    good = conv_workload()
    renamed = Workload(key="renamed", onnx=good.onnx, inputs={"clip": (1, 4, 2, 8, 8)})
    result = create_backend(device("onnxruntime")).measure(renamed)
    assert result.status == "failed" and "clip" in result.reason


def test_ort_per_node_times_name_the_nodes():
    options = {"graph_optimization_level": "disable"}
    measurement = create_backend(device("onnxruntime", options, per_node=True)).measure(conv_workload())
    nodes = {row["node"]: row for row in measurement.node_times}
    assert set(nodes) == {"conv", "relu"} and nodes["conv"]["op_type"] == "Conv" and nodes["conv"]["median_ms"] > 0


def test_ort_cold_cache_still_measures():
    measurement = create_backend(device("onnxruntime", cold_cache=True, flush_mb=1)).measure(conv_workload())
    assert measurement.status == "ok" and measurement.runs >= 3


def test_parse_ort_profile_drops_first_run_and_ignores_other_events():
    events = [{"cat": "Session", "name": "model_run", "dur": 999}] + [
        {"cat": "Node", "name": "conv_kernel_time", "dur": dur, "args": {"op_name": "Conv"}} for dur in (5000, 1000, 3000, 2000)
    ]
    assert parse_ort_profile(events) == [{"node": "conv", "op_type": "Conv", "median_ms": 2.0, "runs": 3}]


def test_missing_provider_is_unavailable_with_reason():
    status = availability(device("onnxruntime", {"execution_provider": "tensorrt"}))
    assert not status.ok and "TensorrtExecutionProvider" in status.reason


def test_shipped_ort_device_runs_here():
    assert availability(resolve_device("ort-cpu-1t")).ok


# ---------------------------------------------------------------------------------------- openvino
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed (pip install 'vidlat[openvino]')")


@needs_openvino
def test_openvino_measures_and_counts_nodes_with_reorders():
    backend = create_backend(device("openvino", {"precision": "f32"}, per_node=True))
    measurement = backend.measure(conv_workload())
    assert measurement.status == "ok" and measurement.median_ms > 0 and measurement.runs >= 3
    kinds = {row["op_type"] for row in measurement.node_times}
    assert "Convolution" in kinds and all(row["median_ms"] >= 0 for row in measurement.node_times)
    assert all(row["layout"] == (row["op_type"] == "Reorder") for row in measurement.node_times)
    assert backend.fingerprint()["precision"] == "f32"


@needs_openvino
def test_openvino_rejected_model_is_unsupported():
    backend = create_backend(device("openvino", {"precision": "f32"}))
    result = backend.measure(unknown_op_workload())
    assert result.status == "unsupported" and "NoSuchOp" in result.reason


def test_missing_runtime_names_package_and_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real_find_spec(name, *a))
    with pytest.raises(BackendUnavailableError, match=r"'openvino' is not installed \(pip install 'vidlat\[openvino\]'\)"):
        create_backend(device("openvino", {"precision": "f32"}))


# ---------------------------------------------------------------------------------------- torch
def torch_workload() -> Workload:
    import torch

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv3d(4, 4, 3, padding=1), torch.nn.ReLU()).eval()

    return Workload(key="torch-conv", onnx=conv_workload().onnx, inputs={"x": (1, 4, 2, 8, 8)}, builder=build)


@pytest.mark.parametrize("mode", ["eager", "torchscript"])
def test_torch_runs_the_builder(mode):
    measurement = create_backend(device("torch", {"mode": mode})).measure(torch_workload())
    assert measurement.status == "ok" and measurement.median_ms > 0


def test_torch_without_builder_is_unsupported():
    result = create_backend(device("torch")).measure(conv_workload())
    assert result.status == "unsupported" and "no torch builder" in result.reason


def test_torch_module_error_is_failed():
    import torch

    broken = Workload(key="broken", onnx=b"", inputs={"x": (1, 3, 2, 8, 8)},
                      builder=lambda: torch.nn.Conv3d(4, 4, 3))
    result = create_backend(device("torch")).measure(broken)
    assert result.status == "failed" and "RuntimeError" in result.reason


# ---------------------------------------------------------------------------------------- tensorrt
def test_tensorrt_unavailable_here_says_why():
    status = availability(resolve_device("trt-gpu"))
    if importlib.util.find_spec("tensorrt") is None:
        assert not status.ok and "pip install 'vidlat[tensorrt]'" in status.reason
    elif not status.ok:
        assert "CUDA" in status.reason or "device_index" in status.reason


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installable on these machines")
def test_tensorrt_builds_and_times_an_engine():
    config = resolve_device("trt-gpu")
    if not availability(config).ok:
        pytest.skip(availability(config).reason)
    measurement = create_backend(config).measure(conv_workload())
    assert measurement.status == "ok" and measurement.median_ms > 0


def test_measuring_core_imports_no_torch():
    import subprocess
    import sys

    modules = "profiler.store, profiler.sweep, profiler.protocol, " + ", ".join(
        f"profiler.backends.{name}" for name in ("onnxruntime", "openvino", "torch_backend", "tensorrt"))
    code = f"import sys, {modules}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
