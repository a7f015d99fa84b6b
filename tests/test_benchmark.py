"""Latency measurement: result fields, invariants, run-count sizing and input checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgelab.compare.benchmark import LatencyResult, measure_latency
from edgelab.errors import ConfigError, ModelFileError
from edgelab.tflite.runtime import TFLiteModel


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    """A tiny untrained fp32 classifier (16x16x3 -> 3 classes), batch fixed to 1."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(2)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec([1, 16, 16, 3], tf.float32)
    )
    path = tmp_path_factory.mktemp("benchmark_models") / "tiny_fp32.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert())
    return path


def test_latency_fields_and_invariants(tiny_path):
    result = measure_latency(tiny_path, min_time_s=0.05, runs=20, max_runs=1_000_000)
    assert isinstance(result, LatencyResult)
    assert result.runs >= 20 and len(result.times_ms) == result.runs
    assert 0 < result.min_ms <= result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.min_ms <= result.mean_ms <= result.max_ms and result.std_ms >= 0
    assert result.p50_ms == pytest.approx(float(np.median(result.times_ms)))
    assert result.total_s >= 0.05 and result.cold_ms > 0 and result.load_ms > 0
    assert result.num_threads == 1 and result.warmup == 5
    assert result.runtime.startswith("litert ") and result.xnnpack is True and result.delegate is None
    assert result.model == "tiny_fp32.tflite" and result.size_bytes == tiny_path.stat().st_size
    assert result.throughput == pytest.approx(1000 / result.p50_ms)


def test_to_dict_and_repr_are_rounded(tiny_path):
    result = measure_latency(tiny_path, min_time_s=0.0, runs=20, warmup=1)
    data = json.loads(json.dumps(result.to_dict()))
    assert "times_ms" not in data and data["runs"] == result.runs == 20
    assert data["p50_ms"] == round(result.p50_ms, 4)
    text = repr(result)
    assert text.startswith("LatencyResult(model='tiny_fp32.tflite', p50_ms=")
    assert f"p50_ms={result.p50_ms:.3f}," in text and "runs=20" in text and "xnnpack=True" in text
    with pytest.raises(AttributeError):
        result.p50_ms = 0.0  # type: ignore[misc]


def test_run_count_is_sized_by_min_time_and_capped(tiny_path):
    # 40 runs of a 16x16 model cannot fill an hour: the cap, not the time, ends the run.
    capped = measure_latency(tiny_path, min_time_s=3600.0, runs=5, max_runs=40)
    assert capped.runs == 40 == len(capped.times_ms)
    # With no cap in reach, the timed runs last at least min_time_s (at any speed), and runs at least.
    sized = measure_latency(tiny_path, min_time_s=0.1, runs=5, max_runs=1_000_000)
    assert sized.total_s >= 0.1 and sized.runs >= 5 and len(sized.times_ms) == sized.runs


def test_threads_xnnpack_and_model_object(tiny_path):
    off = measure_latency(tiny_path, num_threads=2, use_xnnpack=False, min_time_s=0.0)
    assert off.xnnpack is False and off.num_threads == 2
    model = TFLiteModel(tiny_path)
    before = model.predict(np.zeros((1, 16, 16, 3), np.uint8), progress=False)
    result = measure_latency(model, min_time_s=0.0, input=np.full((16, 16, 3), 200, np.uint8))
    assert result.model == "tiny_fp32.tflite" and result.runs == 20
    # The model's own interpreter is left alone.
    np.testing.assert_array_equal(model.predict(np.zeros((1, 16, 16, 3), np.uint8), progress=False), before)
    assert measure_latency(tiny_path.read_bytes(), min_time_s=0.0).model == "<bytes>"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(runs=0), "runs=0"),
        (dict(runs=10, max_runs=5), "max_runs=5"),
        (dict(warmup=-1), "warmup=-1"),
        (dict(min_time_s=-1.0), "min_time_s=-1.0"),
        (dict(input=np.zeros((8, 8, 3), np.uint8)), r"Received: shape=\(8, 8, 3\)"),
    ],
)
def test_invalid_arguments_are_config_errors(tiny_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        measure_latency(tiny_path, min_time_s=kwargs.pop("min_time_s", 0.0), **kwargs)


def test_bad_model_file_is_a_model_file_error(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="broken.tflite"):
        measure_latency(bad)
