"""Model builders: Edge-TPU-friendly, flat, small; converted int8 graphs the Edge TPU maps whole."""

from __future__ import annotations

import re

import _tiny
import pytest

from edgelab.errors import ConfigError, EdgelabError
from edgelab.precision import Precision
from edgelab.training.models import build_edgecnn, build_mobilenetv2, build_model, edge_unfriendly_layers

#: TFLite ops an int8 edgecnn may contain: all of them mapped by the Edge TPU compiler.
EDGE_TPU_OPS = {
    "QUANTIZE",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "ADD",
    "MEAN",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "FULLY_CONNECTED",
    "SOFTMAX",
    "RESHAPE",
}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return _tiny.pipeline(tmp_path_factory)


@pytest.fixture(scope="module", params=["edgecnn", "mobilenetv2"])
def built(request):
    return request.param, build_model(request.param, num_classes=4, image_size=96)


def test_builders_use_only_edge_tpu_friendly_layers(built):
    _, model = built
    assert edge_unfriendly_layers(model) == []


def test_builders_are_flat_without_rescaling(built):
    from edgelab._keras import keras

    name, model = built
    kinds = {type(layer).__name__ for layer in model.layers}
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    assert not kinds & {"Rescaling", "Normalization", "Lambda"}, kinds
    assert model.input_shape == (None, 96, 96, 3)
    assert model.output_shape == (None, 4)
    assert model.name == name


def test_edgecnn_has_at_most_100k_parameters_at_the_defaults():
    model = build_edgecnn()
    assert model.count_params() <= 100_000
    assert model.output_shape == (None, 6)


def test_edge_unfriendly_layers_reports_what_the_edge_tpu_would_not_map():
    from edgelab._keras import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="sigmoid", name="sig_conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    inner = keras.Sequential([keras.layers.Conv2D(4, 1)], name="inner")
    x = inner(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    bad = " ".join(edge_unfriendly_layers(model))
    for name in ("sig_conv", "double", "inner"):
        assert name in bad


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.QAT_INT8])
def test_int8_edgecnn_contains_only_edge_tpu_ops(pipe, precision):
    from edgelab.tflite.inspection import inspect_model

    ops = inspect_model(pipe.converted[precision].path).op_counts()
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(ops)
    assert set(ops) <= EDGE_TPU_OPS, ops


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.QAT_INT8])
def test_edgetpu_analyzer_maps_every_op_of_int8_edgecnn(pipe, precision):
    from edgelab.edgetpu.analyze import analyze_edgetpu as analyze

    report = analyze(pipe.converted[precision].path)
    assert report.ops_total > 0
    assert report.ops_edgetpu == report.ops_total, [v.to_dict() for v in report.cpu_ops]
    assert report.ops_cpu == 0


@pytest.mark.parametrize(
    "call, echoed",
    [
        (lambda: build_model("edgecn"), "architecture='edgecn'"),
        (lambda: build_model("resnet50"), "architecture='resnet50'"),
        (lambda: build_edgecnn(image_size=(0, 96)), "image_size=(0, 96)"),
        (lambda: build_edgecnn(image_size="96"), "image_size='96'"),
        (lambda: build_edgecnn(image_size=(96, 96, 3)), "image_size=(96, 96, 3)"),
        (lambda: build_edgecnn(num_classes=1), "num_classes=1"),
        (lambda: build_edgecnn(num_classes=True), "num_classes=True"),
        (lambda: build_edgecnn(width=0), "width=0"),
        (lambda: build_mobilenetv2(weights="imagenette"), "weights='imagenette'"),
        (lambda: build_mobilenetv2(image_size=-3), "image_size=-3"),
    ],
)
def test_bad_arguments_raise_config_error_echoing_the_value(call, echoed):
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "Expected" in message
    assert echoed in message


def test_misspelt_architecture_gets_a_suggestion():
    with pytest.raises(ConfigError, match=re.escape("Did you mean 'edgecnn'?")):
        build_model("edgecn")


def test_mobilenetv2_imagenet_weights_offline_give_a_clear_error(monkeypatch):
    from tf_keras.src.utils import data_utils

    from edgelab._keras import keras

    calls = []

    def offline(fname=None, origin=None, *args, **kwargs):
        calls.append(origin)
        # What get_file raises when the download fails (it wraps URLError in a plain Exception).
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data_utils, "get_file", offline)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(EdgelabError) as info:
        build_mobilenetv2(image_size=96, weights="imagenet")
    assert calls, "the builder never tried to fetch the weights"
    message = str(info.value)
    assert "ImageNet weights" in message
    assert "weights=None" in message  # the way out
    assert "URL fetch failure" in message  # the cause is kept
    assert "\n" not in message  # one line for the CLI
