"""Search spaces, workloads, arch specs and the space/arch CLI."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml
from click.testing import CliRunner

from search import ArchSpecError, SearchSpaceError, build_model, load_arch, load_space
from search.arch import ArchSpec
from search.blocks import BLOCKS, parse_block
from search.space import resolve_arch
from search.workloads import arch_digest, block_workload
from vidlat.cli import cli

SPEC_KEYS = {"op", "block", "c_in", "c_out", "t", "h", "w", "kt", "kh", "kw", "stride_t", "stride_s", "expansion", "se",
             "act", "heads", "macs", "flops", "params", "bytes"}
KEY = re.compile(r"^[a-z0-9_]+\|in=\d+x\d+x\d+x\d+\|out=\d+\|s=[12]{3}$")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDLAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def test_default_space_shape() -> None:
    space = load_space("default")
    assert space.input_shape == (3, 8, 112, 112)
    assert 10 <= len(space.layers) <= 16
    assert [space.config.stages[i].channels for i in range(4)] == [24, 48, 96, 192]
    families = set()
    for slot in space.layers:
        assert 8 <= len(slot.candidates) <= 12
        assert slot.stride[0] == 1
        families |= {parse_block(block).family for block in slot.candidates}
        if any(parse_block(block).family == "attn" for block in slot.candidates):
            assert slot.stage >= 2 and slot.output_shape[1] * slot.output_shape[2] * slot.output_shape[3] <= 400
    assert families == set(BLOCKS)
    for stage_index, stage in enumerate(space.config.stages):
        slots = [slot for slot in space.layers if slot.stage == stage_index]
        assert ["skip" in slot.candidates for slot in slots] == [i >= stage.min_depth for i in range(stage.depth)]
    for before, after in zip(space.layers, space.layers[1:]):
        assert after.input_shape == before.output_shape


def test_tiny_workloads_keys_and_specs() -> None:
    space = load_space("tiny")
    items = space.workloads()
    assert len(items) == sum(len(slot.candidates) for slot in space.layers)
    assert [(i.layer, i.block) for i in items] == [(s.index, b) for s in space.layers for b in s.candidates]
    for item in items:
        workload = item.workload
        slot = space.layers[item.layer]
        assert KEY.match(workload.key), workload.key
        assert SPEC_KEYS <= set(workload.spec)
        assert workload.spec["flops"] == 2 * workload.spec["macs"]
        assert workload.inputs == {"input": (1, *slot.input_shape)}
        assert workload.spec["op"] == parse_block(item.block).family
        assert (workload.spec["c_in"], workload.spec["c_out"]) == (slot.in_channels, slot.out_channels)
        module = workload.builder()
        assert not module.training
        with torch.no_grad():
            y = module(torch.from_numpy(workload.random_inputs()["input"]))
        assert tuple(y.shape[1:]) == slot.output_shape
    # layers 1 and 3 share shapes with nothing else, layer 0 and 1 differ (stride): same block, two keys
    keys = {(i.layer, i.block): i.workload.key for i in items}
    assert keys[(0, "x3d_k333_e2")] == "x3d_k333_e2|in=8x4x16x16|out=8|s=122"
    assert keys[(1, "x3d_k333_e2")] == "x3d_k333_e2|in=8x4x8x8|out=8|s=111"
    fixed = space.fixed_workloads()
    assert [w.spec["op"] for w in fixed] == ["stem", "head"]
    assert fixed[0].inputs["input"] == (1, *space.input_shape)
    assert len(space.unique_workloads()) == len({i.workload.key for i in items}) + 2


def test_workloads_are_deterministic() -> None:
    first = block_workload("me_k133_e2", input_shape=(8, 4, 8, 8), out_channels=8, stride=(1, 1, 1))
    block_workload.cache_clear()
    second = block_workload("me_k133_e2", input_shape=(8, 4, 8, 8), out_channels=8, stride=(1, 1, 1))
    assert first is not second
    assert first.onnx_hash == second.onnx_hash
    a, b = first.builder(), first.builder()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_sample_make_arch_and_references() -> None:
    space = load_space("tiny")
    assert space.sample(7) == space.sample(7)
    assert len({tuple(space.sample(seed).layers) for seed in range(10)}) > 1
    for slot, block in zip(space.layers, space.sample(3).layers):
        assert block in slot.candidates
    with pytest.raises(SearchSpaceError, match="not a candidate"):
        space.make_arch(["attn_h2"] * 4)
    with pytest.raises(SearchSpaceError, match="4 layers"):
        space.make_arch(["x3d_k333_e2"])
    default = load_space("default")
    references = default.reference_archs()
    assert set(references) == {"x3d-xs", "r2p1d"}
    assert len([b for b in references["x3d-xs"].layers if b != "skip"]) == 11  # X3D-XS depths 1+2+5+3
    assert {b for b in references["r2p1d"].layers} == {"r2p1d_k333_e3", "skip"}
    assert resolve_arch("default:x3d-xs") == references["x3d-xs"]


def test_network_workload() -> None:
    space = load_space("tiny")
    arch = space.sample(1)
    workload = space.network_workload(arch)
    assert re.fullmatch(r"net\|tiny\|[0-9a-f]{12}", workload.key)
    assert workload.spec["op"] == "network" and workload.spec["space"] == "tiny"
    assert ArchSpec.from_dict(workload.spec["arch"]) == arch
    block_macs = sum(i.workload.spec["macs"] for i in space.workloads() if arch.layers[i.layer] == i.block)
    fixed_macs = sum(w.spec["macs"] for w in space.fixed_workloads())
    assert workload.spec["macs"] == block_macs + fixed_macs
    assert workload.spec["flops"] == 2 * workload.spec["macs"]


def test_model_runs_at_proxy_shape() -> None:
    arch = load_space("default").sample(5)
    model = build_model(arch).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 3, 8, 32, 32)).shape) == (2, arch.num_classes)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_arch_file_round_trip(tmp_path, suffix: str) -> None:
    arch = load_space("tiny").sample(4)
    path = tmp_path / f"arch{suffix}"
    arch.save(path)
    assert load_arch(path) == arch


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(layers=["x3d_k333_e2", "nope_k1", "skip", "skip"]), "layer 1: unknown block family 'nope'"),
    (lambda d: d.pop("layers"), "missing key"),
    (lambda d: d.update(colour="red"), "unknown key"),
    (lambda d: d.update(channels=[8, 8]), "same length"),
    (lambda d: d.update(input_shape=[3, 4, 32]), "input_shape"),
    (lambda d: d.update(stem={"width": 8}), "stem must be"),
    (lambda d: d.update(strides=["122", "111", "122", "111"]), "strides must be a list of"),
    (lambda d: d.update(channels=["8", 8, 16, 16]), "channels must be a list of positive integers"),
    (lambda d: d.update(channels=[8, 8, 15, 15], layers=["x3d_k333_e2", "skip", "attn_h2", "skip"]), "layer 2: .* heads"),
    (lambda d: d.update(head={"channels": -1}), "head sizes must be positive"),
    (lambda d: d.update(stem={"channels": 8, "temporal_kernel": 4}), "temporal_kernel must be odd"),
    (lambda d: d.update(num_classes=4.5), "num_classes must be a positive integer"),
    (lambda d: d.update(layers=[1, 2, 3, 4]), "layers must be a non-empty list of block strings"),
    (lambda d: d.update(channels=[8, 8, 16, 10**9]), "channels must be at most 4096, got 1000000000"),
    (lambda d: d.update(head={"channels": 5000}), "head must be at most 4096"),
    (lambda d: d.update(input_shape=[3, 64, 4096, 4096]), r"input_shape \[3, 64, 4096, 4096\] has 3221225472 elements; at most"),
    (lambda d: d.update(num_classes=10**6), "num_classes must be at most 100000"),
    (lambda d: d.update(layers=["x3d_k333_e2\n" * 40] * 4), "a block is a string of at most 64 characters"),
])
def test_bad_arch_files(tmp_path, edit, message: str) -> None:
    data = load_space("tiny").sample(0).to_dict()
    edit(data)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ArchSpecError, match=message) as refused:
        load_arch(path)
    assert "\n" not in str(refused.value)


def test_arch_file_keys_that_are_not_strings_are_named() -> None:
    with pytest.raises(ArchSpecError, match="unknown key\\(s\\) 0, 1.5; keys are"):
        ArchSpec.from_dict({**load_space("tiny").sample(0).to_dict(), 0: 0, 1.5: "x"})


def test_arch_stem_has_one_spelling_so_the_network_key_does_not_depend_on_the_file() -> None:
    arch = load_space("tiny").sample(0)
    data = arch.to_dict()
    reordered = ArchSpec.from_dict({**data, "stem": {"temporal_kernel": 3, "channels": 8}})
    assert reordered == arch and arch_digest(reordered) == arch_digest(arch)
    implicit = ArchSpec.from_dict({**data, "stem": {"channels": 8}})
    assert implicit.stem == {"channels": 8, "temporal_kernel": 5}
    assert implicit == ArchSpec.from_dict({**data, "stem": {"channels": 8, "temporal_kernel": 5}})


def test_arch_layers_are_canonical_block_strings() -> None:
    data = load_space("tiny").sample(0).to_dict()
    written = [" x3d_e2_k333", "skip", "x3d_se_e2_k133", "skip"]
    arch = ArchSpec.from_dict({**data, "layers": written, "channels": [8, 8, 16, 16]})
    assert arch.layers == ["x3d_k333_e2", "skip", "x3d_k133_e2_se", "skip"]
    assert arch == load_space("tiny").make_arch(arch.layers, name=arch.name)


def test_bad_arch_build_and_unreadable(tmp_path) -> None:
    data = load_space("tiny").sample(0).to_dict()
    arch = ArchSpec.from_dict(data)
    data["layers"][2] = "skip"  # stage change: skip cannot map 8 -> 16 channels
    with pytest.raises(ArchSpecError, match="layer 2: block 'skip' is an identity"):
        ArchSpec.from_dict(data)
    arch.layers[2] = "skip"  # a spec edited after it was checked still fails by layer when built
    with pytest.raises(ArchSpecError, match="layer 2"):
        build_model(arch)
    (tmp_path / "bad.yaml").write_text("layers: [a\n")
    with pytest.raises(ArchSpecError, match="invalid YAML at line 2"):
        load_arch(tmp_path / "bad.yaml")
    with pytest.raises(ArchSpecError, match="cannot read"):
        load_arch(tmp_path / "missing.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ArchSpecError, match="not UTF-8 text"):
        load_arch(tmp_path / "binary.yaml")


def test_bad_space_files(tmp_path) -> None:
    with pytest.raises(SearchSpaceError, match="unknown search space 'galaxy'"):
        load_space("galaxy")
    base = "name: s\ninput_shape: [3, 4, 32, 32]\nnum_classes: 2\nstem: {channels: 8}\nhead: {channels: 16}\n"
    cases = {
        "stages: [{channels: 8, depth: 2, candidates: [x3d_k333]}]": "stage 0: block 'x3d_k333': missing e<N>",
        "stages: [{channels: 8, depth: 1, min_depth: 2, candidates: [x3d_k333_e2]}]": "min_depth 2 > depth 1",
        "stages: [{channels: 8, depth: 1, colour: 1, candidates: [x3d_k333_e2]}]": "stages.0.colour",
        "stages: [{channels: 8, depth: 1, stride: [2, 2, 2], candidates: [tsm_k133_e2]}]": "temporal stride",
        "stages: [{channels: 8, depth: 2, candidates: [x3d_k333_e2]}]\nreferences: {mine: [x3d_k333_e2]}":
            "reference 'mine': space 's' has 2 layers, got 1 blocks",
    }
    for stages, message in cases.items():
        path = tmp_path / "space.yaml"
        path.write_text(base + stages + "\n")
        with pytest.raises(SearchSpaceError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
            load_space(path)
    path.write_text(base.replace("[3, 4, 32, 32]", "[3, 0, 32, 32]") + "stages: [{channels: 8, depth: 1, candidates: [skip]}]\n")
    with pytest.raises(SearchSpaceError, match=re.escape("field 'input_shape.1': input should be greater than 0")):
        load_space(path)


def test_space_and_arch_cli(tmp_path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["space", "blocks"])
    assert listed.exit_code == 0 and all(f"\n{name}" in "\n" + listed.output for name in BLOCKS)
    shown = runner.invoke(cli, ["space", "show", "default"])
    assert shown.exit_code == 0, shown.output
    assert "search-space size" in shown.output and "80 unique block workloads" in shown.output
    out = tmp_path / "a.yaml"
    sampled = runner.invoke(cli, ["space", "sample", "tiny", "--seed", "3", "--out", str(out)])
    assert sampled.exit_code == 0, sampled.output
    assert load_arch(out) == load_space("tiny").sample(3)
    again = runner.invoke(cli, ["space", "sample", "tiny", "--seed", "3"])
    assert load_arch(out) == ArchSpec.from_dict(yaml.safe_load(again.output))
    shown = runner.invoke(cli, ["arch", "show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "total:" in shown.output and " stem " in shown.output and " head " in shown.output
    unwritable = runner.invoke(cli, ["space", "sample", "tiny", "--out", str(out / "b.yaml")])
    assert unwritable.exit_code == 2 and unwritable.output.startswith(f"error: cannot write arch file {out / 'b.yaml'}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: tiny\n")
    failed = runner.invoke(cli, ["arch", "show", str(bad)])
    assert failed.exit_code == 2 and failed.output.startswith("error: ") and "Traceback" not in failed.output
