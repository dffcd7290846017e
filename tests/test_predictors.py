"""Predictors on a small synthetic space: lookup table, misses, regressors, calibration,
evaluation, few-shot transfer and persistence."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from predictors import (
    Calibration,
    FeatureSet,
    FewShotTransfer,
    FittedPredictor,
    LatencyRegressor,
    LUTMissError,
    LUTPredictor,
    NetworkPredictor,
    PredictorError,
    PredictorMismatchError,
    evaluate_networks,
    few_shot_curve,
    fit_calibration,
    network_frame,
    select_regressor,
)
from predictors.regressors import out_of_fold_ms

OP_COST = {"conv3d": 1.0, "r2plus1d": 0.8, "attn": 1.6}


def block_spec(op: str, c_in: int, c_out: int, size: int) -> dict:
    macs = c_in * c_out * 27 * 8 * size * size
    return {"op": op, "c_in": c_in, "c_out": c_out, "t": 8, "h": size, "w": size, "kt": 3, "kh": 3, "kw": 3,
            "stride_t": 1, "stride_s": 1, "macs": macs, "flops": 2 * macs, "params": c_in * c_out * 27,
            "bytes": 4 * (c_in + c_out) * 8 * size * size, "act": "relu"}


def true_ms(spec: dict) -> float:
    return OP_COST.get(spec["op"], 0.5) * spec["flops"] / 2e8 + 0.05


@dataclass
class Slot:
    index: int
    candidates: list


def synthetic_space(layers: int = 4):
    """(slots, entries): three candidate families per layer, widths growing with depth; stem and head."""
    slots, rows = [], []
    for i in range(layers):
        candidates = [f"{op}_w{16 * (i + 1)}" for op in OP_COST]
        slots.append(Slot(i, candidates))
        for j, (op, block) in enumerate(zip(OP_COST, candidates)):
            spec = block_spec(op, 16 * (i + 1), 16 * (i + 2) + 8 * j, 28 - 4 * i)
            rows.append({"layer": i, "block": block, "key": f"{block}|l{i}", "median_ms": true_ms(spec), "spec": spec})
    for name, ms in (("stem", 0.3), ("head", 0.1)):
        rows.append({"layer": -1, "block": name, "key": f"{name}|k", "median_ms": ms, "spec": {"op": name, "flops": 1e5}})
    return slots, pd.DataFrame(rows)


def random_archs(slots, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [[slot.candidates[rng.integers(len(slot.candidates))] for slot in slots] for _ in range(count)]


# ------------------------------------------------------------------ lookup table
def test_lut_layer_latencies_and_arch_sums():
    slots, entries = synthetic_space()
    lut = LUTPredictor(entries)
    per_layer = lut.layer_latencies(slots)
    assert [len(v) for v in per_layer] == [3, 3, 3, 3]
    assert per_layer[1][2] == pytest.approx(entries.query("layer == 1")["median_ms"].iloc[2])
    assert lut.fixed_ms == pytest.approx(0.4)
    archs = random_archs(slots, 50)
    expected = [sum(per_layer[i][slots[i].candidates.index(b)] for i, b in enumerate(a)) + 0.4 for a in archs]
    np.testing.assert_allclose(lut.predict_archs(archs), expected)


def test_lut_miss_names_the_missing_keys():
    slots, entries = synthetic_space()
    entries.loc[entries["key"] == "attn_w32|l1", "median_ms"] = np.nan
    lut = LUTPredictor(entries, device="dev-a")
    with pytest.raises(LUTMissError, match=r"dev-a.*attn_w32\|l1"):
        lut.layer_latencies(slots)
    with pytest.raises(LUTMissError, match="not in the table"):
        lut.block_ms(["conv3d_w16", "no_such_block"])


def test_lut_defers_misses_to_a_regressor():
    slots, entries = synthetic_space()
    regressor = LatencyRegressor("linear").fit(list(entries["spec"]), entries["median_ms"])
    entries.loc[entries["key"] == "attn_w32|l1", "median_ms"] = np.nan
    lut = LUTPredictor(entries, regressor=regressor)
    assert lut.block_sources(["conv3d_w16", "attn_w32"]) == ["lut", "regressor"]
    assert lut.block_ms(["conv3d_w16", "attn_w32"])[1] > 0


def test_lut_reads_an_exported_csv(tmp_path):
    slots, entries = synthetic_space()
    path = tmp_path / "lut.csv"
    entries.drop(columns="spec").to_csv(path, index=False)
    lut = LUTPredictor.from_file(path)
    np.testing.assert_allclose(lut.layer_latencies(slots)[0], LUTPredictor(entries).layer_latencies(slots)[0])
    with pytest.raises(PredictorError, match="lacks column"):
        LUTPredictor(entries.drop(columns="median_ms"))


# ------------------------------------------------------------------ features and regressors
def test_features_one_hot_and_unseen_op_kind():
    features = FeatureSet.from_specs([block_spec("conv3d", 8, 8, 14), {"op": "stem"}])
    matrix = features.transform([block_spec("conv3d", 8, 16, 14)])
    assert matrix.shape == (1, len(features.names))
    assert matrix[0, features.names.index("op=conv3d")] == 1.0
    assert matrix[0, features.names.index("c_out")] == 16
    with pytest.raises(PredictorError, match="not seen.*known: conv3d, stem"):
        features.transform([{"op": "attn"}])


def test_regressor_selection_reports_every_family_and_generalises():
    rng = np.random.default_rng(0)
    specs = [block_spec(str(rng.choice(list(OP_COST))), int(rng.integers(8, 96)), int(rng.integers(8, 96)), int(rng.choice([7, 14, 28])))
             for _ in range(120)]
    latency = [true_ms(s) for s in specs]
    selection = select_regressor(specs, latency, seed=0)
    assert set(selection.scores) == {"gbm", "rf", "linear", "additive"}
    assert selection.best.kind == min(selection.scores, key=lambda k: selection.scores[k]["mape"])
    held_out = [block_spec("r2plus1d", 40, 56, 14), block_spec("conv3d", 72, 24, 28)]
    predicted = selection.best.predict(held_out)
    np.testing.assert_allclose(predicted, [true_ms(s) for s in held_out], rtol=0.25)
    oof = out_of_fold_ms("linear", specs, latency, folds=3)
    assert np.median(np.abs(oof / np.asarray(latency) - 1)) < 0.15
    # the synthetic cost is per-op compute plus a fixed overhead: the additive model recovers it
    additive = LatencyRegressor("additive").fit(specs, latency)
    np.testing.assert_allclose(additive.predict(held_out), [true_ms(s) for s in held_out], rtol=0.02)


# ------------------------------------------------------------------ calibration and evaluation
def test_calibration_recovers_a_known_scale_and_offset():
    block_sum = np.array([2.0, 3.0, 5.0, 8.0, 13.0])
    scale = fit_calibration(block_sum, 1.1 * block_sum, kind="scale")
    assert scale.scale == pytest.approx(1.1) and scale.offset_ms == 0.0
    affine = fit_calibration(block_sum, 0.9 * block_sum + 0.5, kind="affine")
    assert (affine.scale, affine.offset_ms) == pytest.approx((0.9, 0.5))
    assert fit_calibration(block_sum, 0.9 * block_sum + 0.5).kind == "scale"  # auto: scale below 6 networks
    more = np.array([2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0])
    assert fit_calibration(more, 0.9 * more + 0.5).kind == "affine"  # then by leave-one-out error
    with pytest.raises(PredictorError, match="at most 10"):
        fit_calibration(np.ones(11), np.ones(11))


def network_table(slots, entries, count: int, seed: int = 0) -> pd.DataFrame:
    """A store-like table of measured networks: 1.08 x block sum + 0.2 ms, 1% noise."""
    lut = LUTPredictor(entries)
    rng = np.random.default_rng(seed)
    rows = []
    for i, layers in enumerate(random_archs(slots, count, seed)):
        block_sum = float(lut.predict_archs([layers])[0])
        flops = sum(entries.set_index(["layer", "block"]).loc[(j, b), "spec"]["flops"] for j, b in enumerate(layers))
        spec = {"op": "network", "space": "synth", "arch": {"layers": layers}, "flops": flops}
        rows.append({"key": f"net|synth|{i}", "status": "ok", "median_ms": (1.08 * block_sum + 0.2) * rng.normal(1, 0.01), "spec": spec})
    rows.append({"key": "blk", "status": "ok", "median_ms": 1.0, "spec": {"op": "conv3d"}})
    return pd.DataFrame(rows)


def test_evaluation_calibration_beats_plain_block_sum(tmp_path):
    slots, entries = synthetic_space(layers=6)
    networks = network_frame(network_table(slots, entries, 40), "synth")
    assert len(networks) == 40
    report = evaluate_networks(entries, networks, device="dev", space="synth", calibration_networks=8)
    rows = report.rows
    assert len(report.predictions) == 32
    assert rows["block sum + calibration"]["acc5"] == 1.0
    assert rows["block sum + calibration"]["mape"] < rows["block sum"]["mape"]
    assert rows["block sum"]["kendall"] > 0.8 and np.isnan(rows["flops (ranking only)"]["acc10"])
    assert "regressor + calibration" in rows
    paths = report.save(tmp_path)
    assert paths["plot"].stat().st_size > 1000
    assert "block sum + calibration" in paths["json"].read_text()
    assert "predictor" in report.table_text() and "acc10" in report.table_text()
    with pytest.raises(PredictorError, match="measure more"):
        evaluate_networks(entries, networks.head(5))


def test_few_shot_transfer_to_a_device_with_another_scale():
    slots, entries = synthetic_space(layers=6)
    source = LUTPredictor(entries).predict_archs(random_archs(slots, 60, seed=1))
    target = 3.0 * source ** 0.9 * np.random.default_rng(0).normal(1, 0.02, len(source))
    model = FewShotTransfer().fit(source[:10], target[:10])
    assert model.slope == pytest.approx(0.9, abs=0.1)
    curve = few_shot_curve(source, target, ks=(5, 10), repeats=5)
    assert list(curve["k"]) == [5, 10]
    assert curve.loc[curve["k"] == 10, "spearman"].item() > 0.9
    assert curve.loc[curve["k"] == 10, "acc10"].item() > 0.9


# ------------------------------------------------------------------ persistence
def test_fitted_predictor_round_trips_and_refuses_other_devices(tmp_path):
    slots, entries = synthetic_space()
    regressor = LatencyRegressor("gbm").fit(list(entries["spec"]), entries["median_ms"])
    fitted = FittedPredictor("dev-a", "synth", {"cpu": "Xeon", "onnxruntime": "1.20"}, entries, Calibration("scale", 1.1, 0.0, 5), regressor)
    path = fitted.save(tmp_path / "p.skops")
    loaded = FittedPredictor.load(path, device="dev-a", fingerprint={"cpu": "Xeon", "onnxruntime": "1.20", "vidlat": "9"})
    layers = random_archs(slots, 1)[0]
    assert loaded.network_predictor().breakdown(layers)["total_ms"] == pytest.approx(fitted.network_predictor().breakdown(layers)["total_ms"])
    np.testing.assert_allclose(loaded.regressor.predict(list(entries["spec"])), regressor.predict(list(entries["spec"])))
    with pytest.raises(PredictorMismatchError, match="fitted for device 'dev-a', not 'dev-b'"):
        FittedPredictor.load(path, device="dev-b")
    with pytest.raises(PredictorMismatchError, match="onnxruntime: fitted '1.20', here '1.21'"):
        FittedPredictor.load(path, fingerprint={"cpu": "Xeon", "onnxruntime": "1.21"})


def test_loading_refuses_other_feature_sets_and_non_predictor_files(tmp_path):
    saved = FeatureSet(("conv3d",)).to_dict()
    saved["numeric"] = saved["numeric"][:-1] + ["old_feature"]
    with pytest.raises(PredictorError, match="another feature set.*old_feature"):
        FeatureSet.from_dict(saved)
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PredictorError, match="not a saved vidlat predictor"):
        FittedPredictor.load(junk)


def test_network_predictor_breakdown_is_json_ready():
    slots, entries = synthetic_space()
    predictor = NetworkPredictor(LUTPredictor(entries), Calibration("affine", 1.0, 0.5, 3))
    layers = random_archs(slots, 1)[0]
    out = predictor.breakdown(layers)
    assert [b["layer"] for b in out["blocks"]] == [0, 1, 2, 3]
    assert out["total_ms"] == pytest.approx(out["block_sum_ms"] + 0.5)
    assert out["block_sum_ms"] == pytest.approx(sum(b["ms"] for b in out["blocks"]) + 0.4)


def test_contended_rows_policy():
    from predictors.lut import latency_ms

    table = pd.DataFrame({"median_ms": [1.0, 5.0, np.nan, 2.0], "cpu_ms": [0.9, 1.2, 0.5, np.nan],
                          "contended": [False, True, False, True], "status": ["ok", "ok", "failed", "ok"]})
    expected = {"cpu": [1.0, 1.2, np.nan, 2.0], "wall": [1.0, 5.0, np.nan, 2.0],
                "drop": [1.0, np.nan, np.nan, np.nan], "cpu-all": [0.9, 1.2, np.nan, 2.0]}
    for policy, values in expected.items():
        np.testing.assert_allclose(latency_ms(table, policy).to_numpy(float), values, err_msg=policy)
