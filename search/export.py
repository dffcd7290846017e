"""ONNX export of blocks and whole models, cached by content, and the verified ``export_arch``.

::

    nn.Module + input shape --content hash (structure, weights, shape, opset)--> cache hit? -> bytes
                            \\-- torch.onnx.export(dynamo=False) --> bytes --> memory + disk cache

    ArchSpec --build_model--> module --module_to_onnx(dynamic batch)--> onnx.checker
             --> ONNX Runtime vs torch on a random input (max abs diff <= tolerance)
             --> metadata (vidlat.arch = the arch spec as JSON, plus caller's ``metadata``) --> file
    file --read_arch--> ArchSpec (from vidlat.arch; a YAML/JSON arch file is loaded as it is)

The legacy (TorchScript) exporter is used: torch 2.13's dynamo exporter took ~0.6 s per block
against ~0.03 s. The disk cache lives in ``$VIDLAT_CACHE_DIR`` or the user cache dir.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn as nn
from platformdirs import user_cache_dir

from search.arch import ArchSpec, build_model, load_arch
from search.errors import ExportError
from search.flops import count_cost

ARCH_METADATA = "vidlat.arch"  # the arch spec as JSON, in every exported model (read back by ``read_arch``)
INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 18
MAX_ABS_DIFF = 1e-4
_MEMORY_CACHE: OrderedDict[str, bytes] = OrderedDict()
_MEMORY_CACHE_SIZE = 512


def cache_dir() -> Path:
    """Where exported ONNX files are cached: ``$VIDLAT_CACHE_DIR`` or ``<user cache>/vidlat/onnx``."""
    return Path(os.environ.get("VIDLAT_CACHE_DIR") or Path(user_cache_dir("vidlat")) / "onnx")


def content_hash(module: nn.Module, input_shape: tuple[int, ...], *, dynamic_batch: bool, opset: int) -> str:
    """sha256 of the module's structure, plain attributes and weights, the input shape, the export options
    and the torch version."""
    digest = hashlib.sha256()
    digest.update(repr((str(module), tuple(input_shape), dynamic_batch, opset, torch.__version__)).encode())
    for name, sub in module.named_modules():  # plain attributes the repr may not show (heads, shift fold, ...)
        fields = sorted((key, value) for key, value in vars(sub).items()
                        if not key.startswith("_") and isinstance(value, (bool, int, float, str, tuple)))
        digest.update(repr((name, type(sub).__qualname__, fields)).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch with ``count`` intra-op threads, restoring the previous setting after.

    Tracing runs real forward passes; on a shared, busy machine one thread is several times faster
    than spinning several (the default space exports in ~13 s instead of ~50 s here).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _full_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *input_shape) if len(input_shape) == 4 else tuple(input_shape)


def _export(module: nn.Module, shape: tuple[int, ...], *, dynamic_batch: bool, opset: int) -> bytes:
    was_training = module.training
    module.eval()
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad(), torch_threads(1):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(shape),), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes)
    module.train(was_training)
    return buffer.getvalue()


def module_to_onnx(module: nn.Module, input_shape: tuple[int, ...], *, dynamic_batch: bool = False,
                   opset: int = DEFAULT_OPSET) -> bytes:
    """ONNX bytes of ``module`` (eval mode) for one float32 input named ``input``.

    ``input_shape`` is (C, T, H, W) (batch 1 is prepended) or the full (N, C, T, H, W); with
    ``dynamic_batch`` the first axis of input and output is named ``batch``. Cached by content in
    memory and on disk, so a block built with the same weights is exported once.
    """
    shape = _full_shape(input_shape)
    key = content_hash(module, shape, dynamic_batch=dynamic_batch, opset=opset)
    if key in _MEMORY_CACHE:
        _MEMORY_CACHE.move_to_end(key)
        return _MEMORY_CACHE[key]
    path = cache_dir() / f"{key[:32]}.onnx"
    try:
        data = path.read_bytes()
    except OSError:
        data = _export(module, shape, dynamic_batch=dynamic_batch, opset=opset)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(data)
            temporary.replace(path)
        except OSError:
            pass  # a read-only cache only costs a re-export next time
    _MEMORY_CACHE[key] = data
    if len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
        _MEMORY_CACHE.popitem(last=False)
    return data


def onnx_max_abs_diff(module: nn.Module, data: bytes, input_shape: tuple[int, ...], *, seed: int = 0) -> float:
    """Max |ONNX Runtime - torch| of the output on a seeded standard-normal input."""
    import onnxruntime as ort

    x = np.random.default_rng(seed).standard_normal(_full_shape(input_shape), dtype=np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    module.eval()
    with torch.no_grad(), torch_threads(1):
        want = module(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise ExportError(f"ONNX output shape {got.shape} differs from torch {want.shape}")
    return float(np.max(np.abs(got - want)))


def read_arch(path: str | Path) -> ArchSpec:
    """An ``ArchSpec`` from a YAML/JSON arch file or from the metadata ``export_arch`` wrote into an ONNX model."""
    path = Path(path)
    if path.suffix != ".onnx":
        return load_arch(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ExportError(f"{path}: cannot read the ONNX model ({type(exc).__name__})") from None
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    if ARCH_METADATA not in metadata:
        raise ExportError(f"{path}: not an exported vidlat model (no '{ARCH_METADATA}' metadata); export it with `vidlat export`")
    try:
        data = json.loads(metadata[ARCH_METADATA])
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; RecursionError: nested too deep
        raise ExportError(f"{path}: its '{ARCH_METADATA}' metadata is not an arch spec in JSON "
                          f"({getattr(exc, 'msg', type(exc).__name__)}); re-export the model with `vidlat export`") from None
    return ArchSpec.from_dict(data, source=f"{path} (metadata '{ARCH_METADATA}')")


@dataclass(frozen=True)
class ExportReport:
    """What ``export_arch`` wrote and how it checked out."""

    path: Path
    opset: int
    input_shape: tuple[int | str, ...]  # ("batch", C, T, H, W)
    output_shape: tuple[int | str, ...]  # ("batch", classes)
    max_abs_diff: float
    batch_checked: int
    macs: int
    params: int
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)


def export_arch(arch: ArchSpec, out_path: str | Path, *, metadata: dict[str, Any] | None = None,
                opset: int = DEFAULT_OPSET, batch_check: int = 2, tolerance: float = MAX_ABS_DIFF,
                model: nn.Module | None = None) -> ExportReport:
    """Export ``arch`` (or its trained ``model``) to ``out_path`` and verify it.

    The input is the arch's deployment shape with a dynamic batch axis; the file passes
    ``onnx.checker``; ONNX Runtime's output on a random batch of ``batch_check`` clips matches torch
    within ``tolerance`` (else ``ExportError``). Metadata: ``vidlat.arch`` (the arch spec as JSON),
    ``vidlat.input_shape``, plus every entry of ``metadata`` (e.g. ``predicted_latency_ms``
    from a predictor; non-strings are stored as JSON).
    """
    module = model if model is not None else build_model(arch)
    module.eval()
    data = module_to_onnx(module, arch.input_shape, dynamic_batch=True, opset=opset)
    proto = onnx.load_from_string(data)
    entries = {ARCH_METADATA: json.dumps(arch.to_dict(), sort_keys=True),
               "vidlat.input_shape": "x".join(str(size) for size in arch.input_shape)}
    for key, value in (metadata or {}).items():
        entries[str(key)] = value if isinstance(value, str) else json.dumps(value)
    del proto.metadata_props[:]
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported model fails onnx.checker: {str(exc).splitlines()[0]}") from exc
    data = proto.SerializeToString()
    shape = (batch_check, *arch.input_shape)
    diff = onnx_max_abs_diff(module, data, shape)
    if not diff <= tolerance:
        raise ExportError(f"ONNX Runtime output differs from torch by {diff:.3g} (allowed {tolerance:g})")
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {out_path} ({exc})") from None
    cost = count_cost(module, (1, *arch.input_shape))
    return ExportReport(path=out_path, opset=opset, input_shape=("batch", *arch.input_shape),
                        output_shape=("batch", *cost.output_shape[1:]),
                        max_abs_diff=diff, batch_checked=batch_check, macs=cost.macs, params=cost.params,
                        size_bytes=len(data), metadata=entries)
