"""A user's ONNX file as a ``Workload``: the file is hostile, every problem is one ``WorkloadError`` line.

::

    MODEL.onnx --read, onnx.load--> graph inputs (not initialisers; float32 only; dynamic dims as 1)
        --> Workload(key "onnx|<stem>|<sha256 of the bytes, 12 hex>", onnx=bytes, inputs, spec op "onnx")
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx

from profiler.errors import WorkloadError
from profiler.workload import Workload


def onnx_file_workload(path: str | Path) -> Workload:
    """A workload of one ONNX file: key ``onnx|<stem>|<hash>``, inputs from the graph (dynamic dims as 1)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read the ONNX file ({exc.strerror or exc})") from None
    except Exception as exc:
        raise WorkloadError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    initializers = {item.name for item in model.graph.initializer}
    inputs: dict[str, tuple[int, ...]] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise WorkloadError(f"{path}: input '{value.name}' is not float32; vidlat feeds float32 inputs")
        inputs[value.name] = tuple(dim.dim_value if dim.dim_value > 0 else 1 for dim in tensor.shape.dim)
    if not inputs:
        raise WorkloadError(f"{path}: the model has no graph inputs to feed")
    spec = {"op": "onnx", "file": path.name, "nodes": len(model.graph.node), "inputs": {k: list(v) for k, v in inputs.items()}}
    return Workload(key=f"onnx|{path.stem}|{hashlib.sha256(data).hexdigest()[:12]}", onnx=data, inputs=inputs, spec=spec)


__all__ = ["onnx_file_workload"]
