"""Fit everything ``vidlat predict`` needs for one device and space from the store's tables.

::

    store table (device) ──blocks, stem, head (ok)──> select_regressor ──> best regressor (+ every score)
          │                                                       │ misses of the space's table
          ├──space entries ⨝ latest median──> LUTPredictor <──────┘
          └──networks (op "network") ──seeded split──> <= 10 calibration networks ──> Calibration
                                                                   │
                                          FittedPredictor(device, space, fingerprint, ...) ──save──> .skops

The calibration networks are the same seeded draw that ``evaluate_networks`` uses, so evaluating
with the same seed never tests on a network the calibration saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from predictors.errors import PredictorError
from predictors.evaluation import split_networks
from predictors.features import as_spec
from predictors.lut import ContendedPolicy, LUTPredictor, latency_ms, measured_entries
from predictors.network import Calibration, fit_calibration, network_frame
from predictors.persist import FittedPredictor
from predictors.regressors import REGRESSORS, select_regressor

NOT_BLOCKS = frozenset({"network", "onnx"})


@dataclass(frozen=True)
class FitConfig:
    """What ``vidlat fit`` and ``vidlat evaluate`` share: calibration size, contended rows, seed.

    ``calibration_networks``: measured whole networks the calibration is fitted on (the rest are the
    test set of ``evaluate``); ``contended``: rows still flagged contended after the sweep's re-measures
    use their thread CPU time (``cpu``), their wall time (``wall``), are dropped (``drop``), or every row
    uses CPU time (``cpu-all``, a shared machine where nearly every run is contended); ``seed``: of the
    calibration / test split.
    """

    calibration_networks: int = 10
    contended: ContendedPolicy = "cpu"
    seed: int = 0


def block_rows(table: pd.DataFrame, *, contended: ContendedPolicy = "cpu") -> pd.DataFrame:
    """Measured (ok) workloads of a store table that are blocks, stems or heads: key, spec, median_ms."""
    if table.empty:
        return pd.DataFrame(columns=["key", "spec", "median_ms"])
    ok = table.assign(median_ms=latency_ms(table, contended))
    ok = ok[ok["median_ms"] > 0]  # an identity can take 0 ms on a simulator: nothing to learn on log latency
    ops = ok["spec"].map(lambda spec: as_spec(spec).get("op"))
    return ok[~ops.isin(NOT_BLOCKS)][["key", "spec", "median_ms"]].reset_index(drop=True)


def fit_predictor(
    table: pd.DataFrame,
    entries: pd.DataFrame,
    *,
    device: str,
    space: str,
    fingerprint: dict[str, str],
    calibration_networks: int = 10,
    kinds: Sequence[str] = tuple(REGRESSORS),
    contended: ContendedPolicy = "cpu",
    seed: int = 0,
) -> FittedPredictor:
    """Regressor on every measured block, lookup table of the space, calibration on a few networks.

    ``table`` is the store's table of the device; ``entries`` are the space's (layer, block, key, spec)
    rows (``space_entries``). With fewer than 10 measured blocks there is no regressor; with no
    measured networks the calibration is the identity.
    """
    blocks = block_rows(table, contended=contended)
    if blocks.empty:
        raise PredictorError(f"no measured blocks for device '{device}'; run `vidlat profile --device {device} --space {space}`")
    selection = select_regressor(list(blocks["spec"]), blocks["median_ms"], kinds=kinds, seed=seed) if len(blocks) >= 10 else None
    lut_entries = measured_entries(entries, table, contended=contended)
    lut = LUTPredictor(lut_entries, regressor=selection.best if selection else None, device=device)
    networks = network_frame(table, space, contended=contended)
    count = min(calibration_networks, max(len(networks) - 3, 0))
    calibration = Calibration()
    calibration_keys: list[str] = []
    if count:
        calib, _ = split_networks(networks, calibration_networks=count, seed=seed)
        calibration = fit_calibration(lut.predict_archs(list(calib["layers"])), calib["median_ms"], kind="auto")
        calibration_keys = list(calib["key"])
    scores = {
        "regressor": selection.best.kind if selection else None,
        "validation": selection.scores if selection else {},
        "validation_size": selection.validation_size if selection else 0,
        "training_blocks": len(blocks),
        "calibration_networks": calibration_keys,
    }
    return FittedPredictor(device, space, {str(k): str(v) for k, v in fingerprint.items()}, lut_entries, calibration,
                           selection.best if selection else None, scores)
