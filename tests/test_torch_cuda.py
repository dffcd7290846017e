"""The torch backend on CUDA, without a GPU: CUDA events and the GPU's properties are faked, tensors stay
on the CPU, and the protocol, the stopping rule, the fingerprint and the store identity run for real."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import profiler.backends.torch_backend as torch_backend
from profiler.agent.probe import probe_workload
from profiler.backends import availability, create_backend
from profiler.catalog import resolve_device
from profiler.device import MeasurementPolicy, parse_device
from profiler.errors import StoreError
from profiler.protocol import measure_callable
from profiler.store import LatencyStore, device_identity
from vidlat.cli import cli

POLICY = {"warmup_runs": 2, "min_runs": 5, "max_runs": 12, "max_rel_ci": 0.05, "max_seconds": 30.0}


def cuda_device(**options):
    return parse_device({
        "name": "fake-gpu", "description": "a faked CUDA GPU for the tests", "backend": "torch",
        "options": {"device": "cuda", "dtype": "fp32", **options}, "measurement": POLICY,
    }, "test")


class FakeGpu:
    """A GPU clock: a start event reads it, an end event first advances it by the next latency (ms)."""

    def __init__(self, latencies):
        self.latencies = iter(latencies)
        self.now_ms = 0.0
        self.records = 0
        self.synchronized = 0

    def event_class(self):
        gpu = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                self.at_ms = None

            def record(self) -> None:
                if gpu.records % 2:
                    gpu.now_ms += next(gpu.latencies)
                gpu.records += 1
                self.at_ms = gpu.now_ms

            def synchronize(self) -> None:
                assert self.at_ms is not None

            def elapsed_time(self, end: "Event") -> float:
                return end.at_ms - self.at_ms

        return Event


@pytest.fixture
def fake_cuda(monkeypatch):
    """Install a fake CUDA runtime in torch; returns a function that sets the GPU's latencies."""
    holder = {}

    def install(latencies):
        gpu = FakeGpu(latencies)
        holder["gpu"] = gpu
        monkeypatch.setattr(torch.cuda, "Event", gpu.event_class())
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: setattr(gpu, "synchronized", gpu.synchronized + 1))
        return gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(name="Fake H200", major=9, minor=0, total_memory=141 << 30))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch_backend, "gpu_driver_version", lambda index: "570.124.06")
    flags = [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"), (torch.backends.cuda.matmul, "allow_tf32")]
    saved = [getattr(module, name) for module, name in flags]
    yield install
    for (module, name), value in zip(flags, saved):  # the backend sets these torch-wide
        setattr(module, name, value)


def backend_on_cpu_tensors(device):
    """A cuda backend whose tensors stay on the CPU (no GPU here); only its clock is the fake GPU's."""
    backend = create_backend(device)
    backend.target = torch.device("cpu")
    return backend


def counted_probe():
    workload = probe_workload(channels=4, frames=2, size=8)
    calls = []
    build = workload.builder

    def builder():
        module = build()
        module.register_forward_hook(lambda *args: calls.append(1))
        return module

    return type(workload)(workload.key, workload.onnx, workload.inputs, workload.spec, builder), calls


def test_cuda_runs_are_timed_by_events_after_warm_up(fake_cuda):
    gpu = fake_cuda(itertools.repeat(2.5))
    backend = backend_on_cpu_tensors(cuda_device())
    workload, calls = counted_probe()
    measurement = backend.measure(workload)
    assert measurement.status == "ok", measurement.reason
    assert measurement.median_ms == pytest.approx(2.5) and measurement.raw_ms == [2.5] * 5
    assert measurement.extra["stopped_by"] == "max_rel_ci" and measurement.runs == POLICY["min_runs"]
    assert len(calls) == POLICY["warmup_runs"] + measurement.runs  # warm-up runs are run, not timed
    assert gpu.synchronized == measurement.runs  # each timed run starts on an idle GPU
    assert measurement.cpu_ms is None and measurement.contended is False
    assert "CUDA events" in measurement.extra["timing"]


def test_noisy_gpu_times_run_to_the_cap(fake_cuda):
    fake_cuda(itertools.cycle([1.0, 3.0]))
    measurement = backend_on_cpu_tensors(cuda_device()).measure(counted_probe()[0])
    assert measurement.runs == POLICY["max_runs"] and measurement.extra["stopped_by"] == "max_runs"
    assert measurement.median_ms == pytest.approx(2.0) and measurement.p10_ms == pytest.approx(1.0)


def test_device_timer_keeps_the_host_time_cap():
    """max_seconds is on the host's clock also when the device times the runs (fake clock, 0.4 s a run)."""
    host_ns = itertools.count(0, 400_000_000)
    policy = MeasurementPolicy(warmup_runs=1, min_runs=10, max_runs=100, max_seconds=1.0)
    runs = []
    measurement = measure_callable(lambda: runs.append(1), policy, clock_ns=lambda: next(host_ns),
                                   device_timer=lambda run: (run(), 7.0)[1])
    assert measurement.extra["stopped_by"] == "max_seconds" and measurement.runs < policy.min_runs
    assert measurement.raw_ms == [7.0] * measurement.runs and len(runs) == measurement.runs + 1


def test_fingerprint_names_the_gpu_driver_cuda_and_cudnn(fake_cuda):
    fake_cuda(itertools.repeat(1.0))
    fingerprint = backend_on_cpu_tensors(cuda_device()).fingerprint()
    assert fingerprint["gpu"] == "Fake H200" and fingerprint["gpu_capability"] == "9.0"
    assert fingerprint["gpu_memory_mb"] == str(141 * 1024)
    assert (fingerprint["driver"], fingerprint["cuda"], fingerprint["cudnn"]) == ("570.124.06", "12.8", "91002")
    assert fingerprint["runtime"] == "torch" and fingerprint["torch"] == torch.__version__


def test_new_options_and_the_gpu_are_part_of_the_identity(fake_cuda, tmp_path):
    fake_cuda(itertools.repeat(1.0))
    fp32 = backend_on_cpu_tensors(cuda_device())
    identity = device_identity(fp32.device.model_dump(mode="json"), fp32.fingerprint())
    assert identity["options.device"] == '"cuda"' and identity["fingerprint.gpu"] == '"Fake H200"'
    with LatencyStore(tmp_path / "store.sqlite") as store:
        from profiler.sweep import profile_workloads

        profile_workloads(fp32, store, [probe_workload(channels=4, frames=2, size=8)], progress=False)
        fp16 = backend_on_cpu_tensors(cuda_device(dtype="fp16"))
        with pytest.raises(StoreError, match=r"options.dtype .*-> \"fp16\""):
            store.register_device(fp16.device, fp16.fingerprint())


def test_a_torch_device_stored_before_the_gpu_options_keeps_its_identity():
    """A store recomputes identities from the stored config with today's defaults: the old options of a CPU
    torch device are the new ones at their defaults; another dtype is another identity."""
    device = resolve_device("torch-cpu-1t").model_dump(mode="json")
    assert device["options"] == {"threads": 1, "mode": "eager"}
    spelled = {**device, "options": {**device["options"], "device": "cpu", "dtype": "fp32", "tf32": False}}
    assert device_identity(device, {}) == device_identity(spelled, {})
    assert device_identity({**device, "options": {"dtype": "bf16"}}, {}) != device_identity(device, {})


def test_cpu_runs_in_bf16():
    device = parse_device({"name": "cpu-bf16", "description": "torch on the CPU in bf16", "backend": "torch",
                           "options": {"dtype": "bf16"}, "measurement": POLICY}, "test")
    measurement = create_backend(device).measure(probe_workload(channels=4, frames=2, size=8))
    assert measurement.status == "ok" and measurement.median_ms > 0 and measurement.cpu_ms is not None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    assert not availability(resolve_device("torch-cuda")).ok
    result = CliRunner().invoke(cli, ["profile", "--device", "torch-cuda", "--space", "tiny", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "asks for cuda" in result.output and "torch-cpu-1t" in result.output
    assert not (tmp_path / "s.sqlite").exists()


def test_unknown_dtype_and_gpu_index_are_one_line_and_exit_2(tmp_path, fake_cuda):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: a torch device in fp8\nbackend: torch\noptions: {device: cuda, dtype: fp8}\n")
    result = CliRunner().invoke(cli, ["profile", "--device", str(bad), "--space", "tiny", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "options.dtype" in result.output and "'fp16'" in result.output
    status = availability(cuda_device(device_index=3))
    assert not status.ok and "GPU 3" in status.reason and "sees 1" in status.reason


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with a CUDA build of torch")
def test_real_gpu_measures_the_probe():
    measurement = create_backend(cuda_device(dtype="fp16")).measure(probe_workload())
    assert measurement.status == "ok" and measurement.median_ms > 0 and measurement.cpu_ms is None


@pytest.mark.slow
def test_gpu_check_dry_run_goes_through_every_step(tmp_path):
    """bench/gpu_check.sh --dry-run: the GPU check's steps on this CPU (tiny space, short policy), one report file."""
    import json
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", str(script), "--dry-run", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=500)
    report = (tmp_path / "out" / "gpu_check.txt").read_text()
    assert result.returncode == 0, report[-2000:] + result.stderr[-2000:]
    steps = re.findall(r"^-- (.*): exit (\d+), \d+ s$", report, re.M)
    assert [(title.split()[0], status) for title, status in steps] == [(n, "0") for n in ("1/5", "2/5", "3a/5", "3b/5", "4/5", "5/5")]
    evaluation = json.loads(report.split("--json\n")[1].split("\n-- ")[0])
    assert evaluation["test_networks"] + len(evaluation["calibration_networks"]) >= 20
    found = json.loads(report.split("gpu_check_arch.py")[1].splitlines()[1])
    assert found["status"] == "ok" and found["measured_ms"] > 0 and found["predicted_ms"] > 0
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith("vidlat-gpu-check")] == []  # scratch removed
