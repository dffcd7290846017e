"""ONNX Runtime backend: a fresh session per workload, inputs bound once, threads as the device says.

::

    workload.onnx ──> InferenceSession(threads, optimisation level, provider)
                          │  rejected by the runtime ──> Measurement.unsupported(runtime message)
                          v
                      IOBinding (inputs bound once) ──> prepare(): run_with_iobinding, timed alone
                                                        (measure_callable) or in rounds (profiler.rounds)
                          │  (per_node) a second, profiling session ──> node_times
                          v
                      Measurement
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, ClassVar

import numpy as np

from profiler.backends.base import Availability, Backend, Prepared, host_fingerprint, runtime_message
from profiler.device import DeviceConfig
from profiler.workload import Measurement, Workload

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
PROFILE_RUNS = 10


class OnnxRuntimeBackend(Backend):
    """Times ONNX workloads with ONNX Runtime (CPU provider, or CUDA/TensorRT/OpenVINO EPs)."""

    name: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime",)

    @classmethod
    def availability(cls, device: DeviceConfig) -> Availability:
        status = super().availability(device)
        if not status.ok:
            return status
        import onnxruntime as ort

        provider = PROVIDERS[device.backend_options.execution_provider]
        available = ort.get_available_providers()
        if provider not in available:
            return Availability(False, f"ONNX Runtime here has no {provider}; available: {', '.join(available)}")
        return Availability(True)

    def fingerprint(self) -> dict[str, str]:
        import onnxruntime as ort

        return {
            **host_fingerprint(),
            "runtime": "onnxruntime",
            "onnxruntime": ort.__version__,
            "provider": PROVIDERS[self.options.execution_provider],
            "intra_op_threads": str(self.options.intra_op_threads),
            "inter_op_threads": str(self.options.inter_op_threads),
            "graph_optimization_level": self.options.graph_optimization_level,
        }

    def _session_options(self, *, profile_prefix: str | None = None) -> Any:
        import onnxruntime as ort

        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.options.intra_op_threads
        options.inter_op_num_threads = self.options.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = levels[self.options.graph_optimization_level]
        options.log_severity_level = 3
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        return options

    def _session(self, workload: Workload, *, profile_prefix: str | None = None) -> Any:
        import onnxruntime as ort

        return ort.InferenceSession(
            workload.onnx,
            sess_options=self._session_options(profile_prefix=profile_prefix),
            providers=[PROVIDERS[self.options.execution_provider]],
        )

    @staticmethod
    def _bound_run(session: Any, inputs: dict[str, np.ndarray]) -> Any:
        binding = session.io_binding()
        for name, value in inputs.items():
            binding.bind_cpu_input(name, value)
        for output in session.get_outputs():
            binding.bind_output(output.name)

        def run() -> None:
            session.run_with_iobinding(binding)

        return run

    def prepare(self, workload: Workload) -> Prepared | Measurement:
        try:
            session = self._session(workload)
        except Exception as exc:  # the runtime rejected the model
            return Measurement.unsupported(runtime_message(exc))
        expected = {item.name for item in session.get_inputs()}
        if expected != set(workload.inputs):
            return Measurement.failed(f"model inputs {sorted(expected)} differ from the workload's {sorted(workload.inputs)}")
        inputs = workload.random_inputs()
        try:
            run = self._bound_run(session, inputs)
        except Exception as exc:
            return Measurement.failed(runtime_message(exc))

        def finish(measurement: Measurement) -> Measurement:
            if self.options.execution_provider != "cpu":
                measurement.contended = False  # the host thread waits on the accelerator: wall >> CPU is normal
            if self.policy.per_node and measurement.status == "ok":
                measurement.node_times = self.node_times(workload, inputs)
            return measurement

        return Prepared(run=run, finish=finish)

    def measure(self, workload: Workload) -> Measurement:
        return self.measure_prepared(workload)

    def node_times(self, workload: Workload, inputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Median kernel time of every node over a few profiled runs (ONNX Runtime's profiler).

        Runs in its own session, so profiling overhead never touches the timed runs.
        """
        with tempfile.TemporaryDirectory(prefix="vidlat-ort-") as folder:
            session = self._session(workload, profile_prefix=os.path.join(folder, "profile"))
            run = self._bound_run(session, inputs)
            for _ in range(PROFILE_RUNS + 1):
                run()
            path = session.end_profiling()
            with open(path, encoding="utf-8") as handle:
                events = json.load(handle)
        return parse_ort_profile(events, skip_first=True)


def parse_ort_profile(events: list[dict[str, Any]], *, skip_first: bool = True) -> list[dict[str, Any]]:
    """Per-node median kernel time (ms) from ONNX Runtime profile events, in execution order."""
    times: dict[str, list[float]] = {}
    op_types: dict[str, str] = {}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        node = event["name"].removesuffix("_kernel_time")
        times.setdefault(node, []).append(event["dur"] / 1000.0)
        op_types[node] = event.get("args", {}).get("op_name", "")
    rows = []
    for node, durations in times.items():
        kept = durations[1:] if skip_first and len(durations) > 1 else durations
        rows.append({"node": node, "op_type": op_types[node], "median_ms": float(np.median(kept)), "runs": len(kept)})
    return rows
