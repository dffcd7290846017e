"""OpenVINO backend: a freshly compiled model per workload, inputs set once, precision stated.

::

    workload.onnx ──> ov.convert_model ──> core.compile_model(device, threads, precision hint)
                          │ rejected ──> Measurement.unsupported(runtime message)
                          v
                      infer request (input tensors set once) ──> prepare(): request.infer, timed alone
                                                                 or in rounds (profiler.rounds)
                          │ (per_node) a second compile with PERF_COUNT ──> node_times
                          v
                      Measurement

The precision is always passed: OpenVINO picks bf16 on CPUs that support it otherwise.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

import numpy as np

from profiler.backends.base import Backend, Prepared, host_fingerprint, runtime_message
from profiler.workload import Measurement, Workload

PROFILE_RUNS = 10


class OpenVinoBackend(Backend):
    """Times ONNX workloads with OpenVINO on one device (CPU by default)."""

    name: ClassVar[str] = "openvino"
    requires: ClassVar[tuple[str, ...]] = ("openvino",)
    extra: ClassVar[str | None] = "openvino"
    layout_nodes: ClassVar[frozenset[str]] = frozenset({"Reorder"})

    def __init__(self, device: Any) -> None:
        super().__init__(device)
        import openvino as ov

        self._ov = ov
        self._core = ov.Core()

    def fingerprint(self) -> dict[str, str]:
        try:
            device_name = str(self._core.get_property(self.options.device, "FULL_DEVICE_NAME"))
        except RuntimeError:
            device_name = self.options.device
        return {
            **host_fingerprint(),
            "runtime": "openvino",
            "openvino": self._ov.get_version(),
            "ov_device": device_name,
            "threads": str(self.options.threads),
            "precision": self.options.precision,
            "performance_hint": self.options.performance_hint,
        }

    def _config(self, *, perf_count: bool = False) -> dict[str, Any]:
        return {
            "INFERENCE_NUM_THREADS": self.options.threads,
            "INFERENCE_PRECISION_HINT": self.options.precision,
            "PERFORMANCE_HINT": self.options.performance_hint.upper(),
            "NUM_STREAMS": 1,
            "PERF_COUNT": perf_count,
        }

    def _request(self, model: Any, inputs: dict[str, np.ndarray], *, perf_count: bool = False) -> Any:
        compiled = self._core.compile_model(model, self.options.device, self._config(perf_count=perf_count))
        request = compiled.create_infer_request()
        for name, value in inputs.items():
            request.set_tensor(name, self._ov.Tensor(value))
        return request

    def prepare(self, workload: Workload) -> Prepared | Measurement:
        inputs = workload.random_inputs()
        try:
            model = self._ov.convert_model(io.BytesIO(workload.onnx))
            names = {name for port in model.inputs for name in port.get_names()}
            if not set(workload.inputs) <= names:
                return Measurement.failed(f"model inputs {sorted(names)} differ from the workload's {sorted(workload.inputs)}")
            request = self._request(model, inputs)
        except Exception as exc:  # conversion or compilation rejected the model
            return Measurement.unsupported(runtime_message(exc))

        def finish(measurement: Measurement) -> Measurement:
            if self.policy.per_node and measurement.status == "ok":
                measurement.node_times = self.node_times(model, inputs)
            return measurement

        return Prepared(run=request.infer, finish=finish)

    def measure(self, workload: Workload) -> Measurement:
        return self.measure_prepared(workload)

    def node_times(self, model: Any, inputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Median real time of every executed node over a few runs (OpenVINO performance counters).

        Compiled separately with ``PERF_COUNT``, so counting never touches the timed runs. Layout
        reorders that OpenVINO inserts show up as their own ``Reorder`` nodes, marked ``layout``.
        """
        request = self._request(model, inputs, perf_count=True)
        request.infer()
        times: dict[str, list[float]] = {}
        kinds: dict[str, tuple[str, str]] = {}
        for _ in range(PROFILE_RUNS):
            request.infer()
            for info in request.profiling_info:
                if info.status != info.Status.EXECUTED:
                    continue
                times.setdefault(info.node_name, []).append(info.real_time.total_seconds() * 1000.0)
                kinds[info.node_name] = (info.node_type, info.exec_type)
        return [
            {"node": node, "op_type": kinds[node][0], "exec_type": kinds[node][1], "median_ms": float(np.median(values)), "runs": len(values),
             "layout": kinds[node][0] in self.layout_nodes}
            for node, values in times.items()
        ]
