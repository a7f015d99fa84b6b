"""Calibration samples for integer conversion: a few hundred class-balanced images, normalised one
at a time as the converter asks for them (never a float copy of the dataset)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .._log import logger
from ..errors import ConfigError, check_int
from ..preprocess import normalize
from .splits import balanced_indices

__all__ = ["representative_dataset"]


def representative_dataset(
    data: Any, num_samples: int = 200, seed: int = 0
) -> Callable[[], Iterable[list[np.ndarray]]]:
    """A calibration generator for the TFLite converter, class-balanced where labels are known.

    Classes take turns (round robin, seeded random order within each class) until ``num_samples``
    images are picked or the images run out, so every class is equally represented unless it has
    fewer images than its share.

    Args:
        data: An edgelab Dataset (its train split), an ``(images, labels)`` pair, uint8 images
            alone, or a ready generator function (returned unchanged).
        num_samples: How many images to calibrate on.
        seed: Which images are drawn.

    Returns:
        A generator function (``converter.representative_dataset = ...``) yielding
        ``[normalize(image)[None]]``: float32 arrays of shape (1, H, W, 3).
    """
    if callable(data):
        return data
    num_samples = check_int("num_samples", num_samples)
    if hasattr(data, "arrays") and hasattr(data, "train"):
        images, labels = data.arrays("train")
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data[0], np.asarray(data[1])
    else:
        images, labels = data, None
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(f"Expected calibration images of shape (N, H, W, 3). Received: shape={images.shape}")
    picks = (
        np.random.default_rng(seed).permutation(len(images))[:num_samples]
        if labels is None
        else balanced_indices(labels, num_samples, seed)
    )
    if len(picks) < num_samples:
        logger.info("calibration: %d images requested, %d available", num_samples, len(picks))

    def generate() -> Iterator[list[np.ndarray]]:
        for i in picks:
            yield [normalize(images[i : i + 1])]

    return generate
