"""A fitted predictor saved without pickle: skops with an explicit trusted-type check.

::

    FittedPredictor ──save──> one .skops file {format, device, space, fingerprint, features,
                                               regressor kind + estimator, calibration, scores,
                                               lookup-table entries}
    .skops file ──load(device=, fingerprint=)──> FittedPredictor  (another device, fingerprint or
                                                                  feature set: PredictorMismatchError)

Before loading, every node of the file's schema is listed as (skops loader, type) and checked
against ``TRUSTED_NODES``: exactly the containers, numpy arrays and estimator classes that the
regressors of ``predictors.regressors`` save (found by saving each kind and walking its schema).
No function, method or other callable is ever trusted (``FunctionTransformer``, ``exec``,
``numpy.full_like``, ...), so a file a user hands us can never run code.
"""

from __future__ import annotations

import json
import math
import zipfile
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
KEY_TYPE = "dict key type"
# (skops loader, type) of every node a saved predictor holds: the payload's containers and plain
# values, and the estimators of every regressor kind with their internal types. No type or function
# as a value, nothing that loads as a function, method or partial: str only as the key type of a dict.
TRUSTED_NODES: frozenset[tuple[str, str]] = frozenset({
    ("DictNode", "builtins.dict"),
    ("ListNode", "builtins.list"),
    ("TupleNode", "builtins.tuple"),
    (KEY_TYPE, "builtins.str"),
    *(("JsonNode", f"builtins.{name}") for name in ("str", "int", "float", "bool", "NoneType")),
    ("NdArrayNode", "numpy.ndarray"),
    ("NdArrayNode", "numpy.float64"),
    ("RandomStateNode", "numpy.random.mtrand.RandomState"),
    ("TreeNode", "sklearn.tree._tree.Tree"),
    ("LossNode", "sklearn._loss._loss.CyHalfSquaredError"),
    *(("ObjectNode", name) for name in (
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.dummy.DummyRegressor",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._ridge.RidgeCV",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.tree._classes.DecisionTreeRegressor",
    )),
})
# fingerprint fields that say which hardware and runtime a table was measured with
FINGERPRINT_FIELDS_IGNORED: frozenset[str] = frozenset({"vidlat", "python", "os"})


def predictor_path(store_path: str | Path, device: str, space: str) -> Path:
    """Where ``vidlat fit`` saves the predictor of ``device`` and ``space`` (a name or YAML path): beside the store."""
    return Path(store_path).parent / "predictors" / f"{device}--{Path(space).stem}.skops"


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
        payload = load_checked(path, kind="predictor", fmt=FORMAT, fit_command="vidlat fit --device {device}", device=device,
                               fingerprint=fingerprint)
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


def load_checked(path: Path, *, kind: str, fmt: str, fit_command: str, device: str | None = None,
                 fingerprint: dict[str, str] | None = None) -> dict[str, Any]:
    """The payload of a saved ``kind`` file after the checks every kind shares: it exists, its types are
    trusted (``load_trusted``), its format is ``fmt``, and, when given, it was fitted for ``device`` on a
    machine with this ``fingerprint`` (fields in ``FINGERPRINT_FIELDS_IGNORED`` aside). ``fit_command``
    is the command that makes one, with ``{device}`` where the device name goes."""
    if not path.is_file():
        raise PredictorError(f"no {kind} at '{path}'; run `{fit_command.format(device=device or 'D')}` first")
    payload = load_trusted(path)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise PredictorError(f"'{path}' is not a saved vidlat {kind} (format {fmt})")
    if device is not None and payload.get("device") != device:
        raise PredictorMismatchError(
            f"{kind} '{path}' was fitted for device '{payload.get('device')}', not '{device}'; fit one with `{fit_command.format(device=device)}`"
        )
    if fingerprint is not None:
        saved = payload.get("fingerprint")
        if not isinstance(saved, dict):
            raise PredictorError(f"'{path}' is not a saved vidlat {kind} (its fingerprint is not a mapping)")
        differ = sorted(
            key for key in set(saved) & set(fingerprint)
            if key not in FINGERPRINT_FIELDS_IGNORED and str(saved[key]) != str(fingerprint[key])
        )
        if differ:
            detail = "; ".join(f"{key}: fitted '{saved[key]}', here '{fingerprint[key]}'" for key in differ)
            raise PredictorMismatchError(f"{kind} '{path}' was fitted on other hardware or runtime ({detail}); refit it")
    return payload


def load_trusted(path: Path) -> Any:
    """The payload of a skops file whose every schema node is in ``TRUSTED_NODES``; else ``PredictorError``, unloaded."""
    nodes = schema_nodes(path)
    refused = sorted({f"{name} ({loader})" for loader, name in nodes - TRUSTED_NODES})
    if refused:
        shown = ", ".join(refused[:5]) + (f" ... ({len(refused) - 5} more)" if len(refused) > 5 else "")
        raise PredictorError(
            f"'{path}' holds types a vidlat predictor never contains, refused unloaded: {shown}; "
            "load only predictors written by `vidlat fit`"
        )
    try:
        return sio.load(path, trusted=sorted({name for _, name in nodes}))
    except Exception as exc:  # a trusted type with state it cannot take
        raise PredictorError(f"'{path}' is not a saved vidlat predictor ({type(exc).__name__}: {exc})") from None


def schema_nodes(path: Path) -> set[tuple[str, str]]:
    """Every (skops loader, module.type) in the schema of the skops file ``path``, read as JSON only."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise PredictorError(f"'{path}' is not a saved vidlat predictor ({type(exc).__name__}: {exc})") from None
    found: set[tuple[str, str]] = set()
    stack: list[tuple[Any, bool]] = [(schema, False)]
    while stack:
        item, in_key_types = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                loader = str(item["__loader__"])
                if loader == "TypeNode" and in_key_types:
                    loader = KEY_TYPE  # the type of a dict's keys, not a value the payload can call
                found.add((loader, f"{item.get('__module__')}.{item.get('__class__')}"))
            stack.extend((value, in_key_types or key == "key_types") for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, in_key_types) for value in item)
    return found
