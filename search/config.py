"""Every knob of search, evolution, training and their proxy data, with its default, in one place.

The library functions, ``vidlat.api`` and the ``vidlat`` options all read their defaults from these
dataclasses (the click options never repeat a literal).

::

    ClipConfig      data, clip counts, proxy shape  ──load()──> ClipSplits (search.data)
    SearchConfig    DNAS: epochs, loss, mode, temperature, optimisers (FBNet's defaults)
    EvolutionConfig the evolution on a trained supernet: population, generations, mutation, crossover
    TrainConfig     from-scratch training of one arch: epochs, batch, learning rate
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from profiler.errors import VidlatError
from search.data.names import DEFAULT_DATA

if TYPE_CHECKING:
    from search.data.clips import ClipSplits

#: the supernet's mixing modes: ``soft`` (FBNet, every candidate runs) and ``hard`` (GDAS, one per layer)
MODES: tuple[str, ...] = ("soft", "hard")
#: the supernet's modes, and ``reinforce``: hard single paths, arch steps by the score function
SEARCH_MODES: tuple[str, ...] = (*MODES, "reinforce")
#: which paths a weight step trains: ``uniform`` the drawn path alone (``WEIGHT_PATHS`` says where it is
#: drawn from); ``sandwich`` the supernet's anchor path beside it at every step (see ``search.dnas``)
SAMPLINGS: tuple[str, ...] = ("sandwich", "uniform")
#: where a weight step's drawn path comes from: ``uniform`` over every layer's candidates whatever the
#: logits say (SPOS; the default, it ranks archs better, see ``search.dnas``), or the architecture ``logits`` (GDAS)
WEIGHT_PATHS: tuple[str, ...] = ("logits", "uniform")
#: how a DNAS picks its arch from the trained supernet: the logits' ``argmax`` (the default: as accurate
#: trained alone over three searches and 70-100 s cheaper, docs/search.md), or an ``evolution`` on the
#: supernet's scores under the argmax's latency (``search.derive``)
DERIVATIONS: tuple[str, ...] = ("argmax", "evolution")
DEFAULT_DERIVATION = "argmax"
#: the architecture-step loss: FBNet's ``CE * alpha * log(LAT) ** beta`` or a latency budget (``search.losses``)
LOSS_FORMS: tuple[str, ...] = ("fbnet", "target")


class SearchConfigError(VidlatError):
    """A search option is out of range or a checkpoint does not match the settings."""


class EvolutionConfigError(VidlatError):
    """An evolution setting is out of range, or a latency budget no arch of the space can meet."""


@dataclass(frozen=True)
class SearchConfig:
    """Every knob of a search (the defaults are FBNet's where the paper gives one).

    ``mode`` defaults to ``reinforce``: arch steps compare whole sampled paths, so the latency term
    cannot outrun a noisy accuracy signal; under ``hard`` (GDAS straight-through) the exact latency
    gradient collapsed the logits onto the table minimum within one epoch even on a supernet whose
    anchor path was 30 points more accurate than that minimum (docs/search.md, "Why REINFORCE").

    ``unit_ms`` None: the FBNet loss measures LAT in the unit that puts the uniform supernet at 28
    units (``search.losses.fbnet_unit_ms``, FBNet's phone regime), resolved when the search starts.
    """

    epochs: int = 8
    warmup_epochs: int = 2
    batch_size: int = 32
    mode: str = "reinforce"
    loss: str = "fbnet"
    alpha: float = 0.2
    beta: float = 0.6
    unit_ms: float | None = None
    target_ms: float | None = None
    latency_weight: float = 2.0
    temperature: float = 5.0
    temperature_decay: float = 0.045
    weight_lr: float = 3e-3
    weight_decay: float = 1e-4
    arch_lr: float = 0.05
    arch_fraction: float = 0.2
    sampling: str = "sandwich"
    weight_paths: str = "uniform"
    distill: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise SearchConfigError(f"sampling must be one of {', '.join(SAMPLINGS)}, got '{self.sampling}'")
        if self.weight_paths not in WEIGHT_PATHS:
            raise SearchConfigError(f"weight_paths must be one of {', '.join(WEIGHT_PATHS)}, got '{self.weight_paths}'")
        if self.mode not in SEARCH_MODES:
            raise SearchConfigError(f"mode must be one of {', '.join(SEARCH_MODES)}, got '{self.mode}'")
        if self.loss not in LOSS_FORMS:
            raise SearchConfigError(f"loss must be one of {', '.join(LOSS_FORMS)}, got '{self.loss}'")
        if self.loss == "target" and (self.target_ms is None or self.target_ms <= 0):
            raise SearchConfigError("the target loss needs a latency budget: target_ms > 0")
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise SearchConfigError(f"need epochs >= 1 and 0 <= warmup_epochs < epochs, got {self.epochs} and {self.warmup_epochs}")
        if not 0.0 <= self.distill <= 1.0:
            raise SearchConfigError(f"distill (the anchor's share of the drawn path's loss) must be in [0, 1], got {self.distill}")
        if not 0 < self.arch_fraction < 1:
            raise SearchConfigError(f"arch_fraction must be in (0, 1), got {self.arch_fraction}")
        if self.temperature <= 0 or (self.unit_ms is not None and self.unit_ms <= 0) or self.batch_size < 1:
            raise SearchConfigError("temperature, unit_ms and batch_size must be positive")

    def with_epochs(self, epochs: int) -> SearchConfig:
        """The same search over ``epochs`` epochs, the warm-up cut to leave at least one search epoch."""
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=min(self.warmup_epochs, epochs - 1))


@dataclass(frozen=True)
class EvolutionConfig:
    """Knobs of the evolution. Defaults: about 60 scored archs, 2 minutes on one core for the default
    space with 300 val clips at 3x8x32x32 (one arch: one forward pass over the val clips, ~2 s)."""

    population: int = 10
    generations: int = 5
    parents: int = 4
    mutation_prob: float = 0.1
    crossover_fraction: float = 0.5
    max_tries: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 2 or self.generations < 0 or self.max_tries < 1:
            raise EvolutionConfigError(f"need population >= 2, generations >= 0 and max_tries >= 1, got "
                                       f"{self.population}, {self.generations} and {self.max_tries}")
        if self.parents < 1:
            raise EvolutionConfigError(f"parents (the top archs that breed) must be >= 1, got {self.parents}")
        if not 0 < self.mutation_prob <= 1:
            raise EvolutionConfigError(f"mutation_prob must be in (0, 1], got {self.mutation_prob}")
        if not 0 <= self.crossover_fraction <= 1:
            raise EvolutionConfigError(f"crossover_fraction must be in [0, 1], got {self.crossover_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule of a from-scratch training run."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def proxy_classes(num_classes: int) -> int:
    """Classes of the generated task for a net with ``num_classes`` outputs: the same if it is even and
    2-10 (what the generators make), else 10 (the net's head is then resized to the data's classes)."""
    return num_classes if num_classes in range(2, 11, 2) else 10


@dataclass(frozen=True)
class ClipConfig:
    """The clips a search or a training run learns from, at the proxy shape (C x frames x size x size).

    ``data``: a generated task (``digit-order``, ``digit-actions``, ``moving-digits``) or a folder of class sub-folders
    of clips; ``train_clips`` and ``test_clips`` size a generated task (val: a fifth of train, >= 100).
    """

    data: str = DEFAULT_DATA
    train_clips: int = 1500
    test_clips: int = 1000
    frames: int = 8
    size: int = 32

    def load(self, *, channels: int, num_classes: int, seed: int = 0) -> ClipSplits:
        """The splits for a net of ``channels`` input channels and ``num_classes`` outputs (``proxy_classes``)."""
        from search.data import load_data

        return load_data(self.data, channels=channels, frames=self.frames, size=self.size, seed=seed,
                         n_train=self.train_clips, n_val=max(100, self.train_clips // 5), n_test=self.test_clips,
                         num_classes=proxy_classes(num_classes))

    def settings(self) -> dict[str, object]:
        """What shaped the training clips, as a search checkpoint records them (its resume check)."""
        return {"data": self.data, "train_clips": self.train_clips, "frames": self.frames, "size": self.size}


__all__ = ["DEFAULT_DERIVATION", "DERIVATIONS", "LOSS_FORMS", "MODES", "SAMPLINGS", "SEARCH_MODES", "WEIGHT_PATHS", "ClipConfig", "EvolutionConfig", "EvolutionConfigError",
           "SearchConfig", "SearchConfigError", "TrainConfig", "proxy_classes"]
