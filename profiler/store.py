"""The latency store: one SQLite file of devices, workloads and measurements.

::

    devices      (name, backend, config JSON, fingerprint JSON)
    workloads    (key, spec JSON, inputs JSON, onnx_hash)
    measurements (id, device, key, status, reason, stats, raw times JSON, cpu_ms, contended,
                  node_times JSON, extra JSON, fingerprint JSON, vidlat version, measured_at)
    meta         (app = vidlat, schema_version)

Every measurement is committed as it is recorded (WAL mode), so an interrupted sweep loses at most
the workload in flight. ``table`` gives the latest measurement per workload as a DataFrame; the
history of re-measurements stays in the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from profiler import __version__
from profiler.device import DeviceConfig
from profiler.errors import StoreError
from profiler.workload import Measurement, Workload

APP = "vidlat"
SCHEMA_VERSION = 1
STORE_ENV = "VIDLAT_STORE"

STAT_COLUMNS = ["median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "runs", "cpu_ms", "contended"]
TABLE_COLUMNS = ["key", "status", "reason", *STAT_COLUMNS, "measured_at"]

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (
    name TEXT PRIMARY KEY, backend TEXT NOT NULL, config TEXT NOT NULL, fingerprint TEXT NOT NULL,
    registered_at TEXT NOT NULL);
CREATE TABLE workloads (
    key TEXT PRIMARY KEY, spec TEXT NOT NULL, inputs TEXT NOT NULL, onnx_hash TEXT NOT NULL);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL REFERENCES devices(name),
    key TEXT NOT NULL REFERENCES workloads(key),
    status TEXT NOT NULL CHECK (status IN ('ok', 'unsupported', 'failed')),
    reason TEXT NOT NULL,
    median_ms REAL, mean_ms REAL, std_ms REAL, p10_ms REAL, p90_ms REAL,
    runs INTEGER NOT NULL, raw_ms TEXT NOT NULL, cpu_ms REAL, contended INTEGER NOT NULL,
    node_times TEXT NOT NULL, extra TEXT NOT NULL, fingerprint TEXT NOT NULL,
    vidlat_version TEXT NOT NULL, measured_at TEXT NOT NULL);
CREATE INDEX measurements_device_key ON measurements (device, key, id);
"""


def default_store_path() -> Path:
    """``$VIDLAT_STORE`` if set, else ``latency.sqlite`` in the user's data directory."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP)) / "latency.sqlite"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LatencyStore:
    """A vidlat latency store on disk (created on first use); use as a context manager.

    A file that is not a vidlat store, or one written by a newer schema, raises ``StoreError``
    and is left untouched.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; give the path of a store file (e.g. latency.sqlite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a vidlat store (not an SQLite database: {exc})") from None
        if not tables:
            self._wal()
            with self._transaction():
                for statement in _SCHEMA.strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [("app", APP), ("schema_version", str(SCHEMA_VERSION)), ("created_at", _now())],
                )
            return
        meta = dict(self._db.execute("SELECT name, value FROM meta")) if "meta" in tables else {}
        if meta.get("app") != APP:
            raise StoreError(f"{self.path}: not a vidlat store (an SQLite file with tables {', '.join(sorted(tables))}); choose another --store path")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this vidlat understands "
                f"({SCHEMA_VERSION}); upgrade vidlat"
            )
        self._wal()

    def _wal(self) -> None:
        # WAL + synchronous=NORMAL: a committed measurement survives a killed process (not a power cut).
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "LatencyStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def register_device(self, device: DeviceConfig, fingerprint: dict[str, Any]) -> None:
        """Insert or update a device with its config and the fingerprint of the machine now."""
        config = device.model_dump(mode="json", exclude_none=True)
        with self._transaction():
            self._db.execute(
                "INSERT INTO devices (name, backend, config, fingerprint, registered_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET backend = excluded.backend, config = excluded.config, "
                "fingerprint = excluded.fingerprint, registered_at = excluded.registered_at",
                (device.name, device.backend, json.dumps(config, sort_keys=True), json.dumps(fingerprint, sort_keys=True), _now()),
            )

    def put_workload(self, workload: Workload) -> None:
        """Insert or update a workload's spec, input shapes and ONNX hash (not the ONNX bytes)."""
        with self._transaction():
            self._put_workload(workload)

    def _put_workload(self, workload: Workload) -> None:
        self._db.execute(
            "INSERT INTO workloads (key, spec, inputs, onnx_hash) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET spec = excluded.spec, inputs = excluded.inputs, onnx_hash = excluded.onnx_hash",
            (workload.key, json.dumps(workload.spec, sort_keys=True, default=str), json.dumps({k: list(v) for k, v in workload.inputs.items()}), workload.onnx_hash),
        )

    def record(self, device_name: str, workload: Workload, measurement: Measurement, *, only_if_absent: bool = False) -> bool:
        """Store one measurement (and its workload) in one committed transaction; True if stored.

        With ``only_if_absent``, nothing is stored when the key already has a measurement on the
        device (checked inside the transaction, so two sweeps at once never store a key twice).
        """
        row = self._db.execute("SELECT fingerprint FROM devices WHERE name = ?", (device_name,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: device '{device_name}' is not registered; call register_device first")
        with self._transaction():
            if only_if_absent and self.has_result(device_name, workload.key):
                return False
            self._put_workload(workload)
            self._db.execute(
                "INSERT INTO measurements (device, key, status, reason, median_ms, mean_ms, std_ms, p10_ms, p90_ms, "
                "runs, raw_ms, cpu_ms, contended, node_times, extra, fingerprint, vidlat_version, measured_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    device_name, workload.key, measurement.status, measurement.reason,
                    measurement.median_ms, measurement.mean_ms, measurement.std_ms, measurement.p10_ms, measurement.p90_ms,
                    measurement.runs, json.dumps(measurement.raw_ms), measurement.cpu_ms, int(measurement.contended),
                    json.dumps(measurement.node_times), json.dumps(measurement.extra, default=str), row[0],
                    __version__, _now(),
                ),
            )
        return True

    # ------------------------------------------------------------------ reading
    def devices(self) -> list[str]:
        """Names of the registered devices."""
        return [row[0] for row in self._db.execute("SELECT name FROM devices ORDER BY name")]

    def fingerprint(self, device_name: str) -> dict[str, Any]:
        """The fingerprint registered for ``device_name``."""
        row = self._db.execute("SELECT fingerprint FROM devices WHERE name = ?", (device_name,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no device '{device_name}'; devices here: {', '.join(self.devices()) or 'none'}")
        return json.loads(row[0])

    def has_result(self, device_name: str, key: str) -> bool:
        """Whether any measurement (ok, unsupported or failed) of ``key`` on the device is stored."""
        row = self._db.execute("SELECT 1 FROM measurements WHERE device = ? AND key = ? LIMIT 1", (device_name, key)).fetchone()
        return row is not None

    def measured_keys(self, device_name: str) -> set[str]:
        """Every key with a stored measurement on the device."""
        return {row[0] for row in self._db.execute("SELECT DISTINCT key FROM measurements WHERE device = ?", (device_name,))}

    def count(self, device_name: str | None = None) -> int:
        """Number of measurement rows (all history), for one device or all."""
        if device_name is None:
            return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM measurements WHERE device = ?", (device_name,)).fetchone()[0]

    def _latest(self, device_name: str, keys: list[str] | None, columns: str) -> list[sqlite3.Row]:
        query = (
            f"SELECT {columns} FROM measurements m JOIN workloads w ON w.key = m.key "
            "WHERE m.id IN (SELECT MAX(id) FROM measurements WHERE device = ? GROUP BY key)"
        )
        self._db.row_factory = sqlite3.Row
        try:
            rows = self._db.execute(query + " ORDER BY m.id", (device_name,)).fetchall()
        finally:
            self._db.row_factory = None
        if keys is not None:
            wanted = set(keys)
            rows = [row for row in rows if row["key"] in wanted]
        return rows

    def table(self, device_name: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Latest measurement per workload on the device, one row each, with every spec key as a column.

        Columns: ``key, status, reason, median_ms, mean_ms, std_ms, p10_ms, p90_ms, runs, cpu_ms,
        contended, measured_at``, then the spec keys, then ``spec`` (the whole dict). With ``keys``,
        only those workloads (the ones not measured are simply absent).
        """
        rows = self._latest(device_name, None if keys is None else list(keys), "m.*, w.spec AS spec")
        records = []
        for row in rows:
            spec = json.loads(row["spec"])
            record = {column: row[column] for column in TABLE_COLUMNS}
            record["contended"] = bool(record["contended"])
            for name, value in spec.items():
                record.setdefault(name, value)
            record["spec"] = spec
            records.append(record)
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(columns=[*TABLE_COLUMNS, "spec"])
        return frame

    def raw_times(self, device_name: str, key: str) -> list[float]:
        """Raw run times (ms) of the latest measurement of ``key``."""
        rows = self._latest(device_name, [key], "m.key AS key, m.raw_ms AS raw_ms")
        if not rows:
            raise StoreError(f"{self.path}: no measurement of '{key}' on device '{device_name}'")
        return json.loads(rows[0]["raw_ms"])

    def node_times(self, device_name: str, key: str) -> pd.DataFrame:
        """Per-node times of the latest measurement of ``key`` (columns node, op_type, median_ms, runs, share)."""
        rows = self._latest(device_name, [key], "m.key AS key, m.node_times AS node_times, m.median_ms AS median_ms")
        if not rows:
            raise StoreError(f"{self.path}: no measurement of '{key}' on device '{device_name}'")
        frame = pd.DataFrame.from_records(json.loads(rows[0]["node_times"]))
        if frame.empty:
            return pd.DataFrame(columns=["node", "op_type", "median_ms", "runs", "share"])
        total = frame["median_ms"].sum()
        frame["share"] = frame["median_ms"] / total if total > 0 else 0.0
        return frame
