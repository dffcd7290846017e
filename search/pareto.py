"""Accuracy against predicted latency of the archs a search scored on its supernet; the Pareto front.

::

    path [i_0 .. i_L-1] --PredictedLatency: table sum + fixed ms, calibration (if fitted)--> predicted ms
                        --SupernetScorer (val clips, shared weights)--> supernet accuracy
    ScoredArch rows --pareto_front--> non-dominated rows (report.json "pareto")
              + landmarks (space.reference_archs(), a few space.sample(seed)) + chosen arch(s) + budgets
              --write_pareto_plot--> pareto.png

The predicted latency is the one ``vidlat predict`` states for the arch when the device has a fitted
predictor (``predictors.Calibration`` applied to the block sum), else the plain block sum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predictors.errors import PredictorError
from predictors.network import Calibration
from search.supernet import Supernet

if TYPE_CHECKING:
    from search.space import SearchSpace

Scorer = Callable[[Sequence[int]], float]


@dataclass(frozen=True)
class ScoredArch:
    """One architecture as a search saw it: candidate indices, block strings, predicted ms, supernet accuracy."""

    path: tuple[int, ...]
    blocks: tuple[str, ...]
    predicted_ms: float
    accuracy: float
    origin: str = ""

    def row(self) -> dict[str, Any]:
        """A JSON row: predicted_ms, val_acc_supernet, origin, layers."""
        return {"predicted_ms": round(self.predicted_ms, 4), "val_acc_supernet": self.accuracy, "origin": self.origin,
                "layers": list(self.blocks)}


@dataclass(frozen=True)
class PredictedLatency:
    """Predicted ms of a path: fixed ms + the table's ms of its candidates (in float64, as the table was
    read; the supernet's buffers are float32), then the calibration when one is given (increasing: checked)."""

    table: tuple[tuple[float, ...], ...]
    fixed_ms: float
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        if self.calibration is not None and self.calibration.scale <= 0:
            raise PredictorError(f"calibration scale {self.calibration.scale:g} is not positive: a faster block sum "
                                 "would not mean a faster network; refit it with `vidlat fit`")

    @classmethod
    def of(cls, latency_table: Sequence[Sequence[float]], fixed_ms: float,
           calibration: Calibration | None = None) -> "PredictedLatency":
        return cls(tuple(tuple(float(v) for v in row) for row in latency_table), float(fixed_ms), calibration)

    def table_ms(self, path: Sequence[int]) -> float:
        """Fixed ms plus the table's ms of every chosen candidate (no calibration)."""
        return self.fixed_ms + sum(row[index] for row, index in zip(self.table, path))

    def __call__(self, path: Sequence[int]) -> float:
        block_sum = self.table_ms(path)
        return block_sum if self.calibration is None else float(self.calibration(block_sum))

    def table_budget(self, budget_ms: float) -> float:
        """The table sum (fixed part included) that the calibration maps to ``budget_ms``."""
        if self.calibration is None:
            return budget_ms
        return (budget_ms - self.calibration.offset_ms) / self.calibration.scale

    def fastest(self) -> tuple[int, ...]:
        """The fastest path: the cheapest candidate of every layer."""
        return tuple(min(range(len(row)), key=row.__getitem__) for row in self.table)


def score_arch(supernet: Supernet, scorer: Scorer, path: Sequence[int], *, latency: PredictedLatency,
               origin: str = "") -> ScoredArch:
    """``path`` with its block strings, predicted latency and supernet accuracy."""
    path = tuple(int(index) for index in path)
    blocks = tuple(layer.names[index] for layer, index in zip(supernet.layers, path))
    return ScoredArch(path, blocks, latency(path), float(scorer(path)), origin)


def landmark_archs(space: SearchSpace, supernet: Supernet, scorer: Scorer, *, latency: PredictedLatency,
                   random_archs: int = 6, seed: int = 0) -> list[ScoredArch]:
    """The space's reference archs and ``random_archs`` uniform samples (seeds seed .. seed+n-1), scored alike."""
    archs = [(f"reference {name}", arch.layers) for name, arch in space.reference_archs().items()]
    archs += [(f"random seed {seed + k}", space.sample(seed + k).layers) for k in range(random_archs)]
    return [score_arch(supernet, scorer, supernet.path_of(blocks), latency=latency, origin=origin) for origin, blocks in archs]


def pareto_front(archs: Sequence[ScoredArch]) -> list[ScoredArch]:
    """The archs no other arch beats on both axes (as fast or faster and as accurate or more, one strictly), by latency."""
    front: list[ScoredArch] = []
    for arch in sorted({a.path: a for a in archs}.values(), key=lambda a: (a.predicted_ms, -a.accuracy, a.path)):
        if not front or arch.accuracy > front[-1].accuracy:
            front.append(arch)
    return front


def write_pareto_plot(path: str | Path, *, scored: Sequence[ScoredArch], landmarks: Sequence[ScoredArch] = (),
                      chosen: Mapping[str, ScoredArch] | None = None, budgets_ms: Sequence[float] = (),
                      title: str = "") -> Path:
    """PNG: every scored arch, the front as a step line, landmarks, the chosen arch(s) and budget lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter([a.predicted_ms for a in scored], [a.accuracy for a in scored], s=12, c="0.6", label="scored by the search")
    front = pareto_front([*scored, *landmarks, *(chosen or {}).values()])
    ax.step([a.predicted_ms for a in front], [a.accuracy for a in front], where="post", c="C0", lw=1, label="Pareto front")
    for arch in landmarks:
        marker = "D" if arch.origin.startswith("reference") else "x"
        ax.scatter(arch.predicted_ms, arch.accuracy, marker=marker, c="C2" if marker == "D" else "C3", s=30)
        if marker == "D":
            ax.annotate(arch.origin.removeprefix("reference "), (arch.predicted_ms, arch.accuracy), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.scatter([], [], marker="D", c="C2", s=30, label="reference archs")
    ax.scatter([], [], marker="x", c="C3", s=30, label="random archs")
    for label, arch in (chosen or {}).items():
        ax.scatter(arch.predicted_ms, arch.accuracy, marker="*", s=140, c="C1", edgecolors="k", linewidths=0.5, zorder=5)
        ax.annotate(label, (arch.predicted_ms, arch.accuracy), fontsize=7, xytext=(4, -9), textcoords="offset points")
    ax.scatter([], [], marker="*", s=140, c="C1", edgecolors="k", linewidths=0.5, label="chosen")
    for budget in budgets_ms:
        ax.axvline(budget, ls="--", lw=0.8, c="0.3")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("supernet val accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_pareto(out_dir: str | Path, *, space: SearchSpace, supernet: Supernet, scorer: Scorer, scored: Sequence[ScoredArch],
                 chosen: Mapping[str, ScoredArch], latency: PredictedLatency, budgets_ms: Sequence[float] = (),
                 title: str = "", random_archs: int = 6, seed: int = 0) -> dict[str, Any]:
    """Score the landmarks, write ``OUT/pareto.png``; the report's part: front rows, landmark rows, scored rows, file."""
    landmarks = landmark_archs(space, supernet, scorer, latency=latency, random_archs=random_archs, seed=seed)
    plot = write_pareto_plot(Path(out_dir) / "pareto.png", scored=scored, landmarks=landmarks, chosen=chosen,
                             budgets_ms=budgets_ms, title=title)
    return {
        "pareto": [a.row() for a in pareto_front([*scored, *landmarks, *chosen.values()])],
        "landmarks": [a.row() for a in landmarks],
        "scored_archs": [a.row() for a in scored],
        "file": str(plot),
    }


__all__ = ["PredictedLatency", "ScoredArch", "Scorer", "landmark_archs", "pareto_front", "score_arch", "write_pareto",
           "write_pareto_plot"]
