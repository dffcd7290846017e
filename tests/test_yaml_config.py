"""Every YAML file a user hands in is read through one bounded loader: no alias bomb, deep nesting or
bad value hangs or crashes a command; each is one `error:` line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import search.arch  # noqa: F401 (imported here, so the time limits below time the parse, not torch's import)
import search.space  # noqa: F401
from profiler.catalog import shipped_device_files
from profiler.errors import DeviceConfigError, short_repr
from profiler.yaml_config import MAX_YAML_BYTES, MAX_YAML_DEPTH, parse_yaml, read_yaml
from vidlat.cli import cli

ARCH = """space: tiny
input_shape: [3, 4, 32, 32]
stem: {channels: 8}
layers: [x3d_k333_e2]
channels: [8]
strides: [[1, 1, 1]]
head: {channels: 32}
num_classes: 4
"""


def laughs(levels: int = 9) -> str:
    """A flow list whose last item expands to 9**levels strings ("billion laughs": 387M at 9 levels)."""
    items = ["&l0 [" + ", ".join(['"lol"'] * 9) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def bombs(tmp_path: Path) -> dict[str, tuple[list[str], Path]]:
    device = shipped_device_files()["ort-cpu-1t"].read_text().replace("backend: onnxruntime", f"backend: {laughs()}")
    arch = ARCH.replace("layers: [x3d_k333_e2]", f"layers: {laughs()}")
    space = (Path(search.space.__file__).parent / "spaces" / "tiny.yaml").read_text()
    space = space.replace("candidates: [x3d_k333_e2, r2p1d_k333_e2, tsm_k133_e2]", f"candidates: {laughs()}")
    files = {}
    for name, verb, text in (("device", ["devices", "validate"], device), ("arch", ["arch", "show"], arch),
                             ("space", ["space", "show"], space)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        files[name] = ([*verb, str(path)], path)
    return files


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("kind", ["device", "arch", "space"])
def test_billion_laughs_is_refused_at_once(kind, tmp_path, time_limit):
    args, path = bombs(tmp_path)[kind]
    with time_limit(5):
        result = CliRunner().invoke(cli, args)
    line = one_error(result)
    assert str(path) in line and "aliases expand to more than" in line and len(line) < 300


@pytest.mark.parametrize(("text", "problem"), [
    ("a: &a [*a]\n", "an alias refers to a node that contains it"),
    ("a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n", f"nested deeper than {MAX_YAML_DEPTH} levels"),
    ("a: " + "1" * 5000 + "\n", "cannot read value"),
    ("a: 2024-13-45\n", "cannot read value (month must be in 1..12)"),
    ("b: 0\nb: 1\n", "key 'b' given twice"),
])
def test_hostile_yaml_is_one_line_naming_the_line(text, problem):
    with pytest.raises(DeviceConfigError, match="^f.yaml: invalid YAML at line [12], column [0-9]+: ") as refused:
        parse_yaml(text, source="f.yaml", error=DeviceConfigError)
    assert problem in str(refused.value) and len(str(refused.value)) < 300


def test_small_aliases_and_merges_still_load():
    assert parse_yaml("base: &b {x: 1}\nuse: {<<: *b, y: 2}\nlist: [*b, *b]\n", source="f", error=DeviceConfigError) == {
        "base": {"x": 1}, "use": {"x": 1, "y": 2}, "list": [{"x": 1}, {"x": 1}]}


def test_oversize_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_YAML_BYTES + "\n")
    with pytest.raises(DeviceConfigError, match=f"larger than {MAX_YAML_BYTES} bytes"):
        read_yaml(path, error=DeviceConfigError, what="device file")


def test_messages_quote_a_short_repr_of_the_value(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(shipped_device_files()["ort-cpu-1t"].read_text().replace("backend: onnxruntime", f"backend: {'x' * 100_000}"))
    line = one_error(CliRunner().invoke(cli, ["devices", "validate", str(path)]))
    assert "field 'backend': input should be" in line and "xxx..." in line and len(line) < 400
    nested = [[list(range(1000))] * 1000] * 1000
    assert len(short_repr(nested)) <= 80 and short_repr("abc") == "'abc'"
