"""Device catalogue: every shipped device validates; every bad input is one clear line, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from profiler.catalog import DEFAULT_DEVICE, load_catalog, resolve_device, shipped_device_files
from profiler.device import OpenVinoOptions, parse_device
from profiler.errors import DeviceConfigError, UnknownDeviceError
from vidlat.cli import cli

SHIPPED = [
    "ort-cpu-1t", "openvino-cpu-1t", "torch-cpu-1t", "fpga-zcu102-sim", "fpga-z7020-sim",
    "npu-systolic32-sim", "trt-gpu", "torch-cuda", "jetson-orin-remote", "rpi4-ort-remote", "agent-localhost",
]

GOOD = {
    "name": "my-board",
    "description": "ONNX Runtime on my board, one thread.",
    "backend": "onnxruntime",
    "options": {"intra_op_threads": 1},
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(tmp_path: Path, data: object, name: str = "dev.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_every_shipped_device_loads_and_names_match_files():
    names = {device.name for device in load_catalog()}
    assert names == set(SHIPPED)
    assert names == set(shipped_device_files())
    assert DEFAULT_DEVICE in names


def test_devices_list_shows_every_device_with_availability():
    result = run("devices", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["name", "backend", "here"]
    listed = {line.split()[0] for line in lines[1:]}
    assert listed == set(SHIPPED)
    for line in lines[1:]:
        assert line.split()[2] in {"yes", "no"}
        if line.split()[2] == "no":
            assert len(line.split()) > 3, f"no reason given: {line}"


def test_show_fills_defaults_and_accepts_a_users_file(tmp_path):
    result = run("devices", "show", "ort-cpu-1t")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.output)
    assert shown["options"]["intra_op_threads"] == 1
    assert shown["measurement"]["max_rel_ci"] == pytest.approx(0.02)
    path = write(tmp_path, GOOD)
    assert resolve_device(str(path)).name == "my-board"
    assert run("devices", "show", str(path)).exit_code == 0
    assert run("devices", "validate", str(path)).output.strip().endswith("backend 'onnxruntime')")


def test_openvino_precision_is_required():
    assert "precision" in {name for name, field in OpenVinoOptions.model_fields.items() if field.is_required()}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"backend": "tpu"}, "field 'backend'"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"options": {"intra_op_threads": "two"}}, "field 'options.intra_op_threads'"),
        ({"options": {"intra_op_threads": -1}}, "greater than or equal to 1"),
        ({"options": {"threads": 1}}, "unknown key 'options.threads' for backend 'onnxruntime'; allowed:"),
        ({"measurement": {"min_runs": 50, "max_runs": 10}}, "max_runs (10) must be >= min_runs (50)"),
        ({"measurement": {"max_rel_ci": -0.1}}, "field 'measurement.max_rel_ci'"),
        ({"description": None}, "field 'description'"),
    ],
)
def test_bad_device_file_is_one_line_naming_file_and_field(tmp_path, change, expected):
    path = write(tmp_path, {**GOOD, **change})
    result = CliRunner().invoke(cli, ["devices", "validate", str(path)])
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"error: {path}:")
    assert expected in message


def test_unknown_backend_lists_allowed_backends(tmp_path):
    path = write(tmp_path, {**GOOD, "backend": "tpu"})
    with pytest.raises(DeviceConfigError, match="onnxruntime.*openvino.*simulator"):
        resolve_device(str(path))


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nbackend: [onnxruntime\n")
    result = CliRunner().invoke(cli, ["devices", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}: invalid YAML at line" in result.output


def test_key_given_twice_is_an_error_not_a_silent_override(tmp_path):
    text = yaml.safe_dump(GOOD) + "measurement: {cold_cache: true}\nmeasurement: {warmup_runs: 2}\n"
    with pytest.raises(DeviceConfigError, match="line 7, column 1: key 'measurement' given twice"):
        resolve_device(str(write(tmp_path, text)))
    merged = "base: &b {intra_op_threads: 1}\n" + yaml.safe_dump({**GOOD, "options": None}).replace(
        "options: null", "options: {<<: *b, intra_op_threads: 2}")
    with pytest.raises(DeviceConfigError, match="unknown key 'base'"):  # a merge key may be overridden
        resolve_device(str(write(tmp_path, merged)))


def test_a_typo_is_named_as_an_unknown_key_with_the_allowed_ones(tmp_path):
    data = {key: value for key, value in GOOD.items() if key != "backend"} | {"backnd": "onnxruntime"}
    with pytest.raises(DeviceConfigError, match="unknown key 'backnd'; allowed: backend, description"):
        parse_device(data, "x.yaml")
    with pytest.raises(DeviceConfigError, match="unknown key 'source'; allowed: backend, description"):
        parse_device({**GOOD, "source": "elsewhere.yaml"}, "x.yaml")  # the loader's field, not the file's
    hardware = _simulator()["hardware"]
    hardware["dsp"] = hardware.pop("dsps")
    with pytest.raises(DeviceConfigError, match=r"unknown key 'hardware.dsp_array.dsp'; allowed: clock_mhz, .*dsps,"):
        parse_device({**_simulator(), "hardware": hardware}, "zcu.yaml")


def test_binary_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\x00\xff\xfe")
    result = CliRunner().invoke(cli, ["devices", "validate", str(path)])
    assert result.exit_code == 2 and "cannot read device file (not UTF-8 text" in result.output


def test_non_mapping_and_missing_file(tmp_path):
    with pytest.raises(DeviceConfigError, match="must be a YAML mapping"):
        resolve_device(str(write(tmp_path, "- a\n- b\n")))
    result = CliRunner().invoke(cli, ["devices", "show", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2 and "cannot read device file" in result.output


def test_unknown_device_name_lists_shipped_names():
    with pytest.raises(UnknownDeviceError) as info:
        resolve_device("pixel-9")
    for name in SHIPPED:
        assert name in str(info.value)
    result = CliRunner().invoke(cli, ["devices", "show", "pixel-9"])
    assert result.exit_code == 2 and "ort-cpu-1t" in result.output


def _simulator(**hardware: object) -> dict:
    data = yaml.safe_load(shipped_device_files()["fpga-zcu102-sim"].read_text())
    data["hardware"].update(hardware)
    return data


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        ({"dsps": 0}, "field 'hardware.dsp_array.dsps'"),
        ({"tm": 128, "tn": 64}, "tiles do not fit the DSP budget"),
        ({"ddr_gbps": -1}, "field 'hardware.dsp_array.ddr_gbps'"),
        ({"template": "gpu"}, "hardware"),
    ],
)
def test_bad_simulator_hardware_is_a_load_error(hardware, expected):
    with pytest.raises(DeviceConfigError, match=expected.replace("(", r"\(")):
        parse_device(_simulator(**hardware), "zcu.yaml")


def test_hardware_only_for_simulators():
    data = {**GOOD, "hardware": _simulator()["hardware"]}
    with pytest.raises(DeviceConfigError, match="only for simulator devices"):
        parse_device(data, "x.yaml")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://[::1", "Invalid IPv6 URL"),
    ("ftp://board:7300", "must be http(s)://HOST[:PORT]"),
    ("http://board:7300/v1/health", "must be http(s)://HOST[:PORT]"),
])
def test_remote_url_mistakes_are_load_errors(url, expected):
    data = {**GOOD, "backend": "remote", "options": {"url": url}}
    with pytest.raises(DeviceConfigError, match=re.escape("field 'options.url': ") + ".*" + re.escape(expected)):
        parse_device(data, "remote.yaml")
    for good in ("http://[::1]:7300", "https://jetson.local:7300/"):
        assert parse_device({**data, "options": {"url": good}}, "remote.yaml").backend_options.url == good


def test_ctrl_c_is_one_line_and_promises_kept_work_only_where_it_is_kept(monkeypatch):
    import profiler.catalog

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(profiler.catalog, "shipped_device_files", interrupted)
    result = CliRunner().invoke(cli, ["devices", "list"])
    assert result.exit_code == 130 and result.output == "interrupted\n"


def test_schema_backends_options_and_registry_name_the_same_backends():
    import typing

    from profiler.backends import BACKENDS, backend_class
    from profiler.device import BACKEND_OPTIONS, DeviceConfig
    from profiler.errors import BackendUnavailableError

    allowed = set(typing.get_args(DeviceConfig.model_fields["backend"].annotation))
    assert allowed == set(BACKEND_OPTIONS) == set(BACKENDS)
    with pytest.raises(BackendUnavailableError, match="unknown backend 'tpu'; backends: onnxruntime, openvino"):
        backend_class("tpu")


def test_devices_check_runs_the_probe_on_a_torch_device():
    pytest.importorskip("torch")
    result = CliRunner().invoke(cli, ["devices", "check", "torch-cpu-1t"])
    assert result.exit_code == 0, result.output
    assert "torch-cpu-1t: reached (torch)" in result.output and "probe probe_conv3d_k333" in result.output


def test_a_simulator_precision_of_the_wrong_type_is_a_field_error():
    data = {**_simulator(), "options": {"precision": ["int8"]}}
    with pytest.raises(DeviceConfigError, match=re.escape("field 'options.precision': input should be 'int8'")):
        parse_device(data, "zcu.yaml")
