"""convert_for_edgetpu: the Edge TPU's conversion settings, and a warning when ops will leave the TPU."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgelab._keras import keras
from edgelab.edgetpu import convert_for_edgetpu
from edgelab.errors import EdgeTPUWarning

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
LABELS = np.arange(24) % 3


def _model(activation_layer):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = activation_layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_edge_friendly_model_converts_silently_with_uint8_io(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EdgeTPUWarning)
        converted, report = convert_for_edgetpu(
            _model(keras.layers.ReLU()), out_dir=tmp_path, calibration=(IMAGES, LABELS)
        )
    assert converted.input_dtype == "uint8" and converted.output_dtype == "uint8"
    assert report.ops_cpu == 0 and report.ops_edgetpu == report.ops_total


def test_unmappable_op_warns_with_its_name_and_reason(tmp_path):
    with pytest.warns(EdgeTPUWarning, match=r"LEAKY_RELU.*Operation not supported") as caught:
        converted, report = convert_for_edgetpu(
            _model(keras.layers.LeakyReLU(0.1)), out_dir=tmp_path, calibration=(IMAGES, LABELS)
        )
    assert report.ops_cpu > 0
    tpu = [w for w in caught if issubclass(w.category, EdgeTPUWarning)]
    assert len(tpu) == 1 and "will run on the CPU" in str(tpu[0].message)
    assert converted.path.exists()
