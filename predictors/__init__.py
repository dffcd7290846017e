"""Latency predictors: lookup tables, regressors, whole-network calibration, metrics.

::

    store / lut file ──> LUTPredictor ──block sum──> NetworkPredictor (Calibration) ──> ms per arch
                              ^ misses
    workload specs ──> FeatureSet ──> LatencyRegressor (gbm | rf | linear, on log ms)

``FittedPredictor`` saves and loads all of it without pickle; ``evaluate_networks`` judges it on
measured networks; ``FewShotTransfer`` carries it to a new device from k measurements.
"""

from predictors.errors import LUTMissError, PredictorError, PredictorMismatchError
from predictors.evaluation import EvaluationReport, evaluate_networks
from predictors.features import FeatureSet
from predictors.fit import fit_predictor
from predictors.lut import LUTPredictor, latency_ms, measured_entries, space_entries
from predictors.metrics import evaluate
from predictors.network import Calibration, NetworkPredictor, fit_calibration, network_frame
from predictors.persist import FittedPredictor
from predictors.regressors import REGRESSORS, LatencyRegressor, family_errors, out_of_fold_ms, select_regressor
from predictors.transfer import FewShotTransfer, few_shot_curve

__all__ = [
    "REGRESSORS", "Calibration", "EvaluationReport", "FeatureSet", "FewShotTransfer", "FittedPredictor",
    "LUTMissError", "LUTPredictor", "LatencyRegressor", "NetworkPredictor", "PredictorError",
    "PredictorMismatchError", "evaluate", "evaluate_networks", "family_errors", "few_shot_curve", "fit_calibration",
    "fit_predictor", "latency_ms", "measured_entries", "network_frame", "out_of_fold_ms", "select_regressor",
    "space_entries",
]
