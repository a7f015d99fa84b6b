"""Diagnose: why a quantized variant lost accuracy and what to do about it.

Per-layer error of any quantized ``.tflite`` against the float one (``layers``, no TensorFlow),
calibration diagnostics (``calibration``), selective quantization (``selective``), a
recommendation within an accuracy budget (``recommend``) and Model Explorer overlays (``explorer``).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "LayerReport": "layers",
    "analyze_layers": "layers",
    "CalibrationWarning": "calibration",
    "RangeCheck": "calibration",
    "RangeCheckOptions": "calibration",
    "calibration_balance": "calibration",
    "calibration_curve": "calibration",
    "range_check": "calibration",
    "keep_float_names": "selective",
    "quantize_except": "selective",
    "with_outlier_weights": "cases",
    "with_outlier_channel": "cases",
    "CHANNEL_RANGE_FACTOR": "channels",
    "write_node_data": "explorer",
    "open_model_explorer": "explorer",
    "explorer_available": "explorer",
    "LayerExplorer": "widget",
    "layer_explorer": "widget",
}
# The recommendation lives with the comparison table it reads (edgelab.compare.recommendation); it is
# offered here too, where the diagnosis ends (pandas only).
from ..compare.recommendation import Recommendation, recommend  # noqa: E402, F401

__all__ = sorted([*_EXPORTS, "Recommendation", "recommend"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
