"""The ``mixed_int8`` recipe: an int8 model with named layers kept in float (selective quantization).

The converter calibrates once, then TensorFlow's MLIR quantizer quantizes every op except the
denylisted ones, exactly as ``tf.lite.experimental.QuantizationDebugger`` does with
``QuantizationDebugOptions(denylisted_nodes=...)``: a kept op reads dequantized inputs and its
output is quantized again for the next op. The cost shows on the Edge TPU: a float op cannot be
mapped, and every op after it leaves the Edge TPU too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError, did_you_mean
from .inspection import inspect_model

__all__ = ["keep_float_names", "quantize_except"]


def _layer_parts(tensor: str) -> set[str]:
    parts: set[str] = set()
    for piece in tensor.split(";"):
        parts.update(p for p in piece.split("/") if p)
    return parts


def keep_float_names(calibrated: bytes, wanted: Sequence[str]) -> list[str]:
    """Op output tensor names of ``calibrated`` for ``wanted`` tensor or Keras layer names.

    A name matches an op whose output tensor has that exact name (as in a
    :class:`~edgelab.diagnose.layers.LayerReport`'s ``tensor`` column, trailing digits ignored) or
    whose tensor name contains it as a layer (``"conv2_conv"`` matches
    ``"edgecnn/conv2_relu/Relu6;edgecnn/conv2_bn/...;edgecnn/conv2_conv/Conv2D"``).

    Raises:
        ConfigError: a name matches no op.
    """
    info = inspect_model(calibrated)
    outputs = [info.tensors[op.outputs[0]].name for op in info.ops if op.outputs]
    norm = {re.sub(r"\d+$", "", t): t for t in outputs}
    found: list[str] = []
    for name in wanted:
        name = str(name)
        hits = [t for t in outputs if t == name]
        hits = hits or ([norm[re.sub(r"\d+$", "", name)]] if re.sub(r"\d+$", "", name) in norm else [])
        hits = hits or [t for t in outputs if name in _layer_parts(t)]
        if not hits:
            layers = sorted({p.split("/")[1] for t in outputs for p in t.split(";") if p.count("/") >= 2})
            raise ConfigError(
                f"Expected layers to keep in float, by layer or tensor name (e.g. {layers[:4]}). "
                f"Received: {name!r}, which names no op of the model.{did_you_mean(name, layers)}"
            )
        found += [h for h in hits if h not in found]
    return found


def quantize_except(converter: Any, keep_float: Sequence[str], io_dtype: str = "uint8") -> bytes:
    """Calibrate with ``converter`` (set up for int8) and quantize all but ``keep_float`` ops.

    Args:
        converter: A ``tf.lite.TFLiteConverter`` with optimizations, a representative dataset and
            ``TFLITE_BUILTINS`` ops (kept layers need float kernels).
        keep_float: Layer or tensor names (see :func:`keep_float_names`).
        io_dtype: ``"uint8"`` or ``"int8"`` model input and output.

    Returns:
        The mixed model's flatbuffer.
    """
    if not keep_float:
        raise ConfigError("Expected at least one layer to keep in float for 'mixed_int8'. Received: keep_float=[]")
    # deferred: TensorFlow; choosing the layers (keep_float_names) reads the file without it.
    # tf_convert.mlir_quantize is the quantizer QuantizationDebugger calls.
    from tensorflow.lite.python import convert as tf_convert

    from .._keras import tf  # deferred: TensorFlow, as above

    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    nodes = keep_float_names(calibrated, keep_float)
    io = getattr(tf, io_dtype)
    return tf_convert.mlir_quantize(
        calibrated,
        input_data_type=io,
        output_data_type=io,
        denylisted_nodes=nodes,
    )
