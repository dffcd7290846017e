"""Typed errors. The CLI turns every ``VidlatError`` into one line on stderr and exit code 2."""


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
