"""How a DNAS turns its trained supernet into one arch (``vidlat search --derive``).

::

    trained logits --argmax per layer--> argmax arch, predicted ms L
    argmax (default):    that arch (FBNet's and GDAS's rule)
    evolution:           argmax + archs drawn from softmax(logits) --evolve(budget L, supernet val accuracy)-->
                         the most accurate arch on the supernet whose predicted ms is at most L
                         (ties: the faster; the argmax itself when nothing scored beats it)

The arch steps decide where on the latency axis the search lands (the FBNet loss weighs CE against
latency); with ``evolution`` the supernet's own scores then pick the arch there. The evolution starts
from the learned distribution, as FBNet samples its final candidates from it, and keeps the argmax's
latency as a hard budget, so the chosen arch is never slower than the argmax and never scores worse on
the supernet. Trained alone it did no better: on three default searches of ``ort-cpu-1t`` (two
training seeds each) its arch beat the argmax twice and lost once, 0.611 against 0.619 on average
(docs/search.md, "Deriving the arch on the supernet"); supernet scores that rank random archs at
Kendall 0.3-0.5 carry little of a choice among ~60 archs of one latency. So ``argmax`` stays the
default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from search.config import DEFAULT_DERIVATION, DERIVATIONS, EvolutionConfig, SearchConfigError
from search.evolution import evolve
from search.pareto import PredictedLatency, ScoredArch, Scorer, score_arch
from search.supernet import Supernet


@dataclass
class Derivation:
    """The arch a search hands on (``chosen``), the logits' argmax, every arch scored to choose, the seconds spent."""

    chosen: ScoredArch
    argmax: ScoredArch
    scored: list[ScoredArch] = field(default_factory=list)
    seconds: float = 0.0


def logit_draws(supernet: Supernet, count: int, *, seed: int) -> list[list[int]]:
    """``count`` paths, each layer's candidate drawn from softmax(logits) (a seeded generator, the global RNG untouched)."""
    generator = torch.Generator().manual_seed(seed)
    return [[int(torch.multinomial(layer.probabilities().detach(), 1, generator=generator)) for layer in supernet.layers]
            for _ in range(count)]


def check_derivation(how: str) -> None:
    """``SearchConfigError`` (one line) unless ``how`` is one of ``DERIVATIONS``."""
    if how not in DERIVATIONS:
        raise SearchConfigError(f"derive must be one of {', '.join(DERIVATIONS)}, got '{how}'")


def derive_arch(supernet: Supernet, scorer: Scorer, *, latency: PredictedLatency, how: str = DEFAULT_DERIVATION,
                evolution: EvolutionConfig = EvolutionConfig()) -> Derivation:
    """The arch of a trained DNAS supernet under rule ``how`` (``DERIVATIONS``); ``latency`` prices paths as the
    report does (table sum, calibrated when the device has a fitted predictor)."""
    check_derivation(how)
    started = time.perf_counter()
    argmax_path = supernet.path_of(supernet.derived())
    argmax = score_arch(supernet, scorer, argmax_path, latency=latency, origin="dnas argmax")
    if how == "argmax":
        return Derivation(chosen=argmax, argmax=argmax, scored=[argmax], seconds=time.perf_counter() - started)
    seeds = [argmax_path, *logit_draws(supernet, evolution.population - 1, seed=evolution.seed)]
    run = evolve(supernet, scorer, latency=latency, budget_ms=argmax.predicted_ms, config=evolution, seeds=seeds)
    return Derivation(chosen=run.best, argmax=argmax, scored=run.scored, seconds=time.perf_counter() - started)


__all__ = ["Derivation", "check_derivation", "derive_arch", "logit_draws"]
