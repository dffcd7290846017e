"""TensorRT backend: an engine built from the ONNX workload on a local NVIDIA GPU.

::

    workload.onnx ──> OnnxParser ──> builder (precision flags, workspace) ──> engine
                         │ parse / build fails ──> Measurement.unsupported(parser errors)
                         v
    device buffers (pycuda), inputs copied once ──> measure_callable(execute_async_v3 + sync)

Needs the ``tensorrt`` extra (TensorRT 10 and pycuda) and a CUDA driver. GPU time is wall time:
the host thread sleeps while the GPU works, so the wall-versus-CPU contention check does not
apply and is switched off for this backend.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from profiler.backends.base import Availability, Backend, host_fingerprint
from profiler.device import DeviceConfig
from profiler.protocol import measure_callable
from profiler.workload import Measurement, Workload


class TensorRtBackend(Backend):
    """Builds and times a TensorRT engine per workload on GPU ``device_index``."""

    name: ClassVar[str] = "tensorrt"
    requires: ClassVar[tuple[str, ...]] = ("tensorrt", "pycuda")
    extra: ClassVar[str | None] = "tensorrt"

    @classmethod
    def availability(cls, device: DeviceConfig) -> Availability:
        status = super().availability(device)
        if not status.ok:
            return status
        try:
            import pycuda.driver as cuda

            cuda.init()
            count = cuda.Device.count()
        except Exception as exc:
            return Availability(False, f"no usable CUDA driver ({type(exc).__name__}: {exc})")
        index = device.backend_options.device_index
        if index >= count:
            return Availability(False, f"device_index {index} but this machine has {count} CUDA GPU(s)")
        return Availability(True)

    def __init__(self, device: DeviceConfig) -> None:
        super().__init__(device)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._trt = trt
        self._cuda = cuda
        cuda.init()
        self._gpu = cuda.Device(self.options.device_index)
        self._context = self._gpu.retain_primary_context()
        self._logger = trt.Logger(trt.Logger.ERROR)

    def fingerprint(self) -> dict[str, str]:
        return {
            **host_fingerprint(),
            "runtime": "tensorrt",
            "tensorrt": self._trt.__version__,
            "gpu": self._gpu.name(),
            "cuda_driver": str(self._cuda.get_driver_version()),
            "precision": self.options.precision,
        }

    def _build(self, onnx: bytes) -> tuple[Any, str]:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            return None, f"TensorRT ONNX parser: {' '.join(errors.split())}"[:500]
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.options.workspace_mb << 20)
        if self.options.precision in {"fp16", "int8"}:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            return None, f"TensorRT could not build an engine at {self.options.precision}"
        return trt.Runtime(self._logger).deserialize_cuda_engine(serialized), ""

    def measure(self, workload: Workload) -> Measurement:
        self._context.push()
        try:
            try:
                engine, problem = self._build(workload.onnx)
            except Exception as exc:
                return Measurement.unsupported(f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500])
            if engine is None:
                return Measurement.unsupported(problem)
            try:
                return self._time(engine, workload)
            except Exception as exc:
                return Measurement.failed(f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500])
        finally:
            self._context.pop()

    def _time(self, engine: Any, workload: Workload) -> Measurement:
        trt, cuda = self._trt, self._cuda
        context = engine.create_execution_context()
        inputs = workload.random_inputs()
        buffers = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                if name not in inputs:
                    return Measurement.failed(f"engine input '{name}' is not among the workload's {sorted(inputs)}")
                context.set_input_shape(name, inputs[name].shape)
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(context.get_tensor_shape(name))
            memory = cuda.mem_alloc(max(int(np.prod(shape)) * dtype.itemsize, 1))
            buffers.append(memory)
            if name in inputs:
                cuda.memcpy_htod(memory, np.ascontiguousarray(inputs[name].astype(dtype)))
            context.set_tensor_address(name, int(memory))
        stream = cuda.Stream()

        def run() -> None:
            context.execute_async_v3(stream.handle)
            stream.synchronize()

        measurement = measure_callable(run, self.policy)
        measurement.contended = False
        measurement.extra["timing"] = "wall time of execute_async_v3 + stream sync (GPU)"
        del buffers
        return measurement
