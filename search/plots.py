"""The search's history as PNG: candidate probabilities per layer and epoch, and the latency curve.

::

    SearchResult.history --plot_search_history--> OUT/probabilities.png (one panel per layer, candidates x epochs)
                                               \-> OUT/latency.png (expected and derived-arch latency per epoch)
"""

from __future__ import annotations

from pathlib import Path

from search.dnas import SearchResult


def plot_search_history(result: SearchResult, out_dir: str | Path, *, candidates: list[list[str]], title: str) -> dict[str, Path]:
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


__all__ = ["plot_search_history"]
