"""Measuring core of vidlat: device configs, backends, the measurement protocol and the store.

This package imports no torch at module level, so the remote agent can run on a device that only
has a runtime (ONNX Runtime, OpenVINO, TensorRT).
"""

__version__ = "0.1.0"
