"""The lookup-table predictor: measured latency of every (layer, candidate) of a search space.

::

    entries (DataFrame)                                        LUTPredictor
    layer  block                 key              median_ms
    -1     stem                  stem|...          0.41   ──>  fixed_ms = stem + head
     0     x3d_k333_e3_se        x3d_k333_...      1.20   ──>  layer_latencies(space.layers)
     0     skip                  skip|...          0.00         -> [array([1.20, 0.00, ...]), ...]
    ...                                                         predict_archs([[block, ...], ...])
    -1     head                  head|...          0.15         -> total ms per arch (vectorised)

Stem and head rows have ``layer`` -1. Entries come from the store (``from_store``), from a file
written by ``vidlat lut export`` (``lut_table`` joins a space with the store, ``write_lut_file``
writes it; read back by ``read_lut_file``/``from_file``, CSV or Parquet) or from any DataFrame with the columns ``layer, block, key, median_ms`` (and
optionally ``spec``). A file is checked row by row: one ``PredictorError`` line names the file,
the line and key, and what is allowed (an empty ``median_ms`` is a miss; a measured one is a
finite number of milliseconds > 0; one row per (layer, block)). A workload without a measured
latency is a miss: ``LUTMissError`` naming the keys, or, when a regressor is given and the entry
carries its spec, the regressor's prediction (``source`` column says which).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import json
import math

import numpy as np
import pandas as pd

from predictors.errors import LUTMissError, PredictorError
from predictors.features import as_spec
from profiler.errors import clip, short_repr
from profiler.store import STAT_COLUMNS, LatencyStore

REQUIRED_COLUMNS: tuple[str, ...] = ("layer", "block", "key", "median_ms")
FIXED_LAYER = -1
MAX_LAYER = 9999
LUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


class LayerSlotLike(Protocol):
    """What ``layer_latencies`` needs of a search-space layer (``search.space.LayerSlot``)."""

    index: int
    candidates: list[str]


class RegressorLike(Protocol):
    def predict(self, specs: Sequence[Mapping[str, Any]]) -> np.ndarray: ...


def space_entries(space: Any) -> pd.DataFrame:
    """Entries (layer, block, key, spec) of every workload of a ``search.space.SearchSpace``."""
    rows = [
        {"layer": item.layer, "block": item.block, "key": item.workload.key, "spec": item.workload.spec}
        for item in space.workloads()
    ]
    rows += [
        {"layer": FIXED_LAYER, "block": str(workload.spec.get("op", "fixed")), "key": workload.key, "spec": workload.spec}
        for workload in space.fixed_workloads()
    ]
    return pd.DataFrame(rows, columns=["layer", "block", "key", "spec"])


ContendedPolicy = Literal["cpu", "wall", "drop", "cpu-all"]
#: the values of ``ContendedPolicy``, for command-line choices
CONTENDED_POLICIES: tuple[str, ...] = get_args(ContendedPolicy)


def latency_ms(table: pd.DataFrame, contended: ContendedPolicy = "cpu") -> pd.Series:
    """The latency to learn from, per row of a store table (NaN unless status is ok).

    A row flagged ``contended`` (wall time far above the thread's CPU time even after the sweep's
    re-measures: another process had the core) keeps its wall median with ``"wall"``, is dropped
    (NaN) with ``"drop"``, or takes its CPU time with ``"cpu"``: on a one-thread CPU runtime the
    CPU time of an uncontended run equals its wall time, so it is the better estimate there.
    ``"cpu-all"`` takes the CPU time of every row (a shared machine where nearly every run is contended).
    """
    ms = pd.to_numeric(table["median_ms"], errors="coerce")
    if "status" in table.columns:
        ms = ms.where(table["status"] == "ok")
    if contended == "cpu-all" and "cpu_ms" in table.columns:
        cpu = pd.to_numeric(table["cpu_ms"], errors="coerce")
        return ms.where(cpu.isna(), cpu.where(ms.notna()))
    if contended != "wall" and "contended" in table.columns:
        flagged = table["contended"].fillna(False).astype(bool)
        if contended == "drop":
            ms = ms.where(~flagged)
        elif "cpu_ms" in table.columns:
            cpu = pd.to_numeric(table["cpu_ms"], errors="coerce")
            ms = ms.where(~flagged | cpu.isna(), cpu)
    return ms


def measured_entries(entries: pd.DataFrame, table: pd.DataFrame, *, contended: ContendedPolicy = "cpu") -> pd.DataFrame:
    """``entries`` with ``median_ms`` (and ``status``) joined from a store table on ``key``
    (contended rows handled by ``contended``, see ``latency_ms``)."""
    keep = [column for column in ("key", "status") if column in table.columns]
    measured = table[keep].assign(median_ms=latency_ms(table, contended)).drop_duplicates("key", keep="last")
    base = entries.drop(columns=[c for c in ("median_ms", "status") if c in entries.columns])
    return base.merge(measured, on="key", how="left")


class LUTPredictor:
    """Per-layer candidate latencies of one device and space, with an optional regressor for misses."""

    def __init__(self, entries: pd.DataFrame, *, regressor: RegressorLike | None = None, device: str = "") -> None:
        missing = [column for column in REQUIRED_COLUMNS if column not in entries.columns]
        if missing:
            raise PredictorError(
                f"lookup table lacks column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED_COLUMNS)}"
            )
        frame = entries.copy()
        frame["layer"] = pd.to_numeric(frame["layer"], errors="coerce").fillna(FIXED_LAYER).astype(int)
        frame["median_ms"] = pd.to_numeric(frame["median_ms"], errors="coerce")
        if "status" in frame.columns:  # unsupported / failed / missing rows of an exported table are misses
            frame.loc[frame["status"].notna() & (frame["status"] != "ok"), "median_ms"] = np.nan
        frame["source"] = np.where(frame["median_ms"].notna(), "lut", "")
        misses = frame["median_ms"].isna()
        if regressor is not None and misses.any() and "spec" in frame.columns:
            fill = misses & frame["spec"].notna()
            if fill.any():
                frame.loc[fill, "median_ms"] = regressor.predict([as_spec(s) for s in frame.loc[fill, "spec"]])
                frame.loc[fill, "source"] = "regressor"
        self.device = device
        self.entries = frame.drop_duplicates(["layer", "block"], keep="last").reset_index(drop=True)
        self._ms = {
            (int(layer), str(block)): float(ms)
            for layer, block, ms in zip(self.entries["layer"], self.entries["block"], self.entries["median_ms"])
        }
        self._keys = {(int(l), str(b)): str(k) for l, b, k in zip(self.entries["layer"], self.entries["block"], self.entries["key"])}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | Path, *, regressor: RegressorLike | None = None, device: str = "") -> "LUTPredictor":
        """Read a ``vidlat lut export`` file (.csv or .parquet, see ``read_lut_file``)."""
        return cls(read_lut_file(path), regressor=regressor, device=device)

    @classmethod
    def from_store(
        cls, store: Any, device_name: str, entries: pd.DataFrame, *, regressor: RegressorLike | None = None
    ) -> "LUTPredictor":
        """Entries (e.g. ``space_entries(space)``) with the latest latencies of ``device_name``."""
        table = store.table(device_name, keys=list(entries["key"].unique()))
        return cls(measured_entries(entries, table), regressor=regressor, device=device_name)

    # ------------------------------------------------------------------ lookups
    def _lookup(self, wanted: Iterable[tuple[int, str]]) -> np.ndarray:
        wanted = list(wanted)
        values = np.array([self._ms.get(item, np.nan) for item in wanted], dtype=float)
        if np.isnan(values).any():
            misses = [self._keys.get(item, f"layer {item[0]}: {item[1]} (not in the table)") for item, v in zip(wanted, values) if np.isnan(v)]
            raise LUTMissError(list(dict.fromkeys(misses)), self.device)
        return values

    def lookup(self, wanted: Iterable[tuple[int, str]]) -> np.ndarray:
        """ms of (layer, block) pairs (stem and head at layer -1); every miss in one ``LUTMissError``."""
        return self._lookup(wanted)

    @property
    def fixed_ms(self) -> float:
        """Latency of the fixed parts (stem and head), ms."""
        fixed = [(layer, block) for layer, block in self._ms if layer == FIXED_LAYER]
        return float(self._lookup(fixed).sum()) if fixed else 0.0

    def layer_latencies(self, space_layers: Sequence[LayerSlotLike]) -> list[np.ndarray]:
        """Per layer, ms of every candidate in the layer's candidate order (all misses in one error)."""
        wanted = [(int(slot.index), str(block)) for slot in space_layers for block in slot.candidates]
        flat = self._lookup(wanted)
        sizes = np.cumsum([len(slot.candidates) for slot in space_layers])[:-1]
        return [np.asarray(part) for part in np.split(flat, sizes)]

    def block_ms(self, layers: Sequence[str]) -> np.ndarray:
        """Latency of each block of one arch (``layers[i]`` is the block string of layer i)."""
        return self._lookup((i, str(block)) for i, block in enumerate(layers))

    def block_keys(self, layers: Sequence[str]) -> list[str]:
        return [self._keys.get((i, str(block)), "") for i, block in enumerate(layers)]

    def block_sources(self, layers: Sequence[str]) -> list[str]:
        """Where each block's latency came from: 'lut' (measured) or 'regressor'."""
        source = dict(zip(zip(self.entries["layer"], self.entries["block"]), self.entries["source"]))
        return [str(source.get((i, str(block)), "")) for i, block in enumerate(layers)]

    def predict_archs(self, archs: Sequence[Sequence[str]]) -> np.ndarray:
        """Plain block sum plus stem and head, ms, for many archs at once."""
        if not archs:
            return np.zeros(0)
        depth = max(len(layers) for layers in archs)
        flat = self._lookup((i, str(block)) for layers in archs for i, block in enumerate(layers))
        lengths = np.fromiter((len(layers) for layers in archs), dtype=int, count=len(archs))
        if np.all(lengths == depth):
            sums = flat.reshape(len(archs), depth).sum(axis=1)
        else:
            sums = np.add.reduceat(flat, np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        return sums + self.fixed_ms


# --------------------------------------------------------------------------- the file format
#: the first columns of a lookup-table file (spec columns and ``spec`` follow)
LUT_FRONT_COLUMNS: tuple[str, ...] = ("key", "layer", "block", "status", "reason", *STAT_COLUMNS, "measured_at")


def lut_table(store: LatencyStore, device: str, space: Any) -> pd.DataFrame:
    """What ``vidlat lut`` shows and writes: one row per (layer, candidate) of ``space``, plus stem and
    head at layer -1, joined on the key with the store's latest stats on ``device`` (status ``missing``
    where it holds none), then the spec columns and the spec dict."""
    entries = space_entries(space)
    table = store.table(device, keys=list(entries["key"].unique()))
    table = table.drop(columns=[column for column in entries.columns if column != "key"], errors="ignore")
    front = list(LUT_FRONT_COLUMNS)
    spec_columns = [column for column in table.columns if column not in front]
    merged = entries.merge(table, on="key", how="left")
    merged["status"] = merged["status"].fillna("missing")
    merged["reason"] = merged["reason"].fillna("")
    for column in spec_columns:  # spec keys of workloads never measured still come from the space
        merged[column] = merged[column].where(merged[column].notna(), merged["spec"].map(lambda spec, c=column: spec.get(c)))
    merged = merged[[*front, *[c for c in spec_columns if c not in front], "spec"]]
    return merged.sort_values(["layer", "block"], kind="stable").reset_index(drop=True)


def write_lut_file(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` (rows of ``vidlat lut``, spec dicts in column ``spec``) as CSV or Parquet,
    creating missing folders and replacing an existing file; the spec becomes JSON text."""
    path = Path(path)
    if path.suffix not in LUT_SUFFIXES:
        raise PredictorError(f"{path}: a lookup table file must end in {' or '.join(LUT_SUFFIXES)}")
    if "spec" in table.columns:
        table = table.assign(spec=table["spec"].map(lambda spec: json.dumps(spec, sort_keys=True, default=str)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    except OSError as exc:
        raise PredictorError(f"cannot write lookup table {path} ({exc.strerror or exc})") from None


def read_lut_file(path: str | Path) -> pd.DataFrame:
    """The entries of a ``vidlat lut export`` file; ``PredictorError`` naming the file, the row and
    what is allowed if it is not one (missing columns, a bad cell, a (layer, block) given twice)."""
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"lookup table file '{path}' does not exist (or is not a file)")
    if path.suffix not in LUT_SUFFIXES:
        raise PredictorError(f"lookup table file '{path}' must end in {' or '.join(LUT_SUFFIXES)}")
    expected = f"a `vidlat lut export` table with columns {', '.join(REQUIRED_COLUMNS)}"
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise PredictorError(f"{path}: the file is empty; expected {expected}") from None
    except UnicodeDecodeError:
        raise PredictorError(f"{path}: not UTF-8 text; expected {expected}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # pyarrow's errors derive from these
        raise PredictorError(f"{path}: cannot read it ({clip(' '.join(str(exc).split()))}); expected {expected}") from None
    if path.suffix == ".csv" and not isinstance(frame.index, pd.RangeIndex):  # pandas made the extra first cells an index
        raise PredictorError(f"{path}: the rows have more cells than the header; expected {expected}")
    frame = frame.reset_index(drop=True)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise PredictorError(f"{path}: no column(s) {', '.join(missing)}; expected {expected}")
    _check_rows(frame, path)
    return frame


def _cell(value: Any) -> str:
    """A cell of a user's table as a short repr (a numpy scalar as its Python value)."""
    return short_repr(value.item() if isinstance(value, np.generic) else value)


def _check_rows(frame: pd.DataFrame, path: Path) -> None:
    """``PredictorError`` at the first row whose layer, block, key or latency is not allowed."""
    def row(index: Any) -> str:
        return f"line {index + 2}" if path.suffix == ".csv" else f"row {index + 1}"  # a CSV's line 1 is its header

    def where(index: Any) -> str:
        key = frame.at[index, "key"]
        return f"{path}: {row(index)}" + (f" (key {short_repr(key)})" if isinstance(key, str) else "")

    layer = pd.to_numeric(frame["layer"], errors="coerce")
    for index in frame.index[~(layer.between(FIXED_LAYER, MAX_LAYER) & (layer == layer.round()))]:
        raise PredictorError(f"{where(index)}: layer must be an integer {FIXED_LAYER}..{MAX_LAYER} ({FIXED_LAYER}: stem and head), "
                             f"got {_cell(frame.at[index, 'layer'])}")
    for column in ("block", "key"):
        for index in frame.index[~frame[column].map(lambda v: isinstance(v, str) and bool(v.strip()))]:
            raise PredictorError(f"{where(index)}: {column} must be a non-empty string, got {_cell(frame.at[index, column])}")
    ms = pd.to_numeric(frame["median_ms"], errors="coerce")
    used = frame["status"].isna() | (frame["status"] == "ok") if "status" in frame.columns else pd.Series(True, frame.index)
    for index in frame.index[used & frame["median_ms"].notna()]:
        value = ms[index]
        if not (isinstance(value, float | int) and math.isfinite(value) and value > 0):
            raise PredictorError(f"{where(index)}: median_ms must be a finite number of milliseconds > 0 (or empty: not "
                                 f"measured), got {_cell(frame.at[index, 'median_ms'])}")
    twice = frame.duplicated(["layer", "block"], keep="first")
    for index in frame.index[twice]:
        first = frame.index[(frame["layer"] == frame.at[index, "layer"]) & (frame["block"] == frame.at[index, "block"])][0]
        raise PredictorError(f"{where(index)}: layer {_cell(frame.at[index, 'layer'])} block {_cell(frame.at[index, 'block'])} "
                             f"is given twice ({row(first)} too); one row per (layer, block)")
