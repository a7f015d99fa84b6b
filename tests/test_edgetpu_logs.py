"""The Edge TPU compiler log parser against real compiler output (tests/data/edgetpu_logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgelab.cli import main
from edgelab.edgetpu.logs import (
    CompilerReport,
    FailureKind,
    parse_compiler_output,
    parse_compiler_outputs,
    parse_size,
    read_log,
)
from edgelab.edgetpu.memory import format_bytes
from edgelab.errors import EdgeTPUError

LOGS = Path(__file__).parent / "data" / "edgetpu_logs"

JSON_KEYS = {
    "compiler_version",
    "ops_edgetpu",
    "ops_cpu",
    "ops_total",
    "subgraphs",
    "on_chip_used_bytes",
    "on_chip_remaining_bytes",
    "off_chip_used_bytes",
    "operators",
}

# Figures read off the files by hand. tiny_yolo: mapped rows MAX_POOL_2D 6 + CONV_2D 11 +
# QUANTIZE 2 = 19; the other five rows 1+1+2+1+1 = 6. v16: 6.89MiB = 6.89 * 2**20 bytes.
EXPECTED = {
    "tiny_yolo_edgetpu.log": {
        "compiler_version": "14.1.317412892",
        "ops_edgetpu": 19,
        "ops_cpu": 6,
        "ops_total": 25,
        "subgraphs": None,
        "on_chip_used_bytes": None,
        "on_chip_remaining_bytes": None,
        "off_chip_used_bytes": None,
        "rows": 8,
    },
    "v14_all_on_cpu.stdout": {
        "compiler_version": None,
        "ops_edgetpu": 0,
        "ops_cpu": 2,
        "ops_total": 2,
        "subgraphs": None,
        "on_chip_used_bytes": None,
        "on_chip_remaining_bytes": None,
        "off_chip_used_bytes": None,
        "rows": 2,
    },
    "v16_yolov5s_summary.stdout": {
        "compiler_version": "16.0.384591198",
        # The posted output stops before the "will run on Edge TPU / CPU" lines: not derivable.
        "ops_edgetpu": None,
        "ops_cpu": None,
        "ops_total": 229,
        "subgraphs": 1,
        "on_chip_used_bytes": 7224689,
        "on_chip_remaining_bytes": 1024,
        "off_chip_used_bytes": 179200,
        "rows": 0,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_logs_reproduce_counts_and_memory(name):
    report = read_log(LOGS / name)
    expected = dict(EXPECTED[name])
    rows = expected.pop("rows")
    got = report.to_dict()
    assert {k: got[k] for k in expected} == expected
    assert len(report.operators) == rows
    assert report.failure is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_log_cli_json(name, capsys):
    assert main(["read-log", str(LOGS / name), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload.keys() >= JSON_KEYS
    expected = dict(EXPECTED[name])
    assert len(payload["operators"]) == expected.pop("rows")
    assert {k: payload[k] for k in expected} == expected
    for row in payload["operators"]:
        assert set(row) == {"op", "count", "status"}


def test_tiny_yolo_operator_table():
    report = read_log(LOGS / "tiny_yolo_edgetpu.log")
    assert report.input_model == "tiny_yolo.tflite"
    assert report.output_model == "tiny_yolo_edgetpu.tflite"
    # One op type can have several rows, in the file's order, each with its own status.
    conv = [(r.count, r.status) for r in report.operators if r.op == "CONV_2D"]
    assert conv == [(11, "Mapped to Edge TPU"), (2, "More than one subgraph is not supported")]
    frame = report.to_frame()
    assert list(frame.columns) == ["op", "count", "status", "mapped"]
    assert frame["count"].sum() == report.ops_total
    assert frame.loc[frame["mapped"], "count"].sum() == report.ops_edgetpu
    resize = frame[frame["op"] == "RESIZE_NEAREST_NEIGHBOR"].iloc[0]
    assert resize["status"] == "Operation version not supported"


def test_v16_summary_extras():
    report = read_log(LOGS / "v16_yolov5s_summary.stdout")
    assert report.compile_time_ms == 3438
    assert report.input_model == "yolov5s-int8.tflite"
    assert report.output_model == "yolov5s-int8_edgetpu.tflite"
    assert report.input_size_bytes == parse_size("7.31MiB")
    assert report.compiled
    assert repr(report) == (
        "CompilerReport(compiler_version='16.0.384591198', input_model='yolov5s-int8.tflite', "
        "ops_edgetpu=None, ops_cpu=None, ops_total=229, subgraphs=1, on_chip_used='6.89MiB', "
        "on_chip_remaining='1.00KiB', off_chip_used='175.00KiB', operators=0 rows, failure=None)"
    )


def test_v16_summary_with_cpu_counts_derives_the_missing_one():
    # Sample C of the same issue continues with the Edge TPU count only.
    text = (LOGS / "v16_yolov5s_summary.stdout").read_text() + (
        "\nNumber of operations that will run on Edge TPU: 222\n"
    )
    report = parse_compiler_output(text)
    assert (report.ops_edgetpu, report.ops_cpu, report.ops_total) == (222, 7, 229)


def test_complete_v16_output_without_cpu_lines_means_all_mapped():
    text = (LOGS / "v16_yolov5s_summary.stdout").read_text() + (
        "See the operation log file for individual operation details.\n"
        "Compilation child process completed within timeout period.\n"
        "Compilation succeeded! \n"
    )
    report = parse_compiler_output(text)
    assert (report.ops_edgetpu, report.ops_cpu, report.ops_total) == (229, 0, 229)


@pytest.mark.parametrize(
    "text, unit_bytes",
    [
        ("0.00B", 0),
        ("1.00KiB", 1024),
        ("175.00KiB", 179200),
        ("6.89MiB", 7224689),
        ("7.98MiB", 8367636),
        ("1.50GiB", 1610612736),
    ],
)
def test_parse_size_binary_units(text, unit_bytes):
    assert parse_size(text) == unit_bytes


def test_parse_size_rejects_other_text():
    with pytest.raises(ValueError, match=r"6\.89MiB"):
        parse_size("6.89 MB/s")


def test_format_bytes_round_trips_compiler_style():
    for text in ("6.89MiB", "1.00KiB", "175.00KiB", "0.00B"):
        assert format_bytes(parse_size(text)) == text


def test_old_compiler_available_line():
    # Compiler 2.0.291256449 printed "available" then "used" (google-coral/edgetpu#74).
    text = (
        "Edge TPU Compiler version 2.0.291256449\n\n"
        "Model compiled successfully in 231 ms.\n\n"
        "Input model: m.tflite\nInput size: 3.14MiB\nOutput model: m_edgetpu.tflite\n"
        "Output size: 3.22MiB\n"
        "On-chip memory available for caching model parameters: 7.69MiB\n"
        "On-chip memory used for caching model parameters: 3.09MiB\n"
        "Off-chip memory used for streaming uncached model parameters: 0.00B\n"
        "Number of Edge TPU subgraphs: 1\nTotal number of operations: 64\n"
        "Operation log: m_edgetpu.log\n"
        "See the operation log file for individual operation details.\n"
    )
    report = parse_compiler_output(text)
    assert report.compiler_version == "2.0.291256449"
    assert report.on_chip_available_bytes == parse_size("7.69MiB")
    assert report.on_chip_used_bytes == parse_size("3.09MiB")
    assert report.on_chip_remaining_bytes is None  # not derived: the printed sizes are rounded
    assert (report.ops_edgetpu, report.ops_cpu) == (64, 0)


def test_co_compiled_log_gives_one_report_per_model():
    block = (LOGS / "tiny_yolo_edgetpu.log").read_text()
    second = block.replace("tiny_yolo", "other").replace(
        "CONV_2D                        11", "CONV_2D                        3"
    )
    reports = parse_compiler_outputs(block + "\n" + second)
    assert [r.input_model for r in reports] == ["tiny_yolo.tflite", "other.tflite"]
    assert [r.ops_edgetpu for r in reports] == [19, 11]
    assert parse_compiler_output(block + "\n" + second).input_model == "tiny_yolo.tflite"


def test_stdout_and_log_of_one_model_merge():
    stdout = (LOGS / "v16_yolov5s_summary.stdout").read_text()
    log = (
        "Edge TPU Compiler version 16.0.384591198\nInput: yolov5s-int8.tflite\n"
        "Output: yolov5s-int8_edgetpu.tflite\n\nOperator                       Count      Status\n\n"
        "CONV_2D                        60         Mapped to Edge TPU\n"
        "CONCATENATION                  169        Mapped to Edge TPU\n"
    )
    (report,) = parse_compiler_outputs(stdout + "\n" + log)
    assert report.on_chip_used_bytes == 7224689
    assert (report.ops_edgetpu, report.ops_cpu, report.ops_total) == (229, 0, 229)


FAILURES = [
    ("Invalid model: m.tflite\nModel not quantized\n", FailureKind.NOT_QUANTIZED),
    (
        "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this "
        "builtin might be supported. Are you using an old TFLite binary with a newer model?\n\n"
        "ERROR: Registration failed.\n\nInvalid model: m.tflite\nModel could not be parsed\n",
        FailureKind.OP_VERSION_NOT_SUPPORTED,
    ),
    (
        "Compilation failed: Compilation failed due to large activation tensors in model.\n",
        FailureKind.LARGE_ACTIVATIONS,
    ),
    ("Internal compiler error. Aborting! \n", FailureKind.INTERNAL_ERROR),
    ("Compilation timeout. This is usually caused by large activations.\n", FailureKind.TIMEOUT),
    (
        "ERROR: Attempting to use a delegate that only supports static-sized tensors with a graph "
        "that has dynamic-sized tensors.\nCompilation failed: Model failed in Tflite interpreter. "
        "Please ensure model can be loaded/run in Tflite interpreter.\n",
        FailureKind.INVALID_MODEL,
    ),
    ("Invalid model: m.tflite\n", FailureKind.INVALID_MODEL),
    ("Compilation failed! \n", FailureKind.UNKNOWN),
]


@pytest.mark.parametrize("tail, kind", FAILURES, ids=[k.value + str(i) for i, (_, k) in enumerate(FAILURES)])
def test_whole_model_failures_are_typed(tail, kind):
    head = "Edge TPU Compiler version 16.0.384591198\nStarted a compilation timeout timer of 180 seconds.\n"
    report = parse_compiler_output(head + tail)
    assert report.failure is not None
    assert report.failure.kind is kind
    assert report.failure.message in tail
    assert report.failure.hint
    assert report.ops_total is None
    assert report.to_dict()["failure"]["kind"] == kind.value


def test_op_version_failure_names_the_op():
    report = parse_compiler_output(FAILURES[1][0])
    assert (report.failure.op, report.failure.op_version) == ("CONV_2D", 6)


def test_success_output_has_no_failure_despite_timer_line():
    report = read_log(LOGS / "v16_yolov5s_summary.stdout")
    assert report.failure is None  # "compilation timeout timer" is not a timeout


def test_unrelated_text_is_not_recognized():
    report = parse_compiler_output("hello\nworld\n")
    assert isinstance(report, CompilerReport)
    assert not report.recognized
    assert set(report.to_dict()) >= JSON_KEYS
    assert all(report.to_dict()[k] is None for k in JSON_KEYS - {"operators"})


@pytest.mark.parametrize("content", [None, b"TFL3\x00\x00binary", b"just some notes\n"])
def test_read_log_rejects_unreadable_input(tmp_path, content):
    path = tmp_path / "x.log"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EdgeTPUError, match=r"x\.log"):
        read_log(path)


def test_read_log_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["read-log", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgelab: error:") and err.count("\n") == 1
    assert "missing.log" in err


def test_read_log_cli_text_lists_operators(capsys):
    assert main(["read-log", str(LOGS / "tiny_yolo_edgetpu.log")]) == 0
    out = capsys.readouterr().out
    assert "14.1.317412892" in out
    assert "RESIZE_NEAREST_NEIGHBOR" in out and "Operation version not supported" in out
    assert out.count("Mapped to Edge TPU") == 3
