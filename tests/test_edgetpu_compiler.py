"""The edgetpu_compiler wrapper, run against a fake compiler that prints real-format output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import edgelab.edgetpu.compiler as compiler_mod
from edgelab.cli import main
from edgelab.edgetpu.compiler import (
    compile_edgetpu,
    compiler_version,
    find_compiler,
    install_instructions,
)
from edgelab.edgetpu.logs import FailureKind, parse_size
from edgelab.errors import CompilerNotFoundError, ConfigError, ModelFileError


@pytest.fixture
def model(tmp_path) -> Path:
    """A file with the TFLite identifier; the fake compiler only copies it."""
    path = tmp_path / "scenes_int8.tflite"
    path.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(56))
    return path


def test_success(fake_compiler, model, tmp_path):
    argv_file = fake_compiler("success")
    out = tmp_path / "out"
    result = compile_edgetpu(model, out_dir=out)
    assert result.status == "compiled" and result.ok and result.reason is None
    assert result.compiled_model == out / "scenes_int8_edgetpu.tflite"
    assert result.compiled_model.is_file()
    assert result.log_path == out / "scenes_int8_edgetpu.log"
    assert result.compiler_version == "16.0.384591198"
    report = result.report
    assert (report.ops_edgetpu, report.ops_cpu, report.ops_total, report.subgraphs) == (32, 0, 32, 1)
    assert report.on_chip_used_bytes == parse_size("468.25KiB")
    assert report.off_chip_used_bytes == 0
    assert report.to_frame()["count"].sum() == 32
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--out_dir") + 1] == str(out.resolve())
    assert "--show_operations" in argv
    assert argv[argv.index("--timeout_sec") + 1] == "180"  # v16 gets our timeout
    assert argv[-1] == str(model.resolve())
    assert json.loads(json.dumps(result.to_dict()))["status"] == "compiled"


def test_default_out_dir_is_beside_the_model(fake_compiler, model):
    fake_compiler("success")
    result = compile_edgetpu(model)
    assert result.compiled_model == model.resolve().parent / "scenes_int8_edgetpu.tflite"


def test_flags_map_to_compiler_options(fake_compiler, model, tmp_path):
    argv_file = fake_compiler("success")
    compile_edgetpu(
        model,
        out_dir=tmp_path / "o",
        min_runtime_version=13,
        search_delegate=True,
        delegate_search_step=10,
        num_segments=2,
        enable_multiple_subgraphs=True,
        timeout_s=60,
        show_operations=False,
    )
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--min_runtime_version") + 1] == "13"
    assert argv[argv.index("--delegate_search_step") + 1] == "10"
    assert argv[argv.index("--num_segments") + 1] == "2"
    assert argv[argv.index("--timeout_sec") + 1] == "60"
    assert {"--search_delegate", "--enable_multiple_subgraphs"} <= set(argv)
    assert "--show_operations" not in argv


def test_older_compiler_gets_no_v16_flags(fake_compiler, model, tmp_path):
    argv_file = fake_compiler("success", version="14.1.317412892")
    assert compiler_version() == "14.1.317412892"
    result = compile_edgetpu(model, out_dir=tmp_path / "o")
    assert result.status == "compiled"
    assert "--timeout_sec" not in json.loads(argv_file.read_text())
    with pytest.raises(ConfigError, match=r"14\.1\.317412892"):
        compile_edgetpu(model, out_dir=tmp_path / "o", search_delegate=True)


def test_partial_mapping(fake_compiler, model, tmp_path):
    fake_compiler("partial")
    result = compile_edgetpu(model, out_dir=tmp_path / "out")
    assert result.status == "partial" and result.ok
    assert result.compiled_model.is_file()
    report = result.report
    assert (report.ops_edgetpu, report.ops_cpu, report.ops_total) == (29, 4, 33)
    assert report.on_chip_used_bytes == 7224689 and report.on_chip_remaining_bytes == 1024
    assert "4 of 33 ops run on the CPU" in result.reason
    assert "FLOOR_MOD: Operation not supported" in result.reason


def test_operator_table_comes_from_the_log_without_show_operations(fake_compiler, model, tmp_path):
    fake_compiler("partial")
    result = compile_edgetpu(model, out_dir=tmp_path / "out", show_operations=False)
    assert result.status == "partial"
    frame = result.report.to_frame()
    assert len(frame) == 8
    assert frame.loc[~frame["mapped"], "count"].sum() == result.report.ops_cpu == 4


@pytest.mark.parametrize(
    "scenario, kind",
    [
        ("not_quantized", FailureKind.NOT_QUANTIZED),
        ("op_version", FailureKind.OP_VERSION_NOT_SUPPORTED),
        ("internal_error", FailureKind.INTERNAL_ERROR),
        ("large_activations", FailureKind.LARGE_ACTIVATIONS),
    ],
)
def test_whole_model_failures(fake_compiler, model, tmp_path, scenario, kind):
    fake_compiler(scenario)
    result = compile_edgetpu(model, out_dir=tmp_path / "out")
    assert result.status == "failed" and not result.ok
    assert result.report.failure.kind is kind
    assert result.reason.startswith(kind.value)
    assert result.compiled_model is None and result.output_paths == ()
    assert result.returncode == 1


def test_not_quantized_message(fake_compiler, model, tmp_path):
    fake_compiler("not_quantized")
    result = compile_edgetpu(model, out_dir=tmp_path / "out")
    assert "Model not quantized" in result.reason
    assert "batch size of 1" in result.reason  # the hint


def test_op_version_error_names_op(fake_compiler, model, tmp_path):
    fake_compiler("op_version")
    failure = compile_edgetpu(model, out_dir=tmp_path / "out").report.failure
    assert (failure.op, failure.op_version) == ("FULLY_CONNECTED", 12)


def test_stale_output_is_not_taken_for_this_run(fake_compiler, model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scenes_int8_edgetpu.tflite").write_bytes(b"old")
    (out / "scenes_int8_edgetpu.log").write_text("Edge TPU Compiler version 16.0.384591198\n")
    fake_compiler("not_quantized")
    result = compile_edgetpu(model, out_dir=out)
    assert result.status == "failed"
    assert result.compiled_model is None and result.log_path is None


def test_crash_reports_exit_code(fake_compiler, model, tmp_path):
    fake_compiler("crash")
    result = compile_edgetpu(model, out_dir=tmp_path / "out")
    assert result.status == "failed"
    assert "exited with code 139" in result.reason and "Segmentation fault" in result.reason


def test_timeout_kills_the_compiler(fake_compiler, model, tmp_path, monkeypatch):
    """The fake prints its header, then marks PIDFILE.printed, then sleeps 120 s. No assertion depends on
    how fast this machine is: a run whose fake was stopped before its header was out (a slow start under
    load) is repeated with a longer timeout; what is checked holds for any run that got that far."""
    fake_compiler("timeout")
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_EDGETPU_PIDFILE", str(pidfile))
    monkeypatch.setattr(compiler_mod, "KILL_GRACE_SECONDS", 0.2)
    for timeout in (1, 4, 16, 64):  # all far below the fake's 120 s: each run ends in the kill
        result = compile_edgetpu(model, out_dir=tmp_path / "out", timeout_s=timeout)
        assert result.status == "timeout" and not result.ok
        assert f"within {timeout} s" in result.reason
        if Path(f"{pidfile}.printed").exists():
            break
    else:
        pytest.fail("the fake compiler never got its header out, even within 64 s")
    assert not Path(f"{pidfile}.finished").exists()  # stopped, not waited for
    assert result.report.compiler_version == "16.0.384591198"  # output before the kill is kept
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_missing_compiler_raises_with_install_instructions(no_compiler, model):
    assert find_compiler() is None and compiler_version() is None
    with pytest.raises(CompilerNotFoundError) as info:
        compile_edgetpu(model)
    message = str(info.value)
    assert "edgetpu_compiler was not found" in message
    assert "x86-64" in message
    assert "compile_for_edgetpu.ipynb" in message
    assert "apt-get install edgetpu-compiler" in message


def test_missing_compiler_as_status(no_compiler, model):
    result = compile_edgetpu(model, missing="status")
    assert result.status == "not_installed" and not result.ok
    assert "apt-get install edgetpu-compiler" in result.reason
    assert result.report is None


def test_install_instructions_by_platform():
    linux = install_instructions("Linux", "x86_64")
    assert linux.index("coral-edgetpu-stable") < linux.index("colab.research.google.com")
    mac = install_instructions("Darwin", "arm64")
    assert "This machine is Darwin arm64" in mac
    assert mac.index("colab.research.google.com") < mac.index("coral-edgetpu-stable")
    assert "docker run" in mac and "linux/amd64" in mac


def test_missing_model_is_a_model_error(no_compiler, tmp_path):
    with pytest.raises(ModelFileError, match=r"nope\.tflite") as info:
        compile_edgetpu(tmp_path / "nope.tflite", missing="status")
    assert "to compile" in str(info.value)


def test_non_tflite_input_is_a_model_error(no_compiler, tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("not a model")
    with pytest.raises(ModelFileError, match="TFL3") as info:
        compile_edgetpu(path, missing="status")
    assert "to compile" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, echo",
    [
        ({"min_runtime_version": 9}, "min_runtime_version=9"),
        ({"delegate_search_step": 5}, "delegate_search_step=5"),
        ({"num_segments": 0}, "num_segments=0"),
        ({"timeout_s": 0}, "timeout_s=0"),
        ({"missing": "ignore"}, "missing='ignore'"),
    ],
)
def test_bad_options_are_config_errors(model, kwargs, echo):
    with pytest.raises(ConfigError, match="Received") as info:
        compile_edgetpu(model, **kwargs)
    assert echo in str(info.value)


def test_cli_compile_json_and_exit_codes(fake_compiler, model, tmp_path, capsys):
    fake_compiler("partial")
    assert main(["compile", str(model), "--out-dir", str(tmp_path / "o"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["status"] == "partial"
    assert payload["report"]["ops_cpu"] == 4
    fake_compiler("not_quantized")
    assert main(["compile", str(model), "--out-dir", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out
    assert "status: failed" in out and "Model not quantized" in out


def test_cli_compile_without_compiler(no_compiler, model, capsys):
    assert main(["compile", str(model)]) == 3
    assert "status: not_installed" in capsys.readouterr().out


def test_cli_compile_missing_model_exits_2(no_compiler, tmp_path, capsys):
    assert main(["compile", str(tmp_path / "gone.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gone.tflite" in err
