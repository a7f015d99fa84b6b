"""Accuracy of a converted model, measured on the .tflite file itself (no TensorFlow).

:func:`classification_metrics` (from :mod:`edgelab.metrics`) turns true and predicted classes into accuracy, per-class
precision / recall / F1, a confusion matrix and, given the float model's predictions, the
agreement with it and the images whose class flipped. :func:`evaluate_model` runs a
:class:`edgelab.tflite.runtime.TFLiteModel` (or a .tflite path) over a test split and does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import EvalResult, classification_metrics
from ..tflite.runtime import TFLiteModel, as_model

__all__ = ["EvalResult", "classification_metrics", "evaluate_model"]


def evaluate_model(
    model: TFLiteModel | str | Path | bytes,
    images: np.ndarray,
    labels: Any,
    class_names: Sequence[str] | None = None,
    reference_pred: Any = None,
    batch_size: int = 32,
    progress: bool | None = None,
    *,
    num_threads: int = 1,
) -> EvalResult:
    """Run a converted model over labelled images and measure it.

    Args:
        model: a :class:`edgelab.tflite.runtime.TFLiteModel`, or the path/bytes of a .tflite file.
        images: raw uint8 pixels ``(N, H, W, 3)`` at the model's input size.
        labels: true class indices ``(N,)``.
        class_names: class names (default: the model's labels, else ``"0", "1", ...``).
        reference_pred: the float model's classes or scores, for agreement and flipped images.
        batch_size: images per ``invoke()`` when the model batches.
        progress: show a progress bar (None: on unless ``EDGELAB_PROGRESS=0``).
        num_threads: interpreter threads when ``model`` is a path or bytes (a TFLiteModel keeps
            its own); with more than one thread the images also run in batches.

    Returns:
        An :class:`EvalResult` whose ``predictions`` holds the probabilities ``(N, classes)``.

    Raises:
        ConfigError: images/labels that do not match each other or the model.
        ModelFileError: the model file cannot be loaded.
    """
    return as_model(model, num_threads=num_threads).evaluate(
        images, labels, class_names=class_names, reference_pred=reference_pred, batch_size=batch_size, progress=progress
    )
