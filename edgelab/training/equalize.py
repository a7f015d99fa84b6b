"""Repairs for int8 range problems on the float Keras model: same graph, same layer names.

* :func:`equalize`: cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through
  Weight Equalization and Bias Correction", sec. 4.1). For two layers joined by ReLU or a linear
  path, ``f(W2 relu(W1 x)) == f(W2 S relu(S^-1 W1 x))`` for any positive diagonal ``S``, because
  ``relu(x / s) == relu(x) / s`` for ``s > 0``. Choosing ``s_i = sqrt(r1_i / r2_i)`` (``r1_i``: the
  range of output channel ``i`` of the first layer, BatchNorm folded; ``r2_i``: the range of input
  channel ``i`` of the second) gives both the same range, so one wide channel no longer sets the
  per-tensor int8 scale of the activation between them. Chains (including MobileNet's
  depthwise/pointwise blocks) are swept until the scales settle. ReLU6 does not scale
  (``min(x / s, 6) != min(x, 6) / s``): such pairs are skipped and reported.
* High-bias absorption (the same paper, sec. 4.1.1): a channel whose pre-activation never falls
  below ``c > 0`` passes ``c`` through the ReLU unchanged, so ``c`` moves into the next layer's bias
  (exact where the next layer sees no zero padding: Dense, 1x1 or ``valid`` convolutions).
* :func:`correct_bias`: empirical bias correction (sec. 4.2): int8 weight rounding shifts each
  output channel's mean; the shift, measured on calibration images, is subtracted from the bias (or
  the BatchNorm mean) so the quantized model is unbiased again. This one changes the float outputs
  by design (by the measured shift).

Every repair returns a :class:`Repair` with a new model (the input is untouched) and the largest
absolute difference between the new and the old model's float outputs on the images checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._keras import check_keras2_model, keras
from .._log import logger
from .._text import wrap
from ..errors import ConfigError, check_int, did_you_mean
from ..preprocess import RANGE_ATTRIBUTE, model_input_range
from .flatten import flatten_model, is_flat

__all__ = ["REPAIRS", "Repair", "correct_bias", "equalize", "repair_model"]

#: Repair steps by name, with the suffix their comparison rows carry (``int8+eq``).
REPAIRS = {"equalize": "eq", "bias_correction": "bc"}

_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
#: Layers a positive per-channel scale passes through unchanged (channels stay where they are).
_SCALE_THROUGH = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "ZeroPadding2D", "Dropout")
#: Layers a constant per-channel shift passes through unchanged (no zero padding).
_SHIFT_THROUGH = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Dropout")
#: int8 weights as TFLite stores them: symmetric, [-127, 127], one scale per output channel.
_WEIGHT_LEVELS = 127


@dataclass(frozen=True)
class Repair:
    """A repaired copy of a model and what was done to it.

    Attributes:
        model: The new tf_keras model (same graph, same layer names).
        steps: The repairs applied, in order (``"equalize"``, ``"bias_correction"``).
        equalized: ``(first layer, second layer)`` pairs rescaled.
        skipped: ``(first layer, second layer, reason)`` for pairs that could not be rescaled exactly.
        absorbed: ``(first layer, second layer, channels)`` where a high bias moved on.
        corrected: Layers whose bias (or BatchNorm mean) was corrected.
        max_abs_difference: Largest absolute difference of the float outputs (new - old) on ``checked`` images.
        output_magnitude: Largest absolute float output of the old model on those images.
        checked: How many images the difference was measured on.
    """

    model: Any = field(repr=False)
    steps: tuple[str, ...]
    equalized: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str, str], ...] = ()
    absorbed: tuple[tuple[str, str, int], ...] = ()
    corrected: tuple[str, ...] = ()
    max_abs_difference: float = 0.0
    output_magnitude: float = 0.0
    checked: int = 0

    def summary(self) -> str:
        """A few lines: what was rescaled, skipped, absorbed and corrected, and the float difference."""
        lines = [f"{'+'.join(self.steps)} on {self.model.name}:"]
        if "equalize" in self.steps:
            lines.append(
                f"  equalized {len(self.equalized)} layer pairs: {', '.join(f'{a}->{b}' for a, b in self.equalized) or 'none'}"
            )
            for a, b, why in self.skipped:
                lines.append(f"  skipped {a}->{b}: {why}")
            if self.absorbed:
                lines.append("  high bias absorbed: " + ", ".join(f"{a}->{b} ({n} ch)" for a, b, n in self.absorbed))
        if self.corrected:
            lines.append(f"  bias corrected in {len(self.corrected)} layers: {', '.join(self.corrected)}")
        lines.append(
            f"  float outputs: max abs difference {self.max_abs_difference:.3g} on {self.checked} images "
            f"(largest output {self.output_magnitude:.3g})"
        )
        return wrap("\n".join(lines))

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------- graph


class _Graph:
    """Producers and consumers of each layer of a flat functional model."""

    def __init__(self, model: Any):
        config = model.get_config()
        self.model = model
        self.producers: dict[str, list[str]] = {}
        self.shared: set[str] = set()
        for item in config["layers"]:
            nodes = item.get("inbound_nodes") or []
            if len(nodes) > 1:
                self.shared.add(item["name"])
            names = []
            for node in nodes:
                entries = node if isinstance(node, list) else node.get("args", [])
                for entry in entries:
                    if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], str):
                        names.append(entry[0])
            self.producers[item["name"]] = names
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for name, producers in self.producers.items():
            for p in producers:
                self.consumers[p].append(name)
        self.outputs = {entry[0] for entry in config.get("output_layers", [])}
        self.order = [item["name"] for item in config["layers"]]

    def layer(self, name: str) -> Any:
        return self.model.get_layer(name)

    def kind(self, name: str) -> str:
        return type(self.layer(name)).__name__

    def only_consumer(self, name: str) -> str | None:
        nxt = self.consumers.get(name, [])
        if len(nxt) != 1 or name in self.outputs or name in self.shared:
            return None
        if len(self.producers.get(nxt[0], [])) != 1 or nxt[0] in self.shared:
            return None
        return nxt[0]

    def bn_after(self, name: str) -> str | None:
        """The BatchNormalization fed only by ``name`` (whose activation is linear), if any."""
        nxt = self.only_consumer(name)
        if nxt is not None and self.kind(nxt) == "BatchNormalization" and _activation(self.layer(name)) == "linear":
            return nxt
        return None


def _activation(layer: Any) -> str:
    """``"linear"``, ``"relu"``, ``"relu6"`` or ``"other"`` for a layer's own activation."""
    kind = type(layer).__name__
    if kind == "ReLU":
        max_value = layer.max_value
        slope = float(np.asarray(layer.negative_slope))
        threshold = float(np.asarray(layer.threshold))
        if threshold != 0:
            return "other"
        if max_value is None:
            return "relu"  # a leaky ReLU (slope > 0) is positively homogeneous too
        return "relu6" if slope == 0 else "other"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return "linear"
    name = getattr(fn, "__name__", str(fn))
    return {"linear": "linear", "relu": "relu", "relu6": "relu6"}.get(name, "other")


def _channels_in(layer: Any) -> int:
    return int(layer.get_weights()[0].shape[-2])


def _eligible(layer: Any) -> str | None:
    """Why a weighted layer cannot take part in equalization, or None."""
    kind = type(layer).__name__
    if kind not in _WEIGHTED:
        return f"{kind} is not Conv2D/DepthwiseConv2D/Dense"
    if kind == "Conv2D" and int(getattr(layer, "groups", 1)) != 1:
        return "grouped convolution"
    if kind == "DepthwiseConv2D" and int(layer.depth_multiplier) != 1:
        return "depth multiplier above 1"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return "channels_first"
    return None


@dataclass
class _Pair:
    first: str
    second: str
    path: list[str]
    activation: str  # the nonlinearity between them ("relu" or "linear")


def _find_pairs(graph: _Graph) -> tuple[list[_Pair], list[tuple[str, str, str]]]:
    pairs: list[_Pair] = []
    skipped: list[tuple[str, str, str]] = []
    for name in graph.order:
        layer = graph.layer(name)
        if type(layer).__name__ not in _WEIGHTED or _eligible(layer):
            continue
        act = _activation(layer)
        path: list[str] = []
        problem = None if act in ("relu", "linear") else f"{name} has a {act} activation"
        cur, second = name, None
        while True:
            nxt = graph.only_consumer(cur)
            if nxt is None:
                break
            kind = graph.kind(nxt)
            if kind in _WEIGHTED:
                second = nxt
                break
            if kind == "BatchNormalization" or kind in _SCALE_THROUGH:
                path.append(nxt)
            elif kind in ("ReLU", "Activation"):
                step = _activation(graph.layer(nxt))
                if step == "relu6":
                    problem = problem or (
                        f"ReLU6 between them ({nxt}): its clip at 6 does not scale, equalizing would change the outputs"
                    )
                elif step == "other":
                    problem = problem or f"{nxt} is not ReLU or linear"
                elif step == "relu":
                    act = "relu"
                path.append(nxt)
            else:
                break
            cur = nxt
        if second is None:
            continue
        why = problem or _eligible(graph.layer(second))
        if why is None and graph.kind(second) == "DepthwiseConv2D" and graph.kind(name) == "Dense":
            why = "Dense feeding a depthwise convolution"
        if why is not None:
            skipped.append((name, second, why))
            continue
        pairs.append(_Pair(name, second, path, act))
    return pairs, skipped


# --------------------------------------------------------------------------- weights


class _Weights:
    """Mutable numpy copies of every layer's weights, written back at the end."""

    def __init__(self, model: Any):
        self.model = model
        self.values: dict[str, list[np.ndarray]] = {
            layer.name: [np.array(w, np.float64) for w in layer.get_weights()] for layer in model.layers
        }

    def get(self, name: str) -> list[np.ndarray]:
        return self.values[name]

    def bn(self, name: str) -> dict[str, np.ndarray]:
        layer = self.model.get_layer(name)
        keys = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
        return dict(zip(keys, self.values[name]))

    def write(self, target: Any) -> None:
        for layer in target.layers:
            src = self.values[layer.name]
            if src:
                layer.set_weights([w.astype(np.float32) for w in src])


def _bn_factor(weights: _Weights, graph: _Graph, bn: str) -> np.ndarray:
    """Per-channel multiplier ``gamma / sqrt(var + eps)`` of a BatchNormalization."""
    p = weights.bn(bn)
    eps = float(graph.layer(bn).epsilon)
    gamma = p.get("gamma", np.ones_like(p["moving_variance"]))
    return gamma / np.sqrt(p["moving_variance"] + eps)


def _out_ranges(weights: _Weights, graph: _Graph, pair: _Pair) -> np.ndarray:
    """Per output channel of ``pair.first``: max |weight| with BatchNorms on the path folded in."""
    kernel = weights.get(pair.first)[0]
    kind = graph.kind(pair.first)
    per = np.abs(kernel[..., :, 0] if kind == "DepthwiseConv2D" else kernel)
    r = per.reshape(-1, per.shape[-1]).max(axis=0)
    for step in pair.path:
        if graph.kind(step) == "BatchNormalization":
            r = r * np.abs(_bn_factor(weights, graph, step))
    return r


def _in_ranges(weights: _Weights, graph: _Graph, name: str) -> np.ndarray:
    """Per input channel of ``name``: max |weight| (its own BatchNorm folded in)."""
    kernel = weights.get(name)[0]
    kind = graph.kind(name)
    bn = graph.bn_after(name)
    if kind == "DepthwiseConv2D":
        per = np.abs(kernel[..., 0])  # (kh, kw, channels)
        if bn is not None:
            per = per * np.abs(_bn_factor(weights, graph, bn))
        return per.reshape(-1, per.shape[-1]).max(axis=0)
    if bn is not None:
        kernel = kernel * _bn_factor(weights, graph, bn)
    per = np.moveaxis(np.abs(kernel), -2, 0)  # (in, ..., out)
    return per.reshape(per.shape[0], -1).max(axis=1)


def _scale_pair(weights: _Weights, graph: _Graph, pair: _Pair, s: np.ndarray) -> None:
    """Divide output channel i of the first layer by s_i and multiply input channel i of the second by s_i."""
    w1 = weights.get(pair.first)
    if graph.kind(pair.first) == "DepthwiseConv2D":
        w1[0] = w1[0] / s[:, None]
    else:
        w1[0] = w1[0] / s
    if len(w1) > 1:
        w1[1] = w1[1] / s
    for step in pair.path:
        if graph.kind(step) == "BatchNormalization":
            # BN(x / s) == BN(x) / s once its mean and offset are divided by s (gamma and variance stay).
            p = weights.bn(step)
            p["moving_mean"][...] = p["moving_mean"] / s
            if "beta" in p:
                p["beta"][...] = p["beta"] / s
    w2 = weights.get(pair.second)
    w2[0] = w2[0] * s[:, None]  # the input-channel axis is second to last for all three kinds


# --------------------------------------------------------------------------- helpers


def _copy(model: Any) -> Any:
    """A new model with the same config, names, weights and input contract."""
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    setattr(clone, RANGE_ATTRIBUTE, model_input_range(model))
    return clone


def _prepare(model: Any) -> Any:
    check_keras2_model(model)
    if not isinstance(model, keras.Model) or type(model).__name__ not in ("Functional", "Sequential", "Model"):
        raise ConfigError(
            f"Expected a functional or Sequential tf_keras model. Received: {type(model).__name__}; subclassed "
            "models have no graph to rescale."
        )

    if not is_flat(model):
        logger.info("equalize: %s has nested models; flattening it first (edgelab.flatten_model)", model.name)
        model = flatten_model(model, fold_preprocessing=False)
    return model


def _inputs(model: Any, images: Any, count: int = 8, seed: int = 0) -> np.ndarray:
    """The float inputs ``model`` takes for uint8 ``images`` (random images when None)."""
    if images is None:
        shape = tuple(int(d) for d in model.input_shape[1:])
        images = np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)
    else:
        if hasattr(images, "arrays"):
            images = images.arrays("train")[0]
        elif isinstance(images, (tuple, list)) and len(images) == 2 and np.ndim(images[0]) == 4:
            images = images[0]
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8 or tuple(images.shape[1:]) != tuple(model.input_shape[1:]):
            raise ConfigError(
                f"Expected uint8 images of shape (N, {', '.join(str(d) for d in model.input_shape[1:])}). "
                f"Received: shape={images.shape}, dtype={images.dtype}"
            )
    return np.asarray(model_input_range(model)(images), np.float32)


def _run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """Every output of ``model`` on ``x``, 64 images a call (a direct call: no predict-function retracing)."""
    parts: list[list[np.ndarray]] = []
    for lo in range(0, len(x), 64):
        out = model(x[lo : lo + 64], training=False)
        parts.append([np.asarray(o, np.float64) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate(p) for p in zip(*parts)]


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return _run(model, x)[0]


def _outputs_of(model: Any, names: Sequence[str], x: np.ndarray) -> list[np.ndarray]:
    return _run(keras.Model(model.inputs, [model.get_layer(n).output for n in names]), x)


def _difference(before: Any, after: Any, x: np.ndarray) -> tuple[float, float]:
    a, b = _predict(before, x), _predict(after, x)
    return float(np.abs(b - a).max()), float(np.abs(a).max())


# --------------------------------------------------------------------------- equalize


def equalize(
    model: Any,
    images: Any = None,
    *,
    absorb_high_bias: bool = True,
    max_sweeps: int = 50,
    check_images: int = 32,
) -> Repair:
    """Cross-layer equalization (and high-bias absorption) of a tf_keras model.

    Args:
        model: A functional tf_keras model; a nested one is flattened first (:func:`edgelab.flatten_model`).
        images: uint8 calibration images (or a Dataset: its train split). They set the high-bias
            thresholds (the smallest pre-activation seen per channel) and check the float outputs;
            without them, thresholds come from BatchNorm as in the paper (``beta - 3 |gamma|``) and the
            check runs on random images.
        absorb_high_bias: Move always-positive pre-activation offsets into the next layer's bias.
        max_sweeps: Passes over the pairs of a chain until the scales settle (within 0.1%).
        check_images: Images the float outputs are compared on.

    Returns:
        A :class:`Repair`: the new model (layer names kept), the pairs equalized and skipped (ReLU6,
        branches, other activations) with reasons, and the measured float difference.
    """
    source = _prepare(model)
    graph = _Graph(source)
    pairs, skipped = _find_pairs(graph)
    weights = _Weights(source)
    for _ in range(max_sweeps):
        worst = 0.0
        for pair in pairs:
            r1, r2 = _out_ranges(weights, graph, pair), _in_ranges(weights, graph, pair.second)
            ok = (r1 > 0) & (r2 > 0) & np.isfinite(r1) & np.isfinite(r2)
            s = np.ones_like(r1)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            worst = max(worst, float(np.abs(np.log(s)).max(initial=0.0)))
            _scale_pair(weights, graph, pair, s)
        if worst < 1e-3:
            break
    out = _copy(source)
    weights.write(out)
    absorbed: list[tuple[str, str, int]] = []
    x = _inputs(source, images)
    if absorb_high_bias:
        absorbed = _absorb(out, graph, pairs, x if images is not None else None)
    check = x[:check_images]
    diff, magnitude = _difference(source, out, check)
    logger.info("equalize: %d pairs, %d skipped, max abs float difference %.3g", len(pairs), len(skipped), diff)
    return Repair(
        out,
        ("equalize",),
        tuple((p.first, p.second) for p in pairs),
        tuple(skipped),
        tuple(absorbed),
        (),
        diff,
        magnitude,
        len(check),
    )


def _absorb(model: Any, graph: _Graph, pairs: list[_Pair], x: np.ndarray | None) -> list[tuple[str, str, int]]:
    """High-bias absorption over ReLU pairs whose second layer sees no zero padding."""
    weights = _Weights(model)
    candidates = []
    for pair in pairs:
        if pair.activation != "relu":
            continue
        kinds = [graph.kind(p) for p in pair.path]
        relus = [i for i, k in enumerate(kinds) if k in ("ReLU", "Activation")]
        if len(relus) != 1 or any(
            k not in ("BatchNormalization", "ReLU", "Activation", *_SHIFT_THROUGH) for k in kinds
        ):
            continue
        if (
            any(k == "BatchNormalization" for k in kinds[relus[0] + 1 :])
            or _activation(graph.layer(pair.first)) != "linear"
        ):
            continue
        second = graph.layer(pair.second)
        kind = graph.kind(pair.second)
        if kind == "DepthwiseConv2D" or (
            kind == "Conv2D" and second.padding != "valid" and tuple(second.kernel_size) != (1, 1)
        ):
            continue
        pre = pair.path[relus[0] - 1] if relus[0] > 0 else pair.first  # the layer whose output the ReLU reads
        if pre != pair.first and graph.kind(pre) != "BatchNormalization":
            continue
        target_bias = _bias_slot(weights, graph, pre)
        fix = _bias_fix(weights, graph, pair.second)
        if target_bias is None or fix is None:
            continue
        candidates.append((pair, pre))
    if not candidates:
        return []
    if x is not None:
        lows = [v.reshape(-1, v.shape[-1]).min(axis=0) for v in _outputs_of(model, [pre for _, pre in candidates], x)]
    else:
        lows = []
        for _, pre in candidates:
            if graph.kind(pre) != "BatchNormalization":
                lows.append(np.zeros(graph.layer(pre).get_weights()[0].shape[-1]))
                continue
            p = weights.bn(pre)
            lows.append(p.get("beta", 0.0) - 3 * np.abs(p.get("gamma", np.ones_like(p["moving_mean"]))))
    done = []
    for (pair, pre), low in zip(candidates, lows):
        c = np.maximum(np.asarray(low, np.float64), 0.0)
        if not (c > 0).any():
            continue
        slot = _bias_slot(weights, graph, pre)
        fix = _bias_fix(weights, graph, pair.second)
        assert slot is not None and fix is not None
        slot[...] = slot - c
        kernel = weights.get(pair.second)[0]
        moved = np.tensordot(
            c, np.moveaxis(kernel, -2, 0).reshape(kernel.shape[-2], -1, kernel.shape[-1]).sum(axis=1), 1
        )
        fix(moved)
        done.append((pair.first, pair.second, int((c > 0).sum())))
    weights.write(model)
    return done


def _bias_slot(weights: _Weights, graph: _Graph, name: str) -> np.ndarray | None:
    """The array holding ``name``'s per-channel offset (a bias or a BatchNorm beta), or None."""
    if graph.kind(name) == "BatchNormalization":
        return weights.bn(name).get("beta")
    values = weights.get(name)
    return values[1] if len(values) > 1 else None


def _bias_fix(weights: _Weights, graph: _Graph, name: str):
    """A function adding ``delta`` to ``name``'s pre-activation output (bias, or the BatchNorm mean after it)."""
    values = weights.get(name)
    if len(values) > 1:
        bias = values[1]

        def add(delta: np.ndarray) -> None:
            bias[...] = bias + delta

        return add
    bn = graph.bn_after(name)
    if bn is None:
        return None
    mean = weights.bn(bn)["moving_mean"]

    def shift(delta: np.ndarray) -> None:
        mean[...] = mean - delta  # BN(z + delta) with mean m == BN(z) with mean m - delta

    return shift


# --------------------------------------------------------------------------- bias correction


def _quantized_kernel(kind: str, kernel: np.ndarray) -> np.ndarray:
    """The kernel after TFLite's int8 weight rounding: symmetric, one scale per output channel."""
    if kind == "DepthwiseConv2D":
        flat = kernel.reshape(*kernel.shape[:2], -1)  # (kh, kw, channels * multiplier), as TFLite stores it
        limit = np.abs(flat).reshape(-1, flat.shape[-1]).max(axis=0)
    else:
        limit = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    scale = np.where(limit > 0, limit / _WEIGHT_LEVELS, 1.0)
    if kind == "DepthwiseConv2D":
        q = np.round(kernel.reshape(*kernel.shape[:2], -1) / scale) * scale
        return q.reshape(kernel.shape)
    return np.round(kernel / scale) * scale


def correct_bias(model: Any, images: Any, *, max_images: int = 64, check_images: int = 32) -> Repair:
    """Empirical bias correction for int8 weight rounding, measured on calibration ``images``.

    Layer by layer in graph order, the mean of each output channel (before the activation) of a
    copy with int8-rounded weights (earlier corrections applied) is compared with the float
    model's; the difference is subtracted from the layer's bias, or added to the mean of the
    BatchNormalization right after it. Layers with a non-linear activation of their own and
    neither bias nor BatchNorm are left as they are.

    Args:
        model: A functional tf_keras model (a nested one is flattened first).
        images: uint8 calibration images, a Dataset (its train split) or ``(images, labels)``.
        max_images: Measure the shifts on at most this many images (evenly spaced): each is a mean
            over every image and position, and each layer runs the network up to it once more.
        check_images: Images the float outputs are compared on.

    Returns:
        A :class:`Repair`; ``max_abs_difference`` is the (intended) change of the float outputs.
    """
    if images is None:
        raise ConfigError("Expected calibration images for bias correction. Received: images=None")
    source = _prepare(model)
    graph = _Graph(source)
    x = _inputs(source, images)
    if len(x) > check_int("max_images", max_images):
        x = x[np.linspace(0, len(x) - 1, max_images).round().astype(int)]
    out = _copy(source)
    quant = _copy(source)
    weights = _Weights(out)
    targets = [
        n
        for n in graph.order
        if graph.kind(n) in _WEIGHTED and _eligible(graph.layer(n)) is None and _activation(graph.layer(n)) == "linear"
    ]
    for name in targets:
        kind = graph.kind(name)
        layer = quant.get_layer(name)
        w = layer.get_weights()
        layer.set_weights([_quantized_kernel(kind, np.asarray(w[0], np.float64)).astype(np.float32), *w[1:]])
    reference = dict(zip(targets, _outputs_of(source, targets, x))) if targets else {}
    corrected = []
    qweights = _Weights(quant)
    for name in targets:
        fix, qfix = _bias_fix(weights, graph, name), _bias_fix(qweights, graph, name)
        if fix is None or qfix is None:
            continue
        (got,) = _outputs_of(quant, [name], x)
        ref = reference[name]
        shift = got.reshape(-1, got.shape[-1]).mean(axis=0) - ref.reshape(-1, ref.shape[-1]).mean(axis=0)
        fix(-shift)
        qfix(-shift)
        qweights.write(quant)
        corrected.append(name)
    weights.write(out)
    check = x[:check_images]
    diff, magnitude = _difference(source, out, check)
    logger.info("bias correction: %d layers, max abs float difference %.3g", len(corrected), diff)
    return Repair(
        out,
        ("bias_correction",),
        corrected=tuple(corrected),
        max_abs_difference=diff,
        output_magnitude=magnitude,
        checked=len(check),
    )


def repair_model(model: Any, steps: Sequence[str], images: Any = None) -> Repair:
    """Apply repair ``steps`` (names of :data:`REPAIRS`) in order; one :class:`Repair` for all of them."""

    steps = [str(s).replace("-", "_").lower() for s in steps]
    for s in steps:
        if s not in REPAIRS:
            raise ConfigError(
                f"Expected repairs from {list(REPAIRS)}. Received: {s!r}.{did_you_mean(s, list(REPAIRS))}"
            )
    if not steps:
        raise ConfigError("Expected at least one repair. Received: none")
    source = _prepare(model)
    current, parts = source, []
    for s in steps:
        part = equalize(current, images) if s == "equalize" else correct_bias(current, images)
        parts.append(part)
        current = part.model
    x = _inputs(source, images)[:32]
    diff, magnitude = _difference(source, current, x)
    first = next((p for p in parts if "equalize" in p.steps), None)
    return Repair(
        current,
        tuple(steps),
        first.equalized if first else (),
        first.skipped if first else (),
        first.absorbed if first else (),
        tuple(n for p in parts for n in p.corrected),
        diff,
        magnitude,
        len(x),
    )
