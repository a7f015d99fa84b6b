"""The input contract, defined once: how pixels become a model's input. TensorFlow-free: the runtime
and the deploy bundle use it too.

**The contract.** Every edgelab API takes raw uint8 RGB pixels (0-255) and feeds each model what it
expects:

* edgelab's own models (``build_model``) and every converted ``.tflite`` file take float pixels
  scaled to [-1, 1] (:func:`normalize`). With this choice a uint8-input int8 model has scale ~2/255
  and zero point ~128, so raw uint8 pixels feed it almost unchanged.
* A Keras model of yours that starts with its own preprocessing (``Rescaling``, ``Normalization``,
  or a ``Lambda``/TF op that scales) takes raw pixels in [0, 255]; edgelab feeds it those, in
  training, evaluation, calibration and conversion alike. Conversion produces a ``.tflite`` file
  that takes [-1, 1] like all others (an identical leading ``Rescaling(1/127.5, offset=-1)`` is
  simply dropped), so the runtime and the deploy bundle's ``classify.py`` need no per-model setting.
* Any other range is declared with ``input_range=(low, high)`` (e.g. ``(0, 255)`` for a model
  trained on raw pixels, ``(0, 1)`` for pixels / 255) on ``train``, ``evaluate_keras`` and
  ``run_comparison``, or once with :func:`set_input_range`; edgelab remembers it on the model.
* A model with none of these gets one warning naming the assumption ([-1, 1]).

Resolution order: an explicit ``input_range`` > one remembered on the model > the model's own
preprocessing layers > edgelab's builders > the [-1, 1] assumption (warned once per model).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._log import warn_user
from .errors import ConfigError, InputRangeWarning

INPUT_MEAN = 127.5
INPUT_STD = 127.5

#: The attribute edgelab stores a model's input range under (set by the builders, ``train`` and
#: :func:`set_input_range`; not saved with the model file).
RANGE_ATTRIBUTE = "_edgelab_input_range"

#: Layer types that scale pixels element-wise (the model's own preprocessing).
PREPROCESSING_LAYERS = frozenset({"Rescaling", "Normalization", "Lambda", "TFOpLambda"})


@dataclass(frozen=True)
class InputRange:
    """Float pixels a model takes: 0 maps to ``low`` and 255 to ``high`` (linearly)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.low == self.high:
            raise ConfigError(
                "Expected input_range to be two different finite numbers (low, high), the values pixels 0 and "
                f"255 map to, e.g. (-1, 1), (0, 1) or (0, 255). Received: input_range=({self.low!r}, {self.high!r})"
            )

    @property
    def scale(self) -> float:
        return (self.high - self.low) / 255.0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 (or float) pixels in [0, 255] -> float32 in this range."""
        if (self.low, self.high) == (-1.0, 1.0):
            return normalize(images)
        return (np.asarray(images, dtype=np.float32) * np.float32(self.scale) + np.float32(self.low)).astype(np.float32)

    def from_normalized(self) -> tuple[float, float]:
        """``(a, b)`` with ``a * normalize(pixels) + b`` equal to this range's pixels (for conversion)."""
        # normalize(p) = (p - 127.5) / 127.5  =>  p = 127.5 * n + 127.5
        return 127.5 * self.scale, 127.5 * self.scale + self.low

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"


#: edgelab's own convention (:func:`normalize`).
EDGELAB_RANGE = InputRange(-1.0, 1.0)
#: Raw pixels as floats, what a model with its own preprocessing layers takes.
RAW_RANGE = InputRange(0.0, 255.0)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (or float) pixels in [0, 255] -> float32 in [-1, 1]."""
    return (np.asarray(images, dtype=np.float32) - INPUT_MEAN) / INPUT_STD


def denormalize(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`normalize`, back to uint8 pixels for display."""
    return np.clip(np.asarray(x, np.float32) * INPUT_STD + INPUT_MEAN, 0, 255).round().astype(np.uint8)


def as_input_range(value: Any) -> InputRange:
    """An :class:`InputRange` from one or a ``(low, high)`` pair."""
    if isinstance(value, InputRange):
        return value
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)
    ):
        return InputRange(float(value[0]), float(value[1]))
    raise ConfigError(
        "Expected input_range to be (low, high): the values pixels 0 and 255 map to, e.g. (-1, 1), (0, 1) or "
        f"(0, 255). Received: input_range={value!r}"
    )


def set_input_range(model: Any, input_range: Any) -> Any:
    """Remember on ``model`` which pixel range it takes (for a model trained outside edgelab); returns it."""
    setattr(model, RANGE_ATTRIBUTE, as_input_range(input_range))
    return model


def leading_preprocessing(model: Any) -> list:
    """The model's own preprocessing layers right after its input (a chain of single-input layers)."""
    layers = list(getattr(model, "layers", []))
    chain = []
    for layer in layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind not in PREPROCESSING_LAYERS:
            break
        chain.append(layer)
    return chain


def probe_affine(layers: list, channels: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``(scale, offset)`` of a chain of element-wise layers, found by running it on
    flat images; ``None`` when the chain is not an element-wise affine map of the pixels."""
    if not layers:
        return None
    values = np.array([0.0, 127.5, 255.0], np.float32)
    probe = np.broadcast_to(values[:, None, None, None], (3, 2, 2, channels)).astype(np.float32)
    try:
        x = probe
        for layer in layers:
            x = layer(x)
        out = np.asarray(x, dtype=np.float64)
    except Exception:  # a layer that cannot run on its own: not element-wise preprocessing
        return None
    if out.shape != probe.shape or not np.all(np.isfinite(out)):
        return None
    per_image = out.reshape(3, -1, channels)
    if not np.allclose(per_image, per_image[:, :1, :], atol=1e-5):
        return None
    ys = per_image[:, 0, :]  # (3 values, channels)
    scale = (ys[2] - ys[0]) / 255.0
    offset = ys[0]
    if not np.allclose(ys[1], offset + 127.5 * scale, atol=1e-4 * max(1.0, float(np.abs(ys).max()))):
        return None
    return scale, offset


def _is_edgelab_built(model: Any) -> bool:
    """Models from edgelab's builders (recognised by their name and input name), which take [-1, 1]."""
    name = str(getattr(model, "name", ""))
    inputs = getattr(model, "inputs", None) or []
    input_names = {getattr(t, "name", "").split(":")[0] for t in inputs}
    base = name[:-4] if name.endswith("_qat") else name
    return base in ("edgecnn", "mobilenetv2") and "image" in input_names


_warned: weakref.WeakSet = weakref.WeakSet()
_warned_ids: set[int] = set()


def _warn_once(model: Any, message: str) -> None:

    try:
        if model in _warned:
            return
        _warned.add(model)
    except TypeError:  # not weak-referenceable
        if id(model) in _warned_ids:
            return
        _warned_ids.add(id(model))
    warn_user(message, InputRangeWarning, stacklevel=4)


def model_input_range(model: Any, input_range: Any = None) -> InputRange:
    """The pixel range ``model`` takes, following the contract in this module's docstring.

    Args:
        model: A Keras model (tf_keras), a quantization-aware model, or anything with ``layers``.
        input_range: An explicit ``(low, high)`` that wins over everything else.
    """
    if input_range is not None:
        return as_input_range(input_range)
    remembered = getattr(model, RANGE_ATTRIBUTE, None)
    if isinstance(remembered, InputRange):
        return remembered
    if leading_preprocessing(model):
        return RAW_RANGE
    if _is_edgelab_built(model):
        return EDGELAB_RANGE
    _warn_once(
        model,
        f"Model {getattr(model, 'name', '?')!r} has no preprocessing layer and no declared input range: edgelab "
        "assumes it takes pixels scaled to [-1, 1] ((pixel - 127.5) / 127.5), like its own models. If it was "
        "trained on other values, say so with input_range=(0, 255) (raw pixels) or (0, 1) (pixels / 255), or "
        "once with edgelab.preprocess.set_input_range(model, ...).",
    )
    return EDGELAB_RANGE


def range_is_assumed(model: Any, input_range: Any = None) -> bool:
    """True when nothing tells which range ``model`` takes and edgelab falls back to [-1, 1]."""
    return (
        input_range is None
        and not isinstance(getattr(model, RANGE_ATTRIBUTE, None), InputRange)
        and not leading_preprocessing(model)
        and not _is_edgelab_built(model)
    )


def to_model_input(model: Any, images: np.ndarray, input_range: Any = None) -> np.ndarray:
    """uint8 pixels -> the float input ``model`` expects (see :func:`model_input_range`)."""
    return model_input_range(model, input_range)(images)


def parse_image_size(image_size: Any, name: str = "image_size") -> tuple[int, int]:
    """``(height, width)`` from one positive int (a square) or a pair of positive ints.

    Args:
        image_size: An int or a ``(height, width)`` tuple/list (numpy ints accepted).
        name: The argument's name as the caller's user knows it, echoed in the error.

    Raises:
        ConfigError: anything else; the message echoes what was received.
    """
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size: tuple = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        size = tuple(image_size)
    else:
        size = ()
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size):
        raise ConfigError(
            f"Expected {name} to be a positive int or two positive ints (height, width). "
            f"Received: {name}={image_size!r}"
        )
    return int(size[0]), int(size[1])
