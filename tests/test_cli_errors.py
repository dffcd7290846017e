"""Click's own usage errors are the same one `error:` line (exit 2) as every other mistake, and
the help of every verb that writes a file says whether it creates folders and replaces a file."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vidlat.cli import cli


@pytest.mark.parametrize(("args", "message", "command"), [
    (["bogus"], "No such command 'bogus'.", "vidlat"),
    (["--bogus"], "No such option '--bogus'.", "vidlat"),
    (["devices", "bogus"], "No such command 'bogus'.", "vidlat devices"),
    (["devices", "validate"], "Missing argument 'FILE'.", "vidlat devices validate"),
    (["devices", "validate", "{tmp}"], "is a directory.", "vidlat devices validate"),
    (["profile", "--bogus"], "No such option '--bogus'.", "vidlat profile"),
    (["lut", "export", "--device", "x", "--out"], "Option '--out' requires an argument.", "vidlat lut export"),
    (["space", "sample", "tiny", "--seed", "x"], "'x' is not a valid integer.", "vidlat space sample"),
    (["agent", "serve", "--port", "abc"], "'abc' is not a valid integer", "vidlat agent serve"),
    (["evaluate", "--regressor", "nope"], "'nope' is not one of 'gbm', 'rf', 'linear', 'additive', 'none'.", "vidlat evaluate"),
])
def test_usage_errors_are_one_line(args, message, command, tmp_path):
    result = CliRunner().invoke(cli, [arg.format(tmp=tmp_path) for arg in args], prog_name="vidlat")
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit))
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.rstrip().endswith(f"(see '{command} --help')")


def test_help_and_version_still_print():
    assert CliRunner().invoke(cli, ["--version"]).exit_code == 0
    shown = CliRunner().invoke(cli, ["devices", "validate", "--help"], prog_name="vidlat")
    assert shown.exit_code == 0 and shown.output.startswith("Usage: vidlat devices validate")


@pytest.mark.parametrize(("args", "promises"), [
    (["export", "--help"], ["existing file there is overwritten", "missing folders are created"]),
    (["space", "sample", "--help"], ["missing folders are created", "an existing file is replaced"]),
    (["lut", "export", "--help"], ["missing folders are created", "an existing file is replaced"]),
])
def test_help_says_where_files_are_written_over(args, promises):
    shown = CliRunner().invoke(cli, args)
    text = " ".join(shown.output.split())
    assert shown.exit_code == 0 and all(promise in text for promise in promises), text
