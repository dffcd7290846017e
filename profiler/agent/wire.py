"""The agent's wire format, shared by the server (on the device) and the client (on the workstation).

::

    GET  /v1/health    Authorization: Bearer TOKEN
         <── 200 {"status", "agent", "runtime", "busy", "fingerprint", "limits", "defaults"}
    POST /v1/measure   Authorization: Bearer TOKEN
                       Content-Type: application/octet-stream   (body: the ONNX bytes)
                       X-Vidlat-Request: {"key", "inputs": {name: [dims]}, "options": {threads, precision},
                                          "policy": {MeasurementPolicy fields}, "time_limit_s"}
         <── 200 {"measurement": Measurement.to_dict(), "elapsed_s"}
    any error <── 4xx/5xx {"error": CODE, "message": one line}

The ONNX bytes travel as the raw body (no base64), the small request description as one JSON header.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from profiler.errors import VidlatError, short_repr

API = "/v1"
HEALTH_PATH = f"{API}/health"
MEASURE_PATH = f"{API}/measure"
REQUEST_HEADER = "X-Vidlat-Request"
TOKEN_ENV = "VIDLAT_AGENT_TOKEN"
DEFAULT_PORT = 7300

MAX_LENGTH_DIGITS = 15  # a Content-Length of up to about 1 PB

# error codes -> HTTP status
ERRORS: dict[str, int] = {
    "bad_request": 400,  # the request description (shapes, policy, options) is wrong
    "invalid_model": 400,  # the ONNX bytes fail onnx.checker or do not match the inputs
    "unauthorized": 401,  # missing or wrong token; nothing was read or run
    "not_found": 404,
    "length_required": 411,  # no Content-Length (chunked uploads are not accepted)
    "too_large": 413,  # the upload is above the agent's --max-upload-mb
    "runtime_error": 500,  # the backend raised instead of returning a measurement
    "runtime_crashed": 500,  # the measuring process died (a runtime segfault, out of memory)
    "busy": 503,  # another measurement holds the device; retry later
    "time_limit": 504,  # the measurement ran past the time limit and was killed
}
# errors that belong to one workload: the client records the workload as failed and goes on
WORKLOAD_ERRORS = frozenset({"invalid_model", "too_large", "runtime_error", "runtime_crashed", "time_limit"})


class AgentError(VidlatError):
    """The agent refused a request for a reason no retry fixes (token, options, not an agent)."""


class AgentReplyError(Exception):
    """An error reply of the agent: its HTTP status, error code and one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class MeasureRequest:
    """What the agent needs beside the ONNX bytes to measure one workload."""

    key: str
    inputs: dict[str, tuple[int, ...]]
    options: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None

    def to_header(self) -> str:
        """The request as one line of JSON for the ``X-Vidlat-Request`` header."""
        data = {
            "key": self.key,
            "inputs": {name: list(shape) for name, shape in self.inputs.items()},
            "options": self.options,
            "policy": self.policy,
            "time_limit_s": self.time_limit_s,
        }
        return json.dumps(data, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_header(cls, text: str | None) -> "MeasureRequest":
        """Parse and check the header; a ``ValueError`` says what is wrong."""
        if not text:
            raise ValueError(f"missing header {REQUEST_HEADER} (JSON with key, inputs, options, policy)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"header {REQUEST_HEADER} is not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(data, dict):
            raise ValueError(f"header {REQUEST_HEADER} must be a JSON object")
        unknown = set(data) - {"key", "inputs", "options", "policy", "time_limit_s"}
        if unknown:
            raise ValueError(f"unknown request field(s) {', '.join(sorted(unknown))}; allowed: key, inputs, options, policy, time_limit_s")
        key = data.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("'key' must be a non-empty string")
        inputs = data.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError("'inputs' must map each input name to its shape, e.g. {\"x\": [1, 3, 8, 112, 112]}")
        shapes: dict[str, tuple[int, ...]] = {}
        for name, shape in inputs.items():
            if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise ValueError(f"input '{name}': shape must be a list of positive integers, got {short_repr(shape)}")
            shapes[name] = tuple(shape)
        options = data.get("options") or {}
        policy = data.get("policy") or {}
        if not isinstance(options, dict) or not isinstance(policy, dict):
            raise ValueError("'options' and 'policy' must be JSON objects")
        limit = data.get("time_limit_s")
        if limit is not None and (not isinstance(limit, int | float) or isinstance(limit, bool) or not limit > 0):
            raise ValueError(f"'time_limit_s' must be a positive number, got {short_repr(limit)}")
        return cls(key=key, inputs=shapes, options=options, policy=policy, time_limit_s=limit)


def content_length(text: str) -> int:
    """The value of a ``Content-Length`` header: ASCII digits only (``str.isdigit`` also takes '²'), at
    most ``MAX_LENGTH_DIGITS`` of them; ``ValueError`` saying so otherwise."""
    if not (0 < len(text) <= MAX_LENGTH_DIGITS and text.isascii() and text.isdigit()):
        raise ValueError(f"Content-Length must be 1 to {MAX_LENGTH_DIGITS} ASCII digits, got {short_repr(text)}")
    return int(text)


def error_body(code: str, message: str) -> dict[str, str]:
    """The JSON body of an error reply."""
    return {"error": code, "message": " ".join(message.split())}


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats replaced by ``None`` (strict JSON has no inf/nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
