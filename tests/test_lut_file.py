"""The lookup-table file (``vidlat lut export``, ``vidlat search --lut``): every bad file is one line
naming the file, the row and what is allowed, before any latency reaches a search."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from predictors.errors import PredictorError
from predictors.lut import LUTPredictor, read_lut_file, space_entries, write_lut_file
from search.space import load_space
from vidlat.cli import cli


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """The tiny space's entries with made-up latencies, as `lut export` writes them."""
    entries = space_entries(load_space("tiny"))
    entries["status"] = "ok"
    entries["median_ms"] = [0.05 + 0.01 * i for i in range(len(entries))]
    return entries


def test_a_written_table_reads_back(table, tmp_path):
    for suffix in ("csv", "parquet"):
        path = tmp_path / "new" / f"lut.{suffix}"
        write_lut_file(table, path)
        back = read_lut_file(path)
        assert list(back["key"]) == list(table["key"]) and list(back["median_ms"]) == pytest.approx(list(table["median_ms"]))
    lut = LUTPredictor.from_file(tmp_path / "new" / "lut.csv")
    assert lut.fixed_ms > 0


def edit(table: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    changed = table.copy().astype({column: object})
    changed.at[row, column] = value
    return changed


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: edit(t, 3, "median_ms", -0.5), r"line 5 \(key '.+'\): median_ms must be a finite number of milliseconds > 0 .*got -0.5"),
    (lambda t: edit(t, 3, "median_ms", 0.0), r"line 5 .*median_ms must be a finite number .*got 0.0"),
    (lambda t: edit(t, 0, "median_ms", float("inf")), r"line 2 .*median_ms must be a finite number .*got inf"),
    (lambda t: edit(t, 0, "median_ms", "fast"), r"line 2 .*median_ms must be a finite number .*got 'fast'"),
    (lambda t: edit(t, 1, "layer", "two"), r"line 3 .*layer must be an integer -1..9999 .*got 'two'"),
    (lambda t: edit(t, 1, "layer", 1.5), r"line 3 .*layer must be an integer -1..9999 .*got 1.5"),
    (lambda t: edit(t, 1, "block", None), r"line 3 .*block must be a non-empty string"),
    (lambda t: t.drop(columns=["median_ms", "key"]), r"no column\(s\) key, median_ms; expected a `vidlat lut export` table"),
    (lambda t: pd.concat([t, t.iloc[[2]]], ignore_index=True), r"line \d+ .*block '.+' is given twice \(line 4 too\); one row per"),
])
def test_bad_rows_are_refused_naming_file_and_line(table, tmp_path, change, message):
    path = tmp_path / "lut.csv"
    change(table).drop(columns="spec").to_csv(path, index=False)
    with pytest.raises(PredictorError, match=f"^{path}: {message}"):
        LUTPredictor.from_file(path)


def test_rows_not_measured_may_hold_anything_in_median_ms(table, tmp_path):
    path = tmp_path / "lut.csv"
    edit(edit(table, 0, "status", "missing"), 0, "median_ms", -1.0).drop(columns="spec").to_csv(path, index=False)
    assert read_lut_file(path).shape[0] == len(table)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01", "not UTF-8 text"),
    (b"layer,block\n0,x3d\n", "no column(s) key, median_ms"),
    (b"layer,block,key,median_ms\n0,x3d,k,1.0,extra\n", "the rows have more cells than the header"),
    (b"layer,block,key,median_ms\n0,x3d,k,1.0\n0,x3d,k,1.0,extra\n", "cannot read it (Error tokenizing data."),
])
def test_not_a_table_is_one_line(tmp_path, content, message):
    path = tmp_path / "lut.csv"
    path.write_bytes(content)
    with pytest.raises(PredictorError, match="^" + str(path).replace(".", r"\.")) as refused:
        read_lut_file(path)
    assert message in str(refused.value)


def test_negative_latency_stops_search_with_one_line(table, tmp_path):
    path = tmp_path / "lut.csv"
    edit(table, 4, "median_ms", -3.0).drop(columns="spec").to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["search", "--device", "ort-cpu-1t", "--space", "tiny", "--lut", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: line 6 (key ")
