"""Device files: what a device is and how to measure it, validated on load.

A device file is YAML::

    name: ort-cpu-1t
    description: ONNX Runtime on one CPU core; a stand-in for a mobile big core.
    backend: onnxruntime          # one of BACKEND_OPTIONS
    options: {intra_op_threads: 1}  # checked against that backend's options model
    measurement: {warmup_runs: 5}   # MeasurementPolicy
    hardware: {...}               # simulator backends only: SimulatorHardware

Every problem is a ``DeviceConfigError`` of one line that names the file, the field and what is
allowed.
"""

from __future__ import annotations

import math
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from profiler.errors import DeviceConfigError
from profiler.yaml_config import StrictConfig, describe_validation_error, first_error, read_yaml


# --------------------------------------------------------------------------- measurement policy
class MeasurementPolicy(StrictConfig):
    """How a workload is timed: warm-up, adaptive repetition, cold cache, contention check.

    Timed runs stop at ``max_runs``, or from ``min_runs`` on once the CI of the median is below
    ``max_rel_ci``, or as soon as they have taken ``max_seconds``: the time budget is a hard cap,
    checked after every timed run, and wins over ``min_runs`` (a slow workload keeps at least one
    run). Warm-up runs do not count towards it.

    With ``interleave`` a sweep times its workloads ``group_size`` at a time in rounds (see
    ``profiler.rounds``): the same limits hold per workload over all its rounds, the rounds go on
    from ``min_rounds`` until every median's CI is below ``max_rel_ci`` or ``max_rounds``, and the
    latency is the median over rounds, so a slow drift of the host falls on every workload alike.
    """

    warmup_runs: int = Field(5, ge=0, description="untimed runs before timing (not counted in max_seconds)")
    min_runs: int = Field(10, ge=3, description="timed runs before the CI stopping rule is checked (max_seconds can stop earlier)")
    max_runs: int = Field(200, ge=3, description="cap on timed runs")
    max_rel_ci: float = Field(0.02, gt=0, lt=1, description="stop when the 95% CI of the median, relative to it, is below this")
    max_seconds: float = Field(5.0, gt=0, allow_inf_nan=False,
                               description="hard cap on a workload's timed runs in seconds, checked after every run; wins over min_runs")
    cold_cache: bool = Field(False, description="flush a buffer larger than the last-level cache before each timed run")
    flush_mb: int = Field(64, ge=1, description="size of the cache-flush buffer in MiB")
    contention_ratio: float = Field(1.5, gt=1, description="median wall / thread CPU time above this marks a run contended")
    per_node: bool = Field(False, description="also record per-node times where the runtime gives them")
    interleave: bool = Field(True, description="time a sweep's workloads in interleaved rounds where the backend can hold "
                                                "several at once (ONNX Runtime, OpenVINO, torch on a CPU); else one after another")
    group_size: int = Field(16, ge=1, description="workloads loaded at once and interleaved (one runtime session each)")
    round_runs: int = Field(3, ge=1, description="timed runs of each workload per round, after one untimed run")
    min_rounds: int = Field(4, ge=1, description="rounds before the CI stopping rule is checked")
    max_rounds: int = Field(10, ge=1, description="cap on rounds")
    canary_tolerance: float = Field(0.05, ge=0, lt=1, allow_inf_nan=False,
                                    description="a round in which the canary workload drifts from its baseline by more than "
                                                "this (relative) or three times its own spread is flagged and re-run; 0: no canary")
    max_round_retries: int = Field(2, ge=0, description="re-runs of a flagged round before it is kept, flagged")

    @model_validator(mode="after")
    def _runs_ordered(self) -> "MeasurementPolicy":
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs ({self.max_runs}) must be >= min_runs ({self.min_runs})")
        if self.max_rounds < self.min_rounds:
            raise ValueError(f"max_rounds ({self.max_rounds}) must be >= min_rounds ({self.min_rounds})")
        return self


# --------------------------------------------------------------------------- backend options
class OnnxRuntimeOptions(StrictConfig):
    intra_op_threads: int = Field(1, ge=1)
    inter_op_threads: int = Field(1, ge=1)
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"
    execution_provider: Literal["cpu", "cuda", "tensorrt", "openvino"] = "cpu"


class OpenVinoOptions(StrictConfig):
    threads: int = Field(1, ge=1)
    # OpenVINO defaults to bf16 on CPUs that support it, so the precision is required.
    precision: Literal["f32", "f16", "bf16"]
    device: str = "CPU"
    performance_hint: Literal["latency", "throughput"] = "latency"


class TorchOptions(StrictConfig):
    threads: int = Field(1, ge=1, description="intra-op CPU threads")
    mode: Literal["eager", "torchscript", "compile"] = "eager"
    device: Literal["cpu", "cuda"] = Field("cpu", description="cuda: an NVIDIA GPU, timed with CUDA events")
    device_index: int = Field(0, ge=0, description="which GPU (cuda only)")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="weights and inputs are cast to this")
    cudnn_benchmark: bool = Field(True, description="cuda: let cuDNN pick the fastest convolution algorithm during warm-up")
    tf32: bool = Field(False, description="cuda: allow TF32 tensor cores for fp32 convolutions and matmuls")


class TensorRtOptions(StrictConfig):
    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    workspace_mb: int = Field(1024, ge=16)
    device_index: int = Field(0, ge=0)


class RemoteOptions(StrictConfig):
    url: str = Field(..., description="http(s)://HOST[:PORT] of the agent")
    token_env: str = Field("VIDLAT_AGENT_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    runtime: Literal["onnxruntime", "openvino", "tensorrt"] = "onnxruntime"
    threads: int = Field(1, ge=1)
    precision: Literal["f32", "f16", "bf16", "fp32", "fp16", "int8"] = "f32"
    timeout_s: float = Field(120.0, gt=0)

    @field_validator("url")
    @classmethod
    def _agent_url(cls, url: str) -> str:
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 (raises for a port outside 0-65535)
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
                or parts.query or parts.fragment or any(char.isspace() for char in url)):
            raise ValueError("must be http(s)://HOST[:PORT], the address `vidlat agent serve` prints")
        return url


class SimulatorOptions(StrictConfig):
    precision: Literal["int8", "int16", "fp16", "fp32"] = "int8"


BACKEND_OPTIONS: dict[str, type[StrictConfig]] = {
    "onnxruntime": OnnxRuntimeOptions,
    "openvino": OpenVinoOptions,
    "torch": TorchOptions,
    "tensorrt": TensorRtOptions,
    "remote": RemoteOptions,
    "simulator": SimulatorOptions,
}


# --------------------------------------------------------------------------- simulator hardware
def physical(low: float, high: float, unit: str = "") -> AfterValidator:
    """A hardware parameter must be finite and within ``[low, high]`` (a physical range): a clock of
    0, 5e-324 or .inf would divide by zero or give infinite latencies."""
    allowed = f"must be a finite number in [{low:g}, {high:g}]" + (f" {unit}" if unit else "")

    def check(value: float) -> float:
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(allowed)
        return value

    return AfterValidator(check)


Cycles = Annotated[int, physical(0, 1e9, "cycles")]
KiB = Annotated[float, physical(0.001, 1e7, "KB")]
Gbps = Annotated[float, physical(0.001, 1e5, "GB/s")]
Mhz = Annotated[float, physical(1, 5000, "MHz")]
Fraction = Annotated[float, physical(0.001, 1)]
Parallelism = Annotated[int, physical(1, 65536)]


class HostCpu(StrictConfig):
    """The host CPU that runs what the accelerator fabric cannot."""

    cores: Annotated[int, physical(1, 1024)]
    clock_ghz: Annotated[float, physical(0.01, 10, "GHz")]
    flops_per_cycle: Annotated[float, physical(0.01, 1024)] = Field(8.0, description="per core, for the op's precision")
    efficiency: Fraction = 0.3
    sync_us: Annotated[float, physical(0, 1e6, "us")] = Field(
        50.0, description="hand-over from the fabric to the host and back (cache flush, interrupt)")


class VectorUnit(StrictConfig):
    """Lanes for pooling, elementwise ops and activations."""

    lanes: Parallelism


class DspArrayHardware(StrictConfig):
    """Tiled DSP-array FPGA engine (the loop-tiling model of FPGA CNN accelerators)."""

    template: Literal["dsp_array"]
    dsps: Annotated[int, physical(1, 1e6)]
    clock_mhz: Mhz
    tm: Parallelism = Field(..., description="output-channel parallelism")
    tn: Parallelism = Field(..., description="input-channel parallelism")
    dsps_per_mac: dict[str, Annotated[float, physical(0.01, 64)]] = Field(
        default_factory=lambda: {"int8": 0.5, "int16": 1.0, "fp16": 2.0, "fp32": 5.0})
    input_buffer_kb: KiB
    weight_buffer_kb: KiB
    output_buffer_kb: KiB
    ddr_gbps: Gbps
    ddr_efficiency: Fraction = 0.7
    layer_overhead_cycles: Cycles = 2000
    conv3d: Literal["native", "decompose", "host"] = "decompose"
    softmax: Literal["native", "host"] = "host"
    vector: VectorUnit
    host: HostCpu


class SystolicHardware(StrictConfig):
    """Weight-stationary systolic array NPU."""

    template: Literal["systolic"]
    rows: Parallelism
    cols: Parallelism
    clock_mhz: Mhz
    ifmap_sram_kb: KiB
    filter_sram_kb: KiB
    ofmap_sram_kb: KiB
    dram_gbps: Gbps
    layer_overhead_cycles: Cycles = 500
    conv3d: Literal["native", "decompose", "host"] = "native"
    softmax: Literal["native", "host"] = "host"
    vector: VectorUnit
    host: HostCpu


SimulatorHardware = Annotated[Union[DspArrayHardware, SystolicHardware], Field(discriminator="template")]


# --------------------------------------------------------------------------- the device
class DeviceConfig(StrictConfig):
    """One device: its backend, backend options, measurement policy and (simulators) hardware."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = Field(..., min_length=10)
    backend: Literal["onnxruntime", "openvino", "torch", "tensorrt", "remote", "simulator"]
    options: dict[str, Any] = Field(default_factory=dict)
    measurement: MeasurementPolicy = Field(default_factory=MeasurementPolicy)
    hardware: SimulatorHardware | None = None
    source: str | None = Field(None, exclude=True, description="the file it was loaded from")

    @model_validator(mode="after")
    def _backend_parts(self) -> "DeviceConfig":
        if self.backend == "simulator" and self.hardware is None:
            raise ValueError("a simulator device needs a 'hardware' section")
        if self.backend != "simulator" and self.hardware is not None:
            raise ValueError(f"'hardware' is only for simulator devices, not backend '{self.backend}'")
        if isinstance(self.hardware, DspArrayHardware):
            try:
                precision = SimulatorOptions.model_validate(self.options).precision
            except ValidationError:
                return self  # parse_device reports the bad option, naming it
            per_mac = self.hardware.dsps_per_mac.get(precision)
            if per_mac is None:
                raise ValueError(f"hardware.dsps_per_mac has no entry for precision '{precision}'; has: {', '.join(self.hardware.dsps_per_mac)}")
            needed = self.hardware.tm * self.hardware.tn * per_mac
            if needed > self.hardware.dsps:
                raise ValueError(
                    f"tiles do not fit the DSP budget: tm x tn x dsps_per_mac = {self.hardware.tm} x "
                    f"{self.hardware.tn} x {per_mac} = {needed:g} > dsps = {self.hardware.dsps}"
                )
        return self

    @property
    def backend_options(self) -> Any:
        """The options validated against the backend's model (defaults filled in)."""
        return BACKEND_OPTIONS[self.backend].model_validate(self.options)

    def with_per_node(self) -> "DeviceConfig":
        """The same device with per-node times switched on."""
        return self.model_copy(update={"measurement": self.measurement.model_copy(update={"per_node": True})})


# --------------------------------------------------------------------------- loading
def parse_device(data: Any, source: str = "<device>") -> DeviceConfig:
    """Validate a parsed YAML mapping as a device; errors name ``source``."""
    if not isinstance(data, dict):
        raise DeviceConfigError(f"{source}: a device file must be a YAML mapping, got {type(data).__name__}")
    if "source" in data:  # set by the loader, never by the file
        error = {"type": "extra_forbidden", "loc": ("source",), "msg": "", "input": data["source"]}
        raise DeviceConfigError(f"{source}: {describe_validation_error(error, DeviceConfig)}")
    try:
        config = DeviceConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise DeviceConfigError(f"{source}: {describe_validation_error(first_error(exc), DeviceConfig)}") from None
    options_model = BACKEND_OPTIONS[config.backend]
    try:
        options_model.model_validate(config.options)
    except ValidationError as exc:
        error = first_error(exc)
        error = {**error, "loc": ("options", *error["loc"])}
        message = describe_validation_error(error, options_model)
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{'.'.join(map(str, error['loc']))}' for backend '{config.backend}'; allowed: {', '.join(sorted(options_model.model_fields))}"
        raise DeviceConfigError(f"{source}: {message}") from None
    return config


def load_device_file(path: str | Path) -> DeviceConfig:
    """Read and validate one device YAML file."""
    return parse_device(read_yaml(path, error=DeviceConfigError, what="device file"), str(path))
