"""FBNet-style differentiable architecture search: the loop that trains weights and architecture logits.

::

    train split --80%--> weight batches --CE--> weight optimiser (AdamW)      [every epoch]
                --20%--> arch batches   --CE x latency term--> arch optimiser (Adam)   [after warm-up]
    per epoch: tau = tau0 * exp(-decay * epoch); val accuracy of the derived (argmax) arch and of
               archs sampled from softmax(logits) (shared weights, batch-statistic BN: search.scoring);
               history row, checkpoint (resumable), search log JSON

The architecture-step losses and the temperature schedule are in ``search.losses``, the checkpoint in
``search.checkpoint``, the device-level search (latency table, files, report) in ``search.device_search``.

How an arch step reaches the logits (``mode``): ``soft`` (FBNet: every candidate runs, mixed by the
Gumbel-softmax sample), ``hard`` (GDAS: one candidate per layer runs, straight-through gradients), or
``reinforce`` (ProxylessNAS's score function: a few single paths drawn from softmax(logits) run on the
same batch, and each path's own loss, its CE with its table latency, weights ``grad log p(path)``
against their mean); weight steps of ``reinforce`` run single paths as ``hard`` does.

The weights are trained on plain CE (the latency term does not depend on them). Where a weight step's
path comes from (``weight_paths``):

- ``uniform`` (default): one candidate per layer drawn uniformly whatever the logits say, as SPOS trains
  its supernet, so every arch gets its share of steps to the end of the search;
- ``logits``: the path drawn from the logits (GDAS hard mode), which concentrates the weight steps on
  the archs the arch steps favour. On the default search (digit-order, ``ort-cpu-1t``, one search
  seed, 12 random archs trained alone on two seeds each) ``uniform`` raised the Kendall tau between
  supernet val accuracy and stand-alone test accuracy from 0.33 to 0.66 and the val accuracy of paths
  drawn from the logits from 0.317 to 0.353, for 4% more CPU time (docs/search.md).

Which paths a weight step trains (``sampling``):

- ``uniform``: that drawn path alone;
- ``sandwich`` (default): that path and the supernet's anchor path (the space's reference arch) at
  every step, as Once-for-All and BigNAS train their largest network beside the sampled ones. The
  candidates share weights (``search.sharing``), so the anchor's steps train what every path uses.
  Measured on the default space (72 weight steps of 32 moving-digits clips, weight-sharing supernet,
  one seed): val accuracy of 4 random paths 0.25-0.30 uniform, 0.27-0.50 sandwich (anchor path 0.86,
  paths drawn from the logits 0.48 against 0.28); 24 anchor steps and then uniform fell back to
  0.24-0.33 (the anchor from 0.61 train accuracy to 0.41), so the anchor must keep training. It costs
  a second forward and backward per weight step. The anchor runs first, and the drawn path learns
  from CE and the anchor's predictions on the same batch (``distill``, in-place distillation as in
  BigNAS and Once-for-All; see ``path_loss``): on the default search (digit-actions, ort-cpu-1t,
  one seed) 0.5 raised the val accuracy of drawn paths from 0.327 to 0.363 and of the derived arch
  from 0.377 to 0.447, for 11% more CPU time.

Under
``torchrun`` (WORLD_SIZE > 1, gloo) the supernet is wrapped in ``DistributedDataParallel`` and each
rank trains on its own shard of every batch list; rank 0 writes the checkpoint and the log.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from profiler.progress import progress_bar
from search.checkpoint import CHECKPOINT, latency_digest, load_checkpoint, save_checkpoint
from search.config import SearchConfig, SearchConfigError
from search.data.clips import ClipSet, ClipSplits
from search.losses import arch_loss, temperature_at, with_unit_ms
from search.scoring import path_accuracy, sampled_accuracy
from search.supernet import Supernet
from search.train import channels_last_input, to_channels_last

#: paths an arch step compares under ``reinforce`` (on the same batch)
REINFORCE_PATHS = 4


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


def distributed_rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
    ``config.unit_ms`` None is resolved from the supernet's latency table (``search.losses.with_unit_ms``).
    """
    out_dir = Path(out_dir)
    config = with_unit_ms(config, [[float(v) for v in layer.latencies_ms] for layer in supernet.layers], supernet.fixed_ms)
    rank, world = distributed_rank()
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    weight_part, arch_part = split_for_arch(data.train, config.arch_fraction, config.seed)
    weight_opt = torch.optim.AdamW(supernet.weight_parameters(), lr=config.weight_lr, weight_decay=config.weight_decay)
    arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=config.arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    settings = {**(data_settings or {}), "latency_table": latency_digest(supernet)}
    state = load_checkpoint(out_dir / CHECKPOINT, config, settings, extend=extend)
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
            save_checkpoint(out_dir, supernet, weight_opt, arch_opt, config, settings, epoch, history)
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
        teacher = None
        if config.sampling == "sandwich":  # its own backward: DDP allows one forward per backward
            anchor_logits, _ = model(x, path=supernet.anchor, mode=forward_mode)
            F.cross_entropy(anchor_logits, y).backward()
            teacher = anchor_logits.detach()
        if config.weight_paths == "uniform":
            path = [int(torch.randint(len(layer.names), ())) for layer in supernet.layers]
            logits, _ = model(x, path=path, mode=forward_mode)
        else:
            logits, _ = model(x, temperature=tau, mode=forward_mode)
        ce = F.cross_entropy(logits, y)
        path_loss(logits, ce, teacher, config.distill).backward()
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


def path_loss(logits: torch.Tensor, ce: torch.Tensor, teacher: torch.Tensor | None, distill: float) -> torch.Tensor:
    """The drawn path's weight loss from its ``logits`` and their ``ce``: CE, or with in-place distillation (BigNAS, Once-for-All)
    ``(1 - distill) * CE + distill * KL(softmax(teacher) || softmax(logits))``, the teacher being the
    anchor path's predictions on the same batch."""
    if teacher is None or distill == 0.0:
        return ce
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(teacher, dim=1), reduction="batchmean", log_target=True)
    return (1.0 - distill) * ce + distill * kl


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
    # autograd.grad, not backward(): the logits' accumulate-grad hooks belong to DDP's reducer, which
    # expects them only after a forward through the wrapped model; the average over ranks is done here.
    arch = list(supernet.arch_parameters())
    grads = torch.autograd.grad((advantage * log_probs).mean(), arch)
    for logits, grad in zip(arch, grads):
        if world > 1:
            dist.all_reduce(grad)
            grad = grad / world
        logits.grad = grad if logits.grad is None else logits.grad + grad
    return losses.mean()


__all__ = ["REINFORCE_PATHS", "SearchResult", "budget_search", "distributed_rank", "path_loss", "run_search", "split_for_arch"]
