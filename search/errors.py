"""Typed errors of the search package; the CLI prints each as one ``error: ...`` line."""

from profiler.errors import VidlatError


class BlockSpecError(VidlatError):
    """A block string is unknown or malformed, or a block cannot take the shapes asked of it."""


class ArchSpecError(VidlatError):
    """An arch spec file is missing, unreadable or inconsistent."""


class SearchSpaceError(VidlatError):
    """A search space name or file is unknown or does not match the schema."""


class ExportError(VidlatError):
    """An ONNX export failed its checks (checker, ONNX Runtime against torch)."""


class WeightsError(VidlatError):
    """A weights file is unreadable, not a state_dict of tensors, or does not fit the arch."""
