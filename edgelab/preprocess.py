"""Input normalisation, defined once. TensorFlow-free: the runtime and deploy bundle use it too.

Models take float pixels scaled from [0, 255] to [-1, 1]. With this choice a uint8-input
int8 model has scale ~2/255 and zero point ~128, so raw uint8 pixels feed it almost unchanged.
"""

from __future__ import annotations

import numpy as np

INPUT_MEAN = 127.5
INPUT_STD = 127.5


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (or float) pixels in [0, 255] -> float32 in [-1, 1]."""
    return (np.asarray(images, dtype=np.float32) - INPUT_MEAN) / INPUT_STD


def denormalize(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`normalize`, back to uint8 pixels for display."""
    return np.clip(np.asarray(x, np.float32) * INPUT_STD + INPUT_MEAN, 0, 255).round().astype(np.uint8)
