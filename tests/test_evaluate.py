"""Metrics against hand-computed examples, and evaluation of a converted file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgelab.compare.evaluate import EvalResult, classification_metrics, evaluate_model
from edgelab.errors import ConfigError
from edgelab.preprocess import normalize

NAMES = ["sea", "forest", "street"]
# Worked by hand: class 0 (sea) 1 of 2 right, and one street image called sea; class 1 (forest) both
# right plus one sea image called forest; class 2 (street) 1 of 2 right.
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]
REFERENCE = [0, 0, 1, 1, 2, 2]  # a perfect float model: images 1 and 5 flipped


def test_hand_computed_metrics():
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.num_samples == 6 and result.num_correct == 4
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    table = result.per_class
    assert list(table.index) == NAMES
    np.testing.assert_allclose(table["precision"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(table["recall"], [1 / 2, 1.0, 1 / 2])
    np.testing.assert_allclose(table["f1"], [1 / 2, 0.8, 2 / 3])
    assert table["support"].tolist() == [2, 2, 2]
    assert result.macro_f1 == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert result.agreement is None and result.flipped is None and result.num_flipped is None


def test_agreement_and_flipped_images():
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES, reference_pred=REFERENCE)
    assert result.agreement == pytest.approx(4 / 6)
    assert result.num_flipped == 2
    flipped = result.flipped
    assert flipped["index"].tolist() == [1, 5]
    assert flipped["from"].tolist() == [0, 2] and flipped["to"].tolist() == [1, 0]
    assert flipped["from_name"].tolist() == ["sea", "street"] and flipped["to_name"].tolist() == ["forest", "sea"]
    assert flipped["true"].tolist() == [0, 2]
    np.testing.assert_array_equal(result.flipped_indices, [1, 5])
    same = classification_metrics(Y_TRUE, Y_PRED, NAMES, reference_pred=Y_PRED)
    assert same.agreement == 1.0 and same.num_flipped == 0


def test_scores_are_turned_into_classes_and_kept():
    probs = np.eye(3, dtype=np.float32)[Y_PRED] * 0.7 + 0.1
    reference_scores = np.eye(3)[REFERENCE]
    result = classification_metrics(Y_TRUE, probs, NAMES, reference_pred=reference_scores)
    np.testing.assert_array_equal(result.y_pred, Y_PRED)
    np.testing.assert_array_equal(result.predictions, probs)
    assert result.agreement == pytest.approx(4 / 6)


def test_absent_classes_give_zero_not_nan():
    # Nothing predicted as street (precision 0) and no street images (recall 0).
    result = classification_metrics([0, 1, 0], [0, 1, 1], NAMES)
    street = result.per_class.loc["street"]
    assert street["precision"] == 0.0 and street["recall"] == 0.0 and street["f1"] == 0.0 and street["support"] == 0
    assert not result.per_class.isna().any().any()
    normalized = result.confusion_frame(normalize=True)
    np.testing.assert_allclose(normalized.sum(axis=1), [1.0, 1.0, 0.0])


def test_confusion_frame_is_labelled():
    frame = classification_metrics(Y_TRUE, Y_PRED, NAMES).confusion_frame()
    assert list(frame.index) == NAMES and list(frame.columns) == NAMES
    assert frame.index.name == "true" and frame.columns.name == "predicted"
    assert frame.loc["street", "sea"] == 1 and frame.loc["sea", "forest"] == 1


def test_to_dict_is_json_and_repr_is_rounded():
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES, reference_pred=REFERENCE)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["accuracy"] == 0.6667 and data["agreement"] == 0.6667 and data["num_flipped"] == 2
    assert data["per_class"]["forest"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert data["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert data["flipped"][0] == {"index": 1, "true": 0, "from": 0, "to": 1}
    assert (
        repr(result)
        == "EvalResult(samples=6, classes=3, accuracy=0.6667, macro_f1=0.6556, agreement=0.6667, flipped=2)"
    )
    assert result.to_frame().equals(result.per_class)


def test_result_is_frozen():
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    with pytest.raises(AttributeError):
        result.accuracy = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_true=[0, 1], y_pred=[0, 1, 1]), "hold 2 entries"),
        (dict(y_true=[0, 3], y_pred=[0, 1]), r"y_true in \[0, 3\).*Received: 3 at index 1"),
        (dict(y_true=[0, 1], y_pred=[0, -1]), "Received: -1"),
        (dict(y_true=[], y_pred=[]), "at least one sample"),
        (dict(y_true=[0.0, 1.0], y_pred=[0, 1]), "integer class indices"),
        (dict(y_true=[0, 1], y_pred=np.zeros((2, 4))), r"scores \(N, 3\).*\(2, 4\)"),
        (dict(y_true=[0, 1], y_pred=[0, 1], reference_pred=[0]), "reference_pred to hold 2"),
        (dict(y_true=[0, 1], y_pred=[0, 1], class_names=["a", "a", "b"]), "unique"),
    ],
)
def test_invalid_inputs_are_config_errors(kwargs, match):
    kwargs.setdefault("class_names", NAMES)
    with pytest.raises(ConfigError, match=match):
        classification_metrics(**kwargs)


# ----------------------------------------------------------------------------- on a converted file


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> SimpleNamespace:
    """A tiny untrained classifier (16x16x3 -> 3 classes) as fp32 and uint8-I/O int8 .tflite files."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    images = np.random.default_rng(3).integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    labels = np.random.default_rng(4).integers(0, 3, 30).astype(np.int64)
    keras_probs = model.predict(normalize(images), verbose=0)
    fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec([1, 16, 16, 3], tf.float32)
    )
    out = tmp_path_factory.mktemp("evaluate_models")
    paths = {}
    for name in ("fp32", "int8"):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
        if name == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([normalize(images[i : i + 1])] for i in range(10))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.uint8
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(converter.convert())
    return SimpleNamespace(paths=paths, images=images, labels=labels, keras_probs=keras_probs)


def test_evaluate_model_matches_metrics_of_its_predictions(converted):
    from edgelab.tflite.runtime import TFLiteModel

    model = TFLiteModel(converted.paths["int8"], labels=NAMES)
    result = evaluate_model(model, converted.images, converted.labels, progress=False)
    assert isinstance(result, EvalResult) and result.class_names == tuple(NAMES)
    probs = model.predict(converted.images, progress=False)
    np.testing.assert_array_equal(result.predictions, probs)
    np.testing.assert_array_equal(result.y_pred, probs.argmax(axis=1))
    assert result.accuracy == pytest.approx(np.mean(probs.argmax(axis=1) == converted.labels))
    assert result.confusion.sum() == len(converted.labels)


def test_evaluate_fp32_file_agrees_with_keras(converted):
    keras_classes = converted.keras_probs.argmax(axis=1)
    result = evaluate_model(
        converted.paths["fp32"],
        converted.images,
        converted.labels,
        reference_pred=converted.keras_probs,
        progress=False,
    )
    assert result.class_names == ("0", "1", "2")  # no labels: indices stand in
    assert result.agreement == 1.0 and result.num_flipped == 0
    assert result.accuracy == pytest.approx(np.mean(keras_classes == converted.labels))


def test_evaluate_int8_flips_are_listed(converted):
    result = evaluate_model(
        converted.paths["int8"],
        converted.images,
        converted.labels,
        class_names=NAMES,
        reference_pred=converted.keras_probs.argmax(axis=1),
        batch_size=7,
        progress=False,
        num_threads=2,
    )
    changed = np.flatnonzero(result.y_pred != converted.keras_probs.argmax(axis=1))
    np.testing.assert_array_equal(result.flipped_indices, changed)
    assert result.agreement == pytest.approx(1 - len(changed) / len(converted.labels))


def test_evaluate_model_checks_its_inputs(converted):
    with pytest.raises(ConfigError, match="30 images and 29 labels"):
        evaluate_model(converted.paths["fp32"], converted.images, converted.labels[:29], progress=False)
    with pytest.raises(ConfigError, match="Expected 3 class names"):
        evaluate_model(
            converted.paths["fp32"], converted.images, converted.labels, class_names=["a", "b"], progress=False
        )
    with pytest.raises(ConfigError, match=r"Received: shape=\(30, 8, 8, 3\)"):
        evaluate_model(converted.paths["fp32"], converted.images[:, :8, :8], converted.labels, progress=False)


def test_evaluate_missing_file_is_a_model_file_error(tmp_path):
    from edgelab.errors import ModelFileError

    missing = Path(tmp_path) / "nope.tflite"
    with pytest.raises(ModelFileError, match="nope.tflite"):
        evaluate_model(missing, np.zeros((1, 16, 16, 3), np.uint8), [0], progress=False)
