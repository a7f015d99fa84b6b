"""The traps a user's own model walks into: its own Rescaling, BatchNormalization momentum 0.99 on a
small dataset, a Keras 3 model, a nested backbone. Each gets correct accuracy or a clear message,
never a silent chance-level table."""

from __future__ import annotations

import warnings

import _tiny
import numpy as np
import pytest

from edgelab.errors import ConfigError
from edgelab.preprocess import EDGELAB_RANGE, RAW_RANGE, InputRange, model_input_range, set_input_range
from edgelab.training.range_probe import MIN_ACCURACY_GAIN, MIN_MORE_CORRECT

NAMES = ("red", "green", "blue")
#: A model that learned: 0.2 above chance (1/3) on the 120 test images is 24 images, 4.6 standard
#: deviations of a guesser's count (sqrt(120 * 1/3 * 2/3) = 5.2).
LEARNED = 1 / 3 + 0.2
#: The int8 file's budget: it may change the correctness of at most 5% of the 120 test images (6).
#: int8 kernels are integer arithmetic, the same on every CPU; only the float side moves, by near ties.
INT8_CHANGED = 6


def noisy_colours(per_class: int, seed: int, wrong_labels: float = 0.0):
    """The colour task with heavy pixel noise; ``wrong_labels`` of the labels are replaced by another
    class, so a good model's accuracy is neither chance nor perfect."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), per_class)
    base = np.asarray(_tiny.COLOURS[:3], np.int16)[labels][:, None, None, :]
    images = np.clip(base + rng.integers(-150, 151, (len(labels), 8, 8, 3)), 0, 255).astype(np.uint8)
    flip = rng.random(len(labels)) < wrong_labels
    labels = np.where(flip, (labels + rng.integers(1, 3, len(labels))) % 3, labels)
    order = rng.permutation(len(labels))
    return images[order], labels[order].astype(np.int64)


def own_model(first_layers, name="own", bn_momentum=None):
    from edgelab._keras import keras

    inputs = keras.Input((8, 8, 3), name="pixels")
    x = inputs
    for layer in first_layers:
        x = layer(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    if bn_momentum is not None:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="classifier")(x), name=name)


def fit_own_way(model, images, labels, epochs=25):
    """What the user did: compile and fit with Keras on raw float pixels."""
    from edgelab._keras import keras

    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images.astype(np.float32), labels, epochs=epochs, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def task():
    return noisy_colours(60, seed=1, wrong_labels=0.2), noisy_colours(40, seed=2, wrong_labels=0.3)


@pytest.fixture(scope="module")
def rescaling_model(task):
    from edgelab._keras import keras

    (x, y), _ = task
    return fit_own_way(own_model([keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")], name="rescaled"), x, y)


def test_own_rescaling_model_gets_its_own_accuracy_from_edgelab(task, rescaling_model):
    from edgelab.training.fit import evaluate_keras

    _, (xt, yt) = task
    own_probs = rescaling_model.predict(xt.astype(np.float32), verbose=0)  # what the user's own code gets
    own = _tiny.correct(own_probs, yt)
    assert model_input_range(rescaling_model) == RAW_RANGE  # detected from its Rescaling layer
    ours = evaluate_keras(rescaling_model, xt, yt, NAMES).accuracy
    # The same model on the same pixels: only an image at a float32 near tie may land elsewhere.
    assert abs(round(ours * len(yt)) - own) <= _tiny.near_ties(own_probs), (ours, own)
    # It learned something: the comparison is not chance against chance.
    assert own > LEARNED * len(yt)


def test_own_rescaling_model_converts_to_the_same_accuracy(task, rescaling_model, tmp_path):
    from edgelab.compare.comparison import run_comparison
    from edgelab.training.fit import predict_keras

    (x, y), (xt, yt) = task
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = run_comparison(
            rescaling_model,
            (x, y),
            test_data=(xt, yt),
            calibration=(x, y),
            class_names=NAMES,
            out_dir=tmp_path,
            precisions=["fp32", "int8"],
            min_time_s=0.01,
        )
    assert not result.sanity and "chance" not in _text(shown)
    table = result.table.set_index("precision")
    assert (table.status == "ok").all(), table.reason
    n = len(yt)
    float_probs = predict_keras(rescaling_model, xt)
    # Accuracies in images (the table rounds to 4 decimals, 0.006 of an image here). The fp32 file is the
    # same float32 model: only near ties may differ.
    float_correct = round(result.float_accuracy * n)
    assert abs(round(table.loc["fp32", "accuracy"] * n) - float_correct) <= _tiny.near_ties(float_probs)
    assert abs(round(table.loc["int8", "accuracy"] * n) - float_correct) <= INT8_CHANGED
    assert result.float_accuracy > LEARNED


def test_rescaling_to_zero_one_is_fed_and_converted_right(task, tmp_path):
    from edgelab._keras import keras
    from edgelab.tflite.conversion import convert
    from edgelab.training.fit import predict_keras

    (x, y), (xt, _) = task
    model = fit_own_way(own_model([keras.layers.Rescaling(1 / 255, name="unit")], name="unit"), x, y, epochs=10)
    keras_probs = predict_keras(model, xt)
    # The same Keras model on the same float32 pixels (uint8 / 255 either way), other batch sizes:
    # float32 sums in another order (see _tiny.FLOAT32_PROB).
    np.testing.assert_allclose(keras_probs, model.predict(xt.astype(np.float32), verbose=0), atol=_tiny.FLOAT32_PROB)
    tflite_probs = convert(model, "fp32", out_dir=tmp_path).predict(xt)
    np.testing.assert_allclose(tflite_probs, keras_probs, atol=_tiny.FLOAT32_PROB)  # same model, another kernel


def test_a_model_trained_on_raw_pixels_without_a_layer_is_flagged_with_the_fix(task, tmp_path):
    from edgelab.compare.comparison import run_comparison
    from edgelab.training.fit import evaluate_keras

    (x, y), (xt, yt) = task
    model = fit_own_way(own_model([], name="raw_trained"), x, y)
    own_probs = model.predict(xt.astype(np.float32), verbose=0)
    own = _tiny.correct(own_probs, yt) / len(yt)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = run_comparison(
            model,
            (x, y),
            test_data=(xt, yt),
            calibration=(x, y),
            class_names=NAMES,
            out_dir=tmp_path / "guess",
            precisions=["fp32"],
            min_time_s=0.01,
        )
    assert "assumes it takes pixels scaled to [-1, 1]" in _text(shown)  # the assumption is named
    # Fed the wrong range, never silently: when the assumed range loses what the range probe calls
    # clearly worse (its documented thresholds, less the near ties that another batch size may flip),
    # a warning names the range the model was trained on.
    n, slack = len(yt), _tiny.near_ties(own_probs)
    lost = _tiny.correct(own_probs, yt) - round(result.float_accuracy * n) - slack
    above_majority = _tiny.correct(own_probs, yt) - slack - int(np.bincount(yt).max())
    if lost >= MIN_MORE_CORRECT and lost / n >= MIN_ACCURACY_GAIN and above_majority >= MIN_MORE_CORRECT:
        assert "input_range=(0, 255)" in _text(shown)
    if result.sanity:  # chance level or one dominant class: the finding names the fix too
        assert "input_range=(0, 255)" in result.sanity[0] and list(result.sanity) == result.table.attrs["sanity"]
    declared = evaluate_keras(model, xt, yt, NAMES, input_range=(0, 255)).accuracy
    # Declared, edgelab feeds what the user fed: the same count, near ties aside.
    assert abs(round(declared * len(yt)) - round(own * len(yt))) <= _tiny.near_ties(own_probs)


def test_batchnorm_momentum_099_on_few_steps_is_explained():
    """A flat MobileNetV2 with Keras' default momentum 0.99 on a small dataset: validation stays at chance
    while training accuracy rises, and train says why."""
    import edgelab as el
    from edgelab._keras import keras
    from edgelab.training.sanity import CHANCE_MARGIN, chance_level

    data = el.synthetic_dataset(per_class=30, image_size=32, seed=0, progress=False)
    model = el.build_model("mobilenetv2", num_classes=6, image_size=32)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.99
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = el.train(model, data, epochs=3, patience=0)
    x_val, y_val = data.arrays("val")
    accuracy = el.evaluate_keras(model, x_val, y_val, data.class_names).accuracy
    # Either inference accuracy is fine, or edgelab said why it is not: never a silent chance level.
    if accuracy < chance_level(y_val, 6) + CHANCE_MARGIN:  # the level at which train's check speaks
        assert "BatchNormalization" in _text(shown) and "momentum [0.99]" in _text(shown), _text(shown)
        assert "use momentum=0.9" in _text(shown)
    assert result.epochs_run == 3


def test_keras3_model_is_refused_with_one_message_everywhere(tmp_path):
    import keras as keras3

    import edgelab as el
    from edgelab.tflite.conversion import convert
    from edgelab.training.qat import prepare_qat

    inputs = keras3.Input((8, 8, 3))
    model = keras3.Model(
        inputs, keras3.layers.Dense(3, activation="softmax")(keras3.layers.GlobalAveragePooling2D()(inputs))
    )
    x, y = noisy_colours(4, seed=5)
    messages = set()
    for call in (
        lambda: el.train(model, (x, y), epochs=1),
        lambda: prepare_qat(model),
        lambda: el.quantize_aware(model, (x, y), epochs=1),
        lambda: convert(model, "fp32", out_dir=tmp_path),
        lambda: el.run_comparison(
            model, (x, y), test_data=(x, y), calibration=(x, y), class_names=NAMES, out_dir=tmp_path
        ),
        lambda: el.evaluate_keras(model, x, y, NAMES),
        lambda: el.flatten_model(model),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1
    (message,) = messages
    assert "Keras 3 model" in message and "import tf_keras as keras" in message and "TF_USE_LEGACY_KERAS=1" in message


def test_import_edgelab_sets_legacy_keras_before_tensorflow():
    import os
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None)\n"
        "import edgelab, sys\nassert 'tensorflow' not in sys.modules\n"
        "import tensorflow as tf\nprint(tf.keras.Sequential.__module__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("tf_keras."), out.stdout
    assert "I0000" not in out.stderr and "cuda" not in out.stderr.lower()  # native start-up lines quieted


def test_too_late_for_legacy_keras_is_said_clearly():
    import os
    import subprocess
    import sys

    code = "import tensorflow as tf\ntf.keras.Sequential\nimport edgelab\n"  # no logging set up: a warning
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "already resolved to Keras 3" in out.stderr and "Restart the kernel" in out.stderr
    assert out.stderr.count("SetupWarning") == 1


def test_input_range_is_validated_and_explicit_wins():
    model = own_model([], name="declared")
    assert model_input_range(model, (0, 1)) == InputRange(0.0, 1.0)
    set_input_range(model, (0, 255))
    assert model_input_range(model) == RAW_RANGE
    with pytest.raises(ConfigError, match=r"Expected input_range to be \(low, high\).*Received: input_range='raw'"):
        model_input_range(model, "raw")
    with pytest.raises(ConfigError, match="two different finite numbers"):
        InputRange(1.0, 1.0)
    assert EDGELAB_RANGE(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]


def test_deploy_bundle_classify_feeds_the_own_rescaling_model_right(task, rescaling_model, tmp_path):
    """classify.py feeds every .tflite file [-1, 1]; conversion made the Rescaling model's file take that."""
    from PIL import Image
    from test_bundle import parse_scores, run_classify

    from edgelab.bundle import export_bundle
    from edgelab.tflite.conversion import convert

    _, (xt, _) = task
    converted = convert(rescaling_model, "fp32", out_dir=tmp_path / "models", name="rescaled")
    bundle = export_bundle([converted.path], NAMES, out_dir=tmp_path / "bundle")
    image = tmp_path / "one.png"
    Image.fromarray(xt[0]).save(image)
    proc = run_classify(bundle, str(image), "--top-k", "3", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    expected = rescaling_model.predict(xt[:1].astype(np.float32), verbose=0)[0]  # the model on raw pixels
    assert parse_scores(proc.stdout) == pytest.approx(dict(zip(NAMES, expected.tolist())), abs=1e-4)


def _text(shown: list) -> str:
    """What the user saw: every EdgelabWarning's text."""
    from edgelab.errors import EdgelabWarning

    return "\n".join(str(w.message) for w in shown if issubclass(w.category, EdgelabWarning))
