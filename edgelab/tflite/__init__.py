"""TFLite / LiteRT: conversion recipes for every precision, the interpreter runtime with quantized
I/O, a reader for any ``.tflite`` file, and the checks that vet an untrusted file before an
interpreter loads it (``validate_model``, ``check_model(path, isolate=True)``).

``runtime`` and ``inspection`` import no TensorFlow (they run on a device with numpy and LiteRT);
only ``convert`` does, and only when a conversion name is first used.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "RECIPES": "conversion",
    "Recipe": "conversion",
    "ConvertedModel": "conversion",
    "ConversionFailure": "conversion",
    "ExportedModel": "conversion",
    "convert": "conversion",
    "convert_all": "conversion",
    "ConversionConfig": "config",
    "representative_dataset": "conversion",
    "TFLiteModel": "runtime",
    "PredictOutput": "runtime",
    "load_interpreter": "runtime",
    "dequantize": "runtime",
    "RUNTIMES": "interpreter",
    "validate_model": "validate",
    "ModelValidationError": "validate",
    "check_model": "isolation",
    "ModelCheck": "isolation",
    "ModelInfo": "inspection",
    "OpInfo": "inspection",
    "TensorInfo": "inspection",
    "inspect_model": "inspection",
    "load_model_bytes": "reader",
    "keep_float_names": "mixed",
    "quantize_except": "mixed",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
