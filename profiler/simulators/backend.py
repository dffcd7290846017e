"""``SimulatorBackend``: the accelerator simulators behind the ordinary backend interface.

::

    Workload(onnx, inputs) ──> Simulator(device).simulate_onnx ──> SimulationReport
        ──> Measurement(status ok, median = mean = p10 = p90 = latency_ms, std 0, runs 1,
                        node_times = one row per node, extra = totals)
            or Measurement.unsupported(the first node nothing can run, and why)

Deterministic: the same workload on the same device gives the same numbers, so one run is enough.
"""

from __future__ import annotations

import hashlib
import json

import onnx

from profiler import __version__
from profiler.backends.base import Backend
from profiler.device import DeviceConfig
from profiler.errors import WorkloadError
from profiler.simulators.simulate import Simulator
from profiler.workload import Measurement, Workload


class SimulatorBackend(Backend):
    """Simulated FPGA / NPU devices: cycles per node from the device's hardware parameters."""

    name = "simulator"
    requires = ("onnx",)

    def __init__(self, device: DeviceConfig) -> None:
        super().__init__(device)
        self.simulator = Simulator(device)

    def fingerprint(self) -> dict[str, str]:
        """The model, not a machine: template, precision, a digest of the hardware parameters."""
        hardware = self.device.hardware.model_dump(mode="json") if self.device.hardware else {}
        digest = hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:12]
        return {
            "simulator": str(hardware.get("template")),
            "precision": self.options.precision,
            "hardware_digest": digest,
            "onnx": onnx.__version__,
            "vidlat": __version__,
        }

    def measure(self, workload: Workload) -> Measurement:
        """Simulate ``workload``; a node that nothing can run makes it ``unsupported``, never zero."""
        try:
            report = self.simulator.simulate_onnx(workload.onnx, workload.inputs)
        except WorkloadError as exc:
            return Measurement.failed(str(exc))
        node_times = [node.to_dict() for node in report.nodes]
        totals = report.totals()
        if report.unsupported:
            first = report.unsupported[0]
            measurement = Measurement.unsupported(f"node {first.name} ({first.op_type}): {first.cost.reason}", **totals)
            measurement.node_times = node_times
            return measurement
        latency = report.latency_ms
        return Measurement(
            status="ok",
            median_ms=latency,
            mean_ms=latency,
            std_ms=0.0,
            p10_ms=latency,
            p90_ms=latency,
            runs=1,
            raw_ms=[latency],
            node_times=node_times,
            extra=totals,
        )
