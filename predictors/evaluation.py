"""Judge the predictors on measured whole networks they were not fitted on.

::

    measured networks ──seeded split──> calibration (<= 10) ──fit──> Calibration (block sum, regressor sum)
                               └──────> test (the rest) ──┬── FLOPs                      (ranking only)
                                                          ├── block sum (LUT)
                                                          ├── block sum + calibration
                                                          ├── regressor + calibration     (out-of-fold blocks)
                                                          ├── in-context table            (fitted on the calibration networks)
                                                          └── measurement repeat          (the noise ceiling)
                                                                   │
                                   metrics per row (acc5, acc10, MAPE, RMSE, Kendall, Spearman)

The "measurement repeat" row compares two halves of the test networks' own interleaved
measurement (the median over the even rounds against the median over the odd rounds): a predictor
cannot rank the networks better than their measurement repeats. It is a split half within one
sweep, so it misses what differs between sweeps (a new session's memory layout, a later hour of
the host); a second sweep into another store gives the full repeat (bench/profile_repeatability.py).

The "regressor" row replaces every block's measured latency by a regressor that never saw that
block (out-of-fold, stratified by op kind), so it shows what the regressor gives for a space that
was never tabulated; stem and head stay measured (they are in every network alike).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.context import MIN_NETWORKS as MIN_CONTEXT_NETWORKS
from predictors.context import InContextTable
from predictors.errors import PredictorError
from predictors.lut import FIXED_LAYER, LUTPredictor
from predictors.metrics import METRICS, evaluate
from predictors.network import MAX_CALIBRATION_NETWORKS, Calibration, fit_calibration
from predictors.regressors import out_of_fold_ms

ROWS: tuple[str, ...] = ("flops (ranking only)", "block sum", "block sum + calibration", "regressor + calibration")
CONTEXT_ROW = "in-context table"
REPEAT_ROW = "measurement repeat"
MIN_REPEAT_ROUNDS = 4  # two halves of at least two rounds each


@dataclass
class EvaluationReport:
    """Metrics per predictor row, the test-set predictions and what was fitted."""

    device: str
    space: str
    rows: dict[str, dict[str, float]]
    predictions: pd.DataFrame
    calibration: Calibration
    regressor_calibration: Calibration | None
    calibration_keys: list[str] = field(default_factory=list)
    regressor_kind: str | None = None

    def table_text(self) -> str:
        """The metrics as an aligned text table."""
        header = f"{'predictor':<26}" + "".join(f"{name:>10}" for name in METRICS)
        lines = [
            f"device {self.device}, space {self.space}: {len(self.predictions)} test networks, "
            f"{len(self.calibration_keys)} calibration networks ({self.calibration.kind}: "
            f"x{self.calibration.scale:.3f} {self.calibration.offset_ms:+.3f} ms)",
            header,
        ]
        for name, metrics in self.rows.items():
            cells = []
            for metric in METRICS:
                value = metrics[metric]
                if np.isnan(value):
                    cells.append(f"{'-':>10}")
                elif metric.startswith("acc"):
                    cells.append(f"{100 * value:>9.1f}%")
                else:
                    cells.append(f"{value:>10.3f}")
            lines.append(f"{name:<26}" + "".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        clean = {name: {k: (None if np.isnan(v) else float(v)) for k, v in m.items()} for name, m in self.rows.items()}
        return {
            "device": self.device,
            "space": self.space,
            "test_networks": len(self.predictions),
            "calibration_networks": self.calibration_keys,
            "calibration": self.calibration.to_dict(),
            "regressor_calibration": None if self.regressor_calibration is None else self.regressor_calibration.to_dict(),
            "regressor": self.regressor_kind,
            "rows": clean,
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``evaluation.json``, ``metrics.csv``, ``predictions.csv`` and ``scatter.png``."""
        from predictors.plots import scatter_plot

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / "evaluation.json",
            "metrics": out / "metrics.csv",
            "predictions": out / "predictions.csv",
            "plot": out / "scatter.png",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        pd.DataFrame(self.rows).T.rename_axis("predictor").to_csv(paths["metrics"])
        self.predictions.to_csv(paths["predictions"], index=False)
        columns = {"block sum": "block_sum_ms", "block sum + calibration": "calibrated_ms"}
        if "regressor_ms" in self.predictions.columns:
            columns["regressor + calibration"] = "regressor_ms"
        if "in_context_ms" in self.predictions.columns:
            columns[CONTEXT_ROW] = "in_context_ms"
        scatter_plot(self.predictions, columns, paths["plot"], title=f"{self.device} / {self.space}: predicted vs measured")
        return paths


def split_networks(networks: pd.DataFrame, *, calibration_networks: int = 10, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split into (calibration, test); calibration takes at most 10 and leaves a test set."""
    if not 0 <= calibration_networks <= MAX_CALIBRATION_NETWORKS:
        raise PredictorError(f"calibration networks must be 0..{MAX_CALIBRATION_NETWORKS}, got {calibration_networks}")
    if len(networks) < calibration_networks + 3:
        raise PredictorError(
            f"need at least {calibration_networks + 3} measured networks ({calibration_networks} to calibrate, 3 to test), "
            f"found {len(networks)}; measure more with `vidlat profile --networks N`"
        )
    order = np.random.default_rng(seed).permutation(len(networks))
    calib = networks.iloc[np.sort(order[:calibration_networks])]
    test = networks.iloc[np.sort(order[calibration_networks:])]
    return calib.reset_index(drop=True), test.reset_index(drop=True)


def regressor_entries(entries: pd.DataFrame, kind: str, *, extra_blocks: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """``entries`` with every measured block's latency replaced by an out-of-fold regressor prediction
    (``extra_blocks``: measured blocks outside the space, columns spec and median_ms, used for training only)."""
    # zero-latency blocks (an identity on a simulator) keep their measured 0: log latency cannot learn them
    blocks = entries[(entries["layer"] != FIXED_LAYER) & (entries["median_ms"] > 0)].drop_duplicates("key")
    if "spec" not in blocks.columns or blocks["spec"].isna().any():
        raise PredictorError("the regressor row needs the spec of every measured block")
    extra = extra_blocks if extra_blocks is not None else pd.DataFrame(columns=["spec", "median_ms"])
    predicted = dict(zip(blocks["key"], out_of_fold_ms(kind, list(blocks["spec"]), blocks["median_ms"].to_numpy(),
                                                       extra_specs=list(extra["spec"]), extra_ms=extra["median_ms"].to_numpy(float),
                                                       seed=seed)))
    replaced = entries.copy()
    is_block = replaced["layer"] != FIXED_LAYER
    learned = is_block & replaced["key"].isin(predicted)
    replaced.loc[learned, "median_ms"] = replaced.loc[learned, "key"].map(predicted)
    return replaced


def split_half_repeat(networks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Two repeats of each network's latency from its interleaved rounds: the median over the even
    rounds and over the odd rounds; None unless every network has at least ``MIN_REPEAT_ROUNDS``."""
    if "round_medians_ms" not in networks.columns or networks.empty:
        return None
    rounds = list(networks["round_medians_ms"])
    if any(not isinstance(values, list) or len(values) < MIN_REPEAT_ROUNDS for values in rounds):
        return None
    even = np.array([np.median(values[0::2]) for values in rounds])
    odd = np.array([np.median(values[1::2]) for values in rounds])
    return even, odd


def evaluate_networks(
    entries: pd.DataFrame,
    networks: pd.DataFrame,
    *,
    device: str = "",
    space: str = "",
    calibration_networks: int = 10,
    regressor_kind: str | None = "gbm",
    extra_blocks: pd.DataFrame | None = None,
    seed: int = 0,
) -> EvaluationReport:
    """Fit calibrations on a few networks and score every predictor row on the rest.

    ``extra_blocks`` (spec, median_ms of measured blocks outside the space, e.g. from the block
    sampler) are added to the training folds of the regressor row.
    """
    calib, test = split_networks(networks, calibration_networks=calibration_networks, seed=seed)
    lut = LUTPredictor(entries, device=device)
    calibration = fit_calibration(lut.predict_archs(list(calib["layers"])), calib["median_ms"], kind="auto")
    measured = test["median_ms"].to_numpy(float)
    block_sum = lut.predict_archs(list(test["layers"]))
    predictions = pd.DataFrame(
        {"key": test["key"], "measured_ms": measured, "flops": test["flops"], "block_sum_ms": block_sum, "calibrated_ms": calibration(block_sum)}
    )
    rows = {
        ROWS[0]: evaluate(test["flops"].to_numpy(float), measured, ranking_only=True),
        ROWS[1]: evaluate(block_sum, measured),
        ROWS[2]: evaluate(predictions["calibrated_ms"], measured),
    }
    regressor_calibration = None
    if regressor_kind is not None:
        reg_lut = LUTPredictor(regressor_entries(entries, regressor_kind, extra_blocks=extra_blocks, seed=seed), device=device)
        regressor_calibration = fit_calibration(reg_lut.predict_archs(list(calib["layers"])), calib["median_ms"], kind="auto")
        predictions["regressor_ms"] = regressor_calibration(reg_lut.predict_archs(list(test["layers"])))
        rows[ROWS[3]] = evaluate(predictions["regressor_ms"], measured)
    if len(calib) >= MIN_CONTEXT_NETWORKS:
        in_context = InContextTable().fit(lut, list(calib["layers"]), calib["median_ms"].to_numpy(float))
        predictions["in_context_ms"] = in_context.predict(list(test["layers"]))
        rows[CONTEXT_ROW] = evaluate(predictions["in_context_ms"], measured)
    repeat = split_half_repeat(test)
    if repeat is not None:
        rows[REPEAT_ROW] = evaluate(repeat[1], repeat[0])
    return EvaluationReport(
        device, space, rows, predictions, calibration, regressor_calibration, list(calib["key"]), regressor_kind
    )
