"""Interleaved rounds (profiler.rounds) and the sweep's use of them, on a fake clock and a fake backend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from profiler.backends.base import Backend, Prepared
from profiler.device import DeviceConfig, MeasurementPolicy
from profiler.protocol import measure_callable
from profiler.rounds import canary_workload, time_in_rounds
from profiler.store import LatencyStore
from profiler.sweep import profile_workloads
from profiler.workload import Measurement, Workload


class FakeHost:
    """A wall clock and a CPU clock that runs advance; ``slowdown(elapsed_ms)`` scales every run."""

    def __init__(self, slowdown: Callable[[float], float] = lambda elapsed_ms: 1.0, *, cpu_share: float = 1.0) -> None:
        self.wall_ns = 0
        self.cpu_ns_ = 0
        self.slowdown = slowdown
        self.cpu_share = cpu_share  # CPU time per wall time of a run (1: the core was ours)

    def runner(self, ms: float) -> Callable[[], None]:
        def run() -> None:
            taken = ms * self.slowdown(self.wall_ns / 1e6) * 1e6
            self.wall_ns += int(taken)
            self.cpu_ns_ += int(taken * self.cpu_share)

        return run

    def clock(self) -> int:
        return self.wall_ns

    def cpu(self) -> int:
        return self.cpu_ns_


POLICY = MeasurementPolicy(warmup_runs=1, min_runs=3, round_runs=3, min_rounds=4, max_rounds=8, max_rel_ci=0.02,
                           max_seconds=100.0, canary_tolerance=0.05)


def test_rounds_time_every_workload_in_every_round_and_stop_on_a_tight_ci():
    host = FakeHost()
    runs = {"a": host.runner(2.0), "b": host.runner(5.0)}
    results, log = time_in_rounds(runs, POLICY, canary=host.runner(1.0), clock_ns=host.clock, cpu_ns=host.cpu)
    assert log.stopped_by == "max_rel_ci" and log.flagged_rounds == 0 and log.reruns == 0
    for key, ms in (("a", 2.0), ("b", 5.0)):
        measurement = results[key]
        assert measurement.status == "ok" and measurement.median_ms == pytest.approx(ms)
        assert measurement.extra["rounds"] == POLICY.min_rounds
        assert Counter(measurement.extra["run_rounds"]) == {index: POLICY.round_runs for index in range(POLICY.min_rounds)}
        assert measurement.runs == POLICY.min_rounds * POLICY.round_runs and not measurement.contended


def test_a_drifting_host_falls_on_interleaved_workloads_alike_but_not_on_sequential_ones():
    """The host slows linearly (+1% per 10 ms of wall time); two identical workloads."""
    policy = POLICY.model_copy(update={"canary_tolerance": 0.0, "max_rounds": 6, "min_rounds": 6})
    drift = lambda elapsed_ms: 1.0 + elapsed_ms / 1000.0  # noqa: E731

    host = FakeHost(drift)
    results, _ = time_in_rounds({"a": host.runner(3.0), "b": host.runner(3.0)}, policy, clock_ns=host.clock, cpu_ns=host.cpu)
    interleaved = results["b"].median_ms / results["a"].median_ms - 1

    host = FakeHost(drift)
    alone = MeasurementPolicy(warmup_runs=1, min_runs=18, max_runs=18, max_seconds=100.0)
    first = measure_callable(host.runner(3.0), alone, clock_ns=host.clock)
    second = measure_callable(host.runner(3.0), alone, clock_ns=host.clock)
    sequential = second.median_ms / first.median_ms - 1

    assert abs(sequential) > 0.04 and abs(interleaved) < abs(sequential) / 3


def test_the_canary_flags_and_reruns_a_round_with_a_planted_slowdown():
    """A neighbour slows everything by 30% for a while (the CPU is still ours: wall == CPU time, so the
    contention check cannot see it); the round it hits is re-run and the medians stay clean."""
    window = (60.0, 110.0)  # ms of wall time: after the canary baseline, inside the first rounds
    host = FakeHost(lambda elapsed_ms: 1.3 if window[0] <= elapsed_ms < window[1] else 1.0)
    results, log = time_in_rounds({"a": host.runner(2.0), "b": host.runner(4.0)}, POLICY, canary=host.runner(1.0),
                                  clock_ns=host.clock, cpu_ns=host.cpu)
    assert log.reruns >= 1 and log.flagged_rounds == 0
    assert results["a"].median_ms == pytest.approx(2.0) and results["b"].median_ms == pytest.approx(4.0)
    assert not results["a"].contended  # wall == CPU: only the canary saw it


def test_a_slowdown_that_outlasts_the_reruns_is_kept_flagged_and_recorded():
    host = FakeHost(lambda elapsed_ms: 1.3 if elapsed_ms >= 60.0 else 1.0)  # from the first round on, for good
    results, log = time_in_rounds({"a": host.runner(2.0)}, POLICY, canary=host.runner(1.0), clock_ns=host.clock, cpu_ns=host.cpu)
    assert log.flagged_rounds == log.flagged.count(True) >= 1 and log.reruns >= POLICY.max_round_retries
    assert results["a"].extra["flagged_rounds"] >= 1 and results["a"].extra["canary_drift"] == pytest.approx(0.3, abs=0.02)


def test_rounds_kept_flagged_are_left_out_of_the_latency_while_clean_ones_remain():
    host = FakeHost(lambda elapsed_ms: 1.3 if 14.0 <= elapsed_ms < 80.0 else 1.0)  # the first round and its re-runs
    results, log = time_in_rounds({"a": host.runner(2.0)}, POLICY, canary=host.runner(1.0), clock_ns=host.clock, cpu_ns=host.cpu)
    assert log.flagged[0] and not any(log.flagged[1:])
    measurement = results["a"]
    assert measurement.median_ms == pytest.approx(2.0) and measurement.extra["flagged_rounds"] == 1
    assert measurement.extra["flagged_round_medians_ms"] == [pytest.approx(2.0)]  # 2.6 ms in a 1.3x slow round
    assert len(measurement.extra["round_medians_ms"]) == measurement.extra["rounds"] - 1


def test_rounds_are_scaled_by_the_canarys_speed_to_one_reference():
    """The host alternates between full and 1.5x slow speed from round to round (no flagging here):
    scaled by the canary, every round gives the workload's own time; a given reference sets the scale."""
    host = FakeHost()
    rounds = {"n": 0}

    def slow_every_other_round(elapsed_ms: float) -> float:
        return 1.5 if rounds["n"] % 2 else 1.0

    host.slowdown = slow_every_other_round
    policy = POLICY.model_copy(update={"canary_tolerance": 0.9, "max_rel_ci": 0.5})

    def workload() -> None:
        host.runner(3.0)()

    calls = {"n": 0}

    def counting_canary() -> None:  # two canary timings (4 runs each) per round, after a 3-round baseline
        calls["n"] += 1
        host.runner(1.0)()
        if calls["n"] > 12 and (calls["n"] - 12) % 8 == 0:
            rounds["n"] += 1

    results, log = time_in_rounds({"a": workload}, policy, canary=counting_canary, clock_ns=host.clock, cpu_ns=host.cpu)
    assert results["a"].median_ms == pytest.approx(3.0) and set(results["a"].extra["round_speeds"]) == {1.0, 1.5}
    medians = results["a"].extra["round_medians_ms"]
    assert medians == pytest.approx([3.0] * len(medians))

    halved, _ = time_in_rounds({"a": host.runner(3.0)}, POLICY.model_copy(update={"canary_tolerance": 0.9}),
                               canary=host.runner(1.0), canary_reference_ms=2.0, clock_ns=host.clock, cpu_ns=host.cpu)
    assert halved["a"].median_ms == pytest.approx(6.0)  # the reference host was twice as slow: 3 ms here is 6 ms there


def test_a_sweep_keeps_one_canary_reference_per_device(tmp_path):
    with LatencyStore(tmp_path / "s.sqlite") as store:
        profile_workloads(RoundsBackend(_device(), FakeHost()), store, [_workload(index) for index in range(4)], progress=False)
        reference = store.canary_reference("fake")
        rows = store.table("fake")
    assert reference is not None and reference > 0
    assert set(rows["key"]) == {"w0", "w1", "w2", "w3"}


def test_a_run_that_raises_fails_its_workload_only():
    host = FakeHost()
    calls = {"n": 0}

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("device lost\nsecond line")

    results, _ = time_in_rounds({"a": host.runner(2.0), "bad": flaky}, POLICY, clock_ns=host.clock, cpu_ns=host.cpu)
    assert results["a"].status == "ok"
    assert results["bad"].status == "failed" and results["bad"].reason == "RuntimeError: device lost second line"


def test_the_canary_is_a_valid_onnx_model_every_cpu_runtime_accepts():
    import onnx

    workload = canary_workload()
    onnx.checker.check_model(onnx.load_from_string(workload.onnx), full_check=True)
    assert workload.key.startswith("canary/")


# ------------------------------------------------------------------------------ the sweep
class RoundsBackend(Backend):
    """Prepares fake workloads whose runs advance a shared fake host; ``interrupt_at`` raises Ctrl-C."""

    name = "fake-rounds"

    def __init__(self, device: DeviceConfig, host: FakeHost, *, interrupt_at: str | None = None) -> None:
        super().__init__(device)
        self.host = host
        self.interrupt_at = interrupt_at
        self.prepared: list[str] = []
        self.closed: list[str] = []

    def fingerprint(self) -> dict[str, str]:
        return {"cpu": "fake"}

    def prepare(self, workload: Workload) -> Prepared | Measurement:
        if workload.spec.get("unsupported"):
            return Measurement.unsupported("the runtime has no such op")
        self.prepared.append(workload.key)
        run = self.host.runner(float(workload.spec.get("ms", 1.0)))

        def guarded() -> None:
            if workload.key == self.interrupt_at:
                raise KeyboardInterrupt
            run()

        return Prepared(run=guarded, close=lambda: self.closed.append(workload.key))

    def measure(self, workload: Workload) -> Measurement:
        return self.measure_prepared(workload)


def _workload(index: int, **spec: object) -> Workload:
    return Workload(key=f"w{index}", onnx=b"", inputs={"x": (1,)}, spec={"ms": 1.0 + index, **spec})


def _device(**measurement: object) -> DeviceConfig:
    return DeviceConfig.model_validate({"name": "fake", "description": "a fake device on a fake clock", "backend": "onnxruntime", "measurement": {
        "warmup_runs": 1, "min_runs": 3, "max_rel_ci": 0.02, "group_size": 3, **measurement}})


def test_the_sweep_interleaves_in_groups_and_stores_every_workload_once(tmp_path):
    backend = RoundsBackend(_device(), FakeHost())
    workloads = [_workload(index) for index in range(7)] + [_workload(7, unsupported=True)]
    with LatencyStore(tmp_path / "s.sqlite") as store:
        summary = profile_workloads(backend, store, workloads, progress=False)
        assert backend.can_interleave()
        assert summary.measured == 7 and summary.unsupported == 1
        assert store.count("fake") == len(workloads)
        assert sorted(store.table("fake")["key"]) == sorted(workload.key for workload in workloads)
    assert backend.closed.count("canary/conv3d_c16_t4_s28") == 3  # one canary per group of 3
    assert sorted(key for key in backend.closed if key.startswith("w")) == sorted(f"w{index}" for index in range(7))


def test_a_sweep_interrupted_mid_round_resumes_without_duplicates(tmp_path):
    workloads = [_workload(index) for index in range(7)]
    path = tmp_path / "s.sqlite"
    with LatencyStore(path) as store:
        backend = RoundsBackend(_device(), FakeHost(), interrupt_at="w4")  # in the second group
        with pytest.raises(KeyboardInterrupt):
            profile_workloads(backend, store, workloads, progress=False)
        assert set(store.measured_keys("fake")) == {"w0", "w1", "w2"}
        assert sorted(backend.closed) == sorted(backend.prepared)  # the group in flight was released
        resumed = profile_workloads(RoundsBackend(_device(), FakeHost()), store, workloads, progress=False)
        assert resumed.measured == 4 and resumed.skipped == 3
        assert store.count("fake") == len(workloads)
        assert sorted(store.table("fake")["key"]) == sorted(workload.key for workload in workloads)


def test_interleave_off_times_one_workload_at_a_time(tmp_path):
    backend = RoundsBackend(_device(interleave=False), FakeHost())
    with LatencyStore(tmp_path / "s.sqlite") as store:
        summary = profile_workloads(backend, store, [_workload(index) for index in range(3)], progress=False)
    assert summary.measured == 3 and not any(key.startswith("canary") for key in backend.closed)


# ------------------------------------------------------------------------------ the noise ceiling
def test_the_store_table_keeps_round_medians_and_ignores_malformed_ones(tmp_path):
    from profiler.store import _round_medians

    backend = RoundsBackend(_device(), FakeHost())
    with LatencyStore(tmp_path / "s.sqlite") as store:
        profile_workloads(backend, store, [_workload(0)], progress=False)
        rounds = store.table("fake")["round_medians_ms"].iloc[0]
    assert isinstance(rounds, list) and len(rounds) >= 2  # rounds the canary flagged are left out while two clean ones remain
    for bad in ('{"round_medians_ms": "1,2"}', '{"round_medians_ms": [1, true]}', "[1, 2]", "not json", "{}"):
        assert _round_medians(bad) is None


def test_evaluation_reports_the_split_half_repeat_of_the_test_networks():
    import numpy as np
    import pandas as pd

    from predictors.evaluation import REPEAT_ROW, evaluate_networks, split_half_repeat

    rng = np.random.default_rng(0)
    layers = [["a", "b"][: 1 + index % 2] for index in range(16)]
    entries = pd.DataFrame({"layer": [0, 1], "block": ["a", "b"], "key": ["ka", "kb"], "median_ms": [1.0, 2.0]})
    true_ms = np.array([3.0 if len(arch) == 2 else 1.0 for arch in layers]) + np.linspace(0, 1, 16)
    rounds = [list(ms * (1 + 0.002 * rng.standard_normal(6))) for ms in true_ms]
    networks = pd.DataFrame({"key": [f"n{index}" for index in range(16)], "layers": layers, "flops": true_ms,
                             "median_ms": [float(np.median(values)) for values in rounds], "round_medians_ms": rounds})
    even, odd = split_half_repeat(networks)
    assert np.allclose(even, true_ms, rtol=0.01) and np.allclose(odd, true_ms, rtol=0.01)

    report = evaluate_networks(entries, networks, calibration_networks=3, regressor_kind=None)
    assert report.rows[REPEAT_ROW]["kendall"] > 0.9 and report.rows[REPEAT_ROW]["mape"] < 1.0
    assert REPEAT_ROW in report.table_text()

    networks["round_medians_ms"] = None  # measured one after another: no rounds, no repeat row
    assert REPEAT_ROW not in evaluate_networks(entries, networks, calibration_networks=3, regressor_kind=None).rows


def test_a_store_made_before_the_round_fields_keeps_its_device():
    from profiler.store import device_identity

    device = DeviceConfig.model_validate({"name": "fake", "description": "a fake device on a fake clock",
                                          "backend": "onnxruntime", "measurement": {"warmup_runs": 1}})
    config = device.model_dump(mode="json", exclude_none=True)
    old = {**config, "measurement": {key: value for key, value in config["measurement"].items()
                                     if key not in {"interleave", "group_size", "round_runs", "min_rounds", "max_rounds",
                                                    "canary_tolerance", "max_round_retries"}}}
    assert device_identity(old, {"cpu": "x"}) == device_identity(config, {"cpu": "x"})
    changed = {**config, "measurement": {**config["measurement"], "round_runs": 5}}
    assert device_identity(changed, {"cpu": "x"}) != device_identity(config, {"cpu": "x"})


def test_the_canary_runs_on_torch_with_the_onnx_models_weights():
    import numpy as np
    import onnxruntime as ort
    import torch

    workload = canary_workload()
    x = workload.random_inputs()["x"]
    session = ort.InferenceSession(workload.onnx, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        torch_out = workload.builder()(torch.from_numpy(x)).numpy()
    assert np.allclose(session.run(None, {"x": x})[0], torch_out, atol=1e-4)


def test_a_canary_that_raises_leaves_the_rounds_unguarded():
    host = FakeHost()
    calls = {"n": 0}

    def canary() -> None:
        calls["n"] += 1
        if calls["n"] > 8:  # after the baseline, in the first round
            raise RuntimeError("out of memory")
        host.runner(1.0)()

    results, log = time_in_rounds({"a": host.runner(2.0)}, POLICY, canary=canary, clock_ns=host.clock, cpu_ns=host.cpu)
    assert results["a"].status == "ok" and results["a"].median_ms == pytest.approx(2.0) and log.flagged_rounds == 0


def test_the_reference_is_the_canary_at_the_hosts_usual_best():
    from profiler.rounds import canary_reference_ms

    host = FakeHost(lambda elapsed_ms: 2.0 if int(elapsed_ms) % 3 else 1.0)  # slow two thirds of the time
    assert canary_reference_ms(host.runner(0.5), seconds=0.2, clock_ns=host.clock) == pytest.approx(0.5)
