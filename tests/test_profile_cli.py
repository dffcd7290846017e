"""`vidlat profile` and `vidlat lut`: one ONNX model, a space, kill + resume in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from search.space import load_space
from vidlat.cli import cli

FAST_DEVICE = {
    "name": "ort-fast",
    "description": "ONNX Runtime, one thread, few runs: for tests only",
    "backend": "onnxruntime",
    "options": {"intra_op_threads": 1},
    "measurement": {"warmup_runs": 1, "min_runs": 3, "max_runs": 5, "max_seconds": 0.3},
}


@pytest.fixture
def device_file(tmp_path) -> Path:
    path = tmp_path / "ort-fast.yaml"
    path.write_text(yaml.safe_dump(FAST_DEVICE))
    return path


def conv_relu_onnx(path: Path) -> Path:
    weight = np.random.default_rng(0).standard_normal((4, 4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["clip", "w"], ["y"], pads=[1] * 6, name="conv"),
             helper.make_node("Relu", ["y"], ["z"], name="relu")]
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", 4, 2, 8, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def rows_per_key(store: Path) -> dict[str, int]:
    with sqlite3.connect(store) as db:
        return dict(db.execute("SELECT key, COUNT(*) FROM measurements GROUP BY key"))


def test_profile_onnx_whole_and_per_node(tmp_path, device_file):
    store = tmp_path / "s.sqlite"
    model = conv_relu_onnx(tmp_path / "tiny.onnx")
    args = ["profile", "--device", str(device_file), "--onnx", str(model), "--store", str(store), "--quiet"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "1 measured, 0 skipped as present" in first.output and "FusedConv" in first.output
    again = CliRunner().invoke(cli, args)
    assert "0 measured, 1 skipped as present" in again.output and list(rows_per_key(store).values()) == [1]
    remeasured = CliRunner().invoke(cli, [*args, "--remeasure"])
    assert "1 measured, 0 skipped" in remeasured.output and list(rows_per_key(store).values()) == [2]
    with sqlite3.connect(store) as db:
        spec = json.loads(db.execute("SELECT spec FROM workloads").fetchone()[0])
    assert spec["inputs"] == {"clip": [1, 4, 2, 8, 8]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "ort-cpu-1t"], "exactly one of --space S or --onnx F"),
        (["--device", "no-such-device", "--onnx", "x.onnx"], "unknown device 'no-such-device'"),
        (["--device", "ort-cpu-1t", "--onnx", "missing.onnx"], "cannot read the ONNX file"),
    ],
)
def test_profile_user_mistakes_are_one_line(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["profile", *args, "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_profile_refuses_a_foreign_store(tmp_path, device_file):
    foreign = tmp_path / "notes.sqlite"
    foreign.write_text("not a database at all, please keep me")
    model = conv_relu_onnx(tmp_path / "tiny.onnx")
    result = CliRunner().invoke(cli, ["profile", "--device", str(device_file), "--onnx", str(model), "--store", str(foreign)])
    assert result.exit_code == 2 and "not a vidlat store" in result.output
    assert foreign.read_text() == "not a database at all, please keep me"


def test_lut_export_rejects_other_suffix(tmp_path):
    result = CliRunner().invoke(cli, ["lut", "export", "--device", "ort-cpu-1t", "--out", str(tmp_path / "t.txt")])
    assert result.exit_code == 2 and ".csv or .parquet" in result.output


# ------------------------------------------------------------------------------ with a search space
def tiny_keys() -> set[str]:
    tiny = load_space("tiny")
    return {item.workload.key for item in tiny.workloads()} | {workload.key for workload in tiny.fixed_workloads()}


def _profile_command(device_file: Path, store: Path) -> list[str]:
    return [sys.executable, "-c", "from vidlat.cli import main; main()", "profile", "--device", str(device_file),
            "--space", "tiny", "--store", str(store), "--quiet"]


def _profile_process(device_file: Path, store: Path) -> subprocess.Popen:
    # Ctrl-C as a terminal delivers it: whatever an earlier test left for SIGINT in this process, the child
    # starts with the default, so Python installs its KeyboardInterrupt handler (it does not if SIGINT is ignored)
    return subprocess.Popen(_profile_command(device_file, store), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_rows(store: Path, process: subprocess.Popen, rows: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"profile ended before it could be killed: {process.communicate()}")
        if store.exists():
            try:
                if sum(rows_per_key(store).values()) >= rows:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {rows} measurements within {timeout_s} s")


@pytest.mark.slow
def test_interrupted_and_killed_sweep_resumes_without_duplicates(tmp_path):
    """Ctrl-C, then SIGKILL (both in the middle of a group's interleaved rounds), then a full run:
    every workload once, nothing measured twice."""
    slow_device = tmp_path / "ort-slow.yaml"  # every workload runs for its whole 0.15 s budget, in groups of 4
    slow_device.write_text(yaml.safe_dump({**FAST_DEVICE, "name": "ort-slow", "measurement": {
        "warmup_runs": 1, "min_runs": 3, "max_runs": 100000, "max_rel_ci": 1e-6, "max_seconds": 0.15,
        "group_size": 4}}))
    store = tmp_path / "s.sqlite"
    expected = tiny_keys()

    interrupted = _profile_process(slow_device, store)
    _wait_for_rows(store, interrupted, rows=2)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130 and "everything measured so far is stored" in err
    after_interrupt = rows_per_key(store)

    killed = _profile_process(slow_device, store)
    _wait_for_rows(store, killed, rows=len(after_interrupt) + 2)
    killed.kill()
    killed.communicate(timeout=60)
    after_kill = rows_per_key(store)
    assert set(after_kill.values()) == {1} and len(after_interrupt) < len(after_kill) < len(expected)

    resumed = CliRunner().invoke(cli, _profile_command(slow_device, store)[3:])
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(expected) - len(after_kill)} measured, {len(after_kill)} skipped as present" in resumed.output
    counts = rows_per_key(store)
    assert set(counts) == expected and set(counts.values()) == {1}


@pytest.mark.slow
def test_lut_show_and_export_after_profiling(tmp_path, device_file):
    store = tmp_path / "s.sqlite"
    runner = CliRunner()
    profiled = runner.invoke(cli, ["profile", "--device", str(device_file), "--space", "tiny", "--store", str(store), "--quiet", "--per-node"])
    assert profiled.exit_code == 0, profiled.output
    from profiler.store import LatencyStore

    with LatencyStore(store) as opened:
        stem = next(key for key in tiny_keys() if key.startswith("stem"))
        assert not opened.node_times("ort-fast", stem).empty
    shown = runner.invoke(cli, ["lut", "show", "--device", "ort-fast", "--space", "tiny", "--store", str(store)])
    assert shown.exit_code == 0 and "missing" not in shown.output
    expected = tiny_keys()
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"lut.{suffix}"
        exported = runner.invoke(cli, ["lut", "export", "--device", "ort-fast", "--space", "tiny", "--store", str(store), "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        table = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
        assert {"key", "layer", "block", "status", "median_ms", "p90_ms", "c_in", "spec"} <= set(table.columns)
        assert set(table["key"]) == expected
        assert (table["status"] == "ok").all() and (table["median_ms"] > 0).all()
        assert sorted(table.loc[table["layer"] == -1, "block"]) == ["head", "stem"]
