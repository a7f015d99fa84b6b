"""Training: edge-friendly Keras models, training with checkpoints and early stopping, and
quantization-aware training (tfmot). The only package that builds or fits Keras models (tf_keras).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ARCHITECTURES": "models",
    "build_model": "models",
    "build_edgecnn": "models",
    "build_mobilenetv2": "models",
    "edge_unfriendly_layers": "models",
    "TrainResult": "fit",
    "TrainConfig": "config",
    "QAT_CONFIG": "config",
    "train": "fit",
    "evaluate_keras": "fit",
    "predict_keras": "fit",
    "seed_everything": "fit",
    "prepare_qat": "qat",
    "quantize_aware": "qat",
    "load_qat_model": "qat",
    "is_qat_model": "qat",
    "check_qat_compatible": "qat",
    "flatten_model": "flatten",
    "is_flat": "flatten",
    "SanityFinding": "sanity",
    "check_float_model": "sanity",
    "check_training": "sanity",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
