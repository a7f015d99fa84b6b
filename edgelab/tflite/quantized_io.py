"""Quantized model I/O: raw uint8 pixels -> the model's input tensor, its output -> float scores.

Inputs are normalised with :func:`edgelab.preprocess.normalize` and quantized with the model's own
scale and zero point (through a 256-entry lookup table); integer outputs are dequantized with
``scale * (q - zero_point)`` in int64, as pycoral does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ModelFileError
from ..preprocess import normalize

__all__ = ["ImageIO", "dequantize", "quantize"]

_INT_DTYPES = (np.int8, np.uint8, np.int16)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """Float values -> integer ``dtype`` with TFLite's rule ``round(x / scale) + zero_point``.

    Rounding is half away from zero (TFLite's ``QUANTIZE`` op), the sum is done in int64 so
    extreme zero points cannot overflow, and the result is clipped to the dtype's range.
    """
    dtype = np.dtype(dtype)
    if dtype.type not in _INT_DTYPES:
        raise ConfigError(f"Expected an int8, uint8 or int16 dtype. Received: dtype={dtype}")
    if not (np.isfinite(scale) and scale > 0):
        raise ConfigError(f"Expected a finite positive quantization scale. Received: scale={scale!r}")
    scaled = np.asarray(x, np.float64) / float(scale)
    rounded = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)
    info = np.iinfo(dtype)
    return np.clip(rounded + np.int64(zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer values -> float32 ``scale * (q - zero_point)``, the difference taken in int64."""
    return (float(scale) * (np.asarray(q).astype(np.int64) - np.int64(zero_point))).astype(np.float32)


def _quant_params(detail: dict) -> tuple[float, int]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    if scales is not None and len(scales) > 1:
        raise ModelFileError(
            f"Expected per-tensor quantization on the model's input/output {detail.get('name')!r}. "
            f"Received: {len(scales)} per-channel scales."
        )
    return float(scale), int(zero_point)


class ImageIO:
    """The image classifier's input and output tensors, and the conversions to and from them.

    Args:
        input_detail: the interpreter's detail dict of the image input.
        output_detail: the detail dict of the (first) output.
        where: names the model in errors.

    Raises:
        ModelFileError: not an NHWC image input, or an integer input without quantization.
    """

    def __init__(self, input_detail: dict, output_detail: dict, where: str) -> None:
        self.input, self.output, self.where = input_detail, output_detail, where
        self.input_shape = tuple(int(d) for d in input_detail["shape"])
        if len(self.input_shape) != 4:
            raise ModelFileError(
                f"Expected an NHWC image input of rank 4. Received: {where} with input shape {self.input_shape}"
            )
        self.output_shape = tuple(int(d) for d in output_detail["shape"])
        self.input_dtype = np.dtype(input_detail["dtype"])
        self.output_dtype = np.dtype(output_detail["dtype"])
        self.input_quantization = _quant_params(input_detail)
        self.output_quantization = _quant_params(output_detail)
        self._lut = self._input_table()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of one image."""
        return self.input_shape[1:]  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """The model's output size per image."""
        return int(np.prod(self.output_shape[1:]))

    def _input_table(self) -> np.ndarray | None:
        """For an integer input: the quantized model input of each uint8 pixel value (a lookup table).

        Every pixel maps independently, so indexing this table gives exactly the element-wise
        ``quantize(normalize(x))`` at a fraction of the cost. Float inputs need no table.
        """
        if self.input_dtype.kind == "f":
            return None
        if self.input_dtype.type not in _INT_DTYPES:
            raise ModelFileError(
                f"Expected a float, uint8, int8 or int16 input. Received: {self.input_dtype} in {self.where}"
            )
        scale, zero_point = self.input_quantization
        if not (np.isfinite(scale) and scale > 0):
            raise ModelFileError(
                f"Expected quantization parameters on the {self.input_dtype} input of {self.where}. "
                f"Received: scale={scale}, zero_point={zero_point}"
            )
        return quantize(normalize(np.arange(256, dtype=np.uint8)), scale, zero_point, self.input_dtype)

    def check_images(self, images: Any) -> np.ndarray:
        """uint8 images as a batch ``(N, H, W, C)``, or a ConfigError that says what was expected."""
        received = np.asarray(images)
        arr = received[None] if received.ndim == 3 else received
        h, w, c = self.image_shape
        if arr.ndim != 4 or arr.shape[1:] != self.image_shape or arr.dtype != np.uint8:
            raise ConfigError(
                f"Expected uint8 images of shape (N, {h}, {w}, {c}) or ({h}, {w}, {c}) (raw pixels; "
                f"normalization happens inside). Received: shape={tuple(received.shape)}, dtype={received.dtype}. "
                "Resizing is the caller's job, e.g. with PIL's Image.resize."
            )
        return arr

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Checked uint8 images -> the input tensor (normalized, then quantized for integer inputs)."""
        if self._lut is None:
            return normalize(images).astype(self.input_dtype, copy=False)
        return self._lut[images]

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """The output tensor -> float32 scores (dequantized for integer outputs)."""
        if self.output_dtype.type in _INT_DTYPES:
            scale, zero_point = self.output_quantization
            if np.isfinite(scale) and scale > 0:
                return dequantize(raw, scale, zero_point)
        return raw.astype(np.float32)
