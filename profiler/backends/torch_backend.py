"""PyTorch backend: runs the workload's torch module directly (eager, TorchScript or compiled).

::

    workload.builder() ──> module.eval() ──(mode)──> eager | torch.jit.trace | torch.compile
         │ no builder ──> Measurement.unsupported                 │
         v                                                        v
    inputs as tensors, made once ──> measure_callable(module(*inputs) under inference_mode)

torch is imported here only, lazily, so the measuring core stays free of it. Threads are set with
``torch.set_num_threads`` and denormals are flushed before timing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from profiler.backends.base import Backend, host_fingerprint, runtime_message
from profiler.protocol import measure_callable
from profiler.workload import Measurement, Workload


class TorchBackend(Backend):
    """Times a workload's torch module on the CPU at the device's thread count."""

    name: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)

    def __init__(self, device: Any) -> None:
        super().__init__(device)
        import torch

        self._torch = torch
        torch.set_num_threads(self.options.threads)
        torch.set_flush_denormal(True)

    def fingerprint(self) -> dict[str, str]:
        return {
            **host_fingerprint(),
            "runtime": "torch",
            "torch": self._torch.__version__,
            "threads": str(self.options.threads),
            "mode": self.options.mode,
        }

    def _prepare(self, module: Any, inputs: tuple[Any, ...]) -> Any:
        if self.options.mode == "torchscript":
            return self._torch.jit.freeze(self._torch.jit.trace(module, inputs))
        if self.options.mode == "compile":
            return self._torch.compile(module)
        return module

    def measure(self, workload: Workload) -> Measurement:
        if workload.builder is None:
            return Measurement.unsupported("workload has no torch builder (only its ONNX); the torch backend runs torch modules")
        torch = self._torch
        torch.set_num_threads(self.options.threads)
        torch.set_flush_denormal(True)
        inputs = tuple(torch.from_numpy(value) for value in workload.random_inputs().values())
        try:
            with torch.inference_mode():
                module = self._prepare(workload.builder().eval(), inputs)

                def run() -> None:
                    module(*inputs)

                return measure_callable(run, self.policy)
        except Exception as exc:
            return Measurement.failed(runtime_message(exc))
