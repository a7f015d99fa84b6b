"""The one place edgelab imports Keras.

tensorflow-model-optimization only accepts Keras 2 models, so edgelab builds everything with
``tf_keras`` and sets ``TF_USE_LEGACY_KERAS`` before TensorFlow is imported anywhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ._log import captured_native_output  # noqa: E402

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines, absl notices) goes to the
# debug log instead of the user's terminal; Python-level errors still propagate.
with captured_native_output("tensorflow import"):
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # runs the CUDA probe now, inside the capture

__all__ = ["tf", "keras", "is_keras3_model"]


def is_keras3_model(model: object) -> bool:
    """True for a Keras 3 (``keras`` package) model, which tfmot cannot quantize."""
    return type(model).__module__.startswith("keras.") and not isinstance(model, keras.Model)
