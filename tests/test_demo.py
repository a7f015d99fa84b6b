"""``edgelab demo``: the whole workflow from the command line, its rerun, and its folder rules."""

from __future__ import annotations

import contextlib
import functools
import io
import json
from pathlib import Path
from types import SimpleNamespace

import _tiny
import pandas as pd
import pytest

from edgelab import cli
from edgelab import demo as demo_module
from edgelab._cli import demo as cli_demo
from edgelab.compare.comparison import COLUMNS
from edgelab.demo import DemoConfig
from edgelab.errors import ConfigError, EdgelabError
from edgelab.precision import CONVERTIBLE

TINY = list(_tiny.DEMO_ARGS)


def run_cli(*args: str) -> SimpleNamespace:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(list(args))
    return SimpleNamespace(code=code, out=stdout.getvalue(), err=stderr.getvalue())


def stamps(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.suffix in (".h5", ".tflite")
    }


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """The shared pipeline's demo run (from scratch), then ``edgelab demo`` again into the same folder."""
    pipe = _tiny.pipeline(tmp_path_factory)
    before = stamps(pipe.out)
    with pytest.MonkeyPatch.context() as mp:
        # Only the latency timing is shortened (min_time_s is not a run parameter: not in params.json).
        mp.setattr(cli_demo, "DemoConfig", functools.partial(DemoConfig, min_time_s=0.05))
        rerun = run_cli("demo", "--out", str(pipe.out), *TINY)
    return SimpleNamespace(out=pipe.out, first=pipe.demo, rerun=rerun, before=before, after=stamps(pipe.out))


def test_demo_writes_the_report(demo_runs):
    out = demo_runs.out
    assert demo_runs.first.report == out / "report.md"
    assert demo_runs.first.reused == ()
    for name in (
        "report.md",
        "report.csv",
        "manifest.json",
        "labels.txt",
        "params.json",
        "tradeoff.png",
        "sizes.png",
        "confusions.png",
        "training.png",
        "qat.png",
        "float_model.h5",
        "qat_model.h5",
    ):
        assert (out / name).is_file(), name
    bundle = json.loads((out / "bundle" / "bundle.json").read_text())  # the int8 model, ready to deploy
    assert [m["file"] for m in bundle["models"]] == ["model_int8.tflite"]
    assert (out / "bundle" / "manifest.json").is_file() and (out / "bundle" / "classify.py").is_file()
    assert sorted(p.name for p in (out / "models").glob("*.tflite")) == sorted(
        f"model_{p.value}.tflite" for p in CONVERTIBLE
    )
    csv = pd.read_csv(out / "report.csv")
    assert list(csv.columns) == list(COLUMNS)
    assert csv["precision"].tolist() == [p.value for p in CONVERTIBLE]
    assert (csv["status"] == "ok").all(), csv[["precision", "reason"]]
    assert (out / "labels.txt").read_text().split() == ["buildings", "forest", "glacier", "mountain", "sea", "street"]


def test_demo_manifest_records_every_parameter(demo_runs):
    manifest = json.loads((demo_runs.out / "manifest.json").read_text())
    parameters = manifest["parameters"]
    assert parameters["per_class"] == _tiny.PER_CLASS and parameters["image_size"] == _tiny.SIZE
    assert parameters["epochs"] == 1 and parameters["qat_epochs"] == 1
    assert set(DemoConfig().to_dict()) == set(parameters)
    assert manifest["packages"]["tensorflow"]
    assert set(manifest["timings_s"]) == {"data", "train", "qat", "convert_and_measure", "bundle"}
    assert len(manifest["files"]) == len(set(manifest["files"]))  # also after the rerun


def test_demo_prints_the_table(demo_runs):
    rerun = demo_runs.rerun
    assert rerun.code == 0, rerun.err
    lines = rerun.out.splitlines()
    assert any(line.startswith("Float Keras model: test accuracy ") for line in lines)
    header = next(line for line in lines if line.split()[:2] == ["precision", "status"])
    for column in ("size_ratio", "accuracy", "delta_accuracy", "p50_ms", "latency_ratio"):
        assert column in header
    names = {p.value for p in CONVERTIBLE}
    rows = [
        line.split()[0] for line in lines[lines.index(header) + 1 :] if line.split()[:1] and line.split()[0] in names
    ]
    assert rows == [p.value for p in CONVERTIBLE]
    assert f"Report: {demo_runs.out / 'report.md'}" in rerun.out


def test_second_run_reuses_training_qat_and_files(demo_runs):
    assert demo_runs.rerun.code == 0, demo_runs.rerun.err
    assert "(reused finished steps: train, qat)" in demo_runs.rerun.out
    assert demo_runs.after == demo_runs.before  # models and .tflite files were not rewritten


def test_other_parameters_into_the_same_folder_fail_with_one_line(demo_runs):
    other = ["--per-class", str(_tiny.PER_CLASS), "--image-size", str(_tiny.SIZE), "--epochs", "3", "--qat-epochs", "2"]
    result = run_cli("demo", "--out", str(demo_runs.out), *other, "--no-progress")
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("edgelab: error: ")
    assert "epochs, qat_epochs differ" in lines[0] and "--fresh" in lines[0]
    assert json.loads((demo_runs.out / "params.json").read_text())["epochs"] == 1  # the folder is untouched


class Stop(EdgelabError):
    pass


def test_fresh_starts_over(tmp_path, monkeypatch):
    """--fresh removes the earlier run (models, checkpoints, report) before anything else happens."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "params.json").write_text(json.dumps({"epochs": 99}))
    for name in ("float_model.h5", "qat_model.h5", "report.md"):
        (out / name).write_text("from an earlier run")
    (out / "models").mkdir()
    (out / "models" / "model_fp32.tflite").write_text("old")

    def stop_after_setup(workspace):
        raise Stop("stopped after preparing the folder")

    monkeypatch.setattr(demo_module.Workspace, "data", stop_after_setup)
    refused = run_cli("demo", "--out", str(out), *TINY)
    assert refused.code == 2 and "--fresh" in refused.err
    assert (out / "float_model.h5").exists()

    fresh = run_cli("demo", "--out", str(out), *TINY, "--fresh")
    assert fresh.code == 2 and "stopped after preparing the folder" in fresh.err
    assert sorted(p.name for p in out.iterdir()) == ["params.json"]
    assert json.loads((out / "params.json").read_text())["epochs"] == 1


def test_fresh_refuses_to_delete_a_folder_that_is_not_a_demo_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    result = run_cli("demo", "--out", str(tmp_path), *TINY, "--fresh")
    assert result.code == 2
    assert "Refusing to delete" in result.err and "no params.json" in result.err
    assert (tmp_path / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    "kwargs, echoed",
    [
        ({"per_class": 0}, "per_class=0"),
        ({"image_size": -1}, "image_size=-1"),
        ({"qat_epochs": -1}, "qat_epochs=-1"),
        ({"min_time_s": 0}, "min_time_s=0"),
    ],
)
def test_demo_config_validates(kwargs, echoed):
    with pytest.raises(ConfigError, match=echoed):
        DemoConfig(**kwargs)


def test_bad_cli_values_fail_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--out", str(tmp_path / "x"), "--per-class", "0", "--no-progress"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "edgelab demo: error: argument --per-class: expected an int from 3 to 100000, received '0' "
        "(see 'edgelab demo -h')"
    )
    assert not (tmp_path / "x").exists()


def test_workspace_reuses_the_demo_models(demo_runs):
    """A Workspace on the demo's folder loads the models the demo trained, with their histories."""
    from edgelab.training import is_qat_model

    ws = demo_module.Workspace(_tiny.demo_config(demo_runs.out), progress=False)
    model, qat_model = ws.float_model(), ws.qat_model()
    assert ws.reused == ["train", "qat"] and ws.float_model() is model
    assert is_qat_model(qat_model) and not is_qat_model(model)
    assert len(ws.history) == 1 and len(ws.qat_history) == 1
    assert ws.path("models") == demo_runs.out / "models"


def test_workspace_from_json(tmp_path, monkeypatch):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"out_dir": str(tmp_path / "out"), "epochs": 2, "image_size": 32}))
    monkeypatch.setenv("EDGELAB_PARAMS", '{"num_threads": 2}')
    ws = demo_module.Workspace.from_json(params)
    assert (ws.params.epochs, ws.params.image_size, ws.params.num_threads) == (2, 32, 2)
    assert ws.out_dir == tmp_path / "out" and not ws.out_dir.exists()  # nothing is written before it is needed
    assert "32x32 px" in repr(ws) and "2 epochs" in repr(ws)
    params.write_text(json.dumps({"epoch": 2}))
    with pytest.raises(ConfigError, match="epochs"):
        demo_module.Workspace.from_json(params)
    with pytest.raises(ConfigError, match="Expected a JSON parameters file"):
        demo_module.Workspace.from_json(tmp_path / "missing.json")
