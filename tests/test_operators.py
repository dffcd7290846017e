"""Operator workloads: every kernel type builds one kernel, sampling is seeded, profiling resumes."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.kernel_predictor import profile_operators
from predictors.kernels import FusionRules, model_kernels
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.operators import (
    FUSION_PAIRS, KERNEL_TYPES, affordable, fusion_workloads, mutate_config, operator_workload, sample_config, sample_workloads,
)
from profiler.store import LatencyStore

ALL = FusionRules(frozenset(FUSION_PAIRS))
SIM = "fpga-z7020-sim"


@pytest.mark.parametrize("kernel", KERNEL_TYPES)
def test_every_sampled_config_is_one_kernel_of_its_type(kernel):
    rng = np.random.default_rng(1)
    for _ in range(6):
        config = sample_config(kernel, rng)
        assert affordable(kernel, config)
        workload = operator_workload(kernel, config)
        graph = model_kernels(workload.onnx, workload.inputs, ALL)
        assert [k.type for k in graph.kernels] == [kernel], workload.key
        assert not graph.unpriced
        neighbour = mutate_config(kernel, config, rng)
        assert neighbour != config and affordable(kernel, neighbour)
        moved = operator_workload(kernel, neighbour)
        assert len(model_kernels(moved.onnx, moved.inputs, ALL).kernels) == 1


def test_sampling_is_seeded_and_fusion_tests_come_in_threes():
    counts = {kernel: 2 for kernel in KERNEL_TYPES}
    first, again = sample_workloads(counts, seed=4), sample_workloads(counts, seed=4)
    assert [w.key for w in first] == [w.key for w in again] and [w.onnx for w in first] == [w.onnx for w in again]
    assert [w.key for w in sample_workloads(counts, seed=5)] != [w.key for w in first]
    parts: dict[tuple[str, str], set[str]] = {}
    for workload in fusion_workloads():
        parts.setdefault((workload.spec["pair"], workload.spec["case"]), set()).add(workload.spec["part"])
    assert {pair for pair, _ in parts} == set(FUSION_PAIRS)
    assert all(found == {"A", "B", "AB"} for found in parts.values())


def test_operator_profiling_resumes_where_it_stopped(tmp_path):
    backend = create_backend(resolve_device(SIM))
    kwargs = {"scale": 0.05, "rounds": 1, "extra_per_round": 8, "progress": False}
    with LatencyStore(tmp_path / "whole.sqlite") as store:
        whole = profile_operators(backend, store, **kwargs)
        whole_keys = store.measured_keys(SIM)
    with LatencyStore(tmp_path / "parts.sqlite") as store:
        first = profile_operators(backend, store, limit=20, **kwargs)
        assert first.measured + first.unsupported + first.failed == 20 and first.left > 0
        rest = profile_operators(backend, store, **kwargs)
        assert rest.skipped >= 20
        assert store.measured_keys(SIM) == whole_keys
        again = profile_operators(backend, store, **kwargs)
    assert again.measured == 0 and again.skipped == len(whole_keys) == whole.measured + whole.unsupported + whole.failed


def test_profile_operators_cli_measures_and_resumes(tmp_path):
    from click.testing import CliRunner

    from vidlat.cli import cli

    store = str(tmp_path / "latency.sqlite")
    args = ["profile", "--device", SIM, "--operators", "--limit", "12", "--store", store, "--quiet"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and "operators: fpga-z7020-sim: 12 measured" in first.stdout, first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "12 skipped as present" in second.stdout and "12 measured" in second.stdout
    both = CliRunner().invoke(cli, ["profile", "--device", SIM, "--operators", "--space", "tiny", "--store", store])
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_transformer_patch_embeddings_are_sampled_on_rgb_clips():
    rng = np.random.default_rng(0)
    configs = [sample_config("conv", rng) for _ in range(400)]
    patches = [c for c in configs if c["kernel"] == c["stride"] and max(c["kernel"]) > 1]
    assert 0.1 < len(patches) / len(configs) < 0.3  # a tenth drawn as such, a few more from the free draw
    rgb = [c for c in patches if c["cin"] == 3]
    assert len(rgb) / len(configs) > 0.06 and sum(c["size"][1] >= 32 for c in rgb) > len(rgb) / 2
