"""A fitted predictor saved without pickle: skops with an explicit trusted-type check.

::

    FittedPredictor ──save──> one .skops file {format, device, space, fingerprint, features,
                                               regressor kind + estimator, calibration, scores,
                                               lookup-table entries}
    .skops file ──load(device=, fingerprint=)──> FittedPredictor  (another device, fingerprint or
                                                                  feature set: PredictorMismatchError)

Before loading, every type in the file is listed (``skops.io.get_untrusted_types``); only
scikit-learn estimators, numpy arrays and builtins are trusted, anything else is refused, so a
file a user hands us can never run code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio

from predictors.errors import PredictorError, PredictorMismatchError
from predictors.features import FeatureSet
from predictors.lut import LUTPredictor
from predictors.network import Calibration, NetworkPredictor
from predictors.regressors import LatencyRegressor

FORMAT = "vidlat-predictor/1"
TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "builtins.")
# fingerprint fields that say which hardware and runtime a table was measured with
FINGERPRINT_FIELDS_IGNORED: frozenset[str] = frozenset({"vidlat", "python", "os"})


@dataclass
class FittedPredictor:
    """Everything ``vidlat predict`` needs for one device and space."""

    device: str
    space: str
    fingerprint: dict[str, str]
    entries: pd.DataFrame
    calibration: Calibration = field(default_factory=Calibration)
    regressor: LatencyRegressor | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def network_predictor(self) -> NetworkPredictor:
        """Lookup table (regressor for misses) plus calibration."""
        lut = LUTPredictor(self.entries, regressor=self.regressor, device=self.device)
        return NetworkPredictor(lut, self.calibration)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = self.entries
        spec = entries["spec"] if "spec" in entries.columns else pd.Series([None] * len(entries))
        payload: dict[str, Any] = {
            "format": FORMAT,
            "device": self.device,
            "space": self.space,
            "fingerprint": {str(k): str(v) for k, v in self.fingerprint.items()},
            "calibration": self.calibration.to_dict(),
            "scores": json.loads(json.dumps(self.scores, default=float)),
            "lut": {
                "layer": [int(v) for v in entries["layer"]],
                "block": [str(v) for v in entries["block"]],
                "key": [str(v) for v in entries["key"]],
                "median_ms": [None if pd.isna(v) else float(v) for v in entries["median_ms"]],
                "spec": [None if s is None or (isinstance(s, float) and math.isnan(s)) else (s if isinstance(s, str) else json.dumps(s)) for s in spec],
            },
        }
        if self.regressor is not None and self.regressor.estimator is not None:
            payload["regressor"] = {
                "kind": self.regressor.kind,
                "seed": self.regressor.seed,
                "features": self.regressor.features.to_dict(),
                "estimator": self.regressor.estimator,
            }
        sio.dump(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, fingerprint: dict[str, str] | None = None) -> "FittedPredictor":
        """Load a saved predictor; ``device`` / ``fingerprint`` given: they must match what it was fitted on."""
        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"no fitted predictor at '{path}'; run `vidlat fit` first")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:  # zip or schema errors of a file that is not a skops file
            raise PredictorError(f"'{path}' is not a saved vidlat predictor ({exc})") from exc
        refused = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise PredictorError(f"'{path}' holds types vidlat does not trust: {', '.join(refused)}")
        payload = sio.load(path, trusted=untrusted)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise PredictorError(f"'{path}' is not a saved vidlat predictor (format {FORMAT})")
        if device is not None and payload["device"] != device:
            raise PredictorMismatchError(
                f"predictor '{path}' was fitted for device '{payload['device']}', not '{device}'; fit one with `vidlat fit --device {device}`"
            )
        if fingerprint is not None:
            saved = payload["fingerprint"]
            differ = sorted(
                key for key in set(saved) & set(fingerprint)
                if key not in FINGERPRINT_FIELDS_IGNORED and str(saved[key]) != str(fingerprint[key])
            )
            if differ:
                detail = "; ".join(f"{key}: fitted '{saved[key]}', here '{fingerprint[key]}'" for key in differ)
                raise PredictorMismatchError(f"predictor '{path}' was fitted on other hardware or runtime ({detail}); refit it")
        regressor = None
        if "regressor" in payload:
            saved = payload["regressor"]
            regressor = LatencyRegressor.from_parts(
                saved["kind"], int(saved["seed"]), FeatureSet.from_dict(saved["features"]), saved["estimator"]
            )
        lut = payload["lut"]
        entries = pd.DataFrame(
            {
                "layer": lut["layer"],
                "block": lut["block"],
                "key": lut["key"],
                "median_ms": [math.nan if v is None else v for v in lut["median_ms"]],
                "spec": lut["spec"],
            }
        )
        return cls(
            device=payload["device"],
            space=payload["space"],
            fingerprint=dict(payload["fingerprint"]),
            entries=entries,
            calibration=Calibration.from_dict(payload["calibration"]),
            regressor=regressor,
            scores=payload.get("scores", {}),
        )
