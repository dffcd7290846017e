"""The shipped device files: one YAML per device (see profiler.device for the schema)."""

from pathlib import Path

DEVICE_DIR = Path(__file__).resolve().parent
