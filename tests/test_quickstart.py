"""The Python quick start of the docs runs as written (fpga-zcu102-sim on the tiny space, a temp store)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the page whose ```python blocks are the quick start; the README carries the same block
PAGES: tuple[str, ...] = ("docs/python-api.md",)


def python_blocks_of(text: str) -> list[str]:
    """The ```python fenced blocks of Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    """The ```python fenced blocks of a Markdown page, in order."""
    return python_blocks_of(page.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_quick_start_runs(page, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDLAT_STORE", str(tmp_path / "default-store.sqlite"))
    monkeypatch.setenv("VIDLAT_CACHE_DIR", str(tmp_path / "cache"))
    for block in blocks:
        exec(compile(block, f"{page} (python block)", "exec"), {"__name__": "quickstart"})
    printed = [float(value) for value in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", capsys.readouterr().out)]
    assert printed and printed[0] > 0, "the quick start printed no total latency"
    assert all(value >= 0 for value in printed), printed
    assert (tmp_path / "latency.sqlite").is_file() and (tmp_path / "model.onnx").is_file()
    assert (tmp_path / "predictors" / "fpga-zcu102-sim--tiny.skops").is_file()


def test_the_readme_carries_the_same_quick_start():
    readme = (ROOT / "README.md").read_text().split("## Python quick start", 1)[1].split("\n## ", 1)[0]
    assert python_blocks_of(readme) == python_blocks(ROOT / PAGES[0])
