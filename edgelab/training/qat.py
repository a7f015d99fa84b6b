"""Quantization-aware training with tensorflow-model-optimization.

tfmot wraps each layer of a flat tf_keras functional model with fake-quantization; the model is
then fine-tuned for a few epochs and converted with precision ``qat_int8``. Models tfmot cannot
take (Keras 3, nested sub-models, unsupported layers) are refused with an explanation of the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._config import check_bool
from .._keras import check_keras2_model, is_keras3_model, keras
from .._keras import is_qat_model as is_qat_model  # re-exported: its home is edgelab._keras
from .._log import logger
from ..errors import QATError
from ..preprocess import RANGE_ATTRIBUTE, leading_preprocessing, model_input_range
from .config import QAT_CONFIG, TrainConfig
from .fit import run_training
from .flatten import flatten_model, is_flat
from .shapes import check_model_fits

if TYPE_CHECKING:
    from .fit import TrainResult


def _tfmot():
    import tensorflow_model_optimization as tfmot  # deferred: seconds to import, TF-heavy

    return tfmot


def check_qat_compatible(model: Any) -> None:
    """Explain, before tfmot does, why a model cannot be quantization-aware trained.

    Raises:
        QATError: Keras 3 model, subclassed model, nested sub-model, or Lambda layers.
    """
    if is_keras3_model(model):
        check_keras2_model(model)  # the one Keras 3 message every entry point gives
    if not isinstance(model, keras.Model):
        raise QATError(f"Expected a tf_keras Model. Received: {type(model).__name__}")
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        raise QATError(
            f"Expected a Sequential or functional model. Received: the subclassed model {model.name!r}; "
            "tfmot can only wrap the layers of a graph model. Rebuild it with the functional API."
        )
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise QATError(
            f"Expected a flat model. Received: {model.name!r} with the nested sub-model(s) {nested}. tfmot "
            "does not recurse into sub-models. edgelab.flatten_model(model) rebuilds it as one flat model with the "
            "same weights (prepare_qat and quantize_aware do this themselves), or build the backbone on your input tensor, e.g. "
            "keras.applications.MobileNetV2(input_tensor=inputs, include_top=False) followed by your head "
            "(edgelab.training.models.build_mobilenetv2 does this)."
        )
    # tfmot only warns about Lambda layers and leaves them in float (or fails to clone them), so the
    # model would never convert to full int8: refuse them here, by name.
    lambdas = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Lambda)]
    if lambdas:
        raise QATError(
            f"Expected layers tfmot can quantize. Received: the Lambda layer(s) {lambdas} in {model.name!r}; "
            "tfmot cannot quantize Lambda layers. Fix: replace each with a built-in layer (scale inputs outside "
            "the model with edgelab.preprocess.normalize), or with a custom layer annotated by "
            "tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=...)."
        )


#: Layer types tfmot handles through its graph transforms although its registry does not list them.
_TRANSFORMED_LAYERS = ("InputLayer", "BatchNormalization", "SeparableConv2D")


def _unsupported_layers(model: keras.Model) -> list[str]:
    """Layers tfmot's default 8-bit registry does not know, as ``"name (Type)"`` (best effort)."""
    try:
        # deferred: tensorflow-model-optimization (seconds to import; only the QAT wrappers need it)
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry as registry_module,
        )

        registry = registry_module.Default8BitQuantizeRegistry()
    except Exception:  # private tfmot path: never let the explanation itself fail
        return []
    names = []
    for layer in model.layers:
        if type(layer).__name__ in _TRANSFORMED_LAYERS:
            continue
        try:
            supported = registry.supports(layer)
            if supported:  # the layer type is known; its settings (e.g. the activation) may not be
                config = registry.get_quantize_config(layer)
                config.get_activations_and_quantizers(layer)
                config.get_output_quantizers(layer)
        except Exception:
            supported = False
        if not supported:
            names.append(f"{layer.name} ({type(layer).__name__})")
    return names


def prepare_qat(model: keras.Model) -> keras.Model:
    """Wrap a tf_keras model for quantization-aware training (weights are kept).

    A model with a nested backbone or leading preprocessing layers is first rebuilt flat with
    :func:`edgelab.training.flatten.flatten_model` (the float model itself is left unchanged).

    Raises:
        QATError: The model or one of its layers cannot be quantized; the message names the layer
            and the fix.
    """
    if (
        isinstance(model, keras.Model)
        and getattr(model, "_is_graph_network", False)
        and (not is_flat(model) or leading_preprocessing(model))
    ):
        # "backbone + head" and a leading Rescaling are the usual transfer-learning shape: make it flat
        # and drop the scaling (the uint8 input quantization does it) instead of refusing.
        model = flatten_model(model)
    check_qat_compatible(model)
    input_range = model_input_range(model)
    tfmot = _tfmot()
    try:
        qat_model = tfmot.quantization.keras.quantize_model(model)
    except (RuntimeError, ValueError, TypeError) as exc:
        message = str(exc)
        layer = message.split(":")[0].replace("Layer ", "").strip() if message.startswith("Layer ") else None
        suspects = _unsupported_layers(model)
        if layer:
            where = f"layer {layer!r}"
        elif suspects:
            where = f"the layer(s) {suspects}"
        else:
            where = "a layer"
        raise QATError(
            f"tensorflow-model-optimization cannot quantize {where} of {model.name!r}: {message.strip()} "
            "Fix: replace it with a supported layer (Conv2D, DepthwiseConv2D, Dense, ReLU/ReLU6, pooling, Add), "
            "or annotate it with tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=...) "
            "and pass a QuantizeConfig."
        ) from exc
    qat_model._name = f"{model.name}_qat"
    setattr(qat_model, RANGE_ATTRIBUTE, input_range)  # fed the same pixels as the float model
    logger.info("prepared %s for quantization-aware training (%d layers)", qat_model.name, len(qat_model.layers))
    return qat_model


def quantize_aware(
    model: keras.Model,
    data: Any,
    val_data: Any | None = None,
    *,
    config: TrainConfig | None = None,
    run_dir: str | Path | None = None,
    progress: bool | None = None,
    freeze_batchnorm: bool = True,
    **options: Any,
) -> TrainResult:
    """Quantization-aware fine-tuning of a trained float model with edgelab's training loop.

    Args:
        model: The trained float tf_keras model (left unchanged).
        data: An edgelab Dataset or an ``(images, labels)`` pair.
        val_data: Validation data (default: the Dataset's val split).
        config: A :class:`edgelab.training.TrainConfig`; default :data:`QAT_CONFIG`: a few epochs
            (``epochs=3``) at a small learning rate (``2e-5``, so fine-tuning does not undo training),
            ``patience=2``.
        run_dir: Checkpoint folder (resumable), or None.
        progress: Show a progress bar.
        freeze_batchnorm: Keep BatchNormalization in inference mode with its trained statistics
            (the usual practice for QAT fine-tuning: batch statistics of a few epochs only add noise
            to the folded weights the converter quantizes).
        **options: Fields of :class:`edgelab.training.TrainConfig` (``epochs=5``, ...), replacing the config's.

    Returns:
        A :class:`edgelab.training.TrainResult` whose ``model`` is the quantization-aware model.
    """
    cfg = TrainConfig.resolve(config, options, default=QAT_CONFIG)
    freeze_batchnorm = check_bool("freeze_batchnorm", freeze_batchnorm)
    if hasattr(data, "image_size") and hasattr(data, "num_classes"):  # a Dataset: no need to load it for this
        check_model_fits(model, (0, *data.image_size, 3), num_classes=data.num_classes)
    elif isinstance(data, (tuple, list)) and len(data) == 2 and len(data[1]):
        check_model_fits(model, np.shape(data[0]), max_label=int(np.max(data[1])))
    qat_model = prepare_qat(model)
    frozen = []
    if freeze_batchnorm:
        for layer in qat_model.layers:
            inner = getattr(layer, "layer", layer)  # tfmot's QuantizeWrapper keeps the original as .layer
            if isinstance(inner, keras.layers.BatchNormalization) and layer.trainable:
                layer.trainable = False
                frozen.append(layer)
    try:
        return run_training(qat_model, data, val_data, cfg, run_dir=run_dir, progress=progress, desc="qat")
    finally:
        # Freezing is a training-time choice; a frozen wrapper also breaks saving to .h5 (duplicate weight names).
        for layer in frozen:
            layer.trainable = True


def load_qat_model(path: str | Path) -> keras.Model:
    """Load a quantization-aware model saved with ``model.save(...h5)`` (needs tfmot's scope)."""
    tfmot = _tfmot()
    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path, compile=False)
