"""vidlat's Python API: every step of the user's path is one call that returns an object.

::

    profile(device, space=S | onnx=F)   -> ProfileResult     measured into the store (resumable)
    fit(device, space=S)                -> FitResult         regressors + calibration, saved beside the store
    evaluate(device, space=S)           -> EvaluationReport  the predictors judged on measured networks
    load_latency_predictor(device, space=S)
                                        -> LatencyPredictor  .predict(arch | ARCH.yaml | MODEL.onnx) -> Prediction
    search(device, space=S)             -> SearchRun         DNAS or evolution, the device's table as cost
    train(arch)                         -> TrainRun          from scratch on the proxy clips
    export(arch, out=F)                 -> ExportReport      verified ONNX, the arch in its metadata
    run(device, space=S)                -> RunResult         all of the above, then the exported model measured

``store`` is the latency store file (default: ``$VIDLAT_STORE`` or the user data dir). A config
left as None is the default ``SearchConfig()``, ``EvolutionConfig()``, ``TrainConfig()``, ``ClipConfig()``
(``search.config``) or ``FitConfig()`` (``predictors.fit``); the ``vidlat`` command reads its option
defaults from the same classes. Bad input raises a ``VidlatError`` of one line. What a step is about to do (data, output
folder) is logged on the ``vidlat`` logger at INFO.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profiler.catalog import DEFAULT_DEVICE, resolve_device
from profiler.device import DeviceConfig
from profiler.errors import StoreError, VidlatError
from profiler.store import LatencyStore, default_store_path
from profiler.sweep import SweepSummary

if TYPE_CHECKING:  # the rest is imported where it is used: `vidlat profile` stays free of torch
    import pandas as pd

    from predictors import EvaluationReport, FittedPredictor, NetworkPredictor
    from predictors.fit import FitConfig
    from predictors.network import Calibration
    from profiler.fleet import FleetSummary
    from profiler.workload import Workload
    from search.arch import ArchSpec
    from search.config import ClipConfig, EvolutionConfig, SearchConfig, TrainConfig
    from search.export import ExportReport
    from search.space import SearchSpace
    from search.train import TrainResult

log = logging.getLogger("vidlat")

PathLike = str | Path
#: what ``run`` does unless told otherwise (the whole path in minutes). The search keeps its own 8 epochs:
#: with 6 (2 of warm-up), REINFORCE had 4 arch epochs and stopped near the table minimum.
RUN_NETWORKS = 5
RUN_SEARCH_EPOCHS = 8
RUN_TRAIN_EPOCHS = 8
RUN_THREADS = 2


# --------------------------------------------------------------------------- store and device
def _store_path(store: PathLike | None) -> Path:
    return Path(store) if store else default_store_path()


def open_store(store: PathLike | None = None, *, read_only: bool = True,
               hint: str = "vidlat profile --device D --space S") -> LatencyStore:
    """The existing store at ``store``; a ``StoreError`` telling how to make one if there is none."""
    path = _store_path(store)
    if not path.is_file():
        raise StoreError(f"{path}: no latency store here; run `{hint}` first or pass --store")
    return LatencyStore(path, read_only=read_only)


def stored_device_name(store: LatencyStore, device: str, *, required: bool = True) -> str:
    """``device`` as the store names it: a stored name as it is, else the name inside the shipped device
    or ``.yaml`` file; with ``required``, a ``StoreError`` if nothing is measured on it."""
    name = device if device in store.devices() else resolve_device(device).name
    if required and name not in store.devices():
        raise StoreError(f"{store.path}: nothing measured on device '{name}'; devices here: {', '.join(store.devices()) or 'none'}")
    return name


def _space(space: str | SearchSpace) -> SearchSpace:
    from search.space import load_space

    return load_space(space) if isinstance(space, str | Path) else space


def _arch(arch: str | Path | ArchSpec) -> ArchSpec:
    from search.space import resolve_arch

    return resolve_arch(arch) if isinstance(arch, str | Path) else arch


# --------------------------------------------------------------------------- profile
@dataclass(frozen=True)
class ProfileResult:
    """What a sweep did (``summary``: counts, seconds), on which device, into which store, and the keys asked for."""

    device: str
    store: Path
    keys: list[str]
    summary: SweepSummary

    def table(self) -> pd.DataFrame:
        """The store's latest row of every profiled key (status, median_ms, p10/p90, runs, spec columns)."""
        with LatencyStore(self.store, read_only=True) as store:
            return store.table(self.device, keys=self.keys)


def profile(device: str | DeviceConfig, *, space: str | SearchSpace | None = None, onnx: PathLike | None = None,
            networks: int = 0, seed: int = 0, limit: int | None = None, remeasure: bool = False, per_node: bool = False,
            store: PathLike | None = None, progress: bool = True) -> ProfileResult:
    """Measure every workload of ``space`` (blocks, stem, head; ``networks`` sampled whole networks and the
    reference archs), or one ONNX file whole and per node, on ``device`` into the store.

    Resumable: stored keys are skipped unless ``remeasure``; ``limit`` caps the workloads measured now.
    """
    from profiler.backends import create_backend
    from profiler.sweep import profile_workloads

    config = resolve_device(device) if isinstance(device, str) else device
    workloads = _profiling_workloads(space, onnx, networks=networks, seed=seed)
    if per_node or onnx is not None:
        config = config.with_per_node()
    backend = create_backend(config)
    path = _store_path(store)
    try:
        with LatencyStore(path) as opened:
            summary = profile_workloads(backend, opened, workloads, remeasure=remeasure, limit=limit, progress=progress)
    finally:
        backend.close()
    return ProfileResult(config.name, path, list(dict.fromkeys(w.key for w in workloads)), summary)


def profile_operators(device: str | DeviceConfig, *, seed: int = 0, limit: int | None = None, remeasure: bool = False,
                      per_node: bool = False, store: PathLike | None = None, progress: bool = True) -> ProfileResult:
    """Measure the device's operator (kernel) workloads: fusion tests, then sampled operator configurations in
    adaptive rounds (``predictors.kernel_predictor.profile_operators``), so any ONNX model can be priced."""
    from predictors.kernel_predictor import profile_operators as sweep_operators
    from profiler.backends import create_backend

    config = resolve_device(device) if isinstance(device, str) else device
    backend = create_backend(config.with_per_node() if per_node else config)
    path = _store_path(store)
    try:
        with LatencyStore(path) as opened:
            summary = sweep_operators(backend, opened, seed=seed, limit=limit, remeasure=remeasure, progress=progress)
    finally:
        backend.close()
    return ProfileResult(config.name, path, list(summary.keys), summary)


def predict_model(device: str, model: PathLike, *, store: PathLike | None = None, predictor: PathLike | None = None,
                  partial: bool = False) -> dict[str, Any]:
    """Per-kernel and total latency of any ONNX model on ``device`` from its operator tables
    (``vidlat profile --operators``): nodes grouped into the device's kernels, each priced (table hit, else the
    kernel type's regressor), summed; ops it cannot price are an error unless ``partial`` (then listed)."""
    from predictors.any_model import operator_predictor, predict_workload
    from predictors.errors import PredictorError
    from profiler.onnx_file import onnx_file_workload

    with open_store(store) as opened:
        name = stored_device_name(opened, device)
        try:
            kernels = operator_predictor(opened, name, path=predictor)
        except PredictorError as exc:
            raise PredictorError(f"{model}: not an exported vidlat model, so it is priced per kernel: {exc}") from None
    return predict_workload(kernels, onnx_file_workload(model), partial=partial)


def fit_operators(device: str, *, store: PathLike | None = None, out: PathLike | None = None,
                  calibrate: Sequence[PathLike] = (), seed: int = 0) -> tuple[Any, Path]:
    """Fit ``device``'s kernel predictor on its operator measurements (per kernel type), calibrated (a scale and
    per-kernel-type factors) on ``calibrate`` (ONNX models measured with ``vidlat profile --onnx``); returns it
    and where it was saved."""
    from predictors.any_model import evaluate_models, operator_predictor_path
    from predictors.kernel_predictor import KernelPredictor
    from profiler.onnx_file import onnx_file_workload

    with open_store(store) as opened:
        name = stored_device_name(opened, device)
        predictor = KernelPredictor.fit(opened.table(name), device=name, fingerprint=opened.fingerprint(name), seed=seed)
        if calibrate:
            rows = evaluate_models(predictor, opened, [onnx_file_workload(model) for model in calibrate])["models"]
            predictor.calibrate([row["type_ms"] for row in rows], [row["measured_ms"] for row in rows])
        path = predictor.save(Path(out) if out else operator_predictor_path(opened, name))
    return predictor, path


def evaluate_operators(device: str, *, store: PathLike | None = None, models: Sequence[PathLike] = (),
                       seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The kernel predictor judged per kernel type (out of fold on the measured operators) and, with
    ``models`` (measured with ``vidlat profile --onnx``), on whole models."""
    from predictors.any_model import evaluate_models, operator_predictor
    from predictors.kernel_predictor import evaluate_operators as per_kernel_type
    from profiler.onnx_file import onnx_file_workload

    with open_store(store) as opened:
        name = stored_device_name(opened, device)
        per_type = per_kernel_type(opened.table(name), seed=seed)
        whole = (evaluate_models(operator_predictor(opened, name), opened, [onnx_file_workload(model) for model in models])
                 if models else None)
    return per_type, whole


@dataclass(frozen=True)
class FleetResult:
    """What a fleet sweep did (``summary``: one sweep summary per table, boards, hand-backs) and into which store."""

    devices: list[str]
    store: Path
    keys: list[str]
    summary: FleetSummary


def profile_fleet(devices: Sequence[str | DeviceConfig], *, shard: bool = False, space: str | SearchSpace | None = None,
                  onnx: PathLike | None = None, networks: int = 0, seed: int = 0, limit: int | None = None,
                  remeasure: bool = False, per_node: bool = False, store: PathLike | None = None,
                  progress: bool = True) -> FleetResult:
    """``profile`` on several devices at once, each into its own table (``profiler.fleet``): remote boards
    measure concurrently; with ``shard``, boards given under one name are identical and share its queue."""
    from profiler.backends import create_backend
    from profiler.fleet import check_names, profile_fleet as sweep_fleet

    configs = [resolve_device(device) if isinstance(device, str) else device for device in devices]
    check_names(configs, shard=shard)
    workloads = _profiling_workloads(space, onnx, networks=networks, seed=seed)
    if per_node or onnx is not None:
        configs = [config.with_per_node() for config in configs]
    path = _store_path(store)
    backends = []
    try:
        for config in configs:
            backends.append(create_backend(config))
        with LatencyStore(path) as opened:
            summary = sweep_fleet(backends, opened, workloads, shard=shard, remeasure=remeasure, limit=limit, progress=progress)
    finally:
        for backend in backends:
            backend.close()
    return FleetResult(list(dict.fromkeys(config.name for config in configs)), path,
                       list(dict.fromkeys(w.key for w in workloads)), summary)


def _profiling_workloads(space: str | SearchSpace | None, onnx: PathLike | None, *, networks: int, seed: int) -> list[Workload]:
    from profiler.onnx_file import onnx_file_workload

    if (space is None) == (onnx is None):
        raise VidlatError("give exactly one of space= or onnx=")
    return [onnx_file_workload(onnx)] if onnx is not None else _space(space).profiling_workloads(networks=networks, seed=seed)


# --------------------------------------------------------------------------- fit, evaluate, predict
@dataclass(frozen=True)
class FitResult:
    """The fitted predictor, where it was saved, and (``sample``) what the block sampler measured first."""

    predictor: FittedPredictor
    path: Path
    family_errors: dict[str, float] = field(default_factory=dict)
    sampled: SweepSummary | None = None


def fit(device: str, *, space: str | SearchSpace = "default", store: PathLike | None = None, out: PathLike | None = None,
        config: FitConfig | None = None, sample: int = 0, progress: bool = True) -> FitResult:
    """Fit the latency regressors and the whole-network calibration of ``device`` and ``space`` from the store.

    Saved to ``out`` (default: beside the store, ``predictors/<device>--<space>.skops``). ``sample`` > 0
    first measures that many extra block configurations, more of the families the regressor errs on.
    """
    from predictors import fit_predictor, space_entries
    from predictors.fit import FitConfig
    from predictors.persist import predictor_path

    config = config or FitConfig()
    space_name = space if isinstance(space, str) else space.name
    loaded = _space(space)
    errors: dict[str, float] = {}
    sampled = None
    with open_store(store, read_only=not sample) as opened:
        name = stored_device_name(opened, device)
        if sample:
            errors, sampled = _measure_samples(opened, device, loaded, sample, seed=config.seed, progress=progress)
        fitted = fit_predictor(opened.table(name), space_entries(loaded), device=name, space=loaded.name,
                               fingerprint=opened.fingerprint(name), calibration_networks=config.calibration_networks,
                               contended=config.contended, seed=config.seed)
        path = fitted.save(Path(out) if out else predictor_path(opened.path, name, space_name))
    return FitResult(fitted, path, errors, sampled)


def _measure_samples(store: LatencyStore, device: str, space: SearchSpace, count: int, *, seed: int,
                     progress: bool) -> tuple[dict[str, float], SweepSummary]:
    """Measure ``count`` sampled block configurations, weighted by the regressor's error per family."""
    from predictors.errors import PredictorError
    from predictors.fit import block_rows
    from predictors.regressors import family_errors
    from profiler.backends import create_backend
    from profiler.sweep import profile_workloads
    from search.block_sampler import sample_block_configs

    config = resolve_device(device)
    blocks = block_rows(store.table(config.name))
    try:
        weights = family_errors(list(blocks["spec"]), blocks["median_ms"], seed=seed) if len(blocks) >= 10 else {}
    except PredictorError:
        weights = {}
    configs = sample_block_configs(space, count, family_weights=weights, seed=seed)
    backend = create_backend(config)
    try:
        summary = profile_workloads(backend, store, [item.workload() for item in configs], progress=progress)
    finally:
        backend.close()
    return weights, summary


def evaluate(device: str, *, space: str | SearchSpace = "default", store: PathLike | None = None,
             config: FitConfig | None = None, regressor: str | None = "gbm") -> EvaluationReport:
    """Judge the predictors (FLOPs, block sum, calibrated, regressor) on measured whole networks they were
    not fitted on; ``regressor`` None leaves out the regressor-only row. ``report.save(folder)`` writes it."""
    from predictors import evaluate_networks, network_frame, space_entries
    from predictors.fit import FitConfig, block_rows
    from predictors.lut import measured_entries

    config = config or FitConfig()
    loaded = _space(space)
    with open_store(store) as opened:
        name = stored_device_name(opened, device)
        table = opened.table(name)
    entries = measured_entries(space_entries(loaded), table, contended=config.contended)
    blocks = block_rows(table, contended=config.contended)
    outside = blocks[~blocks["key"].isin(set(entries["key"]))]
    return evaluate_networks(entries, network_frame(table, loaded.name, contended=config.contended), device=name,
                             space=loaded.name, calibration_networks=config.calibration_networks, seed=config.seed,
                             regressor_kind=regressor, extra_blocks=outside)


@dataclass(frozen=True)
class Prediction:
    """Predicted latency of one arch on one device: per block (layer, block, key, ms, source) and total."""

    device: str
    space: str
    arch: str
    predictor: str
    layers: list[str]
    blocks: list[dict[str, Any]]
    fixed_ms: float
    block_sum_ms: float
    calibration: dict[str, Any]
    total_ms: float

    @property
    def block_ms(self) -> list[float]:
        """Milliseconds of each layer's block, in layer order."""
        return [block["ms"] for block in self.blocks]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LatencyPredictor:
    """A device's latency predictor for one search space: the fitted one, else the plain lookup table."""

    device: str
    space: SearchSpace
    source: str
    network: NetworkPredictor

    def predict(self, model: str | Path | ArchSpec | Sequence[str]) -> Prediction:
        """Latency of ``model``: an arch file or ``SPACE:REFERENCE``, an ONNX model exported by vidlat, an
        ``ArchSpec`` or the blocks of every layer; it must be an arch of this space at its deployment shape."""
        from search.arch import ArchSpec
        from search.export import read_arch
        from search.space import resolve_arch

        if isinstance(model, ArchSpec):
            arch, name = model, model.name
        elif isinstance(model, str | Path):
            arch = read_arch(model) if str(model).endswith(".onnx") else resolve_arch(model)
            name = arch.name or Path(model).stem
        else:
            arch = self.space.make_arch(list(model))
            name = "arch"
        layers = self.space.check_arch(arch)
        return Prediction(device=self.device, space=self.space.name, arch=name, predictor=self.source, layers=layers,
                          **self.network.breakdown(layers))


def load_latency_predictor(device: str, *, space: str | SearchSpace = "default", store: PathLike | None = None,
                           predictor: PathLike | None = None) -> LatencyPredictor:
    """The latency predictor of ``device`` and ``space``: the file ``vidlat fit`` saved (or ``predictor``),
    else the store's lookup table without calibration."""
    from predictors import FittedPredictor, LUTPredictor, NetworkPredictor, space_entries
    from predictors.persist import predictor_path

    loaded = _space(space)
    with open_store(store) as opened:
        name = stored_device_name(opened, device)
        path = Path(predictor) if predictor else predictor_path(opened.path, name, space if isinstance(space, str) else loaded.name)
        if path.is_file() or predictor:
            fitted = FittedPredictor.load(path, device=name, fingerprint=opened.fingerprint(name))
            return LatencyPredictor(name, loaded, f"fitted predictor {path}", fitted.network_predictor())
        table = NetworkPredictor(LUTPredictor.from_store(opened, name, space_entries(loaded)))
    return LatencyPredictor(name, loaded, "lookup table only (no calibration: run `vidlat fit` for calibrated totals)", table)


# --------------------------------------------------------------------------- search
@dataclass(frozen=True)
class SearchRun:
    """A finished search: its report (also ``out_dir/report.json``), the arch file(s) and the data's classes."""

    device: str
    space: str
    method: str
    out_dir: Path
    report: dict[str, Any]
    num_classes: int

    @property
    def arch_files(self) -> list[Path]:
        """``arch.yaml``, or one ``arch-<T>ms.yaml`` per budget."""
        files = self.report["files"]
        return [Path(files["arch"])] if "arch" in files else [Path(path) for path in files["archs"]]


def _calibration(store: LatencyStore, device: str, space: str) -> Calibration | None:
    """The whole-network calibration of the predictor ``vidlat fit`` saved (as ``load_latency_predictor``
    finds it), or None if there is none or it was fitted on other hardware (a warning says so)."""
    from predictors import FittedPredictor, PredictorMismatchError
    from predictors.persist import predictor_path

    path = predictor_path(store.path, device, space)
    if not path.is_file():
        return None
    try:
        return FittedPredictor.load(path, device=device, fingerprint=store.fingerprint(device)).calibration
    except PredictorMismatchError as exc:
        log.warning("note: no calibration, latency is the table sum: %s", exc)
        return None


def search(device: str, *, space: str | SearchSpace = "default", method: str = "dnas", target_ms: float | None = None,
           targets: Sequence[float] | None = None, config: SearchConfig | None = None,
           evolution: EvolutionConfig | None = None, clips: ClipConfig | None = None, store: PathLike | None = None,
           lut: PathLike | None = None, out: PathLike | None = None, extend: bool = False, derive: str = "argmax",
           progress: bool = True) -> SearchRun | None:
    """Search an architecture for ``device`` with its measured latency table (store or ``lut`` file) as the cost.

    ``method`` ``dnas``: FBNet/GDAS logits train on the supernet (``target_ms``: the target loss instead of FBNet's),
    then ``derive`` picks the arch: ``argmax`` (the logits' argmax) or ``evolution`` (the supernet's most
    accurate arch no slower than the argmax, ``search.derive``, with the ``evolution`` settings);
    ``evolution``: the same supernet, then archs evolved under the hard budget ``target_ms``. ``targets``:
    one arch per budget from one trained supernet. Writes ``out`` (default ``runs/search-<device>-<space>``)
    and resumes from its checkpoint. None on ranks other than 0 under torchrun.
    """
    from search.config import ClipConfig, EvolutionConfig, SearchConfig, SearchConfigError
    from search.derive import check_derivation
    from search.device_search import device_latency_table, search_device
    from search.evolution import check_budget, evolve_device
    from search.pareto import PredictedLatency

    config, clips = config or SearchConfig(), clips or ClipConfig()
    evolution = evolution or EvolutionConfig(seed=config.seed)  # as `vidlat search --seed` seeds both

    if targets is not None and target_ms is not None:
        raise SearchConfigError("give targets or target_ms, not both")
    budgets = list(targets or ([target_ms] if target_ms is not None else []))
    if method == "evolution" and not budgets:
        raise SearchConfigError("the evolution needs a latency budget: target_ms or targets")
    if method not in ("dnas", "evolution"):
        raise SearchConfigError(f"method must be dnas or evolution, got '{method}'")
    check_derivation(derive)
    space_name = space if isinstance(space, str) else None
    loaded = _space(space)
    calibration = None  # a lookup-table file carries no whole-network calibration
    if lut is not None:
        device_name = resolve_device(device).name if device.endswith((".yaml", ".yml")) else device
        table, fixed_ms = device_latency_table(loaded, device=device_name, lut_file=lut)
    else:
        with open_store(store, hint=f"vidlat profile --device {device} --space {loaded.name}") as opened:
            device_name = stored_device_name(opened, device, required=False)
            table, fixed_ms = device_latency_table(loaded, device=device_name, store=opened)
            calibration = _calibration(opened, device_name, space_name or loaded.name)
    for budget in budgets if method == "evolution" or targets else []:  # before the data and the training
        check_budget(budget, PredictedLatency.of(table, fixed_ms, calibration))
    out_dir = Path(out) if out else Path("runs") / f"search-{device_name}-{loaded.name}"
    splits = dataclasses.replace(clips, test_clips=10).load(channels=loaded.input_shape[0], num_classes=loaded.num_classes,
                                                            seed=config.seed)
    if method == "dnas" and target_ms is not None:
        config = dataclasses.replace(config, loss="target", target_ms=target_ms)
    if progress:
        log.info(f"search on {device_name}, space {loaded.name} ({len(loaded.layers)} layers, {loaded.size():.2e} archs), "
                 f"data {clips.data} {splits.clip_shape} x {len(splits.train)} clips, {config.loss} loss, {config.mode} mode, "
                 f"{config.sampling} sampling, {config.weight_paths} weight paths, method {method} -> {out_dir}")
    common = dict(latency_table=table, fixed_ms=fixed_ms, device=device_name, out_dir=out_dir, calibration=calibration,
                  data_name=clips.data, data_settings=clips.settings(), extend=extend, progress=progress)
    if method == "evolution" or targets:
        report = evolve_device(loaded, splits, config, targets_ms=budgets, evolution=evolution, method=method, **common)
    else:
        report = search_device(loaded, splits, config, derive=derive, evolution=evolution, **common)
    if report is None:
        return None
    return SearchRun(device_name, loaded.name, method, out_dir, report, splits.num_classes)


# --------------------------------------------------------------------------- train, export
@dataclass(frozen=True)
class TrainRun:
    """A trained arch (its head sized to the data's classes), its accuracy and the files written."""

    arch: ArchSpec
    result: TrainResult
    out_dir: Path
    weights: Path
    arch_file: Path
    report_file: Path

    @property
    def test_acc(self) -> float:
        return self.result.test_acc


def train(arch: str | Path | ArchSpec, *, clips: ClipConfig | None = None, config: TrainConfig | None = None,
          out: PathLike | None = None, progress: bool = True) -> TrainRun:
    """Train ``arch`` (a file, ``SPACE:REFERENCE`` or an ``ArchSpec``) from scratch on the proxy clips; writes
    ``weights.pt``, ``arch.yaml`` and ``train.json`` to ``out`` (default ``runs/train-<arch>``)."""
    from search.config import ClipConfig, TrainConfig
    from search.train import save_weights, train_arch

    clips, config = clips or ClipConfig(), config or TrainConfig()
    spec = _arch(arch)
    label = str(arch) if isinstance(arch, str | Path) else (spec.name or "arch")
    splits = clips.load(channels=spec.input_shape[0], num_classes=spec.num_classes, seed=config.seed)
    if splits.num_classes != spec.num_classes:
        spec = dataclasses.replace(spec, num_classes=splits.num_classes)
    out_dir = Path(out) if out else Path("runs") / f"train-{Path(label).stem.replace(':', '-')}"
    if progress:
        log.info(f"train {spec.name or label} on {clips.data} {splits.clip_shape} x {len(splits.train)} clips, "
                 f"{config.epochs} epochs -> {out_dir}")
    result = train_arch(spec, splits, config, progress=progress)
    weights, arch_file, report_file = out_dir / "weights.pt", out_dir / "arch.yaml", out_dir / "train.json"
    save_weights(result.model, weights)
    spec.save(arch_file)
    summary = {"arch": label, "data": clips.data, "clip_shape": list(splits.clip_shape), **result.summary()}
    report_file.write_text(json.dumps(summary, indent=1))
    return TrainRun(spec, result, out_dir, weights, arch_file, report_file)


def export(arch: str | Path | ArchSpec, *, out: PathLike, weights: PathLike | None = None, opset: int | None = None,
           metadata: dict[str, Any] | None = None) -> ExportReport:
    """Export ``arch`` (fresh weights, or trained ``weights`` from ``train``) to ONNX at its deployment shape,
    check it and compare ONNX Runtime with torch; the arch spec and ``metadata`` go into the file.
    ``opset`` None: ``search.export.DEFAULT_OPSET``."""
    from search.export import DEFAULT_OPSET, export_arch
    from search.train import load_weights

    spec = _arch(arch)
    entries = dict(metadata or {})
    model = None
    if weights:
        model = load_weights(spec, weights)
        entries.setdefault("vidlat.weights", Path(weights).name)
    return export_arch(spec, out, metadata=entries, opset=opset or DEFAULT_OPSET, model=model)


# --------------------------------------------------------------------------- the whole path
@dataclass(frozen=True)
class RunResult:
    """The whole path on one device: the arch found, its predicted and measured latency, its accuracy, the files."""

    device: str
    space: str
    data: str
    arch: list[str]
    predicted_ms: float
    measured_ms: float | None
    measured_status: str
    measured_reason: str
    test_acc: float
    seconds: dict[str, float]
    files: dict[str, str]

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: everything but ``measured_reason``."""
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "measured_reason"}


def run(device: str = DEFAULT_DEVICE, *, space: str = "default", networks: int = RUN_NETWORKS,
        search_config: SearchConfig | None = None, train_config: TrainConfig | None = None, clips: ClipConfig | None = None,
        target_ms: float | None = None, seed: int = 0, threads: int | None = RUN_THREADS, store: PathLike | None = None,
        out: PathLike | None = None, progress: bool = True, on_start: Callable[[str], None] | None = None,
        on_done: Callable[[str, Any], None] | None = None) -> RunResult:
    """Profile, fit, search, train, export and measure on one device; every step resumes.

    ::

        profile(space, networks) -> fit -> search (DNAS) -> train (derived arch) -> export (ONNX, predicted
        latency in its metadata) -> profile(onnx): predicted vs measured; OUT/summary.json

    Search and training default to ``RUN_SEARCH_EPOCHS`` and ``RUN_TRAIN_EPOCHS`` epochs (the other knobs
    as ``SearchConfig()``, ``TrainConfig()``). ``seed`` seeds every step; ``threads``: torch threads of
    search and training (profiling keeps the device file's). ``on_start(title)`` and ``on_done(step,
    result)`` are called around each step (``vidlat run`` prints them as the verbs do).
    """
    import torch

    from predictors.fit import FitConfig
    from search.config import ClipConfig, SearchConfig, TrainConfig

    clips = clips or ClipConfig()
    search_config = search_config or SearchConfig().with_epochs(RUN_SEARCH_EPOCHS)
    train_config = train_config or TrainConfig(epochs=RUN_TRAIN_EPOCHS)
    config = resolve_device(device)
    path = _store_path(store)
    out_dir = Path(out) if out else Path("runs") / f"{config.name}-{Path(space).stem}"
    out_dir.mkdir(parents=True, exist_ok=True)
    search_config = dataclasses.replace(search_config, seed=seed)
    train_config = dataclasses.replace(train_config, seed=seed)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    steps = [
        ("profile", f"1/6 profile {space} on {config.name} (blocks, stem, head, {networks} networks + references)"),
        ("fit", "2/6 fit the latency predictors"),
        ("search", "3/6 search (DNAS with the device's lookup table as latency cost)"),
        ("train", "4/6 train the derived arch from scratch"),
        ("export", "5/6 export to ONNX (verified against torch)"),
        ("measure", f"6/6 measure the exported model on {config.name}"),
    ]

    def step(index: int, call: Callable[[], Any]) -> Any:
        name, title = steps[index]
        if on_start:
            on_start(title)
        begin = time.perf_counter()
        result = call()
        seconds[name] = time.perf_counter() - begin
        if on_done:
            on_done(name, result)
        return result

    def with_threads(call: Callable[[], Any]) -> Callable[[], Any]:
        def threaded() -> Any:
            if threads:
                torch.set_num_threads(threads)
            torch.set_flush_denormal(True)
            return call()
        return threaded

    step(0, lambda: profile(device, space=space, networks=networks, seed=seed, store=path, progress=progress))
    step(1, lambda: fit(device, space=space, store=path, config=FitConfig(calibration_networks=min(networks + 2, 10), seed=seed),
                        progress=progress))
    search_dir, train_dir = out_dir / "search", out_dir / "train"
    step(2, with_threads(lambda: search(device, space=space, target_ms=target_ms, config=search_config, clips=clips,
                                        store=path, out=search_dir, progress=progress)))
    trained = step(3, with_threads(lambda: train(search_dir / "arch.yaml", clips=clips, config=train_config, out=train_dir,
                                                 progress=progress)))
    model_file = out_dir / "model.onnx"
    prediction = load_latency_predictor(device, space=space, store=path).predict(trained.arch_file)
    metadata = {"vidlat.predicted_latency_ms": f"{prediction.total_ms:.4f}", "vidlat.device": config.name}
    step(4, lambda: export(trained.arch_file, out=model_file, weights=trained.weights, metadata=metadata))
    measured = step(5, lambda: profile(device, onnx=model_file, store=path, remeasure=True, progress=progress))
    row = measured.table().iloc[0]
    result = RunResult(
        device=config.name, space=space, data=clips.data, arch=prediction.layers, predicted_ms=prediction.total_ms,
        measured_ms=float(row["median_ms"]) if row["status"] == "ok" else None, measured_status=row["status"],
        measured_reason=row["reason"], test_acc=trained.test_acc,
        seconds={**{k: round(v, 1) for k, v in seconds.items()}, "total": round(time.perf_counter() - started, 1)},
        files={"store": str(path), "search": str(search_dir), "arch": str(trained.arch_file), "weights": str(trained.weights),
               "train_report": str(trained.report_file), "model": str(model_file), "summary": str(out_dir / "summary.json")},
    )
    (out_dir / "summary.json").write_text(json.dumps(result.summary(), indent=1))
    return result


__all__ = ["RUN_NETWORKS", "RUN_SEARCH_EPOCHS", "RUN_THREADS", "RUN_TRAIN_EPOCHS", "FitResult", "LatencyPredictor",
           "Prediction", "ProfileResult", "RunResult", "SearchRun", "TrainRun", "evaluate", "export", "fit",
           "load_latency_predictor", "open_store", "profile", "run", "search", "stored_device_name", "train"]
