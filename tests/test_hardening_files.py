"""Hostile files a user hands in: refused with one line, never run, never changed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from click.testing import CliRunner

from predictors.errors import PredictorError
from predictors.features import FeatureSet
from predictors.persist import FORMAT, FittedPredictor
from predictors.regressors import REGRESSORS, LatencyRegressor
from profiler.catalog import resolve_device
from profiler.store import LatencyStore
from vidlat.cli import cli

DEVICE = "ort-cpu-1t"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# ------------------------------------------------------------------ predictor files (.skops)
def tiny_entries() -> pd.DataFrame:
    from predictors.lut import space_entries
    from search.space import load_space

    return space_entries(load_space("tiny"))


def malicious_predictor(path, marker) -> None:
    """A .skops file in vidlat's container format whose regressor is a Pipeline that runs ``exec``
    on ``predict``: numpy.full_like -> str -> exec, every table entry a miss so the regressor is called.
    Made only of sklearn / numpy / builtins types, which the old prefix check trusted."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"open({str(marker)!r}, 'w').write('pwned')"
    final = LinearRegression().fit(np.zeros((2, 1)), np.zeros(2))
    estimator = Pipeline([
        ("fill", FunctionTransformer(np.full_like, kw_args={"fill_value": code, "dtype": object, "shape": ()})),
        ("text", FunctionTransformer(str)),
        ("run", FunctionTransformer(exec)),
        ("out", final),
    ])
    entries = tiny_entries()
    specs = list(entries["spec"])
    sio.dump({
        "format": FORMAT, "device": DEVICE, "space": "tiny", "fingerprint": {}, "calibration": {"kind": "none"},
        "scores": {},
        "lut": {"layer": [int(v) for v in entries["layer"]], "block": list(entries["block"]), "key": list(entries["key"]),
                "median_ms": [None] * len(entries), "spec": [json.dumps(spec) for spec in specs]},
        "regressor": {"kind": "linear", "seed": 0, "features": FeatureSet.from_specs(specs).to_dict(), "estimator": estimator},
    }, path)


@pytest.mark.parametrize("kind", sorted(REGRESSORS))
def test_every_regressor_kind_vidlat_fits_round_trips(tmp_path, kind):
    entries = tiny_entries()
    specs = list(entries["spec"])
    ms = np.array([0.5 + spec.get("flops", 0) / 1e7 + 0.05 * (index % 3) for index, spec in enumerate(specs)])
    regressor = LatencyRegressor(kind).fit(specs, ms)
    entries = entries.assign(median_ms=np.nan)
    path = FittedPredictor(DEVICE, "tiny", {"cpu": "x"}, entries, regressor=regressor).save(tmp_path / "p.skops")
    loaded = FittedPredictor.load(path)
    np.testing.assert_allclose(loaded.regressor.predict(specs), regressor.predict(specs))


def test_a_predictor_made_of_sklearn_numpy_and_builtins_types_cannot_run_code(tmp_path):
    evil, marker = tmp_path / "evil.skops", tmp_path / "pwned"
    malicious_predictor(evil, marker)
    with pytest.raises(PredictorError, match="refused unloaded: .*builtins.exec.*FunctionTransformer"):
        FittedPredictor.load(evil)
    assert not marker.exists()

    from search.space import load_space

    store = tmp_path / "latency.sqlite"
    with LatencyStore(store) as opened:
        opened.register_device(resolve_device(DEVICE), {})
    arch = tmp_path / "arch.yaml"
    load_space("tiny").reference_archs()["r2p1d"].save(arch)
    code, stderr = run_cli("predict", "--device", DEVICE, str(arch), "--store", str(store), "--predictor", str(evil))
    assert code == 2 and "numpy.full_like (FunctionNode)" in one_error_line(stderr)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x05\x06" + bytes(18)])
def test_a_file_that_is_not_a_skops_archive_is_one_error(tmp_path, content):
    junk = tmp_path / "junk.skops"
    junk.write_bytes(content)
    with pytest.raises(PredictorError, match="is not a saved vidlat predictor"):
        FittedPredictor.load(junk)


# ------------------------------------------------------------------ exported ONNX models
@pytest.mark.parametrize("value, message", [
    ("{not json", "'vidlat.arch' metadata is not an arch spec in JSON (Expecting property name"),
    ("[" * 100_000, "'vidlat.arch' metadata is not an arch spec in JSON"),
    ('["a list"]', "(metadata 'vidlat.arch'): an arch spec is a mapping, got list"),
])
def test_an_onnx_model_with_bad_arch_metadata_is_one_error_line(tmp_path, value, message):
    import onnx

    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph)
    model.metadata_props.add(key="vidlat.arch", value=value)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    store = tmp_path / "latency.sqlite"
    with LatencyStore(store) as opened:
        opened.register_device(resolve_device(DEVICE), {})
    code, stderr = run_cli("predict", "--device", DEVICE, str(path), "--store", str(store))
    assert code == 2 and message in one_error_line(stderr)
