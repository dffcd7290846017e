"""FBNet-style differentiable architecture search: losses, temperature schedule, the search loop.

::

    train split --80%--> weight batches --CE--> weight optimiser (AdamW)      [every epoch]
                --20%--> arch batches   --CE x latency term--> arch optimiser (Adam)   [after warm-up]
    per epoch: tau = tau0 * exp(-decay * epoch); val accuracy of the derived (argmax) arch;
               history row, checkpoint (resumable), search log JSON

Loss forms on the architecture step (LAT = expected network latency in ms, a tensor in the logits):

- ``fbnet``: ``CE * alpha * log(LAT / unit_ms) ** beta`` (FBNet, alpha 0.2, beta 0.6); the log is
  clamped at a small positive value so that a network faster than one unit still gives a finite loss;
- ``target``: ``CE + weight * max(0, LAT / target_ms - 1)``: no cost below the budget, a linear
  relative penalty above it.

The weights are trained on plain CE (the latency term does not depend on them). Under
``torchrun`` (WORLD_SIZE > 1, gloo) the supernet is wrapped in ``DistributedDataParallel`` and each
rank trains on its own shard of every batch list; rank 0 writes the checkpoint and the log.
"""

from __future__ import annotations

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

from profiler.errors import VidlatError
from search.data.clips import ClipSet, ClipSplits
from search.supernet import MODES, Supernet

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
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SearchConfigError(f"mode must be one of {', '.join(MODES)}, got '{self.mode}'")
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

    def resumable_with(self, other: "SearchConfig") -> bool:
        """A checkpoint made with ``other`` can continue under these settings (only ``epochs`` may grow)."""
        return {**asdict(self), "epochs": 0} == {**asdict(other), "epochs": 0}


def temperature_at(epoch: int, *, initial: float = 5.0, decay: float = 0.045) -> float:
    """Gumbel-softmax temperature of ``epoch`` (0-based): ``initial * exp(-decay * epoch)``."""
    return initial * math.exp(-decay * epoch)


def fbnet_loss(ce: torch.Tensor, latency_ms: torch.Tensor, *, alpha: float = 0.2, beta: float = 0.6, unit_ms: float = 1.0) -> torch.Tensor:
    """FBNet: ``CE * alpha * log(LAT) ** beta`` with LAT in units of ``unit_ms``."""
    return ce * alpha * torch.log(latency_ms / unit_ms).clamp_min(1e-3) ** beta


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
    resumed_from: int = 0


def split_for_arch(train: ClipSet, fraction: float, seed: int) -> tuple[ClipSet, ClipSet]:
    """Disjoint (weights, arch) parts of the training clips: 1 - fraction and fraction."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = len(train) - max(1, int(round(fraction * len(train))))
    return train.subset(order[:cut]), train.subset(order[cut:])


def evaluate_accuracy(model: nn.Module, clips: ClipSet, *, batch_size: int = 128, **forward: Any) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``clips``; ``forward`` kwargs go to the model."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in clips.batches(batch_size):
            out = model(x, **forward)
            logits = out[0] if isinstance(out, tuple) else out
            correct += int((logits.argmax(dim=1) == y).sum())
    model.train(was_training)
    return correct / max(1, len(clips))


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _load_checkpoint(path: Path, config: SearchConfig) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = SearchConfig(**state["config"])
    if not config.resumable_with(saved):
        changed = sorted(k for k, v in asdict(config).items() if k != "epochs" and state["config"].get(k) != v)
        raise SearchConfigError(
            f"checkpoint {path} was made with other settings ({', '.join(changed)}); use another --out or delete it"
        )
    return state


def run_search(
    supernet: Supernet,
    data: ClipSplits,
    config: SearchConfig,
    *,
    out_dir: str | Path,
    progress: bool = True,
) -> SearchResult:
    """Train weights and architecture logits; checkpoint every epoch; resume from ``out_dir`` if one is there."""
    out_dir = Path(out_dir)
    rank, world = _distributed()
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    weight_part, arch_part = split_for_arch(data.train, config.arch_fraction, config.seed)
    weight_opt = torch.optim.AdamW(supernet.weight_parameters(), lr=config.weight_lr, weight_decay=config.weight_decay)
    arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=config.arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    state = _load_checkpoint(out_dir / CHECKPOINT, config)
    if state is not None:
        supernet.load_state_dict(state["model"])
        weight_opt.load_state_dict(state["weight_opt"])
        arch_opt.load_state_dict(state["arch_opt"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"]) + 1
        torch.set_rng_state(state["rng"])
    model: nn.Module = supernet
    if world > 1:
        model = nn.parallel.DistributedDataParallel(supernet, find_unused_parameters=True)
    started = time.perf_counter()
    bar = _progress(config.epochs, start_epoch, enabled=progress and rank == 0)
    for epoch in range(start_epoch, config.epochs):
        row = _train_epoch(model, supernet, weight_part, arch_part, weight_opt, arch_opt, config, epoch, rank, world)
        row["val_acc"] = evaluate_accuracy(supernet, data.val, mode=config.mode)
        row["seconds"] = time.perf_counter() - started + (history[-1]["seconds"] if history else 0.0)
        history.append(row)
        if rank == 0:
            _save_checkpoint(out_dir, supernet, weight_opt, arch_opt, config, epoch, history)
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
        resumed_from=start_epoch,
    )


def _progress(total: int, done: int, *, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="search", unit="epoch", dynamic_ncols=True)


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
    """One epoch: a weight step per weight batch, an arch step after each one once warm-up is over."""
    tau = temperature_at(epoch, initial=config.temperature, decay=config.temperature_decay)
    search_arch = epoch >= config.warmup_epochs
    shuffle = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    weight_batches = list(weight_part.batches(config.batch_size * world, generator=shuffle, shuffle=True))
    arch_batches = list(arch_part.batches(config.batch_size * world, generator=shuffle, shuffle=True))
    model.train()
    totals = {"loss": 0.0, "ce": 0.0, "correct": 0, "seen": 0, "arch_loss": 0.0, "arch_steps": 0}
    for step, (x, y) in enumerate(weight_batches):
        x, y = x[rank::world], y[rank::world]
        logits, _ = model(x, temperature=tau, mode=config.mode)
        ce = F.cross_entropy(logits, y)
        weight_opt.zero_grad(set_to_none=True)
        arch_opt.zero_grad(set_to_none=True)
        ce.backward()
        weight_opt.step()
        totals["ce"] += float(ce.detach()) * len(y)
        totals["correct"] += int((logits.argmax(1) == y).sum())
        totals["seen"] += len(y)
        if search_arch:
            ax, ay = arch_batches[step % len(arch_batches)]
            ax, ay = ax[rank::world], ay[rank::world]
            arch_logits, latency = model(ax, temperature=tau, mode=config.mode)
            loss = arch_loss(F.cross_entropy(arch_logits, ay), latency, config)
            weight_opt.zero_grad(set_to_none=True)
            arch_opt.zero_grad(set_to_none=True)
            loss.backward()
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


def _save_checkpoint(
    out_dir: Path, supernet: Supernet, weight_opt: torch.optim.Optimizer, arch_opt: torch.optim.Optimizer,
    config: SearchConfig, epoch: int, history: list[dict[str, Any]],
) -> None:
    """Write the checkpoint (tensors and plain values only, loadable with weights_only) and the log."""
    state = {
        "epoch": epoch,
        "config": asdict(config),
        "model": supernet.state_dict(),
        "weight_opt": weight_opt.state_dict(),
        "arch_opt": arch_opt.state_dict(),
        "history": json.dumps(history),
        "rng": torch.get_rng_state(),
    }
    partial = out_dir / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    partial.replace(out_dir / CHECKPOINT)
    (out_dir / LOG).write_text(json.dumps({"config": asdict(config), "history": history}, indent=1))


__all__ = [
    "CHECKPOINT",
    "LOG",
    "LOSS_FORMS",
    "SearchConfig",
    "SearchConfigError",
    "SearchResult",
    "arch_loss",
    "evaluate_accuracy",
    "fbnet_loss",
    "run_search",
    "split_for_arch",
    "target_loss",
    "temperature_at",
]
