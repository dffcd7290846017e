"""vidlat: hardware-aware latency toolkit for video neural networks.

The Python API (``vidlat.api``) is re-exported here and imported on first use, so ``vidlat agent
serve`` still runs on a device without torch::

    import vidlat
    predictor = vidlat.load_latency_predictor("ort-cpu-1t", space="default")
    predictor.predict("arch.yaml").total_ms
"""

from __future__ import annotations

import importlib
from typing import Any

from profiler import __version__

#: name -> module of everything ``import vidlat`` offers beside the version
API: dict[str, str] = {
    **dict.fromkeys(("load_latency_predictor", "profile", "profile_fleet", "profile_operators", "predict_model", "fit_operators",
                      "evaluate_operators", "fit", "evaluate", "search", "train", "export", "run"), "vidlat.api"),
    **dict.fromkeys(("ClipConfig", "EvolutionConfig", "SearchConfig", "TrainConfig"), "search.config"),
    "FitConfig": "predictors.fit",
}

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module 'vidlat' has no attribute '{name}'")
