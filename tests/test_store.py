"""The latency store and the resumable sweep, with a scripted fake backend (no runtime needed)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import pytest

from profiler.backends.base import Backend
from profiler.device import parse_device
from profiler.errors import StoreError, TransientDeviceError
from profiler.store import SCHEMA_VERSION, LatencyStore, default_store_path
from profiler.sweep import profile_workloads
from profiler.workload import Measurement, Workload

DEVICE = parse_device({"name": "fake-dev", "description": "a scripted fake device for tests", "backend": "onnxruntime"})


def workload(key: str, **spec: object) -> Workload:
    return Workload(key=key, onnx=key.encode(), inputs={"x": (1, 3)}, spec={"op": "conv", **spec})


def ok(median: float, *, contended: bool = False) -> Measurement:
    return Measurement(status="ok", median_ms=median, mean_ms=median, std_ms=0.0, p10_ms=median, p90_ms=median,
                       runs=3, raw_ms=[median] * 3, cpu_ms=median, contended=contended)


class ScriptedBackend(Backend):
    """Returns (or raises) the next scripted outcome per key; default: ok(1.0)."""

    name = "scripted"

    def __init__(self, script: dict[str, list[object]] | None = None) -> None:
        super().__init__(DEVICE)
        self.script = script or {}
        self.calls: list[str] = []

    def fingerprint(self) -> dict[str, str]:
        return {"cpu": "fake"}

    def measure(self, workload: Workload) -> Measurement:
        self.calls.append(workload.key)
        outcomes = self.script.get(workload.key)
        outcome = outcomes.pop(0) if outcomes else ok(1.0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def store(tmp_path) -> Iterator[LatencyStore]:
    with LatencyStore(tmp_path / "s.sqlite") as opened:
        yield opened


def test_record_and_table_latest_row_with_spec_columns(store):
    store.register_device(DEVICE, {"cpu": "fake"})
    store.record("fake-dev", workload("a", c_in=8), ok(2.0))
    store.record("fake-dev", workload("b", c_in=16), Measurement.unsupported("Conv3D not supported"))
    store.record("fake-dev", workload("a", c_in=8), ok(3.0, contended=True))
    table = store.table("fake-dev")
    assert list(table["key"]) == ["b", "a"]
    row = table.set_index("key").loc["a"]
    assert row["median_ms"] == 3.0 and row["contended"] and row["c_in"] == 8 and row["spec"]["op"] == "conv"
    assert table.set_index("key").loc["b", "reason"] == "Conv3D not supported"
    assert list(store.table("fake-dev", keys=["a", "zzz"])["key"]) == ["a"]
    assert store.count("fake-dev") == 3 and store.has_result("fake-dev", "b") and not store.has_result("fake-dev", "c")
    assert store.raw_times("fake-dev", "a") == [3.0, 3.0, 3.0]


def test_node_times_and_missing_key(store):
    store.register_device(DEVICE, {})
    measurement = ok(3.0)
    measurement.node_times = [{"node": "conv", "op_type": "Conv", "median_ms": 2.0, "runs": 5},
                              {"node": "relu", "op_type": "Relu", "median_ms": 1.0, "runs": 5}]
    store.record("fake-dev", workload("a"), measurement)
    nodes = store.node_times("fake-dev", "a")
    assert list(nodes["node"]) == ["conv", "relu"] and nodes["share"].round(3).tolist() == [0.667, 0.333]
    with pytest.raises(StoreError, match="no measurement of 'nope'"):
        store.node_times("fake-dev", "nope")


def test_record_needs_registered_device(store):
    with pytest.raises(StoreError, match="not registered"):
        store.record("ghost", workload("a"), ok(1.0))


def test_empty_table_has_the_contract_columns(store):
    assert {"key", "status", "median_ms", "spec"} <= set(store.table("fake-dev").columns)


def test_reopen_keeps_data_and_uses_wal(tmp_path):
    path = tmp_path / "s.sqlite"
    with LatencyStore(path) as first:
        first.register_device(DEVICE, {})
        first.record("fake-dev", workload("a"), ok(1.0))
    with LatencyStore(path) as second:
        assert second.has_result("fake-dev", "a")
        assert second._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_store_is_an_error_and_untouched(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_bytes(b"just some notes, not a database" * 10)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    before = {path: path.read_bytes() for path in (text, other)}
    with pytest.raises(StoreError, match="not a vidlat store"):
        LatencyStore(text)
    with pytest.raises(StoreError, match="not a vidlat store.*photos"):
        LatencyStore(other)
    assert {path: path.read_bytes() for path in (text, other)} == before


def test_newer_schema_is_an_error(tmp_path):
    path = tmp_path / "s.sqlite"
    LatencyStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer than this vidlat"):
        LatencyStore(path)


def test_default_store_path_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDLAT_STORE", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("VIDLAT_STORE")
    assert default_store_path().name == "latency.sqlite"


# ---------------------------------------------------------------------------------------- sweep
def test_sweep_dedupes_resumes_and_limits(store):
    backend = ScriptedBackend()
    items = [workload("a"), workload("b"), workload("a"), workload("c")]
    first = profile_workloads(backend, store, items, limit=2, progress=False)
    assert (first.measured, first.left, backend.calls) == (2, 1, ["a", "b"])
    second = profile_workloads(backend, store, items, progress=False)
    assert (second.measured, second.skipped) == (1, 2) and backend.calls[-1] == "c"
    again = profile_workloads(backend, store, items, remeasure=True, progress=False)
    assert again.measured == 3 and store.count("fake-dev") == 6 and len(store.table("fake-dev")) == 3


def test_sweep_records_unsupported_failed_and_crashes(store):
    backend = ScriptedBackend({"u": [Measurement.unsupported("no op")], "f": [RuntimeError("segv-ish\nboom")]})
    summary = profile_workloads(backend, store, [workload("u"), workload("f"), workload("ok")], progress=False)
    assert (summary.measured, summary.unsupported, summary.failed) == (1, 1, 1)
    table = store.table("fake-dev").set_index("key")
    assert table.loc["f", "reason"] == "RuntimeError: segv-ish boom" and table.loc["u", "status"] == "unsupported"


def contended(median: float, cpu: float) -> Measurement:
    measurement = ok(median, contended=True)
    measurement.cpu_ms = cpu
    return measurement


def test_contended_is_remeasured_later_then_least_contended_stored_flagged(store):
    backend = ScriptedBackend({"a": [ok(9.0, contended=True), ok(1.5)],
                               "b": [contended(6.0, 2.0), contended(5.0, 2.5), contended(9.0, 3.0)]})
    summary = profile_workloads(backend, store, [workload("a"), workload("b"), workload("c")], progress=False, max_contended_retries=2)
    assert backend.calls == ["a", "b", "c", "a", "b", "b"]
    table = store.table("fake-dev").set_index("key")
    assert table.loc["a", "median_ms"] == 1.5 and not table.loc["a", "contended"]
    assert table.loc["b", "contended"] and table.loc["b", "median_ms"] == 5.0
    assert summary.contended == 1 and store.count("fake-dev") == 3


def test_transient_errors_back_off_then_give_up(store):
    waits: list[float] = []
    backend = ScriptedBackend({"a": [TransientDeviceError("agent down")] * 2 + [ok(1.0)]})
    summary = profile_workloads(backend, store, [workload("a")], progress=False, sleep=waits.append, retry_wait_s=1, max_wait_s=10)
    assert summary.measured == 1 and waits == [1, 2]
    stuck = ScriptedBackend({"b": [TransientDeviceError("agent down")] * 50})
    with pytest.raises(TransientDeviceError, match="did not answer.*run the same command again"):
        profile_workloads(stuck, store, [workload("b")], progress=False, sleep=waits.append, retry_wait_s=1, max_wait_s=10)
    assert not store.has_result("fake-dev", "b")


def test_only_if_absent_never_stores_a_key_twice(store):
    store.register_device(DEVICE, {})
    assert store.record("fake-dev", workload("a"), ok(1.0), only_if_absent=True)
    assert not store.record("fake-dev", workload("a"), ok(2.0), only_if_absent=True)
    assert store.count("fake-dev") == 1 and store.table("fake-dev")["median_ms"].tolist() == [1.0]


def test_sweep_skips_what_a_concurrent_sweep_stored_meanwhile(tmp_path):
    path = tmp_path / "s.sqlite"
    with LatencyStore(path) as mine, LatencyStore(path) as other:
        other.register_device(DEVICE, {})

        class Racing(ScriptedBackend):
            def measure(self, item: Workload) -> Measurement:
                other.record("fake-dev", item, ok(7.0))  # the other sweep finishes first
                return super().measure(item)

        summary = profile_workloads(Racing(), mine, [workload("a")], progress=False)
        assert (summary.measured, summary.skipped, mine.count("fake-dev")) == (0, 1, 1)


# ------------------------------------------------------------------ a device name means one configuration
def changed(**update: object) -> object:
    return parse_device({"name": "fake-dev", "description": "a scripted fake device for tests", "backend": "onnxruntime", **update})


@pytest.mark.parametrize("device, fingerprint, differs", [
    (changed(options={"intra_op_threads": 4}), {"cpu": "fake"}, "options.intra_op_threads 1 -> 4"),
    (changed(measurement={"min_runs": 50, "max_runs": 100}), {"cpu": "fake"}, "measurement.max_runs 200 -> 100"),
    (DEVICE, {"cpu": "faster"}, 'fingerprint.cpu "fake" -> "faster"'),
])
def test_a_changed_device_under_a_stored_name_is_refused_then_replaced_with_remeasure(store, device, fingerprint, differs):
    profile_workloads(ScriptedBackend(), store, [workload("a"), workload("b")], progress=False)
    before = (store.table("fake-dev").to_dict(), store.count(), store.fingerprint("fake-dev"))
    backend = ScriptedBackend({"a": [ok(9.0)], "b": [ok(9.0)]})
    backend.device, backend.fingerprint = device, lambda: fingerprint
    with pytest.raises(StoreError, match=f"'fake-dev' now means another configuration \\({differs}.*--remeasure") as error:
        profile_workloads(backend, store, [workload("a"), workload("b")], progress=False)
    assert "\n" not in str(error.value) and backend.calls == []
    assert (store.table("fake-dev").to_dict(), store.count(), store.fingerprint("fake-dev")) == before

    summary = profile_workloads(backend, store, [workload("a")], remeasure=True, progress=False)
    assert summary.measured == 1 and store.count() == 3  # the old rows stay as history
    assert store.table("fake-dev")[["key", "median_ms"]].values.tolist() == [["a", 9.0]]  # b: not measured as configured now
    resumed = profile_workloads(backend, store, [workload("a"), workload("b")], progress=False)
    assert (resumed.skipped, resumed.measured, backend.calls) == (1, 1, ["a", "b"])


def test_an_unchanged_device_resumes_and_description_or_per_node_do_not_change_it(store):
    profile_workloads(ScriptedBackend(), store, [workload("a")], progress=False)
    backend = ScriptedBackend()
    backend.device = changed(description="the same device, described anew", measurement={"per_node": True},
                             options={"intra_op_threads": 1})
    summary = profile_workloads(backend, store, [workload("a"), workload("b")], progress=False)
    assert (summary.skipped, summary.measured, backend.calls) == (1, 1, ["b"])


def test_simulator_hardware_is_part_of_the_identity():
    from profiler.catalog import resolve_device
    from profiler.store import device_identity

    device = resolve_device("fpga-z7020-sim").model_dump(mode="json", exclude_none=True)
    faster = {**device, "hardware": {**device["hardware"], "clock_mhz": 2 * device["hardware"]["clock_mhz"]}}
    assert device_identity(device, {}) != device_identity(faster, {})
    assert device_identity(device, {"vidlat": "1"}) == device_identity(device, {"vidlat": "2"})


def test_rows_from_before_identities_count_until_the_configuration_is_replaced(store):
    profile_workloads(ScriptedBackend(), store, [workload("a")], progress=False)
    store._db.execute("UPDATE measurements SET extra = json_remove(extra, '$.device_identity')")
    assert profile_workloads(ScriptedBackend(), store, [workload("a")], progress=False).skipped == 1
    backend = ScriptedBackend()
    backend.device = changed(options={"intra_op_threads": 2})
    profile_workloads(backend, store, [], remeasure=True, progress=False)
    assert store.table("fake-dev").empty and store.count() == 1


# ------------------------------------------------------------------ files that are not (our) stores
def sqlite_file(path, *statements: str, wal: bool = False):
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path


def untouched(path) -> tuple[str, list[str]]:
    """The file's hash and every file beside it (side files included)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(item.name for item in path.parent.iterdir())


@pytest.mark.parametrize("statements, wal, message", [
    (["CREATE VIEW v AS SELECT 1 AS x"], False, "with no tables"),
    (["PRAGMA user_version = 7"], False, "with no tables"),
    (["PRAGMA application_id = 1234"], False, "with no tables"),
    (["CREATE TABLE photos (id INTEGER)"], True, "with tables photos"),
    (["CREATE TABLE meta (k TEXT, v TEXT)"], False, "meta table has another shape: no such column: name"),
    (["CREATE TABLE meta (name TEXT, value TEXT)", "INSERT INTO meta VALUES ('app', 'other')"], False, "with tables meta"),
    (["CREATE TABLE meta (name TEXT, value TEXT)", "INSERT INTO meta VALUES ('app', 'vidlat')",
      "INSERT INTO meta VALUES ('schema_version', 'one')"], False, "schema_version 'one' is not an integer"),
])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_foreign_sqlite_file_is_refused_byte_identical_without_side_files(tmp_path, statements, wal, message, read_only):
    path = sqlite_file(tmp_path / "foreign.sqlite", *statements, wal=wal)
    before = untouched(path)
    with pytest.raises(StoreError, match=message) as error:
        LatencyStore(path, read_only=read_only)
    assert "\n" not in str(error.value)
    assert untouched(path) == before


def test_only_a_missing_or_empty_file_becomes_a_store(tmp_path):
    (tmp_path / "empty.sqlite").touch()
    for path in (tmp_path / "empty.sqlite", tmp_path / "new" / "s.sqlite"):
        with LatencyStore(path) as created:
            assert created.devices() == []
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(StoreError, match="cannot create the store's folder"):
        LatencyStore(tmp_path / "file" / "s.sqlite")
    with pytest.raises(StoreError, match="no latency store here"):
        LatencyStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_read_only_store_is_read_without_writing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vidlat.cli import cli

    path = tmp_path / "s.sqlite"
    with LatencyStore(path) as created:
        created.register_device(DEVICE, {})
        created.record("fake-dev", workload("a"), ok(2.0))
    path.chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK and str(p) == str(path) else real_access(p, mode))
    before = untouched(path)
    with LatencyStore(path, read_only=True) as opened:
        assert opened.table("fake-dev")["median_ms"].tolist() == [2.0]
    result = CliRunner().invoke(cli, ["lut", "show", "--device", "fake-dev", "--space", "tiny", "--store", str(path)])
    assert result.exit_code == 0 and "missing" in result.output, result.output
    assert untouched(path) == before
    with pytest.raises(StoreError, match="store file is read-only"):
        LatencyStore(path)
    assert untouched(path) == before


@pytest.mark.parametrize("latency", [float("inf"), float("nan"), -1.0])
def test_a_non_physical_latency_is_stored_as_failed_never_ok(store, latency):
    summary = profile_workloads(ScriptedBackend({"a": [ok(latency)]}), store, [workload("a")], progress=False)
    assert (summary.measured, summary.failed) == (0, 1)
    row = store.table("fake-dev").iloc[0]
    assert row["status"] == "failed" and "non-physical latency median_ms" in row["reason"]
    with pytest.raises(StoreError, match="refusing to store 'b' as ok: non-physical latency"):
        store.record("fake-dev", workload("b"), ok(latency))


# ------------------------------------------------------------------ progress on a log
def test_progress_on_a_non_terminal_is_a_few_plain_lines(store, capsys):
    profile_workloads(ScriptedBackend(), store, [workload(f"k{index}") for index in range(300)], progress=True)
    lines = capsys.readouterr().err.splitlines(keepends=True)
    assert len(lines) == 1 and "\r" not in lines[0]
    assert lines[0].startswith("fake-dev: 300/300 wl (") and lines[0].endswith(" s), k299\n")


def test_plain_progress_writes_one_line_per_interval_and_one_at_close():
    import io

    from profiler.progress import PlainProgress, progress_bar

    now = [0.0]
    stream = io.StringIO()
    bar = PlainProgress(10, desc="train", unit="epoch", stream=stream, interval_s=30, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 10
        bar.update(1)
        bar.set_postfix(loss="0.5")
    bar.close()
    assert stream.getvalue().splitlines() == [
        "train: 3/10 epoch (30 s), loss=0.5", "train: 6/10 epoch (60 s), loss=0.5",
        "train: 9/10 epoch (90 s), loss=0.5", "train: 10/10 epoch (100 s), loss=0.5",
    ]
    assert isinstance(progress_bar(5, desc="x", unit="wl", stream=io.StringIO()), PlainProgress)
