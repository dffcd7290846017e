"""`vidlat fit / evaluate / predict` on the tiny space with a store of synthetic measurements."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from profiler.catalog import resolve_device
from profiler.store import LatencyStore
from profiler.workload import Measurement, Workload
from vidlat.cli import cli

DEVICE = "ort-cpu-1t"


def fake_ms(spec: dict) -> float:
    factor = {"attn": 2.0, "r2p1d": 1.3}.get(spec["op"], 1.0)
    return factor * spec["flops"] / 5e7 + 0.02


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """Blocks, stem and head of 'tiny' with synthetic latencies, and 24 networks at 1.1 x block sum + 0.05 ms."""
    from search.space import load_space

    space = load_space("tiny")
    path = tmp_path_factory.mktemp("store") / "latency.sqlite"
    ms = {}
    with LatencyStore(path) as store:
        store.register_device(resolve_device(DEVICE), {"cpu": "test-cpu", "onnxruntime": "1.0"})
        for workload in space.unique_workloads():
            ms[workload.key] = fake_ms(workload.spec)
            store.record(DEVICE, workload, Measurement(status="ok", median_ms=ms[workload.key], runs=10))
        layer_ms = {(item.layer, item.block): ms[item.workload.key] for item in space.workloads()}
        fixed = sum(ms[w.key] for w in space.fixed_workloads())
        rng = np.random.default_rng(0)
        for seed in range(24):
            arch = space.sample(seed)
            total = (1.1 * (sum(layer_ms[(i, b)] for i, b in enumerate(arch.layers)) + fixed) + 0.05) * rng.normal(1, 0.005)
            spec = {"op": "network", "space": "tiny", "arch": arch.to_dict(), "flops": 1e6 * (seed + 1)}
            workload = Workload(key=f"net|tiny|{seed:012d}", onnx=b"", inputs={}, spec=spec)
            store.record(DEVICE, workload, Measurement(status="ok", median_ms=float(total), runs=10))
    return path


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_fit_evaluate_predict(store_path, tmp_path):
    code, out = run("fit", "--device", DEVICE, "--space", "tiny", "--store", str(store_path))
    assert code == 0, out
    assert "calibration:" in out and "kept:" in out
    assert (store_path.parent / "predictors" / f"{DEVICE}--tiny.skops").is_file()

    code, out = run("evaluate", "--device", DEVICE, "--space", "tiny", "--store", str(store_path), "--json", "--out", str(tmp_path / "eval"))
    assert code == 0, out
    report = json.loads(out)
    assert report["test_networks"] == 14 and len(report["calibration_networks"]) == 10
    assert report["rows"]["block sum + calibration"]["acc5"] == 1.0
    assert report["rows"]["flops (ranking only)"]["acc10"] is None
    assert (tmp_path / "eval" / "scatter.png").is_file() and (tmp_path / "eval" / "metrics.csv").is_file()

    from search.space import load_space

    arch = load_space("tiny").reference_archs()["r2p1d"]
    arch_file = tmp_path / "r2p1d.yaml"
    arch.save(arch_file)
    code, out = run("predict", "--device", DEVICE, str(arch_file), "--store", str(store_path), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert [b["block"] for b in result["blocks"]] == arch.layers
    assert result["total_ms"] == pytest.approx(1.1 * result["block_sum_ms"] + 0.05, rel=0.03)
    code, out = run("predict", "--device", DEVICE, str(arch_file), "--store", str(store_path))
    assert code == 0, out
    assert f"total {result['total_ms']:.3f} ms" in out and "r2p1d_k333_e2" in out

    # an exported vidlat model carries its arch in the ONNX metadata
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph)
    model.metadata_props.add(key="vidlat.arch", value=json.dumps(arch.to_dict()))
    onnx.save(model, tmp_path / "m.onnx")
    code, out = run("predict", "--device", DEVICE, str(tmp_path / "m.onnx"), "--store", str(store_path), "--json")
    assert code == 0, out
    assert json.loads(out)["total_ms"] == pytest.approx(result["total_ms"])


def test_cli_errors_are_one_line(store_path, tmp_path):
    code, out = run("evaluate", "--device", "torch-cpu-1t", "--space", "tiny", "--store", str(store_path))
    assert code == 2 and "nothing measured on device 'torch-cpu-1t'" in out
    plain = tmp_path / "plain.onnx"
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])), plain)
    code, out = run("predict", "--device", DEVICE, str(plain), "--store", str(store_path))
    assert code == 2 and "not an exported vidlat model" in out
    code, out = run("predict", "--device", DEVICE, str(plain), "--store", str(store_path), "--predictor", str(tmp_path / "none.skops"))
    assert code == 2


def test_block_sampler_draws_new_configs_weighted_by_family():
    from collections import Counter

    from search.block_sampler import sample_block_configs, variants
    from search.space import load_space

    space = load_space("tiny")
    own = {item.workload.key for item in space.workloads()}
    pool = variants(space)
    assert pool and not {config.key for config in pool} & own
    assert 16 in {config.input_shape[1] for config in pool}  # another frame count than the space's 4
    first = sample_block_configs(space, 12, seed=3)
    assert [c.key for c in first] == [c.key for c in sample_block_configs(space, 12, seed=3)]
    heavy = Counter(c.family for c in sample_block_configs(space, 12, family_weights={"attn": 50.0, "x3d": 1.0, "r2p1d": 1.0, "tsm": 1.0}, seed=3))
    assert heavy["attn"] == max(heavy.values())
