"""Accelerator simulators: hand-computed cycle counts, device-specific behaviour, the backend and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.device import parse_device
from profiler.errors import DeviceConfigError
from profiler.simulators import Simulator, load_graph, systolic_cycles
from profiler.simulators.dsp_array import DspArrayEngine
from profiler.simulators.ops import MacShape
from profiler.simulators.systolic import SystolicEngine
from profiler.store import LatencyStore
from profiler.workload import Workload
from search.arch import build_model
from search.blocks import create_block
from search.export import INPUT_NAME, module_to_onnx
from search.space import load_space
from vidlat.cli import cli

ZCU102, Z7020, NPU = "fpga-zcu102-sim", "fpga-z7020-sim", "npu-systolic32-sim"


# --------------------------------------------------------------------------- graph builders
def model_bytes(nodes: list, inputs: dict[str, list[int]], weights: dict[str, tuple[int, ...]] | None = None) -> tuple[bytes, dict]:
    """A one-output ONNX model (opset 18) with zero weights of the given shapes."""
    initializers = [numpy_helper.from_array(np.zeros(shape, np.float32), name) for name, shape in (weights or {}).items()]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return model.SerializeToString(), {name: tuple(shape) for name, shape in inputs.items()}


def conv(c_in: int, c_out: int, kernel: tuple[int, ...], spatial: tuple[int, ...], *, groups: int = 1, act: str | None = None):
    pads = [k // 2 for k in kernel] * 2
    nodes = [helper.make_node("Conv", ["x", "w"], ["c" if act else "y"], group=groups, pads=pads, name="conv")]
    if act:
        nodes.append(helper.make_node(act, ["c"], ["y"], name="act"))
    return model_bytes(nodes, {"x": [1, c_in, *spatial]}, {"w": (c_out, c_in // groups, *kernel)})


def simulate(device: str, model: tuple[bytes, dict]):
    return Simulator(resolve_device(device)).simulate_onnx(*model)


def with_hardware(device: str, **changes) -> dict:
    data = yaml.safe_load(Path(resolve_device(device).source).read_text())
    data["hardware"].update(changes)
    return data


# --------------------------------------------------------------------------- systolic array
def test_systolic_closed_form():
    assert systolic_cycles(144, 64, 64, 32, 32) == 5 * 2 * (64 + 32 + 64 - 2)
    assert systolic_cycles(32, 32, 1, 32, 32) == 1 * 1 * (64 + 32 + 1 - 2)


# Shipped NPU: 32 x 32, 800 MHz, 13 GB/s -> 16.25 bytes per cycle at int8, 500 cycles per layer.
@pytest.mark.parametrize("case, model, compute, dram_bytes", [
    # Sr = 16*3*3 = 144, Sc = 64, T = 8*8: 5 row folds x 2 column folds x (64 + 32 + 64 - 2)
    ("conv", conv(16, 64, (3, 3), (8, 8)), 5 * 2 * 158, 64 * 144 + 16 * 64 + 64 * 64),
    # 32 groups of Sr = 9, Sc = 1, T = 64: one fold each
    ("depthwise", conv(32, 32, (3, 3), (8, 8), groups=32), 32 * 1 * 1 * 158, 32 * 9 + 32 * 64 + 32 * 64),
    # A(10 x 100) @ B(100 x 50): Sr = 100, Sc = 50, T = 10
    ("gemm", model_bytes([helper.make_node("Gemm", ["x", "w"], ["y"])], {"x": [10, 100]}, {"w": (100, 50)}),
     4 * 2 * (64 + 32 + 10 - 2), 100 * 50 + 10 * 100 + 10 * 50),
    # Conv3d 8 -> 16, 3x3x3 on 4x6x6 as one GEMM: Sr = 8*27 = 216, Sc = 16, T = 4*6*6 = 144
    ("conv3d", conv(8, 16, (3, 3, 3), (4, 6, 6)), 7 * 1 * (64 + 32 + 144 - 2), 16 * 216 + 8 * 144 + 16 * 144),
])
def test_systolic_nodes_match_hand_counts(case, model, compute, dram_bytes):
    node = simulate(NPU, model).nodes[0]
    assert dram_bytes / 16.25 < compute, "cases are chosen compute-bound"
    assert node.cost.status == "native" and node.cost.bound == "compute"
    assert node.cost.compute_cycles == compute
    assert node.cost.memory_cycles == pytest.approx(dram_bytes / 16.25)
    assert node.cost.cycles == compute + 500
    assert node.latency_ms == pytest.approx((compute + 500) / 800e3)
    assert node.cost.utilisation == pytest.approx(node.cost.macs / ((compute + 500) * 1024))


def test_systolic_dram_traffic_chunks_partial_sums_when_the_ofmap_does_not_fit():
    engine = SystolicEngine(resolve_device(NPU).hardware, "int8")
    shape = MacShape(groups=1, out_channels=64, in_channels=64, frames=1, out_h=64, out_w=64, kh=3, kw=3)
    ifmap, ofmap, filters = 64 * 64 * 64, 64 * 64 * 64, 64 * 576  # ifmap = 256 KB fits; ofmap 256 KB > 128 KB
    # 18 row folds: two ofmap chunks, filters (36 KB) stay in the filter SRAM, so no refetch and no spill
    assert engine.dram_bytes(shape, ifmap) == ifmap + filters + ofmap
    small_filters = SystolicEngine(resolve_device(NPU).hardware.model_copy(update={"filter_sram_kb": 16}), "int8")
    assert small_filters.dram_bytes(shape, ifmap) == ifmap + 2 * filters + ofmap


# --------------------------------------------------------------------------- DSP array
# Shipped ZCU102: Tm x Tn = 64 x 32, 200 MHz, 19.2 GB/s x 0.7 -> 67.2 bytes per cycle, int16.
def test_dsp_array_tile_counts_match_hand_computation():
    engine = DspArrayEngine(resolve_device(ZCU102).hardware, "int16")
    shape = MacShape(groups=1, out_channels=128, in_channels=64, frames=1, out_h=28, out_w=28, kh=3, kw=3)
    plan = engine.tile_plan(shape, 14, 28)
    assert (plan.n_m, plan.n_n, plan.n_r, plan.n_c, plan.tiles) == (2, 2, 2, 1, 8)
    assert plan.t_comp == 9 * 14 * 28
    assert plan.t_in == pytest.approx(32 * 16 * 30 * 2 / 67.2)  # Tn x (Tr+2) x (Tc+2) halo
    assert plan.t_w == pytest.approx(64 * 32 * 9 * 2 / 67.2)
    assert plan.t_out == pytest.approx(64 * 14 * 28 * 2 / 67.2)
    assert plan.cycles == pytest.approx(2 * 2 * 1 * (2 * 9 * 14 * 28 + 64 * 14 * 28 * 2 / 67.2))


def test_dsp_array_picks_the_fastest_tile_that_fits_its_buffers():
    engine = DspArrayEngine(resolve_device(Z7020).hardware, "int16")  # small buffers: 64/64/32 KB
    shape = MacShape(groups=1, out_channels=64, in_channels=48, frames=2, out_h=20, out_w=20, kh=3, kw=3)
    best = engine.plan(shape)
    assert engine.fits(shape, best.tr, best.tc)
    assert not engine.fits(shape, 40, 20)  # 16 x 40 x 20 outputs > 16 K elements of half the output buffer
    brute = min(engine.tile_plan(shape, tr, tc).cycles for tr in range(1, 41) for tc in range(1, 21) if engine.fits(shape, tr, tc))
    assert best.cycles == pytest.approx(brute)


def test_dsp_array_node_cost_and_depthwise_utilisation():
    hardware = resolve_device(ZCU102).hardware
    engine = DspArrayEngine(hardware, "int16")
    dense = simulate(ZCU102, conv(64, 128, (3, 3), (28, 28), act="Relu"))
    plan = engine.plan(MacShape(groups=1, out_channels=128, in_channels=64, frames=1, out_h=28, out_w=28, kh=3, kw=3))
    node, act = dense.nodes
    assert node.cost.cycles == pytest.approx(plan.cycles + 2000)
    assert act.cost.unit == "fused" and act.cost.fused_into == "conv" and act.cost.cycles == 0
    depthwise = simulate(ZCU102, conv(144, 144, (3, 3), (28, 28), groups=144)).nodes[0]
    mapping = engine.mapping(MacShape(groups=144, out_channels=1, in_channels=1, frames=1, out_h=28, out_w=28, kh=3, kw=3))
    assert (mapping.out_channels, mapping.repeats) == (32, 5)  # min(Tm, Tn) channels per pass, ceil(144 / 32) passes
    grouped = engine.mapping(MacShape(groups=18, out_channels=8, in_channels=8, frames=1, out_h=28, out_w=28, kh=3, kw=3))
    assert (grouped.out_channels, grouped.in_channels, grouped.repeats) == (32, 32, 5)  # 4 groups of 8 per pass
    assert depthwise.cost.utilisation < 1 / 64 < node.cost.utilisation


def test_conv3d_is_decomposed_on_zcu102_and_runs_on_the_host_of_z7020():
    model = conv(32, 32, (3, 3, 3), (8, 14, 14))
    zcu = simulate(ZCU102, model).nodes[0]
    slice_2d = simulate(ZCU102, conv(32, 32, (1, 3, 3), (8, 14, 14))).nodes[0]
    outputs = 32 * 8 * 14 * 14  # two partial-sum additions: read two partials, write one (int16, 67.2 B/cycle)
    accumulate = max(math.ceil(outputs / 64), 3 * outputs * 2 / 67.2) + 2000
    assert zcu.cost.status == "decomposed" and slice_2d.cost.status == "native"
    assert zcu.cost.cycles == pytest.approx(3 * slice_2d.cost.cycles + 2 * accumulate)
    z7020 = simulate(Z7020, model).nodes[0]
    host = resolve_device(Z7020).hardware.host
    flops_per_cycle = host.cores * host.clock_ghz * 1e3 * host.flops_per_cycle * host.efficiency / 150
    moved = (32 * 8 * 14 * 14) * 2 + 32 * 32 * 27
    assert z7020.cost.status == "host_fallback" and "conv3d: host" in z7020.cost.reason
    assert z7020.cost.cycles == pytest.approx(2 * zcu.cost.macs / flops_per_cycle + moved * 2 / (4.2e9 * 0.6 / 150e6) + 50 * 150)
    totals = simulate(Z7020, model).totals()
    assert totals["macs"] == zcu.cost.macs and totals["utilisation"] == 0  # host MACs do not count for the array


def test_3d_heavy_is_markedly_slower_than_2d_only_of_similar_flops_on_zcu102_not_on_the_npu():
    heavy = conv(64, 64, (3, 3, 3), (8, 28, 28))
    flat = conv(64, 192, (1, 3, 3), (8, 28, 28))  # a 2D conv over the 8 frames, 3x the channels
    assert simulate(ZCU102, heavy).macs == simulate(ZCU102, flat).macs
    zcu = simulate(ZCU102, heavy).latency_ms / simulate(ZCU102, flat).latency_ms
    npu = simulate(NPU, heavy).latency_ms / simulate(NPU, flat).latency_ms
    assert zcu > 1.15 and npu == pytest.approx(1.0, abs=0.02)
    heavy_dw = conv(64, 64, (3, 3, 3), (8, 28, 28), groups=64)
    flat_dw = conv(64, 64, (1, 3, 3), (8, 28, 28), groups=64)
    assert simulate(ZCU102, heavy_dw).latency_ms > 2.5 * simulate(ZCU102, flat_dw).latency_ms


# --------------------------------------------------------------------------- other units and statuses
def test_softmax_runs_on_the_host_of_the_fpga_and_on_the_vector_unit_where_allowed():
    model = model_bytes([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], {"x": [1, 4, 64, 64]})
    assert simulate(ZCU102, model).nodes[0].cost.status == "host_fallback"
    native = parse_device(with_hardware(NPU, softmax="native"), "npu.yaml")
    node = Simulator(native).simulate_onnx(*model).nodes[0]
    assert (node.cost.status, node.cost.unit) == ("native", "vector")
    assert node.cost.compute_cycles == math.ceil(5 * 4 * 64 * 64 / 32)


def test_data_movement_and_unknown_ops():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1, 3], name="transpose"),
        helper.make_node("Reshape", ["t", "shape"], ["r"], name="reshape"),
        helper.make_node("Floor", ["r"], ["y"], name="floor"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, -1], np.int64), "shape")],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    transpose, reshape, floor = simulate(ZCU102, (data, {"x": (1, 64, 64, 64)})).nodes
    assert (transpose.cost.unit, transpose.cost.bound) == ("dma", "memory")
    assert transpose.cost.memory_cycles == pytest.approx(2 * 64 ** 3 * 2 / 67.2)
    assert reshape.cost.cycles == 0
    assert floor.cost.status == "host_fallback" and "element count" in floor.cost.reason


def test_shapes_computed_by_constant_subgraphs_are_folded():
    nodes = [
        helper.make_node("ConstantOfShape", ["rank"], ["zeros"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Concat", ["zeros", "two"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["y"], name="pad"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([2], np.int64), "rank"), numpy_helper.from_array(np.array([1, 1], np.int64), "two")],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    nodes_left = load_graph(data, {"x": (1, 8)}).nodes
    assert [node.op_type for node in nodes_left] == ["Pad"] and nodes_left[0].outputs[0].shape == (2, 9)  # pads (0, 0, 1, 1)


def test_shapes_computed_from_shape_nodes_through_div_are_known():
    """ONNX data propagation stops at Div (the exporter's ``channels // heads`` in attention)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["channels"], axis=0),
        helper.make_node("Div", ["channels", "two"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "zero"], ["half1"]),
        helper.make_node("Concat", ["batch", "half1", "eight"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
        helper.make_node("Transpose", ["y"], ["z"], name="transpose", perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(value, np.int64), name)
         for name, value in (("one", 1), ("two", 2), ("zero", [0]), ("batch", [1]), ("eight", [8]))],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    nodes_left = load_graph(data, {"x": (1, 6, 4)}).nodes
    assert [node.op_type for node in nodes_left] == ["Reshape", "Transpose"]
    assert nodes_left[0].outputs[0].shape == (1, 3, 8) and nodes_left[1].outputs[0].shape == (1, 8, 3)
    assert not simulate(ZCU102, (data, {"x": (1, 6, 4)})).unsupported


def test_unsupported_workload_names_the_node_and_is_never_zero():
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [helper.make_tensor_value_info(n, TensorProto.INT64 if n == "i" else TensorProto.BOOL, []) for n in ("i", "c")],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Loop", ["", "cond"], [], body=body, name="loop"),
             helper.make_node("Relu", ["r"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
                                           helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    measurement = create_backend(resolve_device(NPU)).measure(Workload("loop", data, {"x": (1, 8), "cond": ()}))
    assert measurement.status == "unsupported" and measurement.median_ms is None
    assert "loop (Loop)" in measurement.reason and "control flow" in measurement.reason


# --------------------------------------------------------------------------- backend, devices, CLI
def test_backend_measurement_is_deterministic_with_node_times():
    data, inputs = conv(16, 32, (3, 3, 3), (4, 14, 14), act="Relu")
    backend = create_backend(resolve_device(ZCU102))
    first, second = (backend.measure(Workload("w", data, inputs)) for _ in range(2))
    assert first.status == "ok" and first.to_dict() == second.to_dict()
    assert first.median_ms == first.mean_ms == first.p10_ms == first.p90_ms > 0 and first.std_ms == 0 and first.runs == 1
    assert [row["status"] for row in first.node_times] == ["decomposed", "native"]
    assert set(first.node_times[0]) >= {"node", "op_type", "status", "cycles", "median_ms", "bound", "utilisation"}
    assert first.extra["latency_ms"] == first.median_ms and first.extra["cycles"] > 0
    assert backend.fingerprint()["simulator"] == "dsp_array"


@pytest.mark.parametrize("changes, message", [
    ({"dsps": 0}, "hardware.dsp_array.dsps"),
    ({"tm": 128}, "tiles do not fit the DSP budget"),
    ({"ddr_gbps": -4}, "hardware.dsp_array.ddr_gbps"),
    ({"ddr_efficiency": 1.5}, "hardware.dsp_array.ddr_efficiency"),
])
def test_bad_hardware_parameters_are_load_time_errors(tmp_path, changes, message):
    data = with_hardware(ZCU102, **changes)
    with pytest.raises(DeviceConfigError, match=message.replace(".", r"\.")):
        parse_device(data, "bad.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["devices", "validate", str(path)])
    assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output


def test_bad_systolic_parameters_are_load_time_errors():
    with pytest.raises(DeviceConfigError, match="rows"):
        parse_device(with_hardware(NPU, rows=0), "bad.yaml")
    with pytest.raises(DeviceConfigError, match="dram_gbps"):
        parse_device(with_hardware(NPU, dram_gbps=-1), "bad.yaml")


def test_cli_simulate_prints_the_node_table_and_total(tmp_path):
    data, _ = conv(16, 32, (3, 3, 3), (4, 14, 14), act="Relu")
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["simulate", "--device", ZCU102, str(path)])
    assert result.exit_code == 0, result.output
    assert "decomposed" in result.output and "total:" in result.output and "1 nodes with no cost hidden" in result.output
    result = CliRunner().invoke(cli, ["simulate", "--device", "ort-cpu-1t", str(path)])
    assert result.exit_code == 2 and "needs a simulator device" in result.output
    for missing, message in ((tmp_path / "none.onnx", "cannot read the ONNX file"), (tmp_path / "none.yaml", "cannot read arch file")):
        result = CliRunner().invoke(cli, ["simulate", "--device", ZCU102, str(missing)])
        assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output


def test_cli_simulate_takes_a_reference_arch_of_a_space():
    result = CliRunner().invoke(cli, ["simulate", "--device", ZCU102, "tiny:x3d-xs"])
    assert result.exit_code == 0, result.output
    assert "total:" in result.output and "ms by unit" in result.output
    result = CliRunner().invoke(cli, ["simulate", "--device", ZCU102, "tiny:nope"])
    assert result.exit_code == 2 and "has no reference arch 'nope'" in result.output



def test_exported_video_blocks_rank_as_the_fpga_needs():
    shape = (24, 8, 28, 28)
    models = {
        name: (module_to_onnx(create_block(name, in_channels=24, out_channels=24, stride=(1, 1, 1)), shape), {"input": (1, *shape)})
        for name in ("x3d_k333_e3", "tsm_k133_e3")
    }
    heavy, flat = (simulate(ZCU102, models[name]) for name in ("x3d_k333_e3", "tsm_k133_e3"))
    assert heavy.macs < 1.4 * flat.macs  # similar FLOPs
    assert heavy.latency_ms > 1.5 * flat.latency_ms
    assert not heavy.unsupported and not flat.unsupported
    npu_heavy, npu_flat = (simulate(NPU, models[name]).latency_ms for name in ("x3d_k333_e3", "tsm_k133_e3"))
    assert npu_heavy < 1.2 * npu_flat  # the NPU runs 3D convolutions natively


SCALESIM_CONFIG = """[general]
run_name = vidlat

[architecture_presets]
ArrayHeight: 32
ArrayWidth: 32
IfmapSramSzkB: 256
FilterSramSzkB: 256
OfmapSramSzkB: 128
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 1000
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""


@pytest.mark.slow
def test_systolic_formula_agrees_with_scalesim(tmp_path):
    """SCALE-Sim (v3 API, numpy < 2.4) on a 32 x 32 WS array, ample bandwidth: compute cycles per layer."""
    scale_sim = pytest.importorskip("scalesim.scale_sim", reason="SCALE-Sim is optional: pip install scalesim 'numpy<2.4'")
    layers = {  # name: (ifmap h, w, filter h, w, channels, filters, stride), no padding
        "conv": (10, 10, 3, 3, 16, 64, 1), "pointwise": (28, 28, 1, 1, 48, 96, 1),
        "deep": (16, 16, 3, 3, 32, 32, 1), "strided": (17, 17, 3, 3, 24, 40, 2),
    }
    (tmp_path / "arch.cfg").write_text(SCALESIM_CONFIG)
    (tmp_path / "topology.csv").write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        + "".join(f"{name}, {', '.join(map(str, dims))},\n" for name, dims in layers.items())
    )
    (tmp_path / "layout.csv").write_text("Layer name, factors,\n" + "".join(f"{name}, {', '.join(['1'] * 20)},\n" for name in layers))
    sim = scale_sim.scalesim(save_disk_space=True, verbose=False, config=str(tmp_path / "arch.cfg"),
                             topology=str(tmp_path / "topology.csv"), layout=str(tmp_path / "layout.csv"))
    sim.run_scale(top_path=str(tmp_path / "out"))
    theirs = [int(layer.total_cycles) for layer in sim.runner.single_layer_sim_object_list]
    ours = []
    for h, w, fh, fw, c, m, s in layers.values():
        outputs = ((h - fh) // s + 1) * ((w - fw) // s + 1)
        ours.append(systolic_cycles(fh * fw * c, m, outputs, 32, 32))
    assert all(abs(a - b) <= 2 for a, b in zip(ours, theirs)), (ours, theirs)


@pytest.mark.slow
def test_profile_a_space_and_simulate_an_arch_on_simulated_devices(tmp_path):
    space = load_space("tiny")
    store = tmp_path / "store.db"
    result = CliRunner().invoke(cli, ["profile", "--device", ZCU102, "--space", "tiny", "--store", str(store)])
    assert result.exit_code == 0, result.output
    with LatencyStore(store) as latency_store:
        table = latency_store.table(ZCU102)
    assert len(table) > 0 and set(table["status"]) == {"ok"}
    assert (table["median_ms"] > 0).sum() == (~table["key"].str.startswith("skip")).sum()  # an identity costs nothing
    arch = tmp_path / "arch.yaml"
    space.sample(0).save(arch)
    result = CliRunner().invoke(cli, ["simulate", "--device", Z7020, str(arch)])
    assert result.exit_code == 0, result.output
    assert "total:" in result.output and "ms by status" in result.output


@pytest.mark.slow
def test_a_whole_default_space_network_with_attention_is_fully_supported():
    """default seed 0 (attention after (2+1)D) once left a Reshape of unknown shape: 69 unsupported nodes."""
    space = load_space("default")
    arch = space.sample(0)
    assert "attn_h4" in arch.layers
    data = module_to_onnx(build_model(arch), arch.input_shape)
    report = simulate(ZCU102, (data, {INPUT_NAME: (1, *arch.input_shape)}))
    assert not report.unsupported and report.latency_ms > 0


def test_profile_onnx_on_a_simulator_shows_per_node_times(tmp_path):
    """`vidlat profile --onnx` reads a simulator's node rows like a runtime's (node, op_type, median_ms)."""
    from click.testing import CliRunner

    from vidlat.cli import cli

    runner = CliRunner()
    arch, model, store = tmp_path / "a.yaml", tmp_path / "m.onnx", tmp_path / "s.sqlite"
    assert runner.invoke(cli, ["space", "sample", "tiny", "--seed", "0", "--out", str(arch)]).exit_code == 0
    assert runner.invoke(cli, ["export", str(arch), "--out", str(model)]).exit_code == 0
    result = runner.invoke(cli, ["profile", "--device", "fpga-zcu102-sim", "--onnx", str(model), "--store", str(store), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "slowest nodes" in result.output and "per operator type" in result.output
    assert "Conv" in result.output.split("per operator type")[1]


@pytest.mark.parametrize("value", [float("inf"), 5e-324, 0, -150, float("nan")])
@pytest.mark.parametrize("device, field", [(ZCU102, "clock_mhz"), (NPU, "clock_mhz"), (Z7020, "ddr_gbps"), (NPU, "dram_gbps")])
def test_non_physical_hardware_parameters_are_refused_with_the_range(device, field, value):
    with pytest.raises(DeviceConfigError, match=rf"field 'hardware\.\w+\.{field}': must be a finite number in \[[0-9.e+-]+, [0-9.e+]+\]"):
        parse_device(with_hardware(device, **{field: value}), "bad.yaml")


def test_non_physical_host_and_cost_parameters_are_refused():
    host = {"cores": 2, "clock_ghz": float("inf"), "flops_per_cycle": 2, "efficiency": 0.3, "sync_us": 50}
    with pytest.raises(DeviceConfigError, match=r"host\.clock_ghz': must be a finite number in \[0.01, 10\] GHz"):
        parse_device(with_hardware(Z7020, host=host), "bad.yaml")
    with pytest.raises(DeviceConfigError, match=r"dsps_per_mac\.int16': must be a finite number in \[0.01, 64\]"):
        parse_device(with_hardware(Z7020, dsps_per_mac={"int16": float("nan")}), "bad.yaml")
