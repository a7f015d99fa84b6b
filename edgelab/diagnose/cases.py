"""A reproducible int8 failure to practise on: one layer with outlier weights.

:func:`with_outlier_weights` returns a copy of a model that computes *exactly* the same float
function, but where one convolution carries a few huge weights. They multiply an input channel that
is always zero (an extra channel whose BatchNorm scale is 0), so float outputs do not change; int8
quantization, though, gives each output channel of that convolution one scale, set by its largest
weight, and the ordinary weights round to a handful of levels. This is the "weight outliers" failure
seen in real models (e.g. after folding BatchNorm into channels with tiny variances), made on purpose.
"""

from __future__ import annotations

import numpy as np

from .._keras import keras
from ..errors import ConfigError
from ..preprocess import RANGE_ATTRIBUTE, model_input_range

__all__ = ["with_outlier_weights"]


def _inbound(config: dict, name: str) -> str | None:
    layer = next(item for item in config["layers"] if item["name"] == name)
    nodes = layer.get("inbound_nodes") or []
    if not nodes or not nodes[0]:
        return None
    first = nodes[0][0] if isinstance(nodes[0], list) else nodes[0]
    return (
        first[0]
        if isinstance(first, (list, tuple))
        else first.get("args", [{}])[0].get("config", {}).get("keras_history", [None])[0]
    )


def with_outlier_weights(model: keras.Model, layer: str, factor: float = 64.0) -> keras.Model:
    """A copy of ``model`` whose ``layer`` (a Conv2D fed by Conv2D -> BatchNorm -> ReLU) has outlier weights.

    Args:
        model: A flat functional tf_keras model (edgelab's ``edgecnn``, for example).
        layer: The Conv2D to give outlier weights, e.g. ``"conv3_conv"``.
        factor: How many times each output channel's largest weight the outlier is.

    Returns:
        A new model, named ``<name>_outliers``, with the same float outputs and input range.

    Raises:
        ConfigError: ``layer`` is not a Conv2D fed by a Conv2D -> BatchNormalization -> ReLU chain.
    """
    names = [item.name for item in model.layers]
    if layer not in names:
        raise ConfigError(f"Expected a layer of {model.name}. Received: layer={layer!r}")
    config = model.get_config()
    chain = [layer]
    for _ in range(3):
        previous = _inbound(config, chain[-1])
        if previous is None:
            break
        chain.append(previous)
    kinds = [type(model.get_layer(n)).__name__ for n in chain]
    if kinds[:4] != ["Conv2D", "ReLU", "BatchNormalization", "Conv2D"]:
        raise ConfigError(
            f"Expected {layer!r} to be a Conv2D fed by Conv2D -> BatchNormalization -> ReLU. Received: the chain "
            f"{' <- '.join(f'{n} ({k})' for n, k in zip(chain, kinds))}"
        )
    target, _, bn, producer = chain[:4]
    for item in config["layers"]:
        if item["name"] == producer:
            item["config"]["filters"] += 1
    config["name"] = f"{model.name}_outliers"
    clone = keras.Model.from_config(config)
    for old in model.layers:
        new = clone.get_layer(old.name)
        weights = old.get_weights()
        if old.name == producer:
            weights = [np.concatenate([w, np.zeros((*w.shape[:-1], 1), w.dtype)], axis=-1) for w in weights]
        elif old.name == bn:
            # gamma = 0 and beta = 0 make the extra channel exactly zero whatever the convolution gives.
            extra = {"gamma": 0.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
            weights = [
                np.append(w, np.asarray(extra[v.name.split("/")[-1].split(":")[0]], w.dtype))
                for w, v in zip(weights, old.weights)
            ]
        elif old.name == target:
            kernel = weights[0]
            kh, kw, _, cout = kernel.shape
            outlier = np.zeros((kh, kw, 1, cout), kernel.dtype)
            outlier[kh // 2, kw // 2, 0, :] = factor * np.abs(kernel).reshape(-1, cout).max(axis=0)
            weights = [np.concatenate([kernel, outlier], axis=2), *weights[1:]]
        new.set_weights(weights)
    # The copy takes the pixels the original takes (its name no longer marks it as edgelab-built).
    setattr(clone, RANGE_ATTRIBUTE, model_input_range(model))
    return clone


def with_outlier_channel(
    model: keras.Model, layer: str, factor: float = 100.0, channel: int | None = None
) -> keras.Model:
    """A copy of ``model`` where one output channel of ``layer`` spans ``factor`` times its range,
    compensated by the next layer, so the float function stays the same.

    ``layer`` is a Conv2D (or DepthwiseConv2D) followed by BatchNormalization, a ReLU and the next
    Conv2D/Dense. Channel ``channel`` (default: the one with the widest folded weights) gets its
    BatchNorm ``gamma`` and ``beta`` multiplied by ``factor``; since ``relu(f x) == f relu(x)``,
    dividing the next layer's weights for that input channel by ``factor`` gives the same outputs.
    A ReLU6 on the way becomes a plain ReLU (ReLU6's clip would not scale): the case model is its
    own float baseline. int8 then gives the activation between the two layers one scale set by the
    wide channel, and every other channel keeps ~``255 / factor`` levels: the damage shows in the
    next layer, which is what a per-tensor error ranking blames.

    Raises:
        ConfigError: ``layer`` is not followed by BatchNormalization -> ReLU -> Conv2D/Dense.
    """
    names = [item.name for item in model.layers]
    if layer not in names:
        raise ConfigError(f"Expected a layer of {model.name}. Received: layer={layer!r}")
    config = model.get_config()
    consumers: dict[str, list[str]] = {}
    for item in config["layers"]:
        for node in item.get("inbound_nodes") or []:
            for entry in node:
                consumers.setdefault(entry[0], []).append(item["name"])
    chain = [layer]
    while len(chain) < 4 and len(consumers.get(chain[-1], [])) == 1:
        chain.append(consumers[chain[-1]][0])
    kinds = [type(model.get_layer(n)).__name__ for n in chain]
    if len(kinds) < 4 or kinds[1:3] != ["BatchNormalization", "ReLU"] or kinds[3] not in ("Conv2D", "Dense"):
        raise ConfigError(
            f"Expected {layer!r} to feed BatchNormalization -> ReLU -> Conv2D/Dense alone. Received: the chain "
            f"{' -> '.join(f'{n} ({k})' for n, k in zip(chain, kinds))}"
        )
    _, bn, relu, nxt = chain
    for item in config["layers"]:
        if item["name"] == relu:
            item["config"]["max_value"] = None
    config["name"] = f"{model.name}_outlier_channel"
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    bn_layer = clone.get_layer(bn)
    keys = [v.name.split("/")[-1].split(":")[0] for v in bn_layer.weights]
    values = dict(zip(keys, bn_layer.get_weights()))
    if channel is None:
        channel = int(np.argmax(np.abs(values["gamma"]) / np.sqrt(values["moving_variance"] + bn_layer.epsilon)))
    values["gamma"][channel] *= factor
    values["beta"][channel] *= factor
    bn_layer.set_weights([values[k] for k in keys])
    nxt_layer = clone.get_layer(nxt)
    weights = nxt_layer.get_weights()
    weights[0][..., channel, :] /= factor
    nxt_layer.set_weights(weights)

    setattr(clone, RANGE_ATTRIBUTE, model_input_range(model))
    return clone
