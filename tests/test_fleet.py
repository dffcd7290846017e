"""The fleet: several devices in one sweep, identical boards sharing one table, boards that drop out.

In-process boards (a fake backend per address) test the queue and the writer; real agents on
127.0.0.1, one of them killed mid-sweep, test the whole path.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from profiler.agent.local import LocalAgent
from profiler.agent.probe import probe_workload
from profiler.backends import create_backend
from profiler.backends.base import Backend
from profiler.device import parse_device
from profiler.errors import DeviceConfigError, TransientDeviceError
from profiler.fleet import profile_fleet
from profiler.protocol import summarize
from profiler.store import LatencyStore
from vidlat.cli import cli

TOKEN_ENV = "VIDLAT_TEST_FLEET_TOKEN"
WORKLOADS = [probe_workload(channels=channels, frames=frames, size=size)
             for channels in (2, 4, 8) for frames in (2, 4) for size in (8, 12, 16, 20, 24)]  # 30 distinct keys


def remote_device(name: str, url: str, policy: dict | None = None):
    return parse_device({
        "name": name, "description": "a board of the fleet tests", "backend": "remote",
        "options": {"url": url, "token_env": TOKEN_ENV, "timeout_s": 60},
        "measurement": policy or {"warmup_runs": 0, "min_runs": 3, "max_runs": 3},
    }, f"{name}.yaml")


class FakeBoard(Backend):
    """A board in this process: sleeps ``seconds`` per workload; from its ``fail_from``-th call on, its link is down."""

    name = "fake"

    def __init__(self, device, *, seconds: float = 0.01, fail_from: int | None = None, cpu: str = "board-cpu") -> None:
        super().__init__(device)
        self.seconds, self.fail_from, self.cpu = seconds, fail_from, cpu
        self.calls = 0
        self.intervals: list[tuple[float, float]] = []

    def fingerprint(self) -> dict[str, str]:
        return {"cpu": self.cpu, "runtime": "fake", "agent_url": self.options.url}

    def measure(self, workload):
        self.calls += 1
        if self.fail_from is not None and self.calls >= self.fail_from:
            raise TransientDeviceError(f"the agent at {self.options.url} did not answer")
        start = time.monotonic()
        time.sleep(self.seconds)
        self.intervals.append((start, time.monotonic()))
        return summarize([1.0, 1.1, 1.2], [1.0, 1.1, 1.2], 1.5)


def board(name: str, port: int, **kwargs) -> FakeBoard:
    return FakeBoard(remote_device(name, f"http://127.0.0.1:{port}"), **kwargs)


def stored_rows(store: LatencyStore, device: str) -> list[tuple[str, str]]:
    return store._db.execute("SELECT key, extra FROM measurements WHERE device = ? ORDER BY id", (device,)).fetchall()


def test_a_board_that_drops_out_hands_its_workload_back(tmp_path, monkeypatch):
    boards = [board("phone", 9001), board("phone", 9002, fail_from=4), board("phone", 9003)]
    writers = set()
    record = LatencyStore.record

    def recording(self, *args, **kwargs):
        writers.add(threading.current_thread().name)
        return record(self, *args, **kwargs)

    monkeypatch.setattr(LatencyStore, "record", recording)
    with LatencyStore(tmp_path / "store.sqlite") as store:
        summary = profile_fleet(boards, store, WORKLOADS, shard=True, progress=False, retry_wait_s=0.25, max_wait_s=1.0,
                                sleep=lambda seconds: None)
        rows = stored_rows(store, "phone")
    assert writers == {threading.main_thread().name}, "only the calling thread writes to the store"
    keys = Counter(key for key, _ in rows)
    assert set(keys) == {w.key for w in WORKLOADS} and set(keys.values()) == {1}, "every workload stored exactly once"
    dropped = "http://127.0.0.1:9002"
    assert dropped in summary.left and "did not answer" in summary.left[dropped]
    handed = {key for address, key in summary.handed_back if address == dropped}
    assert handed and summary.measured_by[dropped] == 3
    by_board = {key: extra for key, extra in rows}
    assert all(f'"board": "{dropped}"' not in by_board[key] for key in handed), "a handed-back workload was measured elsewhere"
    assert sum(summary.measured_by.values()) == len(WORKLOADS) and not summary.unmeasured and summary.problem() == ""


def test_different_devices_measure_at_once_each_into_its_own_table(tmp_path):
    a, b = board("board-a", 9001, seconds=0.05), board("board-b", 9002, seconds=0.05)
    with LatencyStore(tmp_path / "store.sqlite") as store:
        summary = profile_fleet([a, b], store, WORKLOADS[:6], progress=False)
        assert store.measured_keys("board-a") == store.measured_keys("board-b") == {w.key for w in WORKLOADS[:6]}
    assert summary.tables["board-a"].measured == summary.tables["board-b"].measured == 6
    assert any(s1 < e2 and s2 < e1 for s1, e1 in a.intervals for s2, e2 in b.intervals), "the two boards never measured at once"


def test_local_devices_share_the_host_one_after_another(tmp_path):
    def local(name: str) -> FakeBoard:
        device = parse_device({"name": name, "description": "a local device of the tests", "backend": "onnxruntime",
                               "measurement": {"warmup_runs": 0, "min_runs": 3, "max_runs": 3}}, "local.yaml")
        backend = FakeBoard(device, seconds=0.03)
        backend.fingerprint = lambda: {"cpu": "host"}
        return backend

    a, b = local("cpu-a"), local("cpu-b")
    with LatencyStore(tmp_path / "store.sqlite") as store:
        profile_fleet([a, b], store, WORKLOADS[:4], progress=False)
    assert not any(s1 < e2 and s2 < e1 for s1, e1 in a.intervals for s2, e2 in b.intervals)


def test_a_name_given_twice_needs_shard_and_identical_boards(tmp_path):
    with LatencyStore(tmp_path / "store.sqlite") as store:
        with pytest.raises(DeviceConfigError, match=r"device name 'phone' is given 2 times \(phone.yaml, phone.yaml\); pass --shard"):
            profile_fleet([board("phone", 9001), board("phone", 9002)], store, WORKLOADS[:2], progress=False)
        with pytest.raises(DeviceConfigError, match=r"differ \(fingerprint.cpu \"board-cpu\" vs \"other-cpu\"\)"):
            profile_fleet([board("phone", 9001), board("phone", 9002, cpu="other-cpu")], store, WORKLOADS[:2], shard=True, progress=False)
        assert store.devices() == []


def test_when_every_board_leaves_the_rest_waits_for_the_next_run(tmp_path):
    boards = [board("phone", 9001, fail_from=3), board("phone", 9002, fail_from=2)]
    with LatencyStore(tmp_path / "store.sqlite") as store:
        summary = profile_fleet(boards, store, WORKLOADS[:10], shard=True, progress=False, max_wait_s=0.0, sleep=lambda s: None)
        assert len(stored_rows(store, "phone")) == 3
        assert len(summary.unmeasured["phone"]) == 7 and "did not answer" in summary.problem()
        again = profile_fleet([board("phone", 9001), board("phone", 9002)], store, WORKLOADS[:10], shard=True, progress=False)
        assert again.tables["phone"].skipped == 3 and again.tables["phone"].measured == 7
        assert Counter(key for key, _ in stored_rows(store, "phone")) == Counter({w.key: 1 for w in WORKLOADS[:10]})


def test_a_board_down_at_the_start_is_left_out(tmp_path):
    down = board("phone", 9002)
    down.fingerprint = lambda: (_ for _ in ()).throw(TransientDeviceError("the agent at http://127.0.0.1:9002 did not answer"))
    with LatencyStore(tmp_path / "store.sqlite") as store:
        summary = profile_fleet([board("phone", 9001), down], store, WORKLOADS[:4], shard=True, progress=False)
        assert store.measured_keys("phone") == {w.key for w in WORKLOADS[:4]}
    assert "did not answer at the start" in summary.left["http://127.0.0.1:9002"] and down.calls == 0


def test_cli_refuses_a_name_twice_without_shard(tmp_path):
    path = tmp_path / "phone.yaml"
    path.write_text("name: phone\ndescription: a board of the fleet tests\nbackend: onnxruntime\n")
    result = CliRunner().invoke(cli, ["profile", "--device", str(path), "--device", str(path), "--space", "tiny",
                                      "--store", str(tmp_path / "s.sqlite"), "--quiet"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "pass --shard" in result.output


# --------------------------------------------------------------------------- real agents on loopback
@pytest.mark.slow
def test_agents_on_loopback_share_a_sweep_and_one_is_killed_mid_sweep(tmp_path, monkeypatch):
    """Three agents are one device's boards (--shard), a fourth is another device; the second board is
    killed (SIGKILL) while it measures: every workload is stored exactly once, its workload re-queued."""
    token = "fleet-test-token"
    monkeypatch.setenv(TOKEN_ENV, token)
    agents = [LocalAgent(tmp_path / f"agent{index}.log", token=token) for index in range(4)]
    # every measurement keeps its agent busy about 0.3 s (the CI bound is never met), so a kill lands mid-measurement
    policy = {"warmup_runs": 1, "min_runs": 3, "max_runs": 10000, "max_rel_ci": 1e-6, "max_seconds": 0.3}
    workloads = WORKLOADS[:16]
    store_path = tmp_path / "store.sqlite"
    try:
        for agent in agents:
            agent.start()
        backends = [create_backend(remote_device("phone", agent.url, policy)) for agent in agents[:3]]
        backends.append(create_backend(remote_device("other-board", agents[3].url, policy)))
        killed = agents[1]

        def kill_mid_sweep() -> None:
            with LatencyStore(store_path) as watcher:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and watcher.count("phone") < 4:
                    time.sleep(0.05)
            killed.kill()

        with LatencyStore(store_path) as store:
            store.register_device(backends[0].device, backends[0].fingerprint())  # so the watcher can count
            killer = threading.Thread(target=kill_mid_sweep)
            killer.start()
            summary = profile_fleet(backends, store, workloads, shard=True, progress=False, retry_wait_s=0.2, max_wait_s=1.0)
            killer.join(timeout=150)
            phone = stored_rows(store, "phone")
            other = stored_rows(store, "other-board")
            table = store.table("phone")
    finally:
        for agent in agents:
            agent.kill()
    assert Counter(key for key, _ in phone) == Counter({w.key: 1 for w in workloads}), "a workload was lost or stored twice"
    assert Counter(key for key, _ in other) == Counter({w.key: 1 for w in workloads})
    assert set(table["status"]) == {"ok"}
    assert killed.url in summary.left
    handed = {key for address, key in summary.handed_back if address == killed.url}
    assert handed, "the killed board's workload was not handed back"
    extras = dict(phone)
    assert all(f'"board": "{killed.url}"' not in extras[key] for key in handed)
    assert all(summary.measured_by[agent.url] >= 1 for agent in agents)
    assert summary.problem() == ""


def test_cli_measures_two_local_devices_into_two_tables(tmp_path):
    model = tmp_path / "probe.onnx"
    model.write_bytes(probe_workload(channels=4, frames=2, size=8).onnx)
    paths = []
    for name in ("ort-a", "ort-b"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\ndescription: ONNX Runtime on one thread, for the tests\nbackend: onnxruntime\n"
                        "measurement: {warmup_runs: 1, min_runs: 3, max_runs: 5, max_seconds: 0.2}\n")
        paths += ["--device", str(path)]
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(cli, ["profile", *paths, "--onnx", str(model), "--store", str(store), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "ort-a: 1 measured" in result.output and "ort-b: 1 measured" in result.output
    with LatencyStore(store) as opened:
        assert sorted(opened.devices()) == ["ort-a", "ort-b"] and opened.count("ort-a") == opened.count("ort-b") == 1
