"""Predicted-vs-measured scatter plot (PNG, matplotlib Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def scatter_plot(predictions: pd.DataFrame, columns: Mapping[str, str], out_path: str | Path, *, title: str = "") -> Path:
    """One marker series per predictor (label -> column), against ``measured_ms``, with y = x and ±10%."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = predictions["measured_ms"].to_numpy(float)
    values = [predictions[column].to_numpy(float) for column in columns.values()]
    low = float(min(measured.min(), *(v.min() for v in values))) * 0.9
    high = float(max(measured.max(), *(v.max() for v in values))) * 1.1
    line = np.array([low, high])
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    ax.plot(line, line, color="black", linewidth=1, label="y = x")
    ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.2, label="±10%")
    for (label, _), value, marker in zip(columns.items(), values, "o^sD"):
        ax.scatter(measured, value, s=14, marker=marker, alpha=0.75, label=label)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
