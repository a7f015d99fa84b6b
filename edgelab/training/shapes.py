"""Model/data mismatches caught before Keras runs: one message naming both numbers.

A 5-output model trained on 6 classes fails deep in TensorFlow (``InvalidArgumentError``) or, worse,
evaluates to a meaningless accuracy; a 48 px model given 32 px images fails inside Keras. These checks
read only the model's declared shapes, so they cost nothing and run at every entry point
(``train``, ``evaluate_keras``, ``run_comparison``, ``quantize_aware``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["check_model_fits"]


def _first(shape: Any) -> tuple:
    if isinstance(shape, list):  # several inputs or outputs: the first is the image / the scores
        shape = shape[0] if shape else ()
    return tuple(shape or ())


def check_model_fits(
    model: Any,
    image_shape: Sequence[int],
    *,
    num_classes: int | None = None,
    max_label: int | None = None,
) -> None:
    """Raise a ConfigError when ``model`` cannot take these images or predict these classes.

    Args:
        model: A Keras model (its ``input_shape`` and ``output_shape`` are read; unknown sizes pass).
        image_shape: The images' array shape, ``(N, H, W, C)``.
        num_classes: Classes of the data (a Dataset's or ``len(class_names)``): must equal the outputs.
        max_label: The largest integer label (plain arrays): must be below the number of outputs.
    """
    model_in, model_out = _first(getattr(model, "input_shape", ())), _first(getattr(model, "output_shape", ()))
    images = tuple(int(d) for d in image_shape)
    if len(model_in) == 4 and len(images) == 4:
        _, h, w, c = model_in
        if c is not None and c != images[3]:
            raise ConfigError(
                f"Expected images with {c} channels, as model {model.name!r} takes. "
                f"Received: images with {images[3]} channels (shape {images})"
            )
        if (h is not None and h != images[1]) or (w is not None and w != images[2]):
            raise ConfigError(
                f"Expected {h}x{w} images, as model {model.name!r} takes. Received: {images[1]}x{images[2]} images "
                f"(shape {images}); resize them (e.g. load_dataset(..., image_size=({h}, {w}))) or build the model "
                f"for {images[1]}x{images[2]}"
            )
    outputs = model_out[-1] if model_out else None
    if outputs is None:
        return
    if num_classes is not None and int(num_classes) != outputs:
        raise ConfigError(
            f"Expected the data's classes to match the {outputs} scores model {model.name!r} outputs per image. "
            f"Received: {num_classes} classes"
        )
    if max_label is not None and int(max_label) >= outputs:
        raise ConfigError(
            f"Expected labels below {outputs}, the number of scores model {model.name!r} outputs per image. "
            f"Received: labels up to {int(max_label)} ({int(max_label) + 1} classes)"
        )
