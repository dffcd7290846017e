"""The device catalogue: shipped device files by name, or a user's own YAML by path."""

from __future__ import annotations

from pathlib import Path

from device_configs import DEVICE_DIR
from profiler.device import DeviceConfig, load_device_file
from profiler.errors import UnknownDeviceError

DEFAULT_DEVICE = "ort-cpu-1t"


def shipped_device_files() -> dict[str, Path]:
    """Shipped device names mapped to their files, sorted by name."""
    return {path.stem: path for path in sorted(DEVICE_DIR.glob("*.yaml"))}


def resolve_device(name_or_path: str) -> DeviceConfig:
    """Load a shipped device by name, or a user's device file by path (anything ending .yaml/.yml)."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        return load_device_file(candidate)
    files = shipped_device_files()
    if name_or_path not in files:
        raise UnknownDeviceError(
            f"unknown device '{name_or_path}'; shipped devices: {', '.join(files)} "
            "(or give the path to your own .yaml file)"
        )
    return load_device_file(files[name_or_path])


def load_catalog() -> list[DeviceConfig]:
    """Every shipped device, validated."""
    return [load_device_file(path) for path in shipped_device_files().values()]
