"""Edge-friendly Keras classifiers.

Every builder returns a *flat* functional tf_keras model (no nested sub-models, no Rescaling layer)
made only of ops the Edge TPU maps: Conv2D / DepthwiseConv2D with ReLU or ReLU6, BatchNorm (folded
away by the converter), pooling, Add, Dense and Softmax. Flat Keras 2 models are what
tensorflow-model-optimization can wrap for quantization-aware training.

Inputs are ``edgelab.preprocess.normalize(images)``: float pixels in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._keras import keras
from .._log import logger
from ..errors import ConfigError, EdgelabError, check_int, did_you_mean
from ..preprocess import EDGELAB_RANGE, RANGE_ATTRIBUTE, parse_image_size

#: Keras layer types whose TFLite ops the Edge TPU compiler maps (BatchNormalization folds into the conv).
EDGE_FRIENDLY_LAYERS = frozenset(
    {
        "InputLayer",
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "BatchNormalization",
        "ReLU",
        "Activation",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "Add",
        "Dense",
        "Dropout",
        "Softmax",
        "ZeroPadding2D",
        "Flatten",
        "Reshape",
    }
)
EDGE_FRIENDLY_ACTIVATIONS = frozenset({"relu", "relu6", "linear", "softmax"})


def _conv_bn_relu(x, filters: int, kernel: int, strides: int, name: str):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _separable_block(x, filters: int, strides: int, name: str):
    """Depthwise 3x3 + pointwise 1x1 (the MobileNet block), with a residual Add when shapes allow."""
    shortcut = x
    y = keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    y = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(y)
    y = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_pw")(y)
    y = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_pw_bn")(y)
    if strides == 1 and shortcut.shape[-1] == filters:
        y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(y)


def build_edgecnn(
    num_classes: int = 6,
    image_size: int | tuple[int, int] = 96,
    width: float = 1.0,
    dropout: float = 0.2,
    name: str = "edgecnn",
) -> keras.Model:
    """edgelab's default classifier: four strided 3x3 conv blocks (~99k parameters at width 1.0).

    Args:
        num_classes: Number of output classes.
        image_size: Input size as an int or (height, width).
        width: Channel multiplier.
        dropout: Dropout rate before the classifier.
        name: Model name.
    """
    height, width_px = parse_image_size(image_size)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    if not width > 0:
        raise ConfigError(f"Expected width to be a positive number. Received: width={width!r}")

    def ch(c: int) -> int:
        return max(8, round(c * width / 8) * 8)

    inputs = keras.Input(shape=(height, width_px, 3), name="image")
    # Plain strided 3x3 convolutions: few channels for many weights, so int8 files shrink close
    # to 4x (per-channel quantization parameters cost ~24 bytes per output channel).
    x = inputs
    for i, filters in enumerate((16, 32, 64, 128)):
        x = _conv_bn_relu(x, ch(filters), 3, 2, f"conv{i + 1}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def build_mobilenetv2(
    num_classes: int = 6,
    image_size: int | tuple[int, int] = 96,
    alpha: float = 0.35,
    weights: str | None = None,
    dropout: float = 0.2,
    name: str = "mobilenetv2",
) -> keras.Model:
    """MobileNetV2 with a new classifier head, as one flat functional model.

    Args:
        num_classes: Number of output classes.
        image_size: Input size as an int or (height, width).
        alpha: Width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 have ImageNet weights).
        weights: ``None`` (random init, works offline), ``"imagenet"`` (downloads once; needs network), or
            the path of a local weights file: Keras' MobileNetV2 ``..._no_top.h5`` backbone file (loaded
            into the backbone) or one written by ``model.save_weights`` (see :func:`load_weights_file`).
        dropout: Dropout rate before the classifier.
        name: Model name.
    """
    height, width_px = parse_image_size(image_size)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    weights_file = _weights_path(weights)
    if weights_file is not None:
        weights = None  # built from scratch, then loaded from the file below
    inputs = keras.Input(shape=(height, width_px, 3), name="image")
    try:
        # input_tensor makes the backbone's layers part of *this* graph: the result is flat.
        base = keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=weights, alpha=alpha)
    except ValueError as exc:
        raise ConfigError(
            f"MobileNetV2 rejected the arguments (alpha={alpha!r}, image_size={image_size!r}): {exc}"
        ) from exc
    except Exception as exc:  # urllib/HTTP/OS errors while fetching the weights
        if weights == "imagenet":
            raise EdgelabError(
                "Could not download the ImageNet weights for MobileNetV2 "
                f"({type(exc).__name__}: {exc}). They are fetched from storage.googleapis.com on first use "
                "and cached in ~/.keras/models/. Connect to the internet once, copy the cached .h5 file "
                "there by hand, or use weights=None to train from scratch."
            ) from exc
        raise
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights_file is not None:
        load_weights_file(model, weights_file)
    return model


def _weights_path(weights) -> Path | None:
    """``None`` for ``None``/``"imagenet"``; a checked path otherwise."""
    if weights is None or weights == "imagenet":
        return None
    if not isinstance(weights, (str, Path)):
        raise ConfigError(
            f"Expected weights to be None, 'imagenet' or a weights file path. Received: weights={weights!r}"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"Expected weights to be None, 'imagenet' or an existing weights file. Received: weights={str(weights)!r} "
            "(no such file). Keras' MobileNetV2 files are named like "
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5."
        )
    return path


def load_weights_file(model: keras.Model, path: str | Path) -> int:
    """Load a local weights file into ``model``: the whole model's, or a backbone's by layer name.

    A file written by ``model.save_weights`` for the same architecture loads as is; otherwise (an HDF5
    file for part of the model, such as a ``keras.applications`` no-top backbone) layers are matched
    by name. Returns how many layers received weights.

    Raises:
        ConfigError: the file matches no layer of ``model`` (wrong file, or wrong alpha/architecture).
    """
    path = Path(path)
    layers = [layer for layer in model.layers if layer.weights]
    before = [layer.get_weights() for layer in layers]
    try:
        model.load_weights(str(path))
    except Exception as whole_error:  # not a file of this whole model: match layers by name
        try:
            model.load_weights(str(path), by_name=True, skip_mismatch=True)
        except Exception as exc:
            raise ConfigError(
                f"Expected a weights file for {model.name!r}. Received: {str(path)!r}, which could not be loaded "
                f"({type(whole_error).__name__}: {whole_error}; by layer name: {exc})."
            ) from exc
    changed = sum(
        any(not np.array_equal(a, b) for a, b in zip(old, layer.get_weights())) for layer, old in zip(layers, before)
    )
    if changed == 0:
        raise ConfigError(
            f"Expected {str(path)!r} to hold weights for layers of {model.name!r}. Received: a file whose layer names or "
            "shapes match none of them (another architecture, alpha or number of classes?)."
        )
    logger.info("loaded weights for %d of %d layers of %s from %s", changed, len(layers), model.name, path)
    return changed


#: Named builders for ``build_model`` and the CLI.
ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "edgecnn": build_edgecnn,
    "mobilenetv2": build_mobilenetv2,
}


def build_model(
    architecture: str = "edgecnn", num_classes: int = 6, image_size: int | tuple[int, int] = 96, **kwargs
) -> keras.Model:
    """Build one of :data:`ARCHITECTURES` by name (extra keyword arguments go to the builder).

    ``weights="path/to/file"`` loads a local weights file after building (any architecture; see
    :func:`load_weights_file`); for ``mobilenetv2`` that may be Keras' no-top backbone file. The model
    takes pixels scaled to [-1, 1] (see :mod:`edgelab.preprocess`).
    """
    if architecture not in ARCHITECTURES:
        names = sorted(ARCHITECTURES)
        raise ConfigError(
            f"Expected architecture to be one of {names}. Received: architecture={architecture!r}."
            + did_you_mean(architecture, names)
        )
    weights = kwargs.pop("weights", None)
    weights_file = None
    if architecture == "mobilenetv2" and weights == "imagenet":
        kwargs["weights"] = weights
    elif weights is not None:
        weights_file = _weights_path(weights) if weights != "imagenet" else None
        if weights_file is None:
            raise ConfigError(
                f"Expected weights to be None or a weights file for {architecture!r} (only mobilenetv2 has "
                f"'imagenet' weights). Received: weights={weights!r}"
            )
    model = ARCHITECTURES[architecture](num_classes=num_classes, image_size=image_size, **kwargs)
    if weights_file is not None:
        load_weights_file(model, weights_file)
    setattr(model, RANGE_ATTRIBUTE, EDGELAB_RANGE)  # edgelab's models take normalize(pixels)
    logger.info("built %s: %d parameters", model.name, model.count_params())
    return model


def edge_unfriendly_layers(model: keras.Model) -> list[str]:
    """Names of layers (or activations) the Edge TPU would not map; empty for edgelab's builders."""
    bad = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in EDGE_FRIENDLY_LAYERS or isinstance(layer, keras.Model):
            bad.append(f"{layer.name} ({kind})")
            continue
        activation = getattr(layer, "activation", None)
        act_name = getattr(activation, "__name__", None)
        if act_name and act_name not in EDGE_FRIENDLY_ACTIVATIONS:
            bad.append(f"{layer.name} (activation {act_name})")
    return bad
