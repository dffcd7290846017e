"""The agent's HTTP server: token check, limits, one measurement at a time.

::

    request ──> token ok? ──no──> 401 (nothing read, nothing run)
                  │ yes
                  v
      Content-Length ASCII digits? ──no──> 400;  <= max upload? ──no──> 413 (body not read)
                  │ yes
                  v
      X-Vidlat-Request valid (options, policy), ONNX passes onnx.checker, inputs match the
      graph's (names, rank, static dims) and fit MAX_INPUT_BYTES? ──no──> 400 (nothing allocated)
                  │ yes
                  v
      device lock free within busy_wait_s? ──no──> 503 busy (Retry-After)
                  │ yes
                  v
      MeasureWorker: create_backend(runtime device).measure(workload) ──> 200 {"measurement"}
                  │ ran past time limit ──> 504 (worker killed)   │ worker died ──> 500 runtime_crashed

Clients that send ``Expect: 100-continue`` (curl does for large bodies) get the 401/413 before
they upload anything.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from profiler import __version__
from profiler.agent.runtime import runtime_device
from profiler.agent.wire import (
    ERRORS, HEALTH_PATH, MEASURE_PATH, REQUEST_HEADER, MeasureRequest, content_length, error_body, jsonable,
)
from profiler.agent.worker import MeasureFailed, MeasureTimeout, MeasureWorker, WorkerCrashed
from profiler.backends import create_backend
from profiler.errors import VidlatError, short_repr
from profiler.workload import Workload

READ_CHUNK = 1 << 20
MAX_INPUT_BYTES = 1 << 30  # all input tensors of one workload together (a 1x3x16x224x224 clip is 9.6 MB)


@dataclass(frozen=True)
class AgentConfig:
    """How the agent runs: where it listens, its runtime and defaults, and its limits."""

    host: str = "127.0.0.1"
    port: int = 7300
    runtime: str = "onnxruntime"
    threads: int = 1
    precision: str = "f32"
    max_upload_mb: float = 64.0
    time_limit_s: float = 300.0
    busy_wait_s: float = 2.0
    socket_timeout_s: float = 60.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_model(onnx_bytes: bytes, inputs: dict[str, tuple[int, ...]]) -> None:
    """``onnx.checker`` on the bytes, and the graph's inputs against the request's shapes (names, rank,
    static dims, at most ``MAX_INPUT_BYTES`` in all); ``ValueError`` if not. Nothing is allocated for the inputs."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    try:
        model = onnx.load_from_string(onnx_bytes)
        onnx.checker.check_model(model)
    except Exception as exc:  # DecodeError, ValidationError: both mean "not a valid model"
        raise ValueError(f"not a valid ONNX model: {' '.join(str(exc).split())[:300] or type(exc).__name__}") from None
    initializers = {item.name for item in model.graph.initializer}
    graph_inputs = {item.name: item for item in model.graph.input if item.name not in initializers}
    if set(graph_inputs) != set(inputs):
        raise ValueError(f"the model's inputs are {sorted(graph_inputs)} but the request gives shapes for {sorted(inputs)}")
    total = 0
    for name, shape in inputs.items():
        tensor = graph_inputs[name].type.tensor_type
        dims = [dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None for dim in tensor.shape.dim]
        if tensor.HasField("shape") and len(dims) != len(shape):
            raise ValueError(f"input '{name}': the model takes rank {len(dims)} but the request gives shape {list(shape)}")
        fixed = [f"dim {axis} is {size}" for axis, (size, given) in enumerate(zip(dims, shape)) if size not in (None, given)]
        if fixed:
            raise ValueError(f"input '{name}': shape {list(shape)} does not fit the model ({', '.join(fixed)})")
        try:
            itemsize = tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
        except (KeyError, TypeError, ValueError):
            itemsize = 8
        total += math.prod(shape) * itemsize
    if total > MAX_INPUT_BYTES:
        shapes = {name: list(shape) for name, shape in inputs.items()}
        raise ValueError(f"the input shapes {short_repr(shapes)} need {total} bytes; "
                         f"the agent allocates at most {MAX_INPUT_BYTES} bytes of inputs per workload")


class AgentServer(ThreadingHTTPServer):
    """A threading HTTP server holding the agent's token, fingerprint, device lock and worker."""

    daemon_threads = True

    def __init__(self, config: AgentConfig, token: str) -> None:
        if not token:
            raise VidlatError("the agent's token is empty; set VIDLAT_AGENT_TOKEN to a non-empty value or unset it")
        self.config = config
        self.token = token
        default = runtime_device(config.runtime, threads=config.threads, precision=config.precision)
        probe = create_backend(default)  # fails here, clearly, if the runtime is missing
        try:
            self.fingerprint = {**probe.fingerprint(), "agent": __version__}
        finally:
            probe.close()
        self.device_lock = threading.Lock()
        self.worker = MeasureWorker(config.runtime)
        try:
            super().__init__((config.host, config.port), AgentHandler)
        except OSError as exc:
            raise VidlatError(f"cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); pick another --port or --host") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "agent": __version__,
            "runtime": self.config.runtime,
            "busy": self.device_lock.locked(),
            "fingerprint": self.fingerprint,
            "limits": {
                "max_upload_bytes": self.config.max_upload_bytes,
                "max_input_bytes": MAX_INPUT_BYTES,
                "time_limit_s": self.config.time_limit_s,
                "busy_wait_s": self.config.busy_wait_s,
            },
            "defaults": {"threads": self.config.threads, "precision": self.config.precision},
        }

    def measure(self, request: MeasureRequest, onnx_bytes: bytes) -> tuple[int, dict[str, Any]]:
        """Check and measure one workload; returns the HTTP status and the JSON body."""
        options = request.options
        unknown = set(options) - {"threads", "precision"}
        if unknown:
            return ERRORS["bad_request"], error_body("bad_request", f"unknown option(s) {', '.join(sorted(unknown))}; allowed: threads, precision")
        try:
            device = runtime_device(
                self.config.runtime,
                threads=options.get("threads", self.config.threads),
                precision=options.get("precision", self.config.precision),
                policy=request.policy,
            )
        except VidlatError as exc:
            return ERRORS["bad_request"], error_body("bad_request", str(exc))
        try:
            check_model(onnx_bytes, request.inputs)
        except ValueError as exc:
            return ERRORS["invalid_model"], error_body("invalid_model", str(exc))
        limit = min(request.time_limit_s or self.config.time_limit_s, self.config.time_limit_s)
        workload = Workload(key=request.key, onnx=onnx_bytes, inputs=request.inputs)
        if not self.device_lock.acquire(timeout=self.config.busy_wait_s):
            return ERRORS["busy"], error_body("busy", "the agent is measuring another workload; retry later")
        try:
            measurement, elapsed = self.worker.measure(device, workload, limit)
        except MeasureTimeout as exc:
            return ERRORS["time_limit"], error_body("time_limit", str(exc))
        except WorkerCrashed as exc:
            return ERRORS["runtime_crashed"], error_body("runtime_crashed", str(exc))
        except MeasureFailed as exc:
            return ERRORS["runtime_error"], error_body("runtime_error", str(exc))
        finally:
            self.device_lock.release()
        return 200, {"measurement": jsonable(measurement.to_dict()), "elapsed_s": round(elapsed, 4)}

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line instead of a traceback when a client goes away mid-reply (a killed sweep)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            sys.stderr.write(f"{client_address[0]}: connection dropped ({type(error).__name__}: {error})\n")
        else:
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.worker.stop()


class AgentHandler(BaseHTTPRequestHandler):
    """One HTTP request: authenticate first, then route; every reply is JSON."""

    server: AgentServer
    protocol_version = "HTTP/1.1"
    server_version = f"vidlat-agent/{__version__}"

    def setup(self) -> None:
        self.timeout = self.server.config.socket_timeout_s
        super().setup()

    # ------------------------------------------------------------------ replies
    def _reply(self, status: int, body: dict[str, Any], *, close: bool = False, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: str, message: str, **kwargs: Any) -> None:
        self._reply(ERRORS[code], error_body(code, message), **kwargs)

    # ------------------------------------------------------------------ checks before the body
    def _refusal(self) -> tuple[str, str, dict[str, str]] | None:
        """Why this request is refused before its body is read (token, length), or ``None``."""
        given = self.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return "unauthorized", "missing token: send 'Authorization: Bearer <token>' (the token the agent printed at start, or its VIDLAT_AGENT_TOKEN)", {"WWW-Authenticate": "Bearer"}
        if not hmac.compare_digest(given[len("Bearer "):].strip().encode(), self.server.token.encode()):
            return "unauthorized", "wrong token", {"WWW-Authenticate": "Bearer"}
        if self.command == "POST":
            if self.path != MEASURE_PATH:
                return "not_found", f"no endpoint POST {self.path}; the agent serves GET {HEALTH_PATH} and POST {MEASURE_PATH}", {}
            if self.headers.get("Content-Length") is None:
                return "length_required", "send the ONNX bytes with a Content-Length header (chunked uploads are not accepted)", {}
            try:
                length = content_length(self.headers.get("Content-Length"))
            except ValueError as exc:
                return "bad_request", str(exc), {}
            limit = self.server.config.max_upload_bytes
            if length > limit:
                return "too_large", f"upload of {length} bytes is above the agent's limit of {limit} bytes (start it with a larger --max-upload-mb)", {}
        return None

    def handle_expect_100(self) -> bool:
        refusal = self._refusal()
        if refusal is not None:
            code, message, headers = refusal
            self._error(code, message, close=True, headers=headers)
            return False
        return super().handle_expect_100()

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            code, message, headers = refusal
            self._error(code, message, headers=headers)
        elif self.path == HEALTH_PATH:
            self._reply(200, self.server.health())
        else:
            self._error("not_found", f"no endpoint GET {self.path}; the agent serves GET {HEALTH_PATH} and POST {MEASURE_PATH}")

    def do_POST(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            code, message, headers = refusal
            self._error(code, message, close=True, headers=headers)  # the body is not read: close
            return
        length = content_length(self.headers["Content-Length"])
        try:
            request = MeasureRequest.from_header(self.headers.get(REQUEST_HEADER))
        except ValueError as exc:
            self._error("bad_request", str(exc), close=True)
            return
        body = self._read_body(length)
        if body is None:
            return
        status, reply = self.server.measure(request, body)
        headers = {"Retry-After": str(max(1, round(self.server.config.busy_wait_s)))} if status == ERRORS["busy"] else None
        self._reply(status, reply, headers=headers)
        self.log_message('measured "%s": %s', request.key, reply.get("measurement", {}).get("status", reply.get("error")))

    def _read_body(self, length: int) -> bytes | None:
        parts: list[bytes] = []
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, READ_CHUNK))
            if not chunk:  # the client went away mid-upload
                self.close_connection = True
                return None
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def do_PUT(self) -> None:
        self._error("not_found", f"the agent serves GET {HEALTH_PATH} and POST {MEASURE_PATH}")

    do_DELETE = do_PUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {format % args}\n")
