"""Remote backend: a device reached through a vidlat agent (`vidlat agent serve` on the device).

::

    device file (url, token_env, runtime, threads, precision, timeout_s)
        │
        v
    RemoteBackend.measure(workload) ──> AgentClient ──HTTP──> agent ──> the device's local backend
        │ agent down / link cut / busy ──> TransientDeviceError (the sweep stores nothing, backs off, retries)
        │ token refused, runtime mismatch, bad options ──> AgentError (stops the sweep with one clear line)
        │ model rejected / too large / time limit / runtime crash ──> Measurement.failed(agent's message)
        v
    Measurement (the agent's statistics and per-node times, as measured on the device)
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from profiler.agent.client import AgentClient
from profiler.agent.wire import WORKLOAD_ERRORS, AgentError, AgentReplyError, MeasureRequest
from profiler.backends.base import Availability, Backend
from profiler.device import DeviceConfig
from profiler.errors import TransientDeviceError
from profiler.workload import Measurement, Workload

# headroom between the agent's time limit and the client's socket timeout, so the agent's 504 arrives
TIME_LIMIT_MARGIN_S = 5.0


class RemoteBackend(Backend):
    """Measures workloads on a remote device through its agent."""

    name: ClassVar[str] = "remote"

    @classmethod
    def availability(cls, device: DeviceConfig) -> Availability:
        env = device.backend_options.token_env
        if not os.environ.get(env):
            return Availability(False, f"no agent token: export {env}=<the token `vidlat agent serve` printed on the device>")
        return Availability(True)

    def __init__(self, device: DeviceConfig) -> None:
        super().__init__(device)
        self.client = AgentClient(self.options.url, os.environ.get(self.options.token_env, ""), timeout_s=self.options.timeout_s)
        self._health: dict[str, Any] | None = None

    def hello(self) -> dict[str, Any]:
        """The agent's health reply, checked once: token accepted and the runtime the device file asks for."""
        if self._health is None:
            try:
                health = self.client.health()
            except AgentReplyError as exc:
                raise self._refused(exc) from None
            if health.get("runtime") != self.options.runtime:
                raise AgentError(
                    f"the agent at {self.client.url} runs {health.get('runtime')}, but device '{self.device.name}' asks for "
                    f"{self.options.runtime}; restart the agent with --runtime {self.options.runtime}"
                )
            self._health = health
        return self._health

    def fingerprint(self) -> dict[str, str]:
        device_side = {key: str(value) for key, value in self.hello()["fingerprint"].items()}
        return {
            **device_side,
            "agent_url": self.client.url,
            "threads": str(self.options.threads),
            "precision": self.options.precision,
        }

    def request_for(self, workload: Workload) -> MeasureRequest:
        """The request the agent gets for ``workload``: shapes, runtime options, policy, time limit."""
        margin = min(TIME_LIMIT_MARGIN_S, 0.2 * self.options.timeout_s)
        return MeasureRequest(
            key=workload.key,
            inputs=dict(workload.inputs),
            options={"threads": self.options.threads, "precision": self.options.precision},
            policy=self.policy.model_dump(mode="json"),
            time_limit_s=self.options.timeout_s - margin,
        )

    def measure(self, workload: Workload) -> Measurement:
        limit = self.hello()["limits"]["max_upload_bytes"]
        if len(workload.onnx) > limit:
            return Measurement.failed(
                f"the ONNX model ({len(workload.onnx)} bytes) is above the agent's upload limit of {limit} bytes "
                "(restart the agent with a larger --max-upload-mb)"
            )
        try:
            reply = self.client.measure(workload.onnx, self.request_for(workload))
        except AgentReplyError as exc:
            if exc.code == "busy":
                raise TransientDeviceError(f"the agent at {self.client.url} is busy with another measurement") from None
            if exc.code in WORKLOAD_ERRORS:
                return Measurement.failed(f"agent: {exc.message}", agent_error=exc.code)
            raise self._refused(exc) from None
        measurement = Measurement.from_dict(reply["measurement"])
        measurement.extra["agent_elapsed_s"] = reply.get("elapsed_s")
        return measurement

    def _refused(self, exc: AgentReplyError) -> AgentError:
        if exc.code == "unauthorized":
            return AgentError(
                f"the agent at {self.client.url} refused the token in ${self.options.token_env} ({exc.message}); "
                "export the token the agent printed when it started"
            )
        return AgentError(f"the agent at {self.client.url} refused the request: {exc.message}")
