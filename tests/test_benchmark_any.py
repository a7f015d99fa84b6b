"""``measure_latency`` / ``edgelab benchmark`` time any .tflite, as LiteRT's benchmark_model does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_edgetpu_analyze import act, build_tflite

from edgelab.compare.benchmark import measure_latency
from edgelab.errors import ModelFileError

CORAL = Path(__file__).parent / "data" / "coral"


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory) -> dict[str, Path]:
    """Models the classifier runtime refuses: a sequence model, raw uint8 pixels, two inputs and outputs."""
    from edgelab._keras import keras, tf

    out = tmp_path_factory.mktemp("odd")
    seq = keras.Sequential([keras.Input((6, 4), batch_size=1), keras.layers.LSTM(8), keras.layers.Dense(3)])
    raw_in = keras.Input((16, 16, 3), batch_size=1, dtype="uint8")
    x = keras.layers.Lambda(lambda t: tf.cast(t, tf.float32) / 255.0)(raw_in)
    raw = keras.Model(raw_in, keras.layers.Conv2D(4, 3)(x))
    a, b = keras.Input((8, 8, 3), batch_size=1), keras.Input((5,), batch_size=1)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(a))
    joined = keras.layers.Concatenate()([pooled, b])
    multi = keras.Model([a, b], [keras.layers.Dense(2)(joined), keras.layers.Dense(3)(joined)])
    paths = {}
    for name, model in (("lstm", seq), ("raw_uint8", raw), ("multi_io", multi)):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(converter.convert())
    return paths


@pytest.mark.parametrize("name", ["lstm", "raw_uint8", "multi_io"])
def test_models_that_are_not_image_classifiers_are_timed(odd_models, name):
    result = measure_latency(odd_models[name], min_time_s=0.0, runs=5, warmup=1)
    assert result.runs == 5 and result.p50_ms > 0 and result.runtime.startswith("litert")


def test_coral_split_concat_is_timed():
    result = measure_latency(CORAL / "split_concat.tflite", min_time_s=0.0, runs=3, warmup=0)
    assert result.model == "split_concat.tflite" and result.runs == 3


def test_unresolved_custom_op_is_named_with_how_such_models_run(tmp_path):
    path = tmp_path / "posenet_like.tflite"
    path.write_bytes(build_tflite([act(), act()], [("PosenetDecoderOp", 1, [0], [1])], [0], [1]))
    with pytest.raises(ModelFileError, match=r"'PosenetDecoderOp'.*posenet_decoder\.so"):
        measure_latency(path, min_time_s=0.0)


def test_cli_benchmark_any_model(odd_models, capsys):
    from edgelab.cli import main

    assert main(["benchmark", str(odd_models["multi_io"]), "--min-time", "0", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == "multi_io.tflite" and payload["runs"] >= 20
    assert isinstance(np.float64(payload["p50_ms"]), np.floating)
