"""Fuzzing the parsers of files users hand in: random and mutated device files, arch files, block
strings and lookup tables. Every input ends in exit 0 or one `error:` line with exit 2: never a
traceback, never a hang."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictors.errors import PredictorError
from predictors.lut import LUTPredictor, read_lut_file, space_entries
from profiler.catalog import shipped_device_files
from search.blocks import parse_block
from search.errors import BlockSpecError
from search.space import load_space
from vidlat.cli import cli

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PER_EXAMPLE_S = 10

DEVICE_TEXTS = [path.read_text() for _, path in sorted(shipped_device_files().items())]
ARCH_TEXT = """space: tiny
input_shape: [3, 4, 32, 32]
stem: {channels: 8, temporal_kernel: 3}
layers: [x3d_k333_e2, skip, x3d_k133_e2_se, x3d_k133_e2_se]
channels: [8, 8, 16, 16]
strides: [[1, 2, 2], [1, 1, 1], [1, 2, 2], [1, 1, 1]]
head: {channels: 32}
num_classes: 4
"""

# YAML scalars and fragments a hostile or careless file might hold (sizes avoid the slow but valid
# band of thousands of channels: this fuzzes robustness, not the speed of big networks; no subnormal
# floats: other tests' torch.set_flush_denormal(True) leaves the processor unable to represent them)
VALUES = st.one_of(
    st.integers(-3, 64).map(str), st.integers(10**5, 10**40).map(str), st.just("1" * 5000),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False).map(repr), st.sampled_from([
        "null", "~", "true", "no", "''", "[]", "{}", "[1, 2]", "{a: 1}", "!!binary aGVsbG8=", "!!python/object:os.system",
        "2024-13-45", "2024-01-01", "&x [*x]", "*undefined", "<<: 5", "'\x00'", "x3d_k333_e2", "skip", "- -",
        "[" * 200 + "]" * 200, "{a: " * 80 + "1" + "}" * 80,
        "[&a [1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], "
        "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]]",
    ]),
    st.text(max_size=40),
)


@st.composite
def mutated(draw: st.DrawFn, texts: list[str]) -> bytes:
    """One of ``texts`` with a few lines dropped, duplicated, garbled or given another value, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    lines = draw(st.sampled_from(texts)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "duplicate", "garble", "value", "value", "insert"]))
        if kind == "drop":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        elif kind == "garble":
            line = lines[at]
            cut = draw(st.integers(0, len(line)))
            lines[at] = line[:cut] + draw(st.text(max_size=5)) + line[cut + draw(st.integers(0, 3)):]
        elif kind == "value":
            key = lines[at].split(":", 1)[0] if ":" in lines[at] else lines[at]
            lines[at] = f"{key}: {draw(VALUES)}"
        else:
            lines.insert(at, f"{draw(st.text(min_size=1, max_size=8))}: {draw(VALUES)}")
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text.encode("utf-8", "replace")


def assert_one_line_or_ok(result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code != 0:
        lines = result.stderr.splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (result.exit_code, result.stderr)


def run_cli(args: list[str], time_limit) -> None:
    with time_limit(PER_EXAMPLE_S):
        result = CliRunner().invoke(cli, args)
    assert_one_line_or_ok(result)


@FUZZ
@given(content=mutated(DEVICE_TEXTS))
def test_device_files(content, tmp_path, time_limit):
    path = tmp_path / "device.yaml"
    path.write_bytes(content)
    run_cli(["devices", "validate", str(path)], time_limit)


@pytest.fixture(scope="module")
def arch_shown(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`arch show` of the unmutated arch once, so that no example is timed with torch's first model build."""
    path = tmp_path_factory.mktemp("arch") / "arch.yaml"
    path.write_text(ARCH_TEXT)
    assert CliRunner().invoke(cli, ["arch", "show", str(path)]).exit_code == 0


@FUZZ
@given(content=mutated([ARCH_TEXT]))
def test_arch_files(arch_shown, content, tmp_path, time_limit):
    path = tmp_path / "arch.yaml"
    path.write_bytes(content)
    run_cli(["arch", "show", str(path)], time_limit)


TOKENS = st.sampled_from(["x3d", "0\n0", "x3d\r", "r2p1d", "csn", "tsm", "me", "attn", "skip", "k333", "k133", "k1", "k3333", "k222",
                          "e2", "e0", "e9", "e99999999999999999999", "h2", "h0", "se", "hs", "se", "", "x", "²"])


@FUZZ
@given(text=st.one_of(st.lists(TOKENS, max_size=6).map("_".join), st.text(max_size=80)))
def test_block_strings(text, time_limit):
    with time_limit(PER_EXAMPLE_S):
        try:
            spec = parse_block(text)
        except BlockSpecError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc) and len(str(exc)) < 2000
        else:
            assert parse_block(str(spec)) == spec


@pytest.fixture(scope="module")
def lut_csv() -> str:
    entries = space_entries(load_space("tiny")).drop(columns="spec")
    entries["status"] = "ok"
    entries["median_ms"] = [0.05 + 0.01 * i for i in range(len(entries))]
    return entries.to_csv(index=False)


LUT_CELLS = st.one_of(st.sampled_from(["", "-1", "0", "inf", "-inf", "nan", "1e308", "1e999", "abc", "\"", ",", "ok", "missing",
                                       "-1.5", "2.0", "x3d_k333_e2"]), st.text(max_size=10))


@FUZZ
@given(data=st.data())
def test_lut_files(lut_csv, data, tmp_path, time_limit):
    lines = lut_csv.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines) - 1))
        kind = data.draw(st.sampled_from(["cell", "cell", "drop", "duplicate", "garble"]))
        if kind == "cell":
            cells = lines[at].split(",")
            cells[data.draw(st.integers(0, len(cells) - 1))] = data.draw(LUT_CELLS)
            lines[at] = ",".join(cells)
        elif kind == "drop":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        else:
            lines[at] = data.draw(st.text(max_size=30))
        if not lines:
            break
    path = tmp_path / "lut.csv"
    path.write_bytes(data.draw(st.binary(max_size=200)) if data.draw(st.integers(0, 9)) == 0
                     else "\n".join(lines).encode("utf-8", "replace"))
    with time_limit(PER_EXAMPLE_S):
        try:
            frame = read_lut_file(path)
        except PredictorError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
        else:
            assert isinstance(frame, pd.DataFrame)
            LUTPredictor(frame)


def test_the_fuzzed_texts_are_valid_before_mutation(arch_shown, lut_csv, tmp_path):
    (tmp_path / "lut.csv").write_text(lut_csv)
    assert len(read_lut_file(tmp_path / "lut.csv")) == len(lut_csv.splitlines()) - 1
    assert all(Path(path).is_file() for path in shipped_device_files().values())
