"""The search's checkpoint and log: what a search writes every epoch and resumes from.

::

    OUT/checkpoint.pt   {epoch, config, settings, model, weight_opt, arch_opt, history (JSON), rng}
                        tensors and plain values only: loaded back with torch.load(weights_only=True)
    OUT/search_log.json {config, settings, history}

``settings`` are the data and latency settings beside the ``SearchConfig`` (clips, proxy shape,
device, space, the latency table's digest); resuming with any of them changed is refused, and so is
another ``epochs`` unless the search is extended.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from search.config import SearchConfig, SearchConfigError
from search.supernet import Supernet

CHECKPOINT = "checkpoint.pt"
LOG = "search_log.json"

CHECKPOINT_KEYS: frozenset[str] = frozenset({"epoch", "config", "settings", "model", "weight_opt", "arch_opt", "history", "rng"})


def read_checkpoint(path: Path) -> dict[str, Any]:
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
        # checkpoints written before ``weight_paths`` existed drew their weight paths from the logits
        state["config"] = SearchConfig(**{"weight_paths": "logits", **state["config"]})
    except (TypeError, SearchConfigError) as exc:
        raise SearchConfigError(f"{path} holds settings this vidlat cannot read ({exc}); {how}") from None
    return state


def load_checkpoint(path: Path, config: SearchConfig, settings: dict[str, Any], *, extend: bool = False) -> dict[str, Any] | None:
    """The state to resume from ``path`` (``None`` if there is none); anything that shapes the result must match.

    ``settings`` are the data and latency settings beside ``config`` (clips, proxy shape, device, table);
    ``config.epochs`` may differ only with ``extend`` (continue to more epochs, never fewer than are done).
    """
    if not path.is_file():
        return None
    state = read_checkpoint(path)
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


def save_checkpoint(
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


__all__ = ["CHECKPOINT", "CHECKPOINT_KEYS", "LOG", "latency_digest", "load_checkpoint", "read_checkpoint", "save_checkpoint"]
