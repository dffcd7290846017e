"""The vidlat device agent: a small HTTP service that measures workloads on the device it runs on.

::

    workstation                                          device (no torch: profiler core + its runtime)
    ───────────                                          ──────────────────────────────────────────────
    vidlat profile --device rpi4-ort-remote              vidlat agent serve --runtime onnxruntime
      └ RemoteBackend ── AgentClient ──HTTP + token──>     └ AgentServer (auth, limits, one at a time)
                                                              └ MeasureWorker (killable process)
                                                                 └ create_backend(runtime device).measure

Modules: ``wire`` (paths, headers, error codes), ``server``, ``worker``, ``runtime`` (runtime name to
``DeviceConfig``), ``client``, ``probe`` (the self-test workload), ``cli`` (``serve``).
"""

from profiler.agent.client import AgentClient
from profiler.agent.server import AgentConfig, AgentServer
from profiler.agent.wire import AgentError, AgentReplyError, MeasureRequest

__all__ = ["AgentClient", "AgentConfig", "AgentError", "AgentReplyError", "AgentServer", "MeasureRequest"]
