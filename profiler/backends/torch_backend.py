"""PyTorch backend: runs the workload's torch module directly, on the CPU or on an NVIDIA GPU.

::

    workload.builder() ──> module.eval().to(device, dtype) ──(mode)──> eager | torch.jit.trace | torch.compile
         │ no builder ──> Measurement.unsupported              (traced / compiled here, with one call, so
         v                                                      no warm-up or timed run pays for a compile)
    inputs as tensors of that dtype on that device, made once
         ├─ cpu:  measure_callable(module(*inputs))          host wall clock, CPU time, contention check
         └─ cuda: measure_callable(module(*inputs), device_timer=CudaEventTimer)
                  each timed run: synchronize ─> start.record ─> run ─> end.record ─> end.synchronize
                  latency = start.elapsed_time(end), the GPU's own clock; same warm-up and stopping rule

torch is imported here only, lazily, so the measuring core stays free of it. Threads are set with
``torch.set_num_threads`` and denormals are flushed before timing. On ``cuda`` the fingerprint
adds the GPU's name, compute capability and memory, the driver, CUDA and cuDNN versions.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any, ClassVar

from profiler.backends.base import Availability, Backend, Prepared, host_fingerprint, runtime_message
from profiler.device import DeviceConfig
from profiler.protocol import measure_callable
from profiler.workload import Measurement, Workload

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def gpu_driver_version(index: int) -> str:
    """The NVIDIA driver version of GPU ``index`` as ``nvidia-smi`` reports it, or ``unknown``."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", f"--id={index}"],
            capture_output=True, text=True, timeout=30, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


class CudaEventTimer:
    """Times one run with a pair of CUDA events on the current stream (milliseconds, the GPU's clock).

    Synchronising first keeps work queued before (warm-up runs, input copies) out of the time; waiting
    on the end event makes the run's last kernel part of it.
    """

    def __init__(self, torch: Any, device: Any) -> None:
        self._cuda = torch.cuda
        self._device = device
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def __call__(self, run: Callable[[], object]) -> float:
        self._cuda.synchronize(self._device)
        self._start.record()
        run()
        self._end.record()
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))


class TorchBackend(Backend):
    """Times a workload's torch module on the CPU (at the device's thread count) or on a CUDA GPU."""

    name: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)

    @classmethod
    def availability(cls, device: DeviceConfig) -> Availability:
        status = super().availability(device)
        options = device.backend_options
        if not status.ok or options.device == "cpu":
            return status
        import torch

        if not torch.cuda.is_available():
            return Availability(False, f"it asks for cuda, but torch {torch.__version__} sees no CUDA GPU here "
                                       f"(built with CUDA {torch.version.cuda or 'none'}); use a cpu device such as torch-cpu-1t")
        count = torch.cuda.device_count()
        if options.device_index >= count:
            return Availability(False, f"it asks for GPU {options.device_index}, but torch sees {count} (0-{count - 1})")
        return Availability(True)

    def __init__(self, device: DeviceConfig) -> None:
        super().__init__(device)
        import torch

        self._torch = torch
        self.dtype = getattr(torch, DTYPES[self.options.dtype])
        self.target = torch.device("cpu") if self.options.device == "cpu" else torch.device("cuda", self.options.device_index)
        torch.set_num_threads(self.options.threads)
        torch.set_flush_denormal(True)
        if self.options.device == "cuda":
            torch.backends.cudnn.benchmark = self.options.cudnn_benchmark
            torch.backends.cudnn.allow_tf32 = self.options.tf32
            torch.backends.cuda.matmul.allow_tf32 = self.options.tf32

    def fingerprint(self) -> dict[str, str]:
        torch = self._torch
        fingerprint = {
            **host_fingerprint(),
            "runtime": "torch",
            "torch": torch.__version__,
            "threads": str(self.options.threads),
            "mode": self.options.mode,
        }
        if self.options.device == "cuda":
            index = self.options.device_index
            props = torch.cuda.get_device_properties(index)
            fingerprint.update({
                "gpu": str(props.name),
                "gpu_capability": f"{props.major}.{props.minor}",
                "gpu_memory_mb": str(int(props.total_memory) // (1 << 20)),
                "driver": gpu_driver_version(index),
                "cuda": str(torch.version.cuda),
                "cudnn": str(torch.backends.cudnn.version()),
            })
        return fingerprint

    def _prepare(self, module: Any, inputs: tuple[Any, ...]) -> Any:
        if self.options.mode == "torchscript":
            module = self._torch.jit.freeze(self._torch.jit.trace(module, inputs))
        elif self.options.mode == "compile":
            module = self._torch.compile(module)
        if self.options.mode != "eager":
            module(*inputs)  # the compile happens here, not in a warm-up or timed run
        return module

    def can_interleave(self) -> bool:
        # on a GPU each run is timed by CUDA events around it; the rounds' host clock would time the launch
        return self.options.device == "cpu"

    def prepare(self, workload: Workload) -> Prepared | Measurement:
        """The module built, cast, traced or compiled, with autograd off, ready to run (CPU only)."""
        if workload.builder is None:
            return Measurement.unsupported("workload has no torch builder (only its ONNX); the torch backend runs torch modules")
        torch = self._torch
        torch.set_num_threads(self.options.threads)
        torch.set_flush_denormal(True)
        try:
            inputs = tuple(torch.from_numpy(value).to(self.target, self.dtype) for value in workload.random_inputs().values())
            with torch.inference_mode():
                module = self._prepare(workload.builder().eval().to(self.target, self.dtype), inputs)
            for parameter in module.parameters():
                parameter.requires_grad_(False)  # no autograd graph is recorded, without a context in the timed call
        except Exception as exc:
            return Measurement.failed(runtime_message(exc))

        def run() -> None:
            module(*inputs)

        return Prepared(run=run)

    def measure(self, workload: Workload) -> Measurement:
        if self.options.device == "cpu":
            return self.measure_prepared(workload)
        if workload.builder is None:
            return Measurement.unsupported("workload has no torch builder (only its ONNX); the torch backend runs torch modules")
        torch = self._torch
        torch.set_num_threads(self.options.threads)
        try:
            inputs = tuple(torch.from_numpy(value).to(self.target, self.dtype) for value in workload.random_inputs().values())
            with torch.inference_mode():
                module = self._prepare(workload.builder().eval().to(self.target, self.dtype), inputs)

                def run() -> None:
                    module(*inputs)

                measurement = measure_callable(run, self.policy, device_timer=CudaEventTimer(torch, self.target))
                measurement.extra["timing"] = "CUDA events (GPU time from the first kernel queued to the last finished)"
                return measurement
        except Exception as exc:
            return Measurement.failed(runtime_message(exc))
