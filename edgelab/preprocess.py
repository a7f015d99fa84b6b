"""Input normalisation and image-size checks, defined once. TensorFlow-free: the runtime and deploy
bundle use them too.

Models take float pixels scaled from [0, 255] to [-1, 1]. With this choice a uint8-input
int8 model has scale ~2/255 and zero point ~128, so raw uint8 pixels feed it almost unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError

INPUT_MEAN = 127.5
INPUT_STD = 127.5


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (or float) pixels in [0, 255] -> float32 in [-1, 1]."""
    return (np.asarray(images, dtype=np.float32) - INPUT_MEAN) / INPUT_STD


def denormalize(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`normalize`, back to uint8 pixels for display."""
    return np.clip(np.asarray(x, np.float32) * INPUT_STD + INPUT_MEAN, 0, 255).round().astype(np.uint8)


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
