"""TFLite / LiteRT: conversion recipes for every precision, the interpreter runtime with quantized
I/O, and a reader for any ``.tflite`` file.

``runtime`` and ``inspection`` import no TensorFlow (they run on a device with numpy and LiteRT);
only ``convert`` does, and only when a conversion name is first used.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "RECIPES": "conversion", "Recipe": "conversion", "ConvertedModel": "conversion", "ConversionFailure": "conversion",
    "ExportedModel": "conversion", "convert": "conversion", "convert_all": "conversion", "convert_for_edgetpu": "conversion",
    "representative_dataset": "conversion",
    "TFLiteModel": "runtime", "load_interpreter": "runtime", "dequantize": "runtime", "RUNTIMES": "runtime",
    "ModelInfo": "inspection", "OpInfo": "inspection", "TensorInfo": "inspection", "inspect_model": "inspection",
    "load_model_bytes": "inspection",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
