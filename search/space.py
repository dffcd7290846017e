"""Search spaces: a YAML of stem, stages and candidates -> layer slots, workloads, archs.

::

    spaces/default.yaml --load_space--> SearchSpace
        .layers            one LayerSlot per searchable layer: stage, in/out channels, stride,
                           input shape (C, T, H, W) at the deployment shape, candidate blocks
                           ("skip" is added on layers beyond a stage's min_depth)
        .workloads()       LayerWorkload(layer, block, Workload) for every (layer, candidate)
        .fixed_workloads() stem and head
        .sample(seed) / .make_arch(blocks) / .reference_archs() -> ArchSpec
        .network_workload(arch) -> the whole network as one Workload
        .profiling_workloads(networks=N) -> all of the above that ``vidlat profile`` measures

A stage's first layer takes the stage stride and channel change; the others keep the shape.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import Field, PositiveInt, ValidationError

from profiler.errors import VidlatError, short_repr
from profiler.workload import Workload
from profiler.yaml_config import StrictConfig, describe_validation_error, first_error, parse_yaml, read_yaml
from search.arch import ArchSpec, load_arch, stem_output_shape
from search.blocks import check_shapes, output_shape, parse_block
from search.errors import BlockSpecError, SearchSpaceError
from search.workloads import block_workload, network_workload, stem_and_head

SKIP = "skip"


class StemConfig(StrictConfig):
    channels: int = Field(..., ge=1)
    temporal_kernel: int = Field(5, ge=1)


class HeadConfig(StrictConfig):
    channels: int = Field(..., ge=1)


class StageConfig(StrictConfig):
    channels: int = Field(..., ge=1)
    stride: tuple[PositiveInt, PositiveInt, PositiveInt] = (1, 2, 2)
    depth: int = Field(..., ge=1, description="searchable layers in the stage")
    min_depth: int = Field(1, ge=1, description="layers that cannot be skipped")
    candidates: list[str] = Field(..., min_length=1)


class SpaceConfig(StrictConfig):
    name: str
    description: str = ""
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt]
    num_classes: int = Field(..., ge=1)
    stem: StemConfig
    stages: list[StageConfig] = Field(..., min_length=1)
    head: HeadConfig
    references: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True)
class LayerSlot:
    """One searchable layer at the deployment shape."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: tuple[int, int, int]
    input_shape: tuple[int, int, int, int]
    candidates: list[str]

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return output_shape(self.input_shape, out_channels=self.out_channels, stride=self.stride)


@dataclass(frozen=True)
class LayerWorkload:
    """A candidate of a layer and its workload (the same workload may serve several layers)."""

    layer: int
    block: str
    workload: Workload


class SearchSpace:
    """A loaded, checked search space (see module docstring)."""

    def __init__(self, config: SpaceConfig, *, source: str) -> None:
        self.config = config
        self.source = source
        self.name = config.name
        self.description = config.description
        self.input_shape = tuple(config.input_shape)
        self.num_classes = config.num_classes
        self.stem = config.stem.model_dump()
        self.head = config.head.model_dump()
        self.layers = self._slots()

    def _slots(self) -> list[LayerSlot]:
        slots = []
        shape = stem_output_shape(self.input_shape, self.stem["channels"])
        for stage_index, stage in enumerate(self.config.stages):
            if stage.min_depth > stage.depth:
                raise SearchSpaceError(f"{self.source}: stage {stage_index}: min_depth {stage.min_depth} > depth {stage.depth}")
            for position in range(stage.depth):
                first = position == 0
                stride = tuple(stage.stride) if first else (1, 1, 1)
                candidates = [str(self._parse(block, stage_index)) for block in stage.candidates]
                if position >= stage.min_depth and SKIP not in candidates:
                    candidates.append(SKIP)
                if len(set(candidates)) != len(candidates):
                    raise SearchSpaceError(f"{self.source}: stage {stage_index} lists a candidate twice: {short_repr(candidates)}")
                slot = LayerSlot(len(slots), stage_index, shape[0], stage.channels, stride, shape, candidates)
                for block in candidates:
                    try:
                        check_shapes(parse_block(block), in_channels=slot.in_channels, out_channels=slot.out_channels,
                                     stride=stride)
                    except BlockSpecError as exc:
                        raise SearchSpaceError(f"{self.source}: layer {slot.index}: {exc}") from exc
                slots.append(slot)
                shape = slot.output_shape
        return slots

    def _parse(self, block: str, stage: int):
        try:
            return parse_block(block)
        except BlockSpecError as exc:
            raise SearchSpaceError(f"{self.source}: stage {stage}: {exc}") from exc

    def size(self) -> int:
        """Number of distinct archs (product of candidates per layer)."""
        return math.prod(len(slot.candidates) for slot in self.layers)

    def workloads(self) -> list[LayerWorkload]:
        """Every (layer, candidate) with its workload, layer by layer in candidate order."""
        return [LayerWorkload(slot.index, block, block_workload(block, input_shape=slot.input_shape,
                                                                  out_channels=slot.out_channels, stride=slot.stride))
                for slot in self.layers for block in slot.candidates]

    def unique_workloads(self) -> list[Workload]:
        """Distinct block workloads, then stem and head: what a profiling sweep measures."""
        seen: dict[str, Workload] = {}
        for item in self.workloads():
            seen.setdefault(item.workload.key, item.workload)
        return list(seen.values()) + self.fixed_workloads()

    def fixed_workloads(self) -> list[Workload]:
        """Stem (spec op "stem") and head (spec op "head") at the deployment shape."""
        return stem_and_head(self, self.input_shape, self.layers[-1].output_shape)

    def make_arch(self, blocks: Sequence[str], *, name: str = "") -> ArchSpec:
        """The arch choosing ``blocks[i]`` at layer i; every block must be a candidate of its layer."""
        if len(blocks) != len(self.layers):
            raise SearchSpaceError(f"space '{self.name}' has {len(self.layers)} layers, got {len(blocks)} blocks")
        chosen = []
        for slot, block in zip(self.layers, blocks):
            canonical = str(parse_block(block))
            if canonical not in slot.candidates:
                raise SearchSpaceError(f"layer {slot.index}: '{block}' is not a candidate; candidates: {', '.join(slot.candidates)}")
            chosen.append(canonical)
        return ArchSpec(space=self.name, input_shape=self.input_shape, stem=dict(self.stem), layers=chosen,
                        channels=[slot.out_channels for slot in self.layers],
                        strides=[slot.stride for slot in self.layers], head=dict(self.head),
                        num_classes=self.num_classes, name=name)

    def check_arch(self, arch: ArchSpec) -> list[str]:
        """The arch's canonical layers, after checking it is an arch of this space at its deployment shape."""
        expected = self.make_arch(arch.layers)
        for name in ("input_shape", "channels", "strides", "stem", "head", "num_classes"):
            if getattr(expected, name) != getattr(arch, name):
                raise SearchSpaceError(
                    f"arch's {name} {getattr(arch, name)} differs from space '{self.name}' ({getattr(expected, name)}); "
                    "its latency tables are measured at the space's shapes"
                )
        return expected.layers

    def sample(self, seed: int) -> ArchSpec:
        """A uniformly random arch; the same seed gives the same arch."""
        rng = random.Random(seed)
        return self.make_arch([rng.choice(slot.candidates) for slot in self.layers], name=f"{self.name}-seed{seed}")

    def reference_archs(self) -> dict[str, ArchSpec]:
        """Known designs expressed in this space (e.g. "x3d-xs", "r2p1d"); errors name the file and reference."""
        archs = {}
        for name, blocks in self.config.references.items():
            try:
                archs[name] = self.make_arch(blocks, name=name)
            except VidlatError as exc:
                raise SearchSpaceError(f"{self.source}: reference '{name}': {exc}") from exc
        return archs

    def network_workload(self, arch: ArchSpec) -> Workload:
        """The whole network ``arch`` at the deployment shape (key ``net|<space>|<digest>``)."""
        return network_workload(arch)

    def profiling_workloads(self, *, networks: int = 0, seed: int = 0) -> list[Workload]:
        """What ``vidlat profile --space`` measures: every block workload, stem and head, and whole networks.

        Whole networks: ``networks`` random archs (``sample(seed + i)``) and the reference archs, each
        at the deployment shape, so predictors can be judged on them (none when ``networks`` is 0).
        """
        workloads = [item.workload for item in self.workloads()] + list(self.fixed_workloads())
        if networks:
            archs = [self.sample(seed + index) for index in range(networks)] + list(self.reference_archs().values())
            workloads += [self.network_workload(arch) for arch in archs]
        return workloads


def resolve_arch(text: str | Path) -> ArchSpec:
    """An arch file (YAML/JSON), or ``SPACE:REFERENCE`` such as ``default:x3d-xs``."""
    text = str(text)
    if Path(text).is_file() or ":" not in text:
        return load_arch(text)
    space_name, reference = text.rsplit(":", 1)
    references = load_space(space_name).reference_archs()
    if reference not in references:
        raise SearchSpaceError(f"space '{space_name}' has no reference arch '{reference}'; it has: "
                               f"{', '.join(sorted(references)) or 'none'}")
    return references[reference]


def shipped_spaces() -> list[str]:
    """Names of the spaces shipped in ``search/spaces``."""
    return sorted(p.name[:-5] for p in resources.files("search.spaces").iterdir() if p.name.endswith(".yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name ("default", "tiny") or a YAML file; ``SearchSpaceError`` if neither."""
    text_path = str(name_or_path)
    if text_path in shipped_spaces():
        source = f"space '{text_path}'"
        text = resources.files("search.spaces").joinpath(f"{text_path}.yaml").read_text(encoding="utf-8")
        data = parse_yaml(text, source=source, error=SearchSpaceError)
    else:
        if not Path(text_path).is_file():
            raise SearchSpaceError(f"unknown search space '{text_path}': not a shipped space "
                                   f"({', '.join(shipped_spaces())}) nor a YAML file")
        source, data = text_path, read_yaml(text_path, error=SearchSpaceError, what="search space file")
    if not isinstance(data, dict):
        raise SearchSpaceError(f"{source}: a search space file must be a YAML mapping, got {type(data).__name__}")
    try:
        config = SpaceConfig.model_validate(data)
    except ValidationError as exc:
        raise SearchSpaceError(f"{source}: {describe_validation_error(first_error(exc), SpaceConfig)}") from None
    space = SearchSpace(config, source=source)
    space.reference_archs()
    return space
