"""FBNet-style differentiable architecture search: losses, temperature schedule, the search loop.

::

    train split --80%--> weight batches --CE--> weight optimiser (AdamW)      [every epoch]
                --20%--> arch batches   --CE x latency term--> arch optimiser (Adam)   [after warm-up]
    per epoch: tau = tau0 * exp(-decay * epoch); val accuracy of the derived (argmax) arch and of
               archs sampled from softmax(logits) (shared weights, batch-statistic BN: search.scoring);
               history row, checkpoint (resumable), search log JSON

Loss forms on the architecture step (LAT = expected network latency in ms, a tensor in the logits):

- ``fbnet``: ``CE * alpha * log(LAT / unit_ms) ** beta`` (FBNet, alpha 0.2, beta 0.6); the log is
  clamped at a small positive value so that a network faster than one unit still gives a finite loss;
- ``target``: ``CE + weight * max(0, LAT / target_ms - 1)``: no cost below the budget, a linear
  relative penalty above it.

How an arch step reaches the logits (``mode``): ``soft`` (FBNet: every candidate runs, mixed by the
Gumbel-softmax sample), ``hard`` (GDAS: one candidate per layer runs, straight-through gradients), or
``reinforce`` (ProxylessNAS's score function: a few single paths drawn from softmax(logits) run on the
same batch, and each path's own loss, its CE with its table latency, weights ``grad log p(path)``
against their mean); weight steps of ``reinforce`` run single paths as ``hard`` does.

The weights are trained on plain CE (the latency term does not depend on them). Which paths a weight
step trains (``sampling``):

- ``uniform``: the path drawn from the logits (GDAS hard mode: one candidate per layer; uniform while
  the logits are zero, as SPOS trains its supernet);
- ``sandwich`` (default): that path and the supernet's anchor path (the space's reference arch) at
  every step, as Once-for-All and BigNAS train their largest network beside the sampled ones. The
  candidates share weights (``search.sharing``), so the anchor's steps train what every path uses.
  Measured on the default space (72 weight steps of 32 moving-digits clips, weight-sharing supernet,
  one seed): val accuracy of 4 random paths 0.25-0.30 uniform, 0.27-0.50 sandwich (anchor path 0.86,
  paths drawn from the logits 0.48 against 0.28); 24 anchor steps and then uniform fell back to
  0.24-0.33 (the anchor from 0.61 train accuracy to 0.41), so the anchor must keep training. It costs
  a second forward and backward per weight step.

Under
``torchrun`` (WORLD_SIZE > 1, gloo) the supernet is wrapped in ``DistributedDataParallel`` and each
rank trains on its own shard of every batch list; rank 0 writes the checkpoint and the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from predictors.network import Calibration
from profiler.errors import VidlatError
from profiler.progress import progress_bar
from search.data.clips import ClipSet, ClipSplits
from search.scoring import path_accuracy, sampled_accuracy
from search.supernet import MODES, Supernet
from search.train import channels_last_input, to_channels_last

#: how weight steps pick paths: ``uniform`` trains the path drawn from the logits (SPOS while they are
#: uniform); ``sandwich`` trains the supernet's anchor path beside it at every step (see the module docstring)
SAMPLINGS: tuple[str, ...] = ("sandwich", "uniform")
#: the supernet's mixing modes, and ``reinforce``: hard single paths, arch steps by the score function
SEARCH_MODES: tuple[str, ...] = (*MODES, "reinforce")
#: paths an arch step compares under ``reinforce`` (on the same batch)
REINFORCE_PATHS = 4
LossForm = Literal["fbnet", "target"]
LOSS_FORMS: tuple[str, ...] = ("fbnet", "target")
CHECKPOINT = "checkpoint.pt"
LOG = "search_log.json"


class SearchConfigError(VidlatError):
    """A search option is out of range or a checkpoint does not match the settings."""


@dataclass(frozen=True)
class SearchConfig:
    """Every knob of a search (the defaults are FBNet's where the paper gives one)."""

    epochs: int = 8
    warmup_epochs: int = 2
    batch_size: int = 32
    mode: str = "hard"
    loss: str = "fbnet"
    alpha: float = 0.2
    beta: float = 0.6
    unit_ms: float = 1.0
    target_ms: float | None = None
    latency_weight: float = 2.0
    temperature: float = 5.0
    temperature_decay: float = 0.045
    weight_lr: float = 3e-3
    weight_decay: float = 1e-4
    arch_lr: float = 0.05
    arch_fraction: float = 0.2
    sampling: str = "sandwich"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise SearchConfigError(f"sampling must be one of {', '.join(SAMPLINGS)}, got '{self.sampling}'")
        if self.mode not in SEARCH_MODES:
            raise SearchConfigError(f"mode must be one of {', '.join(SEARCH_MODES)}, got '{self.mode}'")
        if self.loss not in LOSS_FORMS:
            raise SearchConfigError(f"loss must be one of {', '.join(LOSS_FORMS)}, got '{self.loss}'")
        if self.loss == "target" and (self.target_ms is None or self.target_ms <= 0):
            raise SearchConfigError("the target loss needs a latency budget: target_ms > 0")
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise SearchConfigError(f"need epochs >= 1 and 0 <= warmup_epochs < epochs, got {self.epochs} and {self.warmup_epochs}")
        if not 0 < self.arch_fraction < 1:
            raise SearchConfigError(f"arch_fraction must be in (0, 1), got {self.arch_fraction}")
        if self.temperature <= 0 or self.unit_ms <= 0 or self.batch_size < 1:
            raise SearchConfigError("temperature, unit_ms and batch_size must be positive")


def temperature_at(epoch: int, *, initial: float = 5.0, decay: float = 0.045) -> float:
    """Gumbel-softmax temperature of ``epoch`` (0-based): ``initial * exp(-decay * epoch)``."""
    return initial * math.exp(-decay * epoch)


def fbnet_loss(ce: torch.Tensor, latency_ms: torch.Tensor, *, alpha: float = 0.2, beta: float = 0.6, unit_ms: float = 1.0) -> torch.Tensor:
    """FBNet: ``CE * alpha * log(LAT) ** beta`` with LAT in units of ``unit_ms``."""
    return ce * alpha * torch.log(latency_ms / unit_ms).clamp_min(1e-3) ** beta


def fbnet_unit_ms(latency_table: list[list[float]], fixed_ms: float, *, start_units: float = 28.0) -> float:
    """A latency unit for the FBNet loss so that the uniform starting supernet sits at ``start_units``.

    FBNet's phone networks ran at about 28 ms, where ``log(LAT)`` is 3.3 and a 10% latency cut is
    worth about 2% of CE (beta 0.6). Video blocks on another device may take 0.2 ms or 200 ms in
    total; measuring LAT in this unit keeps the same trade-off on every device.
    """
    uniform = fixed_ms + sum(sum(row) / len(row) for row in latency_table)
    return max(uniform, 1e-9) / start_units


def target_loss(ce: torch.Tensor, latency_ms: torch.Tensor, *, target_ms: float, weight: float = 2.0) -> torch.Tensor:
    """``CE + weight * max(0, LAT / target - 1)``: free below the budget, linear above it."""
    return ce + weight * F.relu(latency_ms / target_ms - 1.0)


def arch_loss(ce: torch.Tensor, latency_ms: torch.Tensor, config: SearchConfig) -> torch.Tensor:
    """The architecture-step loss of ``config``."""
    if config.loss == "fbnet":
        return fbnet_loss(ce, latency_ms, alpha=config.alpha, beta=config.beta, unit_ms=config.unit_ms)
    return target_loss(ce, latency_ms, target_ms=float(config.target_ms), weight=config.latency_weight)


@dataclass
class SearchResult:
    """The derived architecture (one block per layer), its table latency and the per-epoch history."""

    derived: list[str]
    derived_ms: float
    expected_ms: float
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    resumed_from: int = 0


def split_for_arch(train: ClipSet, fraction: float, seed: int) -> tuple[ClipSet, ClipSet]:
    """Disjoint (weights, arch) parts of the training clips: 1 - fraction and fraction."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = len(train) - max(1, int(round(fraction * len(train))))
    return train.subset(order[:cut]), train.subset(order[cut:])


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


CHECKPOINT_KEYS: frozenset[str] = frozenset({"epoch", "config", "settings", "model", "weight_opt", "arch_opt", "history", "rng"})


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's state, or one ``SearchConfigError`` line if the file is not a search checkpoint."""
    how = "delete it or use another --out"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, truncated zip, I/O: a file torch cannot read back
        raise SearchConfigError(f"{path} is not a readable search checkpoint ({type(exc).__name__}); {how}") from None
    missing = sorted(CHECKPOINT_KEYS - set(state)) if isinstance(state, dict) else ["all"]
    if missing == ["settings"]:
        raise SearchConfigError(f"{path} was made by an earlier vidlat that did not record its data settings; {how}")
    if missing:
        raise SearchConfigError(f"{path} is not a search checkpoint (missing {', '.join(missing)}); {how}")
    try:
        state["config"] = SearchConfig(**state["config"])
    except (TypeError, SearchConfigError) as exc:
        raise SearchConfigError(f"{path} holds settings this vidlat cannot read ({exc}); {how}") from None
    return state


def _load_checkpoint(path: Path, config: SearchConfig, settings: dict[str, Any], *, extend: bool = False) -> dict[str, Any] | None:
    """The state to resume from ``path`` (``None`` if there is none); anything that shapes the result must match.

    ``settings`` are the data and latency settings beside ``config`` (clips, proxy shape, device, table);
    ``config.epochs`` may differ only with ``extend`` (continue to more epochs, never fewer than are done).
    """
    if not path.is_file():
        return None
    state = _read_checkpoint(path)
    saved: SearchConfig = state["config"]
    changed = sorted(k for k, v in asdict(config).items() if k != "epochs" and getattr(saved, k) != v)
    changed += sorted(k for k in set(settings) | set(state["settings"]) if settings.get(k) != state["settings"].get(k))
    if changed:
        raise SearchConfigError(
            f"checkpoint {path} was made with other settings ({', '.join(changed)}); use another --out or delete it"
        )
    done = int(state["epoch"]) + 1
    if config.epochs != saved.epochs and not extend:
        raise SearchConfigError(
            f"checkpoint {path} is a {saved.epochs}-epoch search ({done} done), not {config.epochs}; "
            f"pass --extend to continue it to {config.epochs} epochs, or use another --out or delete it"
        )
    if config.epochs < done:
        raise SearchConfigError(f"checkpoint {path} has {done} epochs done; --extend cannot shorten it to {config.epochs}")
    return state


def latency_digest(supernet: Supernet) -> str:
    """A short hash of the supernet's latency table and fixed ms (the cost the logits were trained on)."""
    table = [[round(float(v), 6) for v in layer.latencies_ms] for layer in supernet.layers]
    return hashlib.sha256(json.dumps([table, round(supernet.fixed_ms, 6)]).encode()).hexdigest()[:16]


def run_search(
    supernet: Supernet,
    data: ClipSplits,
    config: SearchConfig,
    *,
    out_dir: str | Path,
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    progress: bool = True,
) -> SearchResult:
    """Train weights and architecture logits; checkpoint every epoch; resume from ``out_dir`` if one is there.

    The checkpoint keeps ``config``, ``data_settings`` (plain values that shaped the clips: data, counts,
    proxy shape, ...) and the latency table's digest; resuming with any of them changed is refused, and so
    is another ``config.epochs`` unless ``extend`` (continue a finished or partial search to more epochs).
    """
    out_dir = Path(out_dir)
    rank, world = _distributed()
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    weight_part, arch_part = split_for_arch(data.train, config.arch_fraction, config.seed)
    weight_opt = torch.optim.AdamW(supernet.weight_parameters(), lr=config.weight_lr, weight_decay=config.weight_decay)
    arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=config.arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    settings = {**(data_settings or {}), "latency_table": latency_digest(supernet)}
    state = _load_checkpoint(out_dir / CHECKPOINT, config, settings, extend=extend)
    if state is not None:
        try:
            supernet.load_state_dict(state["model"])
        except RuntimeError:  # another space's supernet (keys or shapes differ)
            raise SearchConfigError(f"checkpoint {out_dir / CHECKPOINT} holds another supernet; use another --out or delete it") from None
        weight_opt.load_state_dict(state["weight_opt"])
        arch_opt.load_state_dict(state["arch_opt"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"]) + 1
        torch.set_rng_state(state["rng"])
    to_channels_last(supernet)
    model: nn.Module = supernet
    if world > 1:
        model = nn.parallel.DistributedDataParallel(supernet, find_unused_parameters=True)
    seconds_before = history[-1]["seconds"] if history else 0.0  # spent before an interruption
    cpu_seconds_before = history[-1]["cpu_seconds"] if history else 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    bar = _progress(config.epochs, start_epoch, enabled=progress and rank == 0)
    for epoch in range(start_epoch, config.epochs):
        row = _train_epoch(model, supernet, weight_part, arch_part, weight_opt, arch_opt, config, epoch, rank, world)
        row["val_acc"] = path_accuracy(supernet, data.val, [int(layer.logits.argmax()) for layer in supernet.layers])
        row["val_acc_sampled"] = sampled_accuracy(supernet, data.val)
        row["seconds"] = time.perf_counter() - started + seconds_before
        row["cpu_seconds"] = time.process_time() - cpu_started + cpu_seconds_before
        history.append(row)
        if rank == 0:
            _save_checkpoint(out_dir, supernet, weight_opt, arch_opt, config, settings, epoch, history)
            if bar is not None:
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}", acc=f"{row['train_acc']:.2f}", val=f"{row['val_acc']:.2f}",
                    lat=f"{row['expected_ms']:.2f}ms", tau=f"{row['temperature']:.2f}",
                )
                bar.update(1)
    if bar is not None:
        bar.close()
    return SearchResult(
        derived=supernet.derived(),
        derived_ms=supernet.derived_latency_ms(),
        expected_ms=float(supernet.expected_latency().detach()),
        history=history,
        seconds=history[-1]["seconds"] if history else 0.0,
        cpu_seconds=history[-1]["cpu_seconds"] if history else 0.0,
        resumed_from=start_epoch,
    )


def budget_search(
    supernet: Supernet, clips: ClipSplits, config: SearchConfig, *, target_ms: float, epochs: int = 12,
    final_temperature: float = 0.5,
) -> list[int]:
    """DNAS for one latency budget on a trained supernet: fresh logits, trained alone with the target loss.

    arch clips (the search's 20%) --supernet (weights frozen, GDAS/FBNet mixing at tau)--> CE
        --target loss, budget ``target_ms`` (on the table sum)--> Adam on the logits, ``epochs`` passes
    tau falls from ``config.temperature`` to ``final_temperature`` so the argmax settles. Returns the
    argmax path; the supernet's own logits are left as they were. Many budgets can so share one
    trained supernet (``vidlat search --targets``), where the alternating search needs one run each.
    """
    if target_ms <= 0 or epochs < 1 or final_temperature <= 0:
        raise SearchConfigError(f"need target_ms > 0, epochs >= 1 and final_temperature > 0, got {target_ms}, {epochs}, {final_temperature}")
    budget = dataclasses.replace(config, loss="target", target_ms=target_ms)
    _, arch_part = split_for_arch(clips.train, config.arch_fraction, config.seed)
    saved = [logits.detach().clone() for logits in supernet.arch_parameters()]
    frozen = [(p, p.requires_grad) for p in supernet.weight_parameters()]
    for parameter, _ in frozen:
        parameter.requires_grad_(False)
    try:
        with torch.no_grad():
            for logits in supernet.arch_parameters():
                logits.zero_()
        optimiser = torch.optim.Adam(supernet.arch_parameters(), lr=config.arch_lr, betas=(0.5, 0.999))
        decay = math.log(config.temperature / final_temperature) / max(1, epochs - 1)
        generator = torch.Generator().manual_seed(config.seed)
        supernet.train()
        for epoch in range(epochs):
            tau = temperature_at(epoch, initial=config.temperature, decay=decay)
            for x, y in arch_part.batches(config.batch_size, generator=generator, shuffle=True):
                optimiser.zero_grad(set_to_none=True)
                _arch_backward(supernet, supernet, channels_last_input(x), y, budget, tau, world=1)
                optimiser.step()
        return [int(layer.logits.argmax()) for layer in supernet.layers]
    finally:
        with torch.no_grad():
            for logits, value in zip(supernet.arch_parameters(), saved):
                logits.copy_(value)
        for parameter, requires_grad in frozen:
            parameter.requires_grad_(requires_grad)


class MissingLatencyError(VidlatError):
    """The device's lookup table lacks some (layer, candidate) of the space."""


def device_latency_table(space: Any, *, device: str, store: Any = None, lut_file: str | Path | None = None) -> tuple[list[list[float]], float]:
    """(latency_table, fixed_ms) of ``space`` on ``device`` from the store or a ``vidlat lut export`` file.

    ``latency_table[l][i]`` is the median ms of candidate i of layer l; ``fixed_ms`` is stem + head.
    A missing measurement is a ``MissingLatencyError`` telling the user to profile first.
    """
    from predictors import LUTMissError, LUTPredictor
    from predictors.lut import space_entries

    try:
        if lut_file is not None:
            predictor = LUTPredictor.from_file(lut_file, device=device)
        else:
            predictor = LUTPredictor.from_store(store, device, space_entries(space))
        table = predictor.layer_latencies(space.layers)
        fixed = predictor.fixed_ms
    except LUTMissError as exc:
        raise MissingLatencyError(
            f"device '{device}' has no measured latency for {len(exc.keys)} workload(s) of space '{space.name}' "
            f"(e.g. {exc.keys[0]}); run `vidlat profile --device {device} --space {space.name}` first"
        ) from exc
    return [[float(v) for v in row] for row in table], float(fixed)


def write_report(result: SearchResult, out_dir: str | Path, *, candidates: list[list[str]], title: str) -> dict[str, Path]:
    """Probability heatmaps (one panel per layer, candidates x epochs) and the expected-latency curve as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir = Path(out_dir)
    history = result.history
    epochs = [row["epoch"] for row in history]
    layers = len(candidates)
    cols = min(5, layers)
    rows = -(-layers // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= layers:
            ax.axis("off")
            continue
        probs = np.array([row["probabilities"][index] for row in history]).T  # candidates x epochs
        ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks(range(len(candidates[index])), candidates[index], fontsize=5)
        ax.set_xticks(range(len(epochs)), [str(e) for e in epochs], fontsize=5)
        ax.set_title(f"layer {index}: {result.derived[index]}", fontsize=7)
    fig.suptitle(f"{title}: candidate probability per epoch")
    fig.tight_layout()
    paths = {"heatmap": out_dir / "probabilities.png", "latency": out_dir / "latency.png"}
    fig.savefig(paths["heatmap"], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(epochs, [row["expected_ms"] for row in history], marker="o", label="expected (softmax . table)")
    ax.plot(epochs, [row["derived_ms"] for row in history], marker="s", label="derived arch (argmax)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["latency"], dpi=110)
    plt.close(fig)
    return paths


def train_supernet(
    space: Any,
    clips: ClipSplits,
    config: SearchConfig,
    *,
    latency_table: list[list[float]],
    fixed_ms: float,
    device: str,
    out_dir: str | Path,
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    progress: bool = True,
) -> tuple[Supernet, SearchResult] | None:
    """The supernet of ``space`` with the device's table, trained by ``run_search`` in ``out_dir`` (resumable).

    Device and space join ``data_settings`` in the checkpoint's resume check. Returns (supernet,
    result) on rank 0, ``None`` on the other ranks under DDP (after a barrier).
    """
    from search.supernet import create_supernet

    torch.manual_seed(config.seed)
    supernet = create_supernet(space, latency_table=latency_table, fixed_ms=fixed_ms, num_classes=clips.num_classes)
    settings = {"device": device, "space": space.name, **(data_settings or {})}
    result = run_search(supernet, clips, config, out_dir=out_dir, data_settings=settings, extend=extend, progress=progress)
    rank, world = _distributed()
    if world > 1:
        dist.barrier()
    return (supernet, result) if rank == 0 else None


def search_device(
    space: Any,
    clips: ClipSplits,
    config: SearchConfig,
    *,
    latency_table: list[list[float]],
    fixed_ms: float,
    device: str,
    out_dir: str | Path,
    data_name: str = "",
    data_settings: dict[str, Any] | None = None,
    extend: bool = False,
    calibration: Calibration | None = None,
    progress: bool = True,
) -> dict[str, Any] | None:
    """The whole DNAS of ``space`` for one device, as ``vidlat search`` runs it.

    supernet (latency table) --train_supernet--> derived arch --> OUT/arch.yaml, report.json, PNGs
    derived arch of every epoch + landmarks --SupernetScorer (val clips)--> OUT/pareto.png, report "pareto"
    ``predicted_ms`` is the table sum, calibrated when ``calibration`` (the device's fitted predictor) is
    given; the target loss itself works on the table sum. Returns the report (also written as
    ``report.json``); ``None`` on ranks other than 0 under DDP.
    """
    from search.pareto import PredictedLatency, score_arch, write_pareto
    from search.scoring import SupernetScorer
    from search.supernet import derived_arch

    out_dir = Path(out_dir)
    trained = train_supernet(space, clips, config, latency_table=latency_table, fixed_ms=fixed_ms, device=device,
                             out_dir=out_dir, data_settings=data_settings, extend=extend, progress=progress)
    if trained is None:
        return None
    supernet, result = trained
    scorer = SupernetScorer(supernet, clips.val)
    latency = PredictedLatency.of(latency_table, fixed_ms, calibration)
    derived = score_arch(supernet, scorer, supernet.path_of(result.derived), latency=latency, origin="dnas")
    visited = {tuple(row["derived"]): row["epoch"] for row in result.history}
    scored = [score_arch(supernet, scorer, supernet.path_of(blocks), latency=latency, origin=f"argmax after epoch {epoch}")
              for blocks, epoch in visited.items()]
    notes = {"device": device, "predicted_ms": round(derived.predicted_ms, 4), "search": str(out_dir)}
    arch = derived_arch(space, supernet, name=f"dnas-{device}-{space.name}", notes=notes)
    arch.save(out_dir / "arch.yaml")
    title = f"{device} / {space.name}"
    plots = write_report(result, out_dir, candidates=[slot.candidates for slot in space.layers], title=title)
    pareto = write_pareto(out_dir, space=space, supernet=supernet, scorer=scorer, scored=scored, chosen={"dnas": derived},
                          budgets_ms=[config.target_ms] if config.target_ms else [], latency=latency,
                          title=f"{title}: DNAS argmax archs on the supernet", seed=config.seed)
    last = result.history[-1]
    report = {
        "method": "dnas", "device": device, "space": space.name, "data": data_name, "loss": config.loss, "mode": config.mode,
        "target_ms": config.target_ms, "predicted_ms": derived.predicted_ms, "table_ms": latency.table_ms(derived.path),
        "calibration": calibration.to_dict() if calibration else None, "expected_ms": result.expected_ms,
        "fixed_ms": fixed_ms, "val_acc_supernet": last["val_acc"],
        "val_acc_sampled": last.get("val_acc_sampled"), "search_seconds": result.seconds,
        "search_cpu_seconds": result.cpu_seconds, "epochs": len(result.history), "resumed_from_epoch": result.resumed_from,
        "layers": arch.layers, "pareto": pareto["pareto"], "landmarks": pareto["landmarks"], "scored_archs": pareto["scored_archs"],
        "files": {"arch": str(out_dir / "arch.yaml"), "log": str(out_dir / LOG), **{k: str(v) for k, v in plots.items()},
                  "pareto": pareto["file"]},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


def _progress(total: int, done: int, *, enabled: bool):
    return progress_bar(total, desc="search", unit="epoch", initial=done) if enabled else None


def _train_epoch(
    model: nn.Module,
    supernet: Supernet,
    weight_part: ClipSet,
    arch_part: ClipSet,
    weight_opt: torch.optim.Optimizer,
    arch_opt: torch.optim.Optimizer,
    config: SearchConfig,
    epoch: int,
    rank: int,
    world: int,
) -> dict[str, Any]:
    """One epoch: a weight step per weight batch (the drawn path, and the anchor path under ``sandwich``),
    an arch step after each one once warm-up is over."""
    tau = temperature_at(epoch, initial=config.temperature, decay=config.temperature_decay)
    forward_mode = "hard" if config.mode == "reinforce" else config.mode
    search_arch = epoch >= config.warmup_epochs
    shuffle = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    weight_batches = list(weight_part.batches(config.batch_size * world, generator=shuffle, shuffle=True))
    arch_batches = list(arch_part.batches(config.batch_size * world, generator=shuffle, shuffle=True))
    model.train()
    totals = {"loss": 0.0, "ce": 0.0, "correct": 0, "seen": 0, "arch_loss": 0.0, "arch_steps": 0}
    for step, (x, y) in enumerate(weight_batches):
        x, y = channels_last_input(x[rank::world]), y[rank::world]
        weight_opt.zero_grad(set_to_none=True)
        arch_opt.zero_grad(set_to_none=True)
        logits, _ = model(x, temperature=tau, mode=forward_mode)
        ce = F.cross_entropy(logits, y)
        ce.backward()
        if config.sampling == "sandwich":  # its own backward: DDP allows one forward per backward
            anchor_logits, _ = model(x, path=supernet.anchor, mode=forward_mode)
            F.cross_entropy(anchor_logits, y).backward()
        weight_opt.step()
        totals["ce"] += float(ce.detach()) * len(y)
        totals["correct"] += int((logits.argmax(1) == y).sum())
        totals["seen"] += len(y)
        if search_arch:
            ax, ay = arch_batches[step % len(arch_batches)]
            ax, ay = channels_last_input(ax[rank::world]), ay[rank::world]
            weight_opt.zero_grad(set_to_none=True)
            arch_opt.zero_grad(set_to_none=True)
            loss = _arch_backward(model, supernet, ax, ay, config, tau, world)
            arch_opt.step()
            totals["arch_loss"] += float(loss.detach())
            totals["arch_steps"] += 1
    seen = max(1, totals["seen"])
    return {
        "epoch": epoch,
        "temperature": tau,
        "searching": search_arch,
        "loss": totals["arch_loss"] / totals["arch_steps"] if totals["arch_steps"] else totals["ce"] / seen,
        "ce": totals["ce"] / seen,
        "train_acc": totals["correct"] / seen,
        "expected_ms": float(supernet.expected_latency().detach()),
        "derived_ms": supernet.derived_latency_ms(),
        "derived": supernet.derived(),
        "probabilities": supernet.probabilities(),
    }


def _arch_backward(model: nn.Module, supernet: Supernet, x: torch.Tensor, y: torch.Tensor, config: SearchConfig,
                   tau: float, world: int) -> torch.Tensor:
    """The logits' gradient of the arch loss on one batch (relaxed mixing, or the score function); returns the loss."""
    if config.mode == "reinforce":
        return _reinforce_backward(supernet, x, y, config, world)
    logits, latency = model(x, temperature=tau, mode=config.mode)
    loss = arch_loss(F.cross_entropy(logits, y), latency, config)
    loss.backward()
    return loss


def _reinforce_backward(supernet: Supernet, x: torch.Tensor, y: torch.Tensor, config: SearchConfig, world: int) -> torch.Tensor:
    """Score-function gradient of the expected loss of single paths (ProxylessNAS's REINFORCE form).

    ``REINFORCE_PATHS`` paths drawn from softmax(logits) run on the same batch without gradients; each
    path's loss is the configured loss of its CE and its own table latency; the logits move by
    ``(loss_i - mean loss) * grad log p(path_i)`` (a leave-one-out baseline). Unlike the straight-through
    estimator it compares whole paths, so the CE term competes with the exact latency term on equal
    terms. Returns the mean path loss; under DDP the logits' gradients are averaged over the ranks.
    """
    paths = [[int(torch.multinomial(layer.probabilities().detach(), 1)) for layer in supernet.layers]
             for _ in range(REINFORCE_PATHS)]
    with torch.no_grad():
        losses = torch.stack([
            arch_loss(F.cross_entropy(supernet(x, path=path)[0], y), torch.tensor(supernet.path_latency_ms(path)), config)
            for path in paths
        ])
    advantage = (losses - losses.mean()) * REINFORCE_PATHS / (REINFORCE_PATHS - 1)
    log_probs = torch.stack([
        sum(F.log_softmax(layer.logits, dim=0)[index] for layer, index in zip(supernet.layers, path)) for path in paths
    ])
    (advantage * log_probs).mean().backward()
    if world > 1:
        for logits in supernet.arch_parameters():
            dist.all_reduce(logits.grad)
            logits.grad /= world
    return losses.mean()


def _save_checkpoint(
    out_dir: Path, supernet: Supernet, weight_opt: torch.optim.Optimizer, arch_opt: torch.optim.Optimizer,
    config: SearchConfig, settings: dict[str, Any], epoch: int, history: list[dict[str, Any]],
) -> None:
    """Write the checkpoint (tensors and plain values only, loadable with weights_only) and the log."""
    state = {
        "epoch": epoch,
        "config": asdict(config),
        "settings": dict(settings),
        "model": supernet.state_dict(),
        "weight_opt": weight_opt.state_dict(),
        "arch_opt": arch_opt.state_dict(),
        "history": json.dumps(history),
        "rng": torch.get_rng_state(),
    }
    partial = out_dir / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    partial.replace(out_dir / CHECKPOINT)
    (out_dir / LOG).write_text(json.dumps({"config": asdict(config), "settings": settings, "history": history}, indent=1))


__all__ = [
    "CHECKPOINT",
    "LOG",
    "CHECKPOINT_KEYS",
    "LOSS_FORMS",
    "MissingLatencyError",
    "SearchConfig",
    "SearchConfigError",
    "SearchResult",
    "arch_loss",
    "budget_search",
    "device_latency_table",
    "fbnet_loss",
    "fbnet_unit_ms",
    "latency_digest",
    "run_search",
    "search_device",
    "split_for_arch",
    "target_loss",
    "temperature_at",
    "train_supernet",
    "write_report",
]
