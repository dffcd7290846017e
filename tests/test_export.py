"""ONNX export: every family matches torch in ONNX Runtime, the content cache, verified arch export."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from search import ArchSpec, ExportError, build_model, create_block, export_arch, load_space, module_to_onnx
from search.export import cache_dir, onnx_max_abs_diff
from vidlat.cli import cli

FAMILY_CASES = [("x3d_k333_e3_se", 16, 24, (1, 2, 2)), ("x3d_k133_e4_hs", 16, 16, (1, 1, 1)),
                ("x3d_k511_e2", 16, 16, (2, 1, 1)), ("r2p1d_k333_e3", 16, 24, (1, 2, 2)),
                ("csn_k333_e4", 16, 16, (1, 1, 1)), ("tsm_k133_e4_se", 16, 24, (1, 2, 2)),
                ("tsm_k133_e2", 16, 16, (1, 1, 1)), ("me_k133_e4_hs", 16, 16, (1, 1, 1)),
                ("me_k133_e2", 16, 24, (1, 2, 2)), ("attn_h4", 16, 16, (1, 1, 1)), ("attn_h2_e4", 16, 24, (1, 2, 2)),
                ("skip", 16, 16, (1, 1, 1))]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDLAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "onnx-cache"))


@pytest.mark.parametrize(("block", "c", "co", "stride"), FAMILY_CASES)
def test_every_family_matches_torch_in_onnxruntime(block: str, c: int, co: int, stride: tuple) -> None:
    torch.manual_seed(0)
    module = create_block(block, in_channels=c, out_channels=co, stride=stride).eval()
    data = module_to_onnx(module, (c, 4, 9, 9), dynamic_batch=True)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 18
    ops = {node.op_type for node in model.graph.node}
    assert "ScatterND" not in ops
    if block.startswith("tsm"):
        assert {"Slice", "Concat"} <= ops
    assert onnx_max_abs_diff(module, data, (3, c, 4, 9, 9)) <= 1e-4  # batch 3 through the dynamic axis


def test_module_to_onnx_is_cached_by_content() -> None:
    module = create_block("x3d_k333_e2", in_channels=8, out_channels=8, stride=(1, 1, 1)).eval()
    first = module_to_onnx(module, (8, 4, 8, 8))
    assert len(list(cache_dir().glob("*.onnx"))) >= 1
    assert module_to_onnx(module, (1, 8, 4, 8, 8)) == first  # (C, T, H, W) means batch 1
    with torch.no_grad():
        module.project[0].weight.add_(1.0)
    assert module_to_onnx(module, (8, 4, 8, 8)) != first
    assert module_to_onnx(module, (8, 4, 6, 6)) != first


def test_cache_tells_apart_modules_that_differ_only_in_attributes() -> None:
    outputs = []
    for block in ("attn_h2", "attn_h4"):  # same weight shapes and values, different heads
        torch.manual_seed(0)
        module = create_block(block, in_channels=16, out_channels=16, stride=(1, 1, 1)).eval()
        data = module_to_onnx(module, (16, 2, 4, 4))
        assert onnx_max_abs_diff(module, data, (1, 16, 2, 4, 4)) <= 1e-4
        outputs.append(data)
    assert outputs[0] != outputs[1]


def test_export_arch_writes_a_verified_model(tmp_path) -> None:
    arch = load_space("tiny").sample(11)
    report = export_arch(arch, tmp_path / "m.onnx", metadata={"predicted_latency_ms": 1.25, "device": "ort-cpu-1t"})
    assert report.max_abs_diff <= 1e-4
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model, full_check=True)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    assert ArchSpec.from_dict(json.loads(meta["vidlat.arch"])) == arch
    assert json.loads(meta["predicted_latency_ms"]) == 1.25 and meta["device"] == "ort-cpu-1t"
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(arch.input_shape)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": np.zeros((5, *arch.input_shape), np.float32)})
    assert logits.shape == (5, arch.num_classes)


def test_export_arch_refuses_a_mismatch(tmp_path) -> None:
    with pytest.raises(ExportError, match="differs from torch"):
        export_arch(load_space("tiny").sample(2), tmp_path / "m.onnx", tolerance=-1.0)
    assert not (tmp_path / "m.onnx").exists()


def test_export_cli_on_tiny_arch(tmp_path) -> None:
    runner = CliRunner()
    arch_path = tmp_path / "a.yaml"
    load_space("tiny").sample(5).save(arch_path)
    result = runner.invoke(cli, ["export", str(arch_path), "--out", str(tmp_path / "m.onnx"), "--meta", "note=x"])
    assert result.exit_code == 0, result.output
    diff = float(result.output.split("max abs diff ONNX Runtime vs torch (batch 2): ")[1].split()[0])
    assert diff <= 1e-4
    assert "onnx.checker: ok" in result.output
    bad = runner.invoke(cli, ["export", str(arch_path), "--out", str(tmp_path / "n.onnx"), "--meta", "novalue"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    unwritable = runner.invoke(cli, ["export", str(arch_path), "--out", str(arch_path / "m.onnx")])
    assert unwritable.exit_code == 2 and unwritable.output.startswith(f"error: cannot write {arch_path / 'm.onnx'}")


def test_export_cli_with_trained_weights(tmp_path) -> None:
    from search.train import save_weights

    arch = load_space("tiny").sample(5)
    arch.save(tmp_path / "a.yaml")
    model = build_model(arch)
    save_weights(model, tmp_path / "w.pt")
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "m.onnx"),
                                 "--weights", str(tmp_path / "w.pt")])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, *arch.input_shape), dtype=np.float32)
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"input": x})[0] - want).max() <= 1e-4
    other = load_space("tiny").sample(6)
    other.save(tmp_path / "b.yaml")
    bad = runner.invoke(cli, ["export", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "n.onnx"),
                              "--weights", str(tmp_path / "w.pt")])
    assert other.layers != arch.layers
    assert bad.exit_code == 2 and "do not fit" in bad.output
    not_weights = runner.invoke(cli, ["export", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "n.onnx"),
                                      "--weights", str(tmp_path / "b.yaml")])
    assert not_weights.exit_code == 2 and "not a state_dict saved by `vidlat train`" in not_weights.output


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_weights_that_do_not_fit_or_are_not_weights_are_one_line_naming_the_tensors(tmp_path) -> None:
    from search.train import save_weights

    arch = load_space("tiny").sample(5)
    arch.save(tmp_path / "a.yaml")
    state = build_model(arch).state_dict()
    names = list(state)
    state.pop(names[0])
    state["extra.weight"] = torch.zeros(2)
    state[names[1]] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "wrong.pt")
    save_weights(build_model(arch), tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not weights")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")

    def export(weights: str):
        return CliRunner().invoke(cli, ["export", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "m.onnx"),
                                        "--weights", str(tmp_path / weights)])

    line = one_error_line(export("wrong.pt"))
    assert "weights do not fit" in line and f"1 missing ({names[0]})" in line and "1 unexpected (extra.weight)" in line
    assert f"1 mis-shaped ({names[1]} (3, 3) != " in line
    for weights in ("truncated.pt", "text.pt", "list.pt"):
        assert "not a state_dict saved by `vidlat train`" in one_error_line(export(weights))
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["default:x3d-xs", "default:r2p1d", "sample"])
def test_export_default_space_archs(tmp_path, arch: str) -> None:
    if arch == "sample":
        load_space("default").sample(2026).save(tmp_path / "a.yaml")
        arch = str(tmp_path / "a.yaml")
    result = CliRunner().invoke(cli, ["export", arch, "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert float(result.output.split("(batch 2): ")[1].split()[0]) <= 1e-4


@pytest.mark.slow
def test_default_space_lists_all_workloads() -> None:
    space = load_space("default")
    items = space.workloads()
    assert len(items) == sum(len(slot.candidates) for slot in space.layers)
    unique = space.unique_workloads()
    assert len(unique) == 82
    assert all(w.onnx for w in unique)
