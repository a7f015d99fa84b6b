"""Transfer learning: a nested backbone + head becomes one flat model (same weights, same outputs)
that QAT and the Edge TPU path take; weights load from a local file."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgelab.errors import ConfigError
from edgelab.preprocess import EDGELAB_RANGE, InputRange, model_input_range


def backbone_and_head(rescale=(1 / 127.5, -1.0), sequential=False, size=32):
    """The tutorial shape: Input -> Rescaling -> MobileNetV2 backbone (nested, frozen) -> new head."""
    from edgelab._keras import keras

    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None, alpha=0.35)
    base.trainable = False
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name="scale")(inputs) if rescale else inputs
    if sequential:
        head = keras.Sequential(
            [keras.Input(base.output_shape[1:]), keras.layers.GlobalAveragePooling2D(name="gap")], name="head"
        )
        x = head(base(x, training=False))
    else:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(base(x, training=False))
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name="transfer")
    rng = np.random.default_rng(0)  # non-trivial BatchNormalization statistics, so a wrong graph shows
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    return model


def pixels(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_flatten_inlines_the_backbone_and_drops_the_unnecessary_rescaling(caplog):
    from edgelab._keras import keras
    from edgelab.training import flatten_model, is_flat

    model = backbone_and_head()
    with caplog.at_level(logging.WARNING, logger="edgelab"):
        flat = flatten_model(model)
    assert not is_flat(model) and is_flat(flat)
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in flat.layers)
    assert "removed the preprocessing layer(s) ['scale (Rescaling)']" in caplog.text and "[-1, 1]" in caplog.text
    assert model_input_range(flat) == EDGELAB_RANGE
    images = pixels()
    expected = model.predict(images.astype(np.float32), verbose=0)  # the original takes raw pixels
    np.testing.assert_allclose(flat.predict(EDGELAB_RANGE(images), verbose=0), expected, atol=1e-5)
    # Same weights (copied) and the frozen backbone stays frozen; the original is untouched.
    assert flat.count_params() == model.count_params()
    assert not flat.get_layer("Conv1").trainable and flat.get_layer("classifier").trainable
    assert any(isinstance(layer, keras.Model) for layer in model.layers)


def test_flatten_keeps_another_range_and_nested_sequential_heads():
    from edgelab.training import flatten_model

    model = backbone_and_head(rescale=(1 / 255, 0.0), sequential=True)
    flat = flatten_model(model)
    assert model_input_range(flat) == InputRange(0.0, 1.0)
    images = pixels(seed=1)
    np.testing.assert_allclose(
        flat.predict(images / np.float32(255), verbose=0),
        model.predict(images.astype(np.float32), verbose=0),
        atol=1e-5,
    )


def test_backbone_model_goes_through_qat_conversion_and_maps_to_the_edgetpu(tmp_path):
    from edgelab import analyze_edgetpu as analyze
    from edgelab.tflite.conversion import convert
    from edgelab.training.fit import predict_keras
    from edgelab.training.qat import prepare_qat

    model = backbone_and_head()
    qat_model = prepare_qat(model)  # flattens and drops the Rescaling itself
    images = pixels(8, seed=2)
    converted = convert(model, "int8", out_dir=tmp_path, calibration=images, name="transfer")
    fp32 = convert(model, "fp32", out_dir=tmp_path, name="transfer")
    np.testing.assert_allclose(fp32.predict(images), predict_keras(model, images), atol=1e-4)
    report = analyze(converted.path)
    assert report.ops_cpu == 0, [(op.op, op.reason) for op in report.ops if op.target == "cpu"]
    qat = convert(qat_model, "qat_int8", out_dir=tmp_path, calibration=images, name="transfer")
    assert analyze(qat.path).ops_cpu == 0


def test_subclassed_model_is_refused_clearly():
    from edgelab._keras import keras, tf
    from edgelab.errors import EdgelabError
    from edgelab.training import flatten_model

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(tf.zeros((1, 3)))
    with pytest.raises(EdgelabError, match=r"subclassed model 'net'.*functional API"):
        flatten_model(net)


def test_build_model_loads_weights_from_a_local_file(tmp_path):
    import edgelab as el

    source = el.build_model("mobilenetv2", num_classes=3, image_size=32, alpha=0.35)
    rng = np.random.default_rng(0)
    source.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in source.get_weights()])
    path = tmp_path / "mine.weights.h5"
    source.save_weights(str(path))
    loaded = el.build_model("mobilenetv2", num_classes=3, image_size=32, alpha=0.35, weights=str(path))
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A backbone-only file (what keras.applications ships as ..._no_top.h5) loads by layer name.
    from edgelab._keras import keras

    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    backbone.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in backbone.get_weights()])
    backbone_file = tmp_path / "no_top.h5"
    backbone.save_weights(str(backbone_file))
    model = el.build_model("mobilenetv2", num_classes=3, image_size=32, alpha=0.35, weights=str(backbone_file))
    np.testing.assert_array_equal(
        model.get_layer("Conv1").get_weights()[0], backbone.get_layer("Conv1").get_weights()[0]
    )
    with pytest.raises(ConfigError, match="no such file"):
        el.build_model("edgecnn", weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ConfigError, match="match none of them"):
        el.build_model("edgecnn", num_classes=3, image_size=32, weights=str(backbone_file))
