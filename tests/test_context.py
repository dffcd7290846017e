"""In-context tables (predictors.context): planted per-entry offsets are recovered and the table stays additive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictors.context import InContextTable
from predictors.errors import PredictorError
from predictors.lut import FIXED_LAYER, LUTPredictor
from predictors.metrics import mape

LAYERS, CANDIDATES = 8, 4


def _isolated(rng: np.random.Generator) -> pd.DataFrame:
    rows = [{"layer": layer, "block": f"b{c}", "key": f"k{layer}_{c}", "median_ms": float(rng.uniform(0.5, 3.0))}
            for layer in range(LAYERS) for c in range(CANDIDATES)]
    rows += [{"layer": FIXED_LAYER, "block": "stem", "key": "stem", "median_ms": 1.0},
             {"layer": FIXED_LAYER, "block": "head", "key": "head", "median_ms": 0.5}]
    return pd.DataFrame(rows)


def _world(seed: int = 0, networks: int = 120):
    """Inside a network every entry costs 1.1x its isolated time, plus planted offsets on a few
    entries (fusion saving 0.6 ms, a reorder costing 0.8 ms), plus a 0.3 ms per-network overhead."""
    rng = np.random.default_rng(seed)
    isolated = _isolated(rng)
    lut = LUTPredictor(isolated)
    planted = {(0, "b1"): -0.6, (3, "b2"): 0.8, (5, "b0"): -0.4, (7, "b3"): 0.5}
    archs = [[f"b{c}" for c in rng.integers(0, CANDIDATES, LAYERS)] for _ in range(networks)]

    def truth(layers):
        base = 1.1 * lut.predict_archs([layers])[0] + 0.3
        return base + sum(planted.get((index, block), 0.0) for index, block in enumerate(layers))

    measured = np.array([truth(layers) for layers in archs]) * (1 + 0.003 * rng.standard_normal(networks))
    return lut, planted, archs, measured


def test_planted_offsets_are_recovered_and_held_out_networks_predicted():
    lut, planted, archs, measured = _world()
    table = InContextTable().fit(lut, archs[:80], measured[:80])
    # one candidate per layer is in every network, so a constant per layer is not identifiable
    # (the calibration's offset absorbs it): compare the contrasts between a layer's candidates
    for layer in range(LAYERS):
        found = np.array([table.corrections_.get((layer, f"b{c}"), 0.0) for c in range(CANDIDATES)])
        truth = np.array([planted.get((layer, f"b{c}"), 0.0) for c in range(CANDIDATES)])
        assert np.allclose(found - found.mean(), truth - truth.mean(), atol=0.15), (layer, found, truth)

    held_out = table.predict(archs[80:])
    calibrated = table.calibration_(lut.predict_archs(archs[80:]))
    assert mape(held_out, measured[80:]) < 1.0 < mape(calibrated, measured[80:])


def test_the_in_context_table_stays_additive():
    lut, _, archs, measured = _world(seed=1)
    table = InContextTable().fit(lut, archs[:60], measured[:60])
    entries = table.table()
    assert {"isolated_ms", "correction_ms"} <= set(entries.columns) and (entries["median_ms"] >= 0).all()
    as_lut = LUTPredictor(entries[["layer", "block", "key", "median_ms"]])
    assert np.allclose(as_lut.predict_archs(archs), table.predict(archs))


def test_few_or_bad_networks_are_refused():
    lut, _, archs, measured = _world(networks=10)
    with pytest.raises(PredictorError, match="at least 5"):
        InContextTable().fit(lut, archs[:3], measured[:3])
    with pytest.raises(PredictorError, match="finite and > 0"):
        InContextTable().fit(lut, archs, np.where(np.arange(10) == 2, np.nan, measured))


def test_a_table_without_stem_and_head_keeps_the_offset_in_a_row_of_its_own():
    lut, _, archs, measured = _world(seed=2)
    blocks_only = LUTPredictor(lut.entries[lut.entries["layer"] != FIXED_LAYER][["layer", "block", "key", "median_ms"]])
    table = InContextTable().fit(blocks_only, archs[:60], measured[:60])
    entries = table.table()
    assert list(entries.loc[entries["layer"] == FIXED_LAYER, "block"]) == ["offset"]
    assert np.allclose(LUTPredictor(entries[["layer", "block", "key", "median_ms"]]).predict_archs(archs), table.predict(archs))
    assert mape(table.predict(archs[60:]), measured[60:]) < 1.5
