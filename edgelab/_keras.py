"""The one place edgelab imports Keras.

tensorflow-model-optimization only accepts Keras 2 models, so edgelab builds everything with
``tf_keras`` and sets ``TF_USE_LEGACY_KERAS`` before TensorFlow is imported anywhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras", "is_keras3_model"]


def is_keras3_model(model: object) -> bool:
    """True for a Keras 3 (``keras`` package) model, which tfmot cannot quantize."""
    return type(model).__module__.startswith("keras.") and not isinstance(model, keras.Model)
