"""`vidlat predict MODEL.onnx` for models vidlat did not build: a zoo network end to end on a small
operator table of the simulated FPGA, unpriced ops, fit / evaluate --operators, and a hostile file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import skops.io as sio
from click.testing import CliRunner
import onnx
from onnx import TensorProto, helper, numpy_helper, save_model

from predictors.errors import PredictorError
from predictors.kernel_predictor import (FORMAT, KernelPredictor, TypeRegressor, kernel_ms, layout_share, operator_rows, overhead_of,
                                        profile_operators, weight_mib, workload_ms)
from predictors.kernels import FEATURES, FusionRules, Kernel
from profiler.operators import STREAM_MATRICES, STREAM_SIDE, stream_workloads
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.store import LatencyStore
from vidlat.cli import cli

SIM = "fpga-z7020-sim"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def operator_store(path, *, scale: float, rounds: int):
    with LatencyStore(path) as store:
        profile_operators(create_backend(resolve_device(SIM)), store, scale=scale, rounds=rounds, extra_per_round=20, progress=False)
    return path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """Enough operators of the simulated FPGA for a regressor of every kernel type a 3D CNN needs."""
    return operator_store(tmp_path_factory.mktemp("ops") / "latency.sqlite", scale=0.25, rounds=1)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """A few operators of each type: a MatMul regressor, not much more."""
    return operator_store(tmp_path_factory.mktemp("tiny") / "latency.sqlite", scale=0.1, rounds=0)


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    from bench.zoo import zoo_onnx

    path = tmp_path_factory.mktemp("zoo") / "r2plus1d_18.onnx"
    path.write_bytes(zoo_onnx("r2plus1d_18", (3, 4, 32, 32)))
    return path


@pytest.mark.slow
def test_a_zoo_network_is_priced_kernel_by_kernel(store_path, zoo_file):
    code, out, err = run("predict", "--device", SIM, str(zoo_file), "--store", str(store_path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["unpriced"] == [] and result["total_ms"] > 0
    kinds = {row["type"] for row in result["kernels"]}
    assert {"conv", "pool", "matmul"} <= kinds
    assert all(row["ms"] is not None and row["ms"] > 0 for row in result["kernels"])
    assert result["total_ms"] == pytest.approx((result["kernel_sum_ms"] + result["overhead_ms"]) * result["scale"])
    code, out, err = run("predict", "--device", SIM, str(zoo_file), "--store", str(store_path))
    assert code == 0 and "Conv" in out and f"total {result['total_ms']:.3f} ms" in out


def unpriceable(path) -> None:
    nodes = [helper.make_node("Einsum", ["x", "x"], ["e"], equation="bij,bjk->bik", name="einsum"),
             helper.make_node("MatMul", ["e", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.ones((16, 32), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, path)


def test_an_op_no_predictor_covers_is_an_error_unless_partial(tiny_store, tmp_path):
    store_path = tiny_store
    path = tmp_path / "einsum.onnx"
    unpriceable(path)
    code, out, err = run("predict", "--device", SIM, str(path), "--store", str(store_path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Einsum" in lines[0] and "--partial" in lines[0]
    code, out, err = run("predict", "--device", SIM, str(path), "--store", str(store_path), "--partial", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [item["op_type"] for item in result["unpriced"]] == ["Einsum"]
    assert [row["kernel"] for row in result["kernels"]] == ["MatMul"]


@pytest.mark.slow
def test_fit_and_evaluate_operators(store_path, zoo_file, tmp_path):
    code, out, err = run("evaluate", "--device", SIM, "--operators", "--store", str(store_path), "--json")
    assert code == 0, err
    types = {row["type"]: row for row in json.loads(out)["kernel_types"]}
    assert types["conv"]["samples"] >= 20 and 0 <= types["conv"]["acc10"] <= 1
    assert 0 <= types["conv"]["kernel_acc10"] <= 1 and types["conv"]["kernel_mape"] >= 0  # the kernel alone, no overhead
    saved = tmp_path / "kp.skops"
    code, out, err = run("fit", "--device", SIM, "--operators", "--store", str(store_path), "--out", str(saved))
    assert code == 0 and saved.is_file(), err
    _, fresh, _ = run("predict", "--device", SIM, str(zoo_file), "--store", str(store_path), "--json")
    code, loaded, err = run("predict", "--device", SIM, str(zoo_file), "--store", str(store_path), "--predictor", str(saved), "--json")
    assert code == 0, err
    assert json.loads(loaded)["total_ms"] == pytest.approx(json.loads(fresh)["total_ms"])

    # a measured whole model: judged, then the whole-model scale makes the calibrated total equal it
    code, out, err = run("evaluate", "--device", SIM, "--operators", "--store", str(store_path), "--model", str(zoo_file))
    assert code == 2 and "not measured" in err
    code, _, err = run("profile", "--device", SIM, "--onnx", str(zoo_file), "--store", str(store_path), "--quiet")
    assert code == 0, err
    code, out, err = run("evaluate", "--device", SIM, "--operators", "--store", str(store_path), "--model", str(zoo_file), "--json")
    assert code == 0, err
    (model,) = json.loads(out)["models"]["models"]
    assert model["predicted_ms"] == pytest.approx(json.loads(fresh)["total_ms"]) and model["measured_ms"] > 0
    code, out, err = run("fit", "--device", SIM, "--operators", "--store", str(store_path), "--calibrate", str(zoo_file), "--out", str(saved))
    assert code == 0 and "on 1 measured models" in out, err
    _, calibrated, _ = run("predict", "--device", SIM, str(zoo_file), "--store", str(store_path), "--predictor", str(saved), "--json")
    assert json.loads(calibrated)["total_ms"] == pytest.approx(model["measured_ms"])


def test_a_kernel_predictor_file_cannot_run_code(tiny_store, tmp_path):
    store_path = tiny_store
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    with LatencyStore(store_path, read_only=True) as store:
        good = KernelPredictor.fit(store.table(SIM), device=SIM)
    path = good.save(tmp_path / "good.skops")
    loaded = KernelPredictor.load(path, device=SIM)
    assert loaded.table_ == good.table_ and loaded.stream_ == good.stream_ and len(good.stream_) == len(STREAM_MATRICES)
    marker = tmp_path / "pwned"
    evil = Pipeline([("run", FunctionTransformer(exec, kw_args={"source": f"open({str(marker)!r}, 'w')"})),
                     ("out", LinearRegression().fit(np.zeros((2, 1)), np.zeros(2)))])
    sio.dump({"format": FORMAT, "device": SIM, "fingerprint": {}, "rules": [], "evidence": {}, "overhead_ms": 0.0, "scale": 1.0,
              "calibration_models": 0, "measurements": 0, "samples": {"conv": 9},
              "regressors": {"conv": {"base": evil, "residual": evil}}, "table": []}, tmp_path / "evil.skops")
    with pytest.raises(PredictorError, match="refused unloaded: .*builtins.exec"):
        KernelPredictor.load(tmp_path / "evil.skops")
    assert not marker.exists()


def _linear(k: int, n: int, *, constant: bool = True) -> Kernel:
    features = dict.fromkeys(FEATURES["matmul"], 0.0)
    features.update(log_k=math.log(k), log_n=math.log(n), b_const=float(constant))
    return Kernel("matmul", ("MatMul",), ("mm",), features)


def _conv(weights: int) -> Kernel:
    features = dict.fromkeys(FEATURES["conv"], 0.0)
    features.update(log_weight=math.log(weights))
    return Kernel("conv", ("Conv",), ("conv",), features)


def test_stream_chains_read_4_to_128_mib_of_weights():
    workloads = stream_workloads()
    assert [w.spec["config"]["matrices"] for w in workloads] == list(STREAM_MATRICES)
    model = onnx.load_from_string(workloads[1].onnx)
    weights = sum(numpy_helper.to_array(init).nbytes for init in model.graph.initializer)
    assert weights == STREAM_MATRICES[1] * STREAM_SIDE * STREAM_SIDE * 4 and [n.op_type for n in model.graph.node] == ["MatMul"] * 2


def test_linear_layers_pay_the_weight_read_only_when_the_model_outgrows_the_cache():
    # in cache 0.01 ms per MiB; from 32 MiB on, 0.04
    predictor = KernelPredictor("dev", stream_=((4.0, 0.01), (32.0, 0.04), (128.0, 0.04)))
    small = [_linear(1024, 1024), _linear(1024, 1024, constant=False)]  # 4 MiB of weights in all
    assert predictor.cold_weights_ms(small) == [0.0, 0.0]
    big = [_linear(1024, 1024), _linear(1024, 1024, constant=False), _conv(31 * 2**18)]  # 4 + 31 MiB: past 32 MiB
    extra = predictor.cold_weights_ms(big)
    assert weight_mib(big[0]) == pytest.approx(4.0) and weight_mib(big[2]) == pytest.approx(31.0)
    assert extra[0] == pytest.approx(4.0 * 0.03, rel=1e-3)  # 4 MiB x (0.04 - 0.01)
    assert extra[1:] == [0.0, 0.0]  # activations @ activations read no weights; convolutions hide the read
    assert KernelPredictor("dev").cold_weights_ms(big) == [0.0, 0.0, 0.0]  # a table without stream chains


def test_beyond_the_measured_sizes_time_grows_with_work():
    rng = np.random.default_rng(0)
    elems = np.exp(rng.uniform(math.log(1e3), math.log(1e6), 60))
    features = [{"log_elems": math.log(e), "axis": float(rng.choice([49, 196]))} for e in elems]
    ms = elems * 1e-6 * np.array([1.0 if f["axis"] == 49 else 1.3 for f in features])
    model = TypeRegressor("softmax").fit(features, ms)
    at_edge, beyond = model.predict([{"log_elems": math.log(1e6), "axis": 49.0}, {"log_elems": math.log(1e7), "axis": 49.0}])
    assert beyond / at_edge == pytest.approx(10.0, rel=1e-6)
    assert at_edge == pytest.approx(1.0, rel=0.1)


def test_a_kernels_time_gives_back_its_workloads_time():
    measured = np.array([0.004, 0.01, 0.05, 1.0, 40.0])  # ms, around and far above a 0.008 ms overhead
    kernel = kernel_ms(measured, 0.008)
    assert np.all(kernel >= 0.2 * measured) and kernel[-1] == pytest.approx(40.0 - 0.008)
    assert workload_ms(kernel, 0.008) == pytest.approx(measured)


def test_layout_conversions_are_taken_out_of_a_kernels_time(tiny_store):
    assert layout_share([]) == 0.0 and layout_share(None) == 0.0
    nodes = [{"op_type": "Reorder", "median_ms": 0.5, "layout": True}, {"op_type": "Convolution", "median_ms": 1.5, "layout": False}]
    assert layout_share(nodes) == pytest.approx(0.25)
    with LatencyStore(tiny_store, read_only=True) as store:
        table = store.table(SIM)
    rules, overhead = FusionRules.from_table(table), overhead_of(table)
    plain = operator_rows(table, rules, overhead).set_index("key")["ms"]
    conv_key = next(key for key in plain.index if "|conv|" in key)
    marked = table.copy()
    marked["node_times"] = [nodes if key == conv_key else times for key, times in zip(marked["key"], marked["node_times"])]
    adjusted = operator_rows(marked, rules, overhead).set_index("key")["ms"]
    assert adjusted[conv_key] == pytest.approx(0.75 * plain[conv_key])
    assert adjusted.drop(conv_key).equals(plain.drop(conv_key))  # the simulator marks no node as a layout conversion


def test_operator_profiling_records_node_times_where_the_runtime_converts_layouts(tmp_path):
    backend = create_backend(resolve_device(SIM))
    backend.layout_nodes = frozenset({"Reorder"})  # as OpenVINO's backend declares
    assert not backend.policy.per_node
    with LatencyStore(tmp_path / "s.sqlite") as store:
        profile_operators(backend, store, scale=0.05, rounds=0, limit=5, progress=False)
        table = store.table(SIM)
    assert backend.policy.per_node and len(table) == 5 and all(len(times) > 0 for times in table["node_times"])


def test_calibration_is_one_scale_on_one_model_and_finds_planted_type_factors(tmp_path):
    predictor = KernelPredictor("dev", overhead_ms=0.05)
    one = predictor.calibrate([{"conv": 8.0, "matmul": 2.0}], [12.1])
    assert one.total_ms({"conv": 8.0, "matmul": 2.0}) == pytest.approx(12.1, rel=1e-4)
    assert all(value == pytest.approx(1.0, abs=1e-3) for value in one.type_scales.values())
    rng = np.random.default_rng(0)
    models = [{"conv": float(c), "matmul": float(m), "softmax": float(s)} for c, m, s in rng.uniform(0.5, 20.0, (12, 3))]
    truth = lambda t: 1.1 * (0.05 + 1.0 * t["conv"] + 0.8 * t["matmul"] + 0.4 * t["softmax"])  # noqa: E731
    fitted = KernelPredictor("dev", overhead_ms=0.05).calibrate(models, [truth(t) for t in models])
    assert fitted.calibration_models == 12
    factors = {name: fitted.scale * value for name, value in fitted.type_scales.items()}
    assert factors["conv"] > factors["matmul"] > factors["softmax"]
    held_out = {"conv": 3.0, "matmul": 9.0, "softmax": 4.0}
    assert fitted.total_ms(held_out) == pytest.approx(truth(held_out), rel=0.05)
    again = KernelPredictor.load(fitted.save(tmp_path / "cal.skops"))
    assert again.type_scales == fitted.type_scales and again.total_ms(held_out) == fitted.total_ms(held_out)
    broken = KernelPredictor("dev", type_scales={"conv": float("nan")}).save(tmp_path / "nan.skops")
    with pytest.raises(PredictorError, match="calibration scales must be finite and positive"):
        KernelPredictor.load(broken)
