"""The Edge TPU delegate loader, device discovery and compiled-model detection (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgelab.tflite.delegate as delegate_mod
from edgelab.cli import main
from edgelab.edgetpu.delegate import (
    delegate_library_name,
    has_edgetpu_custom_op,
    library_available,
    list_edge_tpus,
    load_edgetpu_delegate,
    require_delegate_for,
    validate_device,
)
from edgelab.errors import ConfigError, DelegateError, ModelFileError

COMPILED = Path(__file__).parent / "data" / "coral" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


def _flatbuffer(custom_code: str | None) -> bytes:
    """A minimal valid .tflite with one operator code (builtin ADD, or a custom op)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    code = schema.OperatorCodeT()
    if custom_code:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = custom_code
    else:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [], [], [], []
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize(
    "system, library",
    [
        ("Linux", "libedgetpu.so.1"),
        ("Darwin", "libedgetpu.1.dylib"),
        ("Windows", "edgetpu.dll"),
        ("linux", "libedgetpu.so.1"),
    ],
)
def test_library_name_per_platform(system, library):
    assert delegate_library_name(system) == library


def test_library_name_unknown_platform():
    with pytest.raises(DelegateError, match="system='FreeBSD'"):
        delegate_library_name("FreeBSD")


@pytest.mark.parametrize("device", [None, "usb", "usb:0", "usb:12", "pci", "pci:0", ":0", ":3"])
def test_valid_device_selectors(device):
    assert validate_device(device) == device


@pytest.mark.parametrize(
    "device, hint",
    [
        ("USB:0", "'usb:0'"),
        ("usb0", "'usb:0'"),
        ("gpu", None),
        ("usb:", None),
        ("", None),
        ("pci:x", None),
        ("tpu:0", None),
        (0, None),
    ],
)
def test_invalid_device_selectors_echo_the_value(device, hint):
    with pytest.raises(ConfigError) as info:
        validate_device(device)
    message = str(info.value)
    assert f"device={device!r}" in message
    assert "'usb:N'" in message
    if hint:
        assert f"Did you mean {hint}?" in message


def test_bad_selector_is_rejected_before_loading(monkeypatch):
    monkeypatch.setattr(delegate_mod, "load_delegate_function", lambda: pytest.fail("loaded"))
    with pytest.raises(ConfigError, match="usb-0"):
        load_edgetpu_delegate("usb-0")


@pytest.mark.skipif(library_available(), reason="this machine has libedgetpu installed")
def test_missing_library_explains_install():
    with pytest.raises(DelegateError) as info:
        load_edgetpu_delegate("usb:0")
    message = str(info.value)
    assert delegate_library_name() in message
    assert "libedgetpu1-std" in message and "libedgetpu1-max" in message


def test_present_library_without_device_explains_usb_and_pcie(monkeypatch):
    calls = []

    def fake_load(library, options):
        calls.append((library, options))
        raise ValueError("Failed to load delegate from libedgetpu.so.1\n")

    monkeypatch.setattr(delegate_mod, "library_available", lambda library=None: True)
    monkeypatch.setattr(delegate_mod, "load_delegate_function", lambda: (fake_load, "ai_edge_litert"))
    monkeypatch.setattr(delegate_mod, "list_edge_tpus", lambda *a, **k: [])
    with pytest.raises(DelegateError) as info:
        load_edgetpu_delegate("usb:0", library="libedgetpu.so.1")
    message = str(info.value)
    assert "found no Edge TPU matching device='usb:0'" in message
    assert "udev" in message and "18d1:9302" in message and "/dev/apex_0" in message
    assert calls == [("libedgetpu.so.1", {"device": "usb:0"})]


def test_loaded_delegate_is_returned(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(delegate_mod, "library_available", lambda library=None: True)
    monkeypatch.setattr(delegate_mod, "load_delegate_function", lambda: (lambda lib, opts: sentinel, "x"))
    assert load_edgetpu_delegate() is sentinel


def test_list_edge_tpus_scans_sysfs_and_dev(tmp_path):
    usb = tmp_path / "sys" / "bus" / "usb" / "devices"
    for name, vendor, product in [("1-1", "18d1", "9302"), ("1-2", "1a6e", "089a"), ("1-3", "046d", "c52b")]:
        (usb / name).mkdir(parents=True)
        (usb / name / "idVendor").write_text(vendor + "\n")
        (usb / name / "idProduct").write_text(product + "\n")
    (usb / "usb1").mkdir()  # a hub entry without IDs is skipped
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "apex_0").touch()
    found = list_edge_tpus(tmp_path / "sys", dev)
    assert [(d["type"], Path(d["path"]).name) for d in found] == [("usb", "1-1"), ("usb", "1-2"), ("pci", "apex_0")]
    assert found[1]["id"] == "1a6e:089a"


def test_list_edge_tpus_finds_nothing_where_there_is_nothing(tmp_path):
    assert list_edge_tpus(tmp_path / "no-sys", tmp_path / "no-dev") == []  # missing roots: no error
    (tmp_path / "sys" / "bus" / "usb" / "devices" / "1-1").mkdir(parents=True)  # a device without IDs
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "apex").touch()  # not apex_N
    assert list_edge_tpus(tmp_path / "sys", tmp_path / "dev") == []


def test_list_edge_tpus_on_this_machine_names_existing_devices():
    for found in list_edge_tpus():  # none on a machine without an Edge TPU; each one must exist
        assert found["type"] in ("usb", "pci") and Path(found["path"]).exists(), found


def test_custom_op_detection_on_real_compiled_model():
    assert has_edgetpu_custom_op(COMPILED)
    assert has_edgetpu_custom_op(COMPILED.read_bytes())


def test_custom_op_detection_on_plain_and_other_custom_models():
    assert not has_edgetpu_custom_op(_flatbuffer(None))
    assert not has_edgetpu_custom_op(_flatbuffer("PosenetDecoderOp"))
    assert has_edgetpu_custom_op(_flatbuffer("edgetpu-custom-op"))


@pytest.mark.parametrize("data", [b"", b"hello world, no model", COMPILED.read_bytes()[:4] + b"XXXX"])
def test_custom_op_detection_rejects_non_tflite(tmp_path, data):
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match="TFL3"):
        has_edgetpu_custom_op(path)


def test_custom_op_detection_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"gone\.tflite"):
        has_edgetpu_custom_op(tmp_path / "gone.tflite")


def test_require_delegate_for_compiled_model():
    with pytest.raises(DelegateError) as info:
        require_delegate_for(COMPILED, None)
    message = str(info.value)
    assert COMPILED.name in message and "edgetpu-custom-op" in message
    assert "load_edgetpu_delegate" in message
    assert require_delegate_for(COMPILED, object()) is True
    assert require_delegate_for(_flatbuffer(None), None) is False


def test_edgetpu_modules_do_not_import_tensorflow():
    code = (
        "import sys, edgelab.edgetpu.delegate, edgelab.edgetpu.compiler, edgelab.edgetpu.logs, "
        "edgelab.bundle, edgelab._cli.edgetpu; assert 'tensorflow' not in sys.modules, 'tensorflow'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_devices_json(capsys):
    assert main(["devices", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["library"] == delegate_library_name()
    assert payload["library_found"] == library_available()
    assert {"devices", "usable", "runtime", "compiler", "compiler_version"} <= payload.keys()
    assert payload["usable"] is (
        payload["library_found"] and bool(payload["devices"]) and payload["runtime"] is not None
    )
