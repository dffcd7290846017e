"""``vidlat agent``: the device agent's commands (they live in ``profiler.agent.cli`` so that the
agent also runs as ``python -m profiler.agent`` on a device with only the profiler core)."""

from profiler.agent.cli import agent

__all__ = ["agent"]
