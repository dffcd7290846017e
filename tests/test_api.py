"""vidlat.api: the library calls the commands are made of, with the commands' defaults."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import vidlat
from predictors.fit import FitConfig
from profiler.errors import VidlatError
from search.config import ClipConfig, EvolutionConfig, SearchConfig, TrainConfig
from vidlat import api
from vidlat.cli import cli


def defaults(command: str) -> dict[str, object]:
    return {param.name: param.default for param in cli.get_command(None, command).params}


def test_command_defaults_are_the_configs_defaults():
    search, train, fit, run = defaults("search"), defaults("train"), defaults("fit"), defaults("run")
    config, evolution, clips, training, fitting = SearchConfig(), EvolutionConfig(), ClipConfig(), TrainConfig(), FitConfig()
    for option, field in [("epochs", "epochs"), ("warmup", "warmup_epochs"), ("batch_size", "batch_size"), ("mode", "mode"),
                          ("alpha", "alpha"), ("beta", "beta"), ("unit_ms", "unit_ms"), ("latency_weight", "latency_weight"),
                          ("temperature", "temperature"), ("temperature_decay", "temperature_decay"), ("arch_lr", "arch_lr"),
                          ("sampling", "sampling"), ("weight_paths", "weight_paths"), ("distill", "distill"), ("seed", "seed")]:
        assert search[option] == getattr(config, field), option
    for option, field in [("population", "population"), ("generations", "generations"),
                          ("mutation_prob", "mutation_prob"), ("crossover", "crossover_fraction")]:
        assert search[option] == getattr(evolution, field), option
    for command in (search, train):
        assert (command["data"], command["train_clips"], command["frames"], command["size"]) == \
            (clips.data, clips.train_clips, clips.frames, clips.size)
    assert (train["epochs"], train["batch_size"], train["lr"], train["seed"], train["test_clips"]) == \
        (training.epochs, training.batch_size, training.lr, training.seed, clips.test_clips)
    assert (fit["calibration_networks"], fit["contended"], fit["seed"]) == \
        (fitting.calibration_networks, fitting.contended, fitting.seed)
    assert (run["networks"], run["search_epochs"], run["train_epochs"], run["threads"]) == \
        (api.RUN_NETWORKS, api.RUN_SEARCH_EPOCHS, api.RUN_TRAIN_EPOCHS, api.RUN_THREADS)


def test_the_package_offers_the_api_and_the_configs():
    assert vidlat.load_latency_predictor is api.load_latency_predictor and vidlat.run is api.run
    assert vidlat.SearchConfig is SearchConfig and vidlat.FitConfig is FitConfig
    with pytest.raises(AttributeError, match="no attribute 'predictt'"):
        vidlat.predictt  # noqa: B018


def test_a_search_shortened_keeps_one_search_epoch():
    assert (SearchConfig().with_epochs(2).epochs, SearchConfig().with_epochs(2).warmup_epochs) == (2, 1)
    assert SearchConfig().with_epochs(8) == SearchConfig()


def test_bad_calls_are_one_line_errors_that_touch_nothing(tmp_path):
    with pytest.raises(VidlatError, match="exactly one of space= or onnx="):
        api.profile("fpga-zcu102-sim", store=tmp_path / "s.sqlite")
    with pytest.raises(VidlatError, match="no latency store here"):
        api.load_latency_predictor("fpga-zcu102-sim", space="tiny", store=tmp_path / "s.sqlite")
    with pytest.raises(VidlatError, match="targets or target_ms, not both"):
        api.search("fpga-zcu102-sim", space="tiny", target_ms=1.0, targets=[1.0, 2.0], store=tmp_path / "s.sqlite")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_prediction_is_what_vidlat_predict_prints(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDLAT_CACHE_DIR", str(tmp_path / "cache"))
    store = tmp_path / "s.sqlite"
    profiled = api.profile("fpga-zcu102-sim", space="tiny", store=store, progress=False)
    assert profiled.summary.measured == len(profiled.keys) and set(profiled.table()["status"]) == {"ok"}
    predictor = api.load_latency_predictor("fpga-zcu102-sim", space="tiny", store=store)
    arch = predictor.space.reference_archs()["x3d-xs"]
    arch.save(tmp_path / "arch.yaml")
    printed = CliRunner().invoke(cli, ["predict", "--device", "fpga-zcu102-sim", str(tmp_path / "arch.yaml"),
                                       "--store", str(store), "--json"])
    assert printed.exit_code == 0, printed.output
    prediction = predictor.predict(tmp_path / "arch.yaml")
    assert prediction.to_dict() == json.loads(printed.output)
    assert predictor.predict(arch.layers).total_ms == predictor.predict("tiny:x3d-xs").total_ms == prediction.total_ms
    assert prediction.total_ms == pytest.approx(prediction.fixed_ms + sum(prediction.block_ms))
