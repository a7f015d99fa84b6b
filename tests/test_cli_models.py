"""`edgelab inspect` and `edgelab benchmark` on a real .tflite, and their error path."""

from __future__ import annotations

import json
from pathlib import Path

from edgelab.cli import main

MODEL = Path(__file__).parent / "data" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"


def test_inspect_text_and_json(capsys):
    assert main(["inspect", str(MODEL)]) == 0
    out = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in out and "uint8" in out and "MACs" in out
    assert main(["inspect", str(MODEL), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["ops"]) == 31


def test_benchmark_reports_percentiles(capsys):
    assert main(["benchmark", str(MODEL), "--min-time", "0.05", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert 0 < payload["p50_ms"] <= payload["p90_ms"] <= payload["p99_ms"]
    assert payload["num_threads"] == 1 and payload["runs"] >= 20


def test_not_a_model_is_one_line_and_exit_2(tmp_path, capsys):
    bogus = tmp_path / "notes.tflite"
    bogus.write_text("hello")
    assert main(["inspect", str(bogus)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgelab: error:") and "notes.tflite" in err[0]


def test_each_command_is_routed_to_the_area_that_registers_it():
    import argparse
    import importlib

    from edgelab.cli import AREAS, COMMANDS, build_parser

    registered = {}
    for area in AREAS:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"edgelab._cli.{area}").add_commands(sub)
        registered.update(dict.fromkeys(sub.choices, area))
    assert registered == COMMANDS
    for command in COMMANDS:  # a parser built for one command knows that command
        assert command in build_parser(command)._subparsers._group_actions[0].choices
