"""Per-channel ranges under one per-tensor int8 scale: which tensor crushes its channels, and who pays.

TFLite's int8 activations carry one scale per tensor (weights of CONV_2D/DEPTHWISE_CONV_2D one per
output channel). If one channel spans 100x the range of the others, it sets the scale and the
others get a handful of the 255 levels. The tensor itself still looks fine (its SQNR is dominated
by the wide channel); the damage shows in the next op, which weighs the crushed channels back up.

For each tensor this module measures every channel's range (``max - min`` of the float model's
values over all images and positions; for weights the largest ``|w|`` of each slice sharing a scale)
and reports

* ``channel_range_ratio``: the widest channel's range over the median channel's (channels whose
  range is 0, e.g. dead ReLU channels, are left out of the median);
* ``levels_median_channel``: how many quantization steps the median channel spans under the
  tensor's scale.

**The flag.** Under one scale a channel whose range is 1/k of the widest gets 1/k of the levels,
i.e. it loses ``log2(k)`` bits, and uniform quantization loses about 6.02 dB of SQNR per bit (the
classic result of Bennett, 1948; see Widrow & Kollar, "Quantization Noise", 2008). At a factor of
:data:`CHANNEL_RANGE_FACTOR` = 16 the median channel of an int8 tensor keeps at most 256 / 16 = 16
levels: 4 bits, 24 dB below the widest channel, which is quantized as if it were int4. A tensor
beyond that factor is flagged, and the op reading it names it as its ``cause``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ..tflite.inspection import ModelInfo

__all__ = ["CHANNEL_RANGE_FACTOR", "ChannelRanges", "find_causes", "weight_channels"]

#: Widest over median channel range beyond which an 8-bit tensor is flagged (see the module docstring).
CHANNEL_RANGE_FACTOR = 16.0
_EIGHT_BIT = ("int8", "uint8")
#: Ops whose output keeps its input's scale and channels (the damage was done before them).
_SCALE_KEEPING = ("MAX_POOL_2D", "RESHAPE", "SQUEEZE", "PAD", "PADV2")
_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


class ChannelRanges:
    """Running per-channel minimum and maximum of one tensor (channels last)."""

    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values)
        if v.ndim < 2:
            return
        flat = v.reshape(-1, v.shape[-1])
        low, high = flat.min(axis=0), flat.max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    def ranges(self) -> np.ndarray | None:
        if self.low is None or self.high is None:
            return None
        return np.asarray(self.high, np.float64) - np.asarray(self.low, np.float64)


def ratio_and_levels(ranges: np.ndarray | None, scale: float | None) -> tuple[float, float]:
    """``(widest / median channel range, median range in quantization steps)``; NaN where undefined."""
    if ranges is None or ranges.size < 2:
        return math.nan, math.nan
    live = ranges[ranges > 0]
    if live.size == 0:
        return math.nan, math.nan
    median = float(np.median(live))
    ratio = float(live.max() / median)
    levels = median / scale if scale else math.nan
    return ratio, levels


def weight_channels(model_t, op_index: int) -> tuple[float, float]:
    """``(channel_range_ratio, levels_median_channel)`` of an op's int8 weights; NaN when none apply.

    The "channels" are the slices sharing one scale: input channels within each output channel
    for per-channel weights (CONV_2D, FULLY_CONNECTED), output channels for a per-tensor scale.
    Depthwise weights have one scale per channel and nothing to share it with: NaN. The ratio is
    the worst over the output channels; the levels are the median channel's ``max |q|`` (of 127).
    """
    graph = model_t.subgraphs[0]
    op = graph.operators[op_index]
    code = model_t.operatorCodes[op.opcodeIndex]
    name = _op_name(code)
    if name not in _WEIGHTED or len(op.inputs) < 2 or op.inputs[1] < 0:
        return math.nan, math.nan
    tensor = graph.tensors[int(op.inputs[1])]
    q = tensor.quantization
    buffer = model_t.buffers[tensor.buffer] if tensor.buffer < len(model_t.buffers) else None
    if q is None or q.scale is None or buffer is None or buffer.data is None or len(buffer.data) == 0:
        return math.nan, math.nan
    if tensor.type != 9:  # TensorType.INT8
        return math.nan, math.nan
    shape = [int(d) for d in tensor.shape]
    values = np.frombuffer(bytes(np.asarray(buffer.data, np.uint8)), np.int8)
    if values.size != int(np.prod(shape)):
        return math.nan, math.nan
    w = np.abs(values.reshape(shape).astype(np.float64))
    scales = np.asarray(q.scale, np.float64)
    if scales.size > 1:
        if name == "DEPTHWISE_CONV_2D":
            return math.nan, math.nan
        axis = int(q.quantizedDimension or 0)
        per_out = np.moveaxis(w, axis, 0)  # (out, ..., in)
        per_in = per_out.reshape(per_out.shape[0], -1, per_out.shape[-1]).max(axis=1)  # (out, in)
        ratios, levels = [], []
        for row in per_in:
            live = row[row > 0]
            if live.size >= 2:
                ratios.append(live.max() / np.median(live))
                levels.append(np.median(live))
        if not ratios:
            return math.nan, math.nan
        return float(max(ratios)), float(np.median(levels))
    per_out = w.reshape(w.shape[0], -1).max(axis=1)  # per-tensor: one range per output channel
    ratio, _ = ratio_and_levels(per_out, None)
    live = per_out[per_out > 0]
    return ratio, float(np.median(live)) if live.size else math.nan


def _op_name(code) -> str:
    # deferred: LiteRT's flatbuffer schema, optional on a device
    from ai_edge_litert import schema_py_generated as schema

    value = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(value, "")


def flagged(ratio: float, dtype: str) -> bool:
    """An 8-bit tensor whose channel ranges differ by more than :data:`CHANNEL_RANGE_FACTOR`."""
    return dtype in _EIGHT_BIT and math.isfinite(ratio) and ratio > CHANNEL_RANGE_FACTOR


def find_causes(
    info: ModelInfo,
    ops: Iterable[int],
    activation_flags: Mapping[int, bool],
    weight_flags: Mapping[int, bool],
) -> dict[int, int]:
    """``{op index: index of the op whose output scale (or own weights) did the damage}``.

    An op reading a flagged tensor names that tensor's producer (walking back through ops that keep
    their input's scale, such as MAX_POOL_2D and RESHAPE); an op whose own weights are flagged names
    itself.
    """
    producer = {t: op.index for op in info.ops for t in op.outputs}
    causes: dict[int, int] = {}
    for index in ops:
        op = info.ops[index]
        for t in op.inputs:
            if t < 0 or info.tensors[t].has_buffer or t not in producer:
                continue
            source = producer[t]
            if not activation_flags.get(source, False):
                continue
            while info.ops[source].op in _SCALE_KEEPING:
                inputs = [i for i in info.ops[source].inputs if i >= 0 and not info.tensors[i].has_buffer]
                upstream = producer.get(inputs[0]) if inputs else None
                if upstream is None or not activation_flags.get(upstream, False):
                    break
                source = upstream
            causes[index] = source
            break
        if index not in causes and weight_flags.get(index, False):
            causes[index] = index
    return causes
