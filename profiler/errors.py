"""Typed errors. The CLI turns every ``VidlatError`` into one line on stderr and exit code 2.

A message quotes a user's value with ``short_repr`` (and a user's text with ``clip``), so a huge
value in a hostile file neither floods the line nor takes long to print.
"""

import reprlib
from typing import Any

MAX_REPR = 80  # characters of a user's value quoted in a message

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, MAX_REPR, MAX_REPR, MAX_REPR


def clip(text: str, limit: int = MAX_REPR) -> str:
    """``text`` cut to ``limit`` characters (the cut marked with "...")."""
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def short_repr(value: Any, limit: int = MAX_REPR) -> str:
    """``repr(value)`` cut to ``limit`` characters, without walking all of a huge value."""
    return clip(_REPR.repr(value), limit)


class VidlatError(Exception):
    """A user-facing error: the message says what was wrong and what is allowed."""


class DeviceConfigError(VidlatError):
    """A device file is missing, unreadable or does not match the schema."""


class UnknownDeviceError(VidlatError):
    """A device name is neither a shipped device nor a path to a YAML file."""


class BackendUnavailableError(VidlatError):
    """The runtime a device needs is not installed or not usable here."""


class StoreError(VidlatError):
    """The latency store cannot be opened or is not a vidlat store."""


class WorkloadError(VidlatError):
    """A workload (ONNX model plus inputs) is malformed."""


class TransientDeviceError(VidlatError):
    """The device did not answer (agent down, link dropped): retry the workload later, store nothing."""
