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

A device name means one configuration: its identity is everything that changes its latency
(backend, options with defaults filled in, measurement policy, simulator hardware, and the
fingerprint less the vidlat / Python / OS versions; not the description, the per-node switch or a
remote device's address). Stored identities are recomputed from the stored config with the options
of today, so an option added later at its default keeps an old store's devices.
Registering a name that already holds measurements with another identity is a ``StoreError``
naming what differs, and changes nothing; ``replace=True`` (``vidlat profile --remeasure``) makes
the name mean the new configuration: the old rows stay as history, but reads and resume see only
the rows measured under the current identity (its digest is in ``meta`` and in each row's ``extra``).

Only a missing or empty (0-byte) file becomes a new store. Any other file is checked read-only
first and refused, byte-identical and without side files, unless it is a vidlat store;
``read_only=True`` opens a store without writing to it (a read-only file works).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from profiler import __version__
from pydantic import ValidationError

from profiler.device import BACKEND_OPTIONS, DeviceConfig, MeasurementPolicy
from profiler.errors import StoreError
from profiler.workload import Measurement, Workload

APP = "vidlat"
SCHEMA_VERSION = 1
STORE_ENV = "VIDLAT_STORE"

STAT_COLUMNS = ["median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "runs", "cpu_ms", "contended"]
TABLE_COLUMNS = ["key", "status", "reason", *STAT_COLUMNS, "measured_at"]
SQLITE_HEADER = b"SQLite format 3\x00"
# what does not change a device's latency: how it is called and described, what else is recorded, versions
# (a remote device's address is how it is called: identical boards at different addresses are one device)
IDENTITY_IGNORED: frozenset[str] = frozenset({
    "name", "description", "measurement.per_node", "fingerprint.vidlat", "fingerprint.python", "fingerprint.os",
    "options.url", "fingerprint.agent_url",
})
IDENTITY_KEY = "device_identity"  # in a measurement's extra: the identity it was measured under

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


def _flatten(value: Any, prefix: str, into: dict[str, str]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    else:
        into[prefix] = json.dumps(value, sort_keys=True, default=str)


def _round_medians(extra_json: str) -> list[float] | None:
    """The per-round medians an interleaved measurement keeps in ``extra`` (None if absent or malformed)."""
    try:
        extra = json.loads(extra_json)
    except ValueError:
        return None
    rounds = extra.get("round_medians_ms") if isinstance(extra, dict) else None
    if isinstance(rounds, list) and rounds and all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in rounds):
        return [float(value) for value in rounds]
    return None


def device_identity(config: Mapping[str, Any], fingerprint: Mapping[str, Any]) -> dict[str, str]:
    """Everything that changes a device's latency, flat (``options.intra_op_threads``, ``fingerprint.cpu``, ...)."""
    config = dict(config)
    try:  # defaults filled in, so `options: {}` and the same options spelled out are one identity
        config["options"] = BACKEND_OPTIONS[config["backend"]].model_validate(config.get("options", {})).model_dump(mode="json")
    except (KeyError, ValidationError):
        pass
    try:  # the same for the policy: a field added later reads as its default in a store made before it
        config["measurement"] = MeasurementPolicy.model_validate(config.get("measurement", {})).model_dump(mode="json")
    except ValidationError:
        pass
    flat: dict[str, str] = {}
    _flatten({**config, "fingerprint": dict(fingerprint)}, "", flat)
    return {key: value for key, value in flat.items() if key not in IDENTITY_IGNORED}


def identity_digest(identity: Mapping[str, str]) -> str:
    """A short stable hash of an identity."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _differences(old: Mapping[str, str], new: Mapping[str, str], shown: int = 4) -> str:
    keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    text = ", ".join(f"{key} {old.get(key, '(unset)')} -> {new.get(key, '(unset)')}" for key in keys[:shown])
    return text + (f" ... ({len(keys) - shown} more)" if len(keys) > shown else "")


class LatencyStore:
    """A vidlat latency store on disk (created on first use); use as a context manager.

    A file that is not a vidlat store, or one written by a newer schema, raises ``StoreError``
    and is left untouched.
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; give the path of a store file (e.g. latency.sqlite)")
        new = self._check_file()
        if new and read_only:
            raise StoreError(f"{self.path}: no latency store here (missing or empty); run `vidlat profile` first or pass --store")
        if not new and not read_only and not os.access(self.path, os.W_OK):
            raise StoreError(f"{self.path}: the store file is read-only; measuring needs write access "
                             "(lut show / export, fit, evaluate and predict only read it)")
        if new:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the store's folder {self.path.parent} ({exc.strerror or exc}); "
                                 "give a path in a folder") from None
        try:
            self._db = self._connect(read_only=read_only)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        try:
            if new:
                self._create()
            if not read_only:
                self._wal()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{self.path}: cannot write to the store ({exc})") from None
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ opening
    def _connect(self, *, read_only: bool, inspect: bool = False) -> sqlite3.Connection:
        """A connection; read-only ones never write. With no ``-wal`` file nobody has the store open for
        writing, so a read-only look at a file we may not write is ``immutable``: no lock, no side files."""
        query = ""
        if read_only:
            quiet = not Path(f"{self.path}-wal").exists() and (inspect or not os.access(self.path, os.W_OK))
            query = "?mode=ro" + ("&immutable=1" if quiet else "")
        uri = f"file:{urllib.parse.quote(str(self.path.absolute()))}{query}"
        return sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)

    def _check_file(self) -> bool:
        """True if the path may become a new store (missing or 0 bytes); else it must be a vidlat store
        this vidlat understands, which is checked without writing anything."""
        try:
            size = self.path.stat().st_size
            if size == 0:
                return True
            with self.path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the store ({exc.strerror or exc})") from None
        refuse = f"{self.path}: not a vidlat store"
        choose = "choose another --store path (only a missing or empty file becomes a new store)"
        if header != SQLITE_HEADER:
            raise StoreError(f"{refuse} (not an SQLite database); {choose}")
        try:
            db = self._connect(read_only=True, inspect=True)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" not in tables:
                what = f"tables {', '.join(sorted(tables))}" if tables else "no tables"
                raise StoreError(f"{refuse} (an SQLite file with {what}); {choose}")
            try:
                meta = dict(db.execute("SELECT name, value FROM meta"))
            except sqlite3.Error as exc:
                raise StoreError(f"{refuse} (its meta table has another shape: {exc}); {choose}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{refuse} (not a readable SQLite database: {exc}); {choose}") from None
        finally:
            db.close()
        if meta.get("app") != APP:
            raise StoreError(f"{refuse} (an SQLite file with tables {', '.join(sorted(tables))}); {choose}")
        try:
            version = int(meta.get("schema_version", ""))
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: damaged vidlat store: schema_version {meta.get('schema_version')!r} is not an integer") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this vidlat understands "
                f"({SCHEMA_VERSION}); upgrade vidlat"
            )
        missing = {"devices", "workloads", "measurements"} - tables
        if missing:
            raise StoreError(f"{self.path}: damaged vidlat store: no table {', '.join(sorted(missing))}")
        return False

    def _create(self) -> None:
        """The schema, in one transaction (a new file stays empty if it is interrupted)."""
        with self._transaction():
            if self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
                return  # another process created the store meanwhile
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [("app", APP), ("schema_version", str(SCHEMA_VERSION)), ("created_at", _now())],
            )

    def _wal(self) -> None:
        # WAL + synchronous=NORMAL: a committed measurement survives a killed process (not a power cut).
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # read-only file, locked for longer than the timeout, ...
            raise StoreError(f"{self.path}: cannot write to the store ({exc})") from None
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
    def register_device(self, device: DeviceConfig, fingerprint: dict[str, Any], *, replace: bool = False) -> None:
        """Insert a device with its config and the fingerprint of the machine now, or refresh it.

        If the name already holds measurements made with another identity (see the module doc), it is
        a ``StoreError`` naming what differs and nothing changes, unless ``replace``: then the name
        means the new configuration and only what is measured under it is read from now on.
        """
        config = device.model_dump(mode="json", exclude_none=True)
        identity = device_identity(config, fingerprint)
        with self._transaction():
            row = self._db.execute("SELECT config, fingerprint FROM devices WHERE name = ?", (device.name,)).fetchone()
            stored = device_identity(json.loads(row[0]), json.loads(row[1])) if row is not None else None
            if stored is not None and stored != identity:
                where, params = self._current(device.name)
                count = self._db.execute(f"SELECT COUNT(*) FROM measurements WHERE {where}", params).fetchone()[0]
                if count and not replace:
                    raise StoreError(
                        f"{self.path}: device name '{device.name}' now means another configuration "
                        f"({_differences(stored, identity)}) than its {count} stored measurements; nothing was changed. "
                        "Give the changed device a new name, or re-run with --remeasure to measure everything "
                        "again under the new configuration (the old rows stay as history)"
                    )
                # rows from before identities were recorded belong to the configuration being replaced
                self._db.execute(
                    f"UPDATE measurements SET extra = json_set(extra, '$.{IDENTITY_KEY}', ?) "
                    f"WHERE device = ? AND json_extract(extra, '$.{IDENTITY_KEY}') IS NULL",
                    (self.identity(device.name) or identity_digest(stored), device.name),
                )
            if stored != identity or not self.identity(device.name):
                self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                 (f"identity:{device.name}", identity_digest(identity)))
            self._db.execute(
                "INSERT INTO devices (name, backend, config, fingerprint, registered_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET backend = excluded.backend, config = excluded.config, "
                "fingerprint = excluded.fingerprint, registered_at = excluded.registered_at",
                (device.name, device.backend, json.dumps(config, sort_keys=True), json.dumps(fingerprint, sort_keys=True), _now()),
            )

    def canary_reference(self, device_name: str) -> float | None:
        """The canary's reference time (ms) for the device as configured now: interleaved sweeps scale
        every round to it (``profiler.rounds``), so all of a device's sweeps share one scale."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (f"canary:{self.identity(device_name)}",)).fetchone()
        try:
            value = float(row[0]) if row is not None else None
        except ValueError:
            return None
        return value if value is not None and math.isfinite(value) and value > 0 else None

    def set_canary_reference(self, device_name: str, ms: float) -> None:
        """Record the device's canary reference (the first interleaved group's canary baseline)."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                             (f"canary:{self.identity(device_name)}", repr(float(ms))))

    def identity(self, device_name: str) -> str:
        """Digest of the configuration the device name means now ("" if none was recorded yet)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (f"identity:{device_name}",)).fetchone()
        return row[0] if row is not None else ""

    def _put_workload(self, workload: Workload) -> None:
        """Insert or update a workload's spec, input shapes and ONNX hash (not the ONNX bytes)."""
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
        if measurement.problem():
            raise StoreError(f"{self.path}: refusing to store '{workload.key}' as ok: {measurement.problem()}")
        extra = {**measurement.extra, IDENTITY_KEY: self.identity(device_name)}
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
                    json.dumps(measurement.node_times), json.dumps(extra, default=str), row[0],
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

    def _current(self, device_name: str) -> tuple[str, tuple[str, str]]:
        """SQL condition and parameters: a measurement of the device under its current identity (rows from
        before identities were recorded count until the configuration is replaced)."""
        stamp = f"json_extract(extra, '$.{IDENTITY_KEY}')"
        return f"device = ? AND ({stamp} = ? OR {stamp} IS NULL)", (device_name, self.identity(device_name))

    def has_result(self, device_name: str, key: str) -> bool:
        """Whether any measurement (ok, unsupported or failed) of ``key`` on the device, as configured now, is stored."""
        where, params = self._current(device_name)
        return self._db.execute(f"SELECT 1 FROM measurements WHERE {where} AND key = ? LIMIT 1", (*params, key)).fetchone() is not None

    def measured_keys(self, device_name: str) -> set[str]:
        """Every key with a stored measurement on the device as configured now."""
        where, params = self._current(device_name)
        return {row[0] for row in self._db.execute(f"SELECT DISTINCT key FROM measurements WHERE {where}", params)}

    def count(self, device_name: str | None = None) -> int:
        """Number of measurement rows (all history), for one device or all."""
        if device_name is None:
            return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM measurements WHERE device = ?", (device_name,)).fetchone()[0]

    def _latest(self, device_name: str, keys: list[str] | None, columns: str) -> list[sqlite3.Row]:
        where, params = self._current(device_name)
        query = (
            f"SELECT {columns} FROM measurements m JOIN workloads w ON w.key = m.key "
            f"WHERE m.id IN (SELECT MAX(id) FROM measurements WHERE {where} GROUP BY key)"
        )
        self._db.row_factory = sqlite3.Row
        try:
            rows = self._db.execute(query + " ORDER BY m.id", params).fetchall()
        finally:
            self._db.row_factory = None
        if keys is not None:
            wanted = set(keys)
            rows = [row for row in rows if row["key"] in wanted]
        return rows

    def table(self, device_name: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Latest measurement per workload on the device, one row each, with every spec key as a column.

        Columns: ``key, status, reason, median_ms, mean_ms, std_ms, p10_ms, p90_ms, runs, cpu_ms,
        contended, measured_at``, then the spec keys, then ``spec`` (the whole dict),
        ``round_medians_ms`` (the per-round medians of an interleaved measurement, else None) and
        ``node_times`` (the per-node rows of a ``per_node`` measurement, else an empty list). With
        ``keys``, only those workloads (the ones not measured are simply absent).
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
            record["round_medians_ms"] = _round_medians(row["extra"])
            record["node_times"] = json.loads(row["node_times"] or "[]")
            records.append(record)
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(columns=[*TABLE_COLUMNS, "spec", "round_medians_ms", "node_times"])
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
