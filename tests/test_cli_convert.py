"""``edgelab convert``: a saved Keras model to a .tflite without writing Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgelab.cli import main
from edgelab.tflite.inspection import inspect_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    from edgelab._keras import keras

    out = tmp_path_factory.mktemp("saved")
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    paths = {"keras": out / "m.keras", "h5": out / "m.h5", "savedmodel": out / "m_savedmodel"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.save(paths["savedmodel"], save_format="tf")
    return paths


@pytest.mark.parametrize("kind", ["keras", "h5", "savedmodel"])
def test_int8_with_random_calibration_reaches_analyze(saved, kind, tmp_path, capsys):
    out = tmp_path / "sub" / "m_int8.tflite"
    assert (
        main(["convert", str(saved[kind]), "--precision", "int8", "--random-calibration", "4", "--out", str(out)]) == 0
    )
    assert f"next: edgelab analyze {out}" in capsys.readouterr().out
    info = inspect_model(out)
    assert info.inputs[0].dtype == "uint8" and info.inputs[0].shape == (1, 16, 16, 3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m_int8.tflite"]  # no stray files
    assert main(["analyze", str(out), "--json"]) == 0
    assert '"usb3": ' in capsys.readouterr().out


def test_calibration_from_a_dataset_folder(saved, intel_layout, tmp_path):
    root = intel_layout(size=(16, 16))
    out = tmp_path / "d.tflite"
    assert (
        main(
            [
                "convert",
                str(saved["keras"]),
                "--precision",
                "int8",
                "--data",
                str(root),
                "--samples",
                "6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert inspect_model(out).inputs[0].dtype == "uint8"


def test_float_precisions_need_no_calibration(saved, tmp_path):
    out = tmp_path / "f.tflite"
    assert main(["convert", str(saved["h5"]), "--precision", "fp16", "--out", str(out)]) == 0
    assert inspect_model(out).inputs[0].dtype == "float32"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--precision", "int8", "--out", "x.tflite"], "needs calibration data"),
        (["--precision", "fp32", "--out", "x.bin"], "Expected --out to be a .tflite"),
        (["--precision", "int8", "--random-calibration", "0", "--out", "x.tflite"], "--random-calibration"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(saved, argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["convert", str(saved["keras"]), *argv])
    except SystemExit as exc:  # argparse's own check (--random-calibration 0), before the model loads
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("edgelab") and "error:" in err and message in err and len(err.strip().splitlines()) == 1


def test_unloadable_models_are_clear_errors(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "gone.keras"), "--precision", "fp32", "--out", "x.tflite"]) == 2
    assert "missing path" in capsys.readouterr().err
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model")
    assert main(["convert", str(junk), "--precision", "fp32", "--out", str(tmp_path / "x.tflite")]) == 2
    assert "Cannot load" in capsys.readouterr().err
    other = tmp_path / "m.onnx"
    other.write_bytes(b"x")
    assert main(["convert", str(other), "--precision", "fp32", "--out", str(tmp_path / "x.tflite")]) == 2
    assert ".onnx" in capsys.readouterr().err
