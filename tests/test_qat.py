"""Quantization-aware training: wrapping, fine-tuning, saving, and every model tfmot cannot take."""

from __future__ import annotations

import _tiny
import numpy as np
import pytest

from edgelab.errors import QATError
from edgelab.preprocess import normalize
from edgelab.training.qat import is_qat_model, load_qat_model, prepare_qat, quantize_aware


def functional(*middle_layers, name: str = "mine"):
    """image -> Conv2D -> *middle_layers -> pool -> Dense softmax, as a tf_keras functional model."""
    from edgelab._keras import keras

    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    for layer in middle_layers:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="classifier")(x), name=name)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return _tiny.pipeline(tmp_path_factory)


def test_prepare_qat_wraps_layers_and_keeps_the_float_model():
    from edgelab._keras import keras

    model = functional(keras.layers.ReLU(6.0, name="relu"))
    qat_model = prepare_qat(model)
    assert is_qat_model(qat_model)
    assert not is_qat_model(model)
    assert qat_model.name == "mine_qat"
    wrapped = [type(layer).__name__ for layer in qat_model.layers]
    assert "QuantizeLayer" in wrapped and "QuantizeWrapperV2" in wrapped
    # The float model is left as it was: same layers, same weights.
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Conv2D",
        "ReLU",
        "GlobalAveragePooling2D",
        "Dense",
    ]
    conv = next(
        layer for layer in qat_model.layers if getattr(layer, "layer", None) is not None and layer.layer.name == "conv"
    )
    np.testing.assert_array_equal(conv.layer.kernel.numpy(), model.get_layer("conv").kernel.numpy())


def test_the_shared_pipeline_ran_quantize_aware(pipe):
    """The shared pipeline ran quantize_aware on the trained edgecnn for one epoch."""
    assert is_qat_model(pipe.qat_model)
    assert not is_qat_model(pipe.model)
    assert pipe.qat_history["epoch"].tolist() == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(pipe.qat_history.columns)


@pytest.mark.filterwarnings("ignore::edgelab.errors.InputRangeWarning")
def test_quantize_aware_fine_tuning_raises_accuracy():
    """A model whose classifier is zeroed scores exactly chance on a balanced 3-colour test set (all
    logits tie, argmax picks class 0: 10 of 30 images); QAT fine-tuning on 48 other images lifts it
    to at least 27 of 30. Colours are separable by a wide margin, so this holds on any CPU."""
    from edgelab._keras import keras

    keras.utils.set_random_seed(0)
    model = _tiny.small_cnn(8, 3)
    classifier = model.get_layer("classifier")
    classifier.set_weights([np.zeros_like(w) for w in classifier.get_weights()])
    train_set, (images, labels) = _tiny.colour_task(16, 8, 3, seed=0), _tiny.colour_task(10, 8, 3, seed=1)

    def correct(m) -> int:
        return int(np.sum(m.predict(normalize(images), verbose=0).argmax(axis=1) == labels))

    assert correct(model) == 10
    result = quantize_aware(
        model, train_set, (images, labels), epochs=6, learning_rate=5e-2, patience=6, seed=0, progress=False
    )
    assert is_qat_model(result.model)
    assert correct(result.model) >= 27
    assert correct(model) == 10  # the float model is left as it was


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_qat_model_survives_save_and_load(pipe, tmp_path):
    path = tmp_path / "qat.h5"
    pipe.qat_model.save(path, include_optimizer=False)
    loaded = load_qat_model(path)
    assert is_qat_model(loaded)
    images, _ = pipe.data.arrays("test")
    np.testing.assert_allclose(
        loaded.predict(normalize(images), verbose=0), pipe.qat_model.predict(normalize(images), verbose=0), atol=1e-6
    )


def test_nested_sub_model_is_flattened_not_refused():
    from edgelab._keras import keras
    from edgelab.training.qat import check_qat_compatible

    backbone = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(4, 1, name="inner")], name="backbone")
    model = functional(backbone, name="outer")
    with pytest.raises(QATError) as info:  # the check alone still explains, and names the fix
        check_qat_compatible(model)
    message = str(info.value)
    assert "'backbone'" in message and "'outer'" in message and "flatten_model" in message
    qat_model = prepare_qat(model)  # prepare_qat flattens it itself
    assert is_qat_model(qat_model)
    names = [getattr(layer, "layer", layer).name for layer in qat_model.layers]
    assert "inner" in names and "backbone" not in names


def test_subclassed_model_is_refused():
    from edgelab._keras import keras, tf

    class Classifier(keras.Model):
        def __init__(self):
            super().__init__(name="classifier_subclass")
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Classifier()
    model(tf.zeros((1, 4)))
    with pytest.raises(QATError, match="subclassed model 'classifier_subclass'.*functional API"):
        prepare_qat(model)


def test_lambda_layer_is_refused_naming_it():
    from edgelab._keras import keras

    model = functional(keras.layers.Lambda(lambda t: t * 2.0, name="double_it"))
    with pytest.raises(QATError) as info:
        prepare_qat(model)
    message = str(info.value)
    assert "double_it" in message and "Lambda" in message
    assert "Fix:" in message


def test_custom_layer_is_refused_naming_it():
    from edgelab._keras import keras

    class Squash(keras.layers.Layer):
        def call(self, x):
            return x / (1.0 + abs(x))

    with pytest.raises(QATError) as info:
        prepare_qat(functional(Squash(name="squash_1")))
    message = str(info.value)
    assert "squash_1 (Squash)" in message
    assert "Fix:" in message and "quantize_annotate_layer" in message


def test_unsupported_activation_is_refused_naming_the_layer():
    from edgelab._keras import keras

    with pytest.raises(QATError) as info:
        prepare_qat(functional(keras.layers.Activation("softsign", name="soft_sign")))
    assert "soft_sign" in str(info.value)


def test_keras3_model_is_refused_with_an_explanation():
    import keras as keras3

    assert keras3.__version__.startswith("3")
    inputs = keras3.Input((8, 8, 3))
    x = keras3.layers.GlobalAveragePooling2D()(keras3.layers.Conv2D(4, 3)(inputs))
    model = keras3.Model(inputs, keras3.layers.Dense(3)(x))
    with pytest.raises(QATError) as info:
        prepare_qat(model)
    message = str(info.value)
    assert "Keras 3" in message
    assert "tf_keras" in message  # the fix
    assert "keras.src" in message  # what was received


def test_quantize_aware_refuses_before_training():
    from edgelab._keras import keras

    model = functional(keras.layers.Lambda(lambda t: t, name="identity"))
    images, labels = _tiny.colour_task(2, 8)
    with pytest.raises(QATError, match="identity"):
        quantize_aware(model, (images, labels), epochs=1, progress=False)
    assert model.optimizer is None  # nothing was compiled or fitted
