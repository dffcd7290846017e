"""vidlat: hardware-aware latency toolkit for video neural networks (CLI and end-to-end pipeline)."""

from profiler import __version__

__all__ = ["__version__"]
