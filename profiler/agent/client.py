"""The workstation's side of the wire: a small urllib client for one agent.

::

    AgentClient(url, token).health()                  GET  /v1/health  ──> dict
    AgentClient(url, token).measure(onnx, request)    POST /v1/measure ──> dict
        link down (refused, reset, timeout, cut mid-reply) ──> TransientDeviceError (retry later)
        host name does not resolve, not an agent          ──> AgentError (fix the device file)
        agent error reply                                 ──> AgentReplyError(status, code, message)
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from profiler.agent.wire import HEALTH_PATH, MEASURE_PATH, REQUEST_HEADER, AgentError, AgentReplyError, MeasureRequest
from profiler.errors import TransientDeviceError


class AgentClient:
    """Talks to the agent at ``url`` with ``token``; ``timeout_s`` bounds every socket wait."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def health(self) -> dict[str, Any]:
        """The agent's status, fingerprint and limits."""
        return self._call("GET", HEALTH_PATH)

    def measure(self, onnx_bytes: bytes, request: MeasureRequest) -> dict[str, Any]:
        """Send one workload; the agent's reply (``measurement``, ``elapsed_s``)."""
        headers = {"Content-Type": "application/octet-stream", REQUEST_HEADER: request.to_header()}
        return self._call("POST", MEASURE_PATH, body=onnx_bytes, headers=headers)

    def _call(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "Connection": "close",
            **(headers or {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return self._json(response.read(), response.status)
        except urllib.error.HTTPError as exc:
            try:
                data = self._json(exc.read(), exc.code)
            except (OSError, http.client.HTTPException):
                raise self._link_down("the reply was cut off") from None
            finally:
                exc.close()
            raise AgentReplyError(exc.code, str(data.get("error", "unknown")), str(data.get("message", ""))) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):
                host = urllib.parse.urlsplit(self.url).hostname
                raise AgentError(f"cannot resolve the agent's host '{host}' ({exc.reason.strerror}); edit the url in the device file") from None
            raise self._link_down(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, RemoteDisconnected, IncompleteRead
            raise self._link_down(exc) from None

    def _link_down(self, why: object) -> TransientDeviceError:
        text = str(why) or type(why).__name__
        if isinstance(why, TimeoutError | socket.timeout):
            text = f"no answer within {self.timeout_s:g} s"
        return TransientDeviceError(f"the agent at {self.url} did not answer ({text}); is `vidlat agent serve` running there?")

    def _json(self, raw: bytes, status: int) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise AgentError(f"{self.url} answered HTTP {status} but not like a vidlat agent (no JSON); check the url and port")
        return data
