"""Selective quantization (``mixed_int8``): which layers to keep in float, and the recipe itself.

The recipe is part of conversion, so it lives in :mod:`edgelab.tflite.mixed`; these are the same
functions, where the diagnosis that picks the layers points to them.
"""

from __future__ import annotations

from ..tflite.mixed import keep_float_names, quantize_except

__all__ = ["keep_float_names", "quantize_except"]
