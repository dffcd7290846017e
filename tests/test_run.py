"""`vidlat run`: the whole path on the tiny space, end to end, with every file where it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from search.arch import load_arch
from search.export import INPUT_NAME
from search.train import load_weights
from vidlat.cli import cli


@pytest.mark.slow
def test_run_chains_every_step_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--device", "ort-cpu-1t", "--space", "tiny", "--networks", "3", "--search-epochs", "2",
            "--train-epochs", "1", "--train-clips", "60", "--store", str(tmp_path / "store.sqlite")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for step in ("1/6 profile", "2/6 fit", "3/6 search", "4/6 train", "5/6 export", "6/6 measure", "done"):
        assert step in result.output
    summary = json.loads((tmp_path / "runs" / "ort-cpu-1t-tiny" / "summary.json").read_text())
    for path in summary["files"].values():
        assert Path(path).exists(), path
    assert summary["measured_status"] == "ok" and summary["measured_ms"] > 0 and summary["predicted_ms"] > 0
    assert len(summary["arch"]) == 4 and 0.0 <= summary["test_acc"] <= 1.0
    model = onnx.load(summary["files"]["model"])
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert float(metadata["vidlat.predicted_latency_ms"]) == pytest.approx(summary["predicted_ms"], rel=1e-3)
    assert json.loads(metadata["vidlat.arch"])["layers"] == summary["arch"]
    assert set(summary["seconds"]) == {"profile", "fit", "search", "train", "export", "measure", "total"}

    # what was searched is what was trained, and the trained weights are what the ONNX file computes
    arch = load_arch(summary["files"]["arch"])
    assert arch.layers == summary["arch"] == load_arch(Path(summary["files"]["search"]) / "arch.yaml").layers
    assert summary["test_acc"] == json.loads(Path(summary["files"]["train_report"]).read_text())["test_acc"]
    clips = torch.randn(2, *arch.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = load_weights(arch, summary["files"]["weights"])(clips).numpy()
    session = ort.InferenceSession(summary["files"]["model"], providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {INPUT_NAME: clips.numpy()})
    assert logits.shape == (2, arch.num_classes)
    np.testing.assert_allclose(logits, expected, atol=1e-4)

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "0 measured" in again.output.split("2/6 fit")[0], "a second run re-measured stored workloads"


def test_run_rejects_an_unknown_device_before_doing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "--device", "pixel-9", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2
    assert "unknown device 'pixel-9'" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s.sqlite").exists()
