"""Transfer-learning models made edge-ready: one flat graph, no unnecessary preprocessing layers.

The usual "backbone + head" model nests the backbone as a sub-model (``base = MobileNetV2(...)``,
``x = base(x)``) and often starts with its own ``Rescaling``. tfmot cannot wrap nested models nor
quantize ``Rescaling``, and the Edge TPU does not need it: the uint8 input's quantization already
scales pixels. :func:`flatten_model` rebuilds such a model as one flat functional graph with the same
weights and checks that it computes the same outputs; :func:`serving_function` gives conversion a
function that takes edgelab's [-1, 1] input whatever range the model expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._keras import check_keras2_model, is_qat_model, keras, tf
from .._log import logger, warn_user_fmt
from ..errors import EdgelabError, InputRangeWarning
from ..preprocess import (
    EDGELAB_RANGE,
    RANGE_ATTRIBUTE,
    InputRange,
    leading_preprocessing,
    model_input_range,
    probe_affine,
)

__all__ = ["flatten_model", "is_flat", "serving_function"]


def is_flat(model: Any) -> bool:
    """True when no layer of ``model`` is itself a model."""
    return not any(isinstance(layer, keras.Model) for layer in model.layers)


def _copy_layer(layer, taken: set[str], prefix: str):
    """A fresh layer with the same config (weights are set after it is built), uniquely named."""
    config = layer.get_config()
    name = config.get("name", layer.name)
    if name in taken:
        name = f"{prefix}_{name}" if prefix else name
        base, i = name, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
    config["name"] = name
    taken.add(name)
    try:
        return type(layer).from_config(config)
    except Exception:  # a custom layer without a faithful config: share the original (same weights)
        taken.add(layer.name)
        return layer


def _graph_nodes(model) -> list:
    nodes_by_depth = getattr(model, "_nodes_by_depth", None)
    if not getattr(model, "_is_graph_network", False) or not nodes_by_depth:
        raise EdgelabError(
            f"Expected functional or Sequential models to flatten. Received: the subclassed model {model.name!r}; "
            "its graph is Python code edgelab cannot rebuild. Build it with the functional API."
        )
    return [node for depth in sorted(nodes_by_depth, reverse=True) for node in nodes_by_depth[depth]]


def _rebuild(model, inputs: list, taken: set[str], skip: set[int], prefix: str, training: Any) -> list:
    """Call copies of ``model``'s layers on ``inputs`` in graph order; nested models are inlined."""
    tensors: dict[int, Any] = {id(kt): t for kt, t in zip(model.inputs, inputs)}

    def mapped(structure):
        return tf.nest.map_structure(lambda x: tensors.get(id(x), x), structure)  # ids of this graph's tensors

    for node in _graph_nodes(model):
        layer = node.layer
        if isinstance(layer, keras.layers.InputLayer):
            continue
        args, kwargs = mapped(node.call_args), mapped(dict(node.call_kwargs))
        if isinstance(layer, keras.Model):
            inner_training = kwargs.get("training", training)
            inner_inputs = tf.nest.flatten(args[0] if len(args) == 1 else list(args))
            outputs = _rebuild(layer, inner_inputs, taken, skip, layer.name, inner_training)
            outputs = outputs[0] if len(outputs) == 1 else outputs
        elif id(layer) in skip:
            outputs = args[0]
        else:
            copy = _copy_layer(layer, taken, prefix)
            if training is not None and "training" not in kwargs and getattr(layer, "_expects_training_arg", False):
                kwargs["training"] = training
            outputs = copy(*args, **kwargs)
            if copy is not layer:
                copy.set_weights(layer.get_weights())
                copy.trainable = layer.trainable
        for kt, t in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
            tensors[id(kt)] = t
    return [tensors[id(kt)] for kt in model.outputs]


def _rebuilt(model, skip: frozenset[int] | set[int] = frozenset()) -> keras.Model:
    inputs = [
        keras.Input(shape=kt.shape[1:], dtype=kt.dtype, name=name) for kt, name in zip(model.inputs, model.input_names)
    ]
    outputs = _rebuild(model, inputs, {t.name.split(":")[0] for t in inputs}, set(skip), "", None)
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0], name=model.name
    )


def _uniform(scale: np.ndarray, offset: np.ndarray) -> bool:
    return bool(
        np.allclose(scale, scale[0], rtol=1e-6, atol=1e-9) and np.allclose(offset, offset[0], rtol=1e-6, atol=1e-7)
    )


def _max_difference(a, b, range_a: InputRange, range_b: InputRange, seed: int = 0) -> float:
    shape = (4, *a.input_shape[1:])
    images = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    out_a = np.asarray(a(range_a(images), training=False))
    out_b = np.asarray(b(range_b(images), training=False))
    return float(np.max(np.abs(out_a - out_b)))


def flatten_model(
    model: keras.Model, *, fold_preprocessing: bool = True, input_range: Any = None, check: bool = True
) -> keras.Model:
    """Rebuild ``model`` as one flat functional graph with the same weights and outputs.

    Nested functional or Sequential sub-models (a ``keras.applications`` backbone called on a tensor)
    are inlined layer by layer; a ``training=False`` given to the backbone call is kept for its
    layers. With ``fold_preprocessing``, leading element-wise preprocessing layers (``Rescaling``,
    ``Normalization``, a scaling ``Lambda``) are removed and the model is recorded as taking the
    range they produced (a note names them): edgelab feeds that range directly, and the uint8
    input of a quantized model absorbs the scaling, so the layers are unnecessary.

    Args:
        model: A tf_keras functional or Sequential model (flat or nested).
        fold_preprocessing: Remove leading preprocessing layers (see above).
        input_range: The pixel range ``model`` takes, if it cannot be detected (see :mod:`edgelab.preprocess`).
        check: Compare the outputs of the original and the flat model on random images.

    Returns:
        A new model (the original is untouched) whose input range is recorded for edgelab.

    Raises:
        ConfigError: a Keras 3 model or not a Keras model.
        EdgelabError: a subclassed model, or a rebuilt model whose outputs differ.
    """
    check_keras2_model(model)
    _graph_nodes(model)  # a subclassed model is refused before anything else
    source_range = model_input_range(model, input_range)
    flat = model if is_flat(model) and not fold_preprocessing else _rebuilt(model)
    flat_range = source_range
    if fold_preprocessing:
        chain = leading_preprocessing(flat)
        affine = probe_affine(chain, channels=int(flat.input_shape[-1] or 3)) if chain else None
        if chain and affine is not None and _uniform(*affine):
            scale, offset = float(affine[0][0]), float(affine[1][0])
            # The layers map the model's input range [lo, hi] onto [lo * s + o, hi * s + o].
            flat_range = InputRange(
                round(source_range.low * scale + offset, 6), round(source_range.high * scale + offset, 6)
            )
            flat = _rebuilt(flat, skip={id(layer) for layer in chain})
            names = [f"{layer.name} ({type(layer).__name__})" for layer in chain]
            # On the log, not a warning: edgelab feeds and remembers the new range itself, nothing is wrong.
            logger.warning(
                "flatten_model: removed the preprocessing layer(s) %s of %r: they map pixels to %s, which edgelab "
                "now feeds the model directly%s.",
                names,
                model.name,
                flat_range,
                "" if flat_range == EDGELAB_RANGE else " (edgelab remembers this range on the flat model)",
            )
        elif chain:
            warn_user_fmt(
                InputRangeWarning,
                "flatten_model: kept the preprocessing layer(s) %s of %r: they scale channels differently, which "
                "no single input range expresses; tfmot cannot quantize them, so QAT will refuse the model.",
                [layer.name for layer in chain],
                model.name,
            )
    setattr(flat, RANGE_ATTRIBUTE, flat_range)
    if check and flat is not model:
        difference = _max_difference(model, flat, source_range, flat_range)
        if not difference <= 1e-4:
            raise EdgelabError(
                f"Expected the flat model to compute what {model.name!r} computes. Received: outputs that differ by "
                f"up to {difference:.3g} on random images. Please report this model's structure."
            )
    if flat is not model:
        logger.info("flattened %s: %d layers -> %d", model.name, len(model.layers), len(flat.layers))
    return flat


def serving_function(model: keras.Model) -> tuple[Callable, list]:
    """``(fn, variables)``: ``fn(x)`` runs ``model`` for ``x = normalize(pixels)`` (edgelab's [-1, 1]).

    Every converted file takes [-1, 1], so the runtime and the deploy bundle feed all models the
    same way. A leading preprocessing that maps pixels to exactly [-1, 1] is dropped; any other range
    is reached with one scale and offset inside the exported function.
    """
    expected = model_input_range(model)
    target = model
    if expected != EDGELAB_RANGE and leading_preprocessing(model) and not is_qat_model(model):
        try:
            candidate = flatten_model(model, fold_preprocessing=True, check=False)
            if model_input_range(candidate) == EDGELAB_RANGE:
                target, expected = candidate, EDGELAB_RANGE
        except EdgelabError:
            pass  # keep the model as it is and scale in the function instead
    a, b = expected.from_normalized()
    if (a, b) == (1.0, 0.0):
        return (lambda image: target(image, training=False)), list(target.variables)
    return (lambda image: target(image * a + b, training=False)), list(target.variables)
