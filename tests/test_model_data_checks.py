"""Model/data mismatches stop before Keras runs, with one message naming both numbers; keep_float needs its row."""

from __future__ import annotations

import _tiny
import numpy as np
import pytest

import edgelab as el
from edgelab.errors import ConfigError


@pytest.fixture(scope="module")
def model():
    m = _tiny.small_cnn(8, 3, name="three_outputs")  # 8x8x3 pixels in, 3 scores out
    el.preprocess.set_input_range(m, (-1, 1))
    return m


def _untouched(model) -> list:
    return [w.copy() for w in model.get_weights()]


def test_train_refuses_more_classes_than_outputs_before_fitting(model):
    x, y = _tiny.colour_task(4, size=8, num_classes=4, seed=0)  # labels 0..3, four classes
    before = _untouched(model)
    with pytest.raises(ConfigError, match=r"labels below 3.*Received: labels up to 3 \(4 classes\)"):
        el.train(model, (x, y), epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing was trained


def test_train_refuses_images_of_another_size(model):
    x, y = _tiny.colour_task(4, size=16, num_classes=3, seed=0)
    with pytest.raises(ConfigError, match=r"Expected 8x8 images.*Received: 16x16 images"):
        el.train(model, (x, y), epochs=1)


def test_evaluate_keras_names_class_count_and_outputs(model):
    x, y = _tiny.colour_task(2, size=8, num_classes=3, seed=0)
    with pytest.raises(ConfigError, match=r"match the 3 scores.*Received: 4 classes"):
        el.evaluate_keras(model, x, y, ["a", "b", "c", "d"])
    with pytest.raises(ConfigError, match=r"Expected images with 3 channels.*Received: images with 1 channels"):
        el.evaluate_keras(model, x[..., :1], y, ["a", "b", "c"])


def test_run_comparison_checks_before_converting(model, tmp_path):
    x, y = _tiny.colour_task(2, size=8, num_classes=3, seed=0)
    with pytest.raises(ConfigError, match=r"match the 3 scores.*Received: 5 classes"):
        el.run_comparison(
            model, (x, y), test_data=(x, y), calibration=(x, y), class_names="abcde", out_dir=tmp_path / "c"
        )
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").glob("*.tflite"))


def test_quantize_aware_checks_before_preparing(model):
    x, y = _tiny.colour_task(2, size=16, num_classes=3, seed=0)
    with pytest.raises(ConfigError, match=r"Expected 8x8 images.*Received: 16x16 images"):
        el.quantize_aware(model, (x, y), epochs=1)


def test_keep_float_without_the_mixed_int8_row_is_an_error(model, tmp_path):
    x, y = _tiny.colour_task(2, size=8, num_classes=3, seed=0)
    with pytest.raises(
        ConfigError, match=r"'mixed_int8' in precisions when keep_float is given.*keep_float=\['conv'\]"
    ):
        el.convert_all(
            model, out_dir=tmp_path, calibration=(x, y), labels="abc", precisions=["int8"], keep_float=["conv"]
        )
    assert not list(tmp_path.glob("*.tflite"))
