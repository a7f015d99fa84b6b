"""Coral's "known limitations" of supported ops, as checks on the ``.tflite`` graph.

Each check returns True when the op can map. Sources, per rule: Coral's table "All operations
supported by the Edge TPU and any known limitations" (coral.ai/docs/edgetpu/models-intro, quoted
in ``ops.py``) unless the docstring or comment names another; the real compiler outputs in
tests/data (google-coral/test_data pairs) pin the ones that a compiled model shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..tflite.inspection import ModelInfo, OpInfo, TensorInfo

__all__ = ["LIMITS", "SOURCES", "UNVERIFIED", "unverified_reason", "version_refused"]


def op_inputs(op: OpInfo, info: ModelInfo) -> list[TensorInfo]:
    return [info.tensors[i] for i in op.inputs if i >= 0]


def _outputs(op: OpInfo, info: ModelInfo) -> list[TensorInfo]:
    return [info.tensors[i] for i in op.outputs if i >= 0]


def op_activations(op: OpInfo, info: ModelInfo) -> list[TensorInfo]:
    """The op's non-constant inputs and its outputs (what flows through the Edge TPU)."""
    return [t for t in op_inputs(op, info) if not t.has_buffer] + _outputs(op, info)


def _opt(op: OpInfo, key: str, default: Any = 0) -> Any:
    value = op.options.get(key, default)
    return default if value is None else value


def _no_fused_activation(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    return _opt(op, "fusedActivationFunction") == 0


def _concat_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    if not _no_fused_activation(op, info, runtime):
        return False
    consts = [i for i in op.inputs if i >= 0 and info.tensors[i].has_buffer]
    if not consts:
        return True
    # A constant input is only accepted as zero padding: two inputs, the constant all zeros.
    if len(op.inputs) != 2:
        return False
    t = info.tensors[consts[0]]
    value = info.constant(consts[0])
    if value is None:
        return False
    zero = t.zero_point or 0
    return bool((value.astype("int64") == zero).all())


def _weights_constant(op: OpInfo, info: ModelInfo) -> bool:
    # Model parameters must be constant at compile time (requirement 3). The weights are input 1
    # of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV alike.
    return len(op.inputs) > 1 and op.inputs[1] >= 0 and info.tensors[op.inputs[1]].has_buffer


def _conv_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    if not _weights_constant(op, info):
        return False
    return _opt(op, "dilationWFactor", 1) == _opt(op, "dilationHFactor", 1)


def _depthwise_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    if not _conv_ok(op, info, runtime):
        return False
    return runtime >= 13 or _opt(op, "dilationWFactor", 1) == 1


def _fully_connected_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    if not _weights_constant(op, info) or _opt(op, "weightsFormat") != 0:
        return False
    out = _outputs(op, info)
    return bool(out) and sum(1 for d in out[0].shape if d > 1) <= 1


def _transpose_conv_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    return _weights_constant(op, info)


def _axes(op: OpInfo, info: ModelInfo, position: int) -> list[int] | None:
    """Constant axis operand, normalised against the data input's rank; None if not constant."""
    if len(op.inputs) <= position or op.inputs[position] < 0:
        return None
    value = info.constant(op.inputs[position])
    if value is None:
        return None
    data_index = op.inputs[1] if op.op == "SPLIT" else op.inputs[0]
    rank = len(info.tensors[data_index].shape)
    return [int(a) % rank if rank else int(a) for a in value.reshape(-1)]


def _batch_axis(op: OpInfo, info: ModelInfo, axes: list[int]) -> bool:
    data_index = op.inputs[1] if op.op == "SPLIT" else op.inputs[0]
    return len(info.tensors[data_index].shape) >= 2 and 0 in axes


def _reduce_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    axes = _axes(op, info, 1)
    return axes is not None and not _batch_axis(op, info, axes)


def _mean_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    axes = _axes(op, info, 1)
    if axes is None or _batch_axis(op, info, axes):
        return False
    shape = info.tensors[op.inputs[0]].shape
    rank = len(shape)
    if rank and rank - 1 in axes and rank >= 3 and shape[-1] % 4:
        return False  # z-reduction needs z a multiple of 4
    return not (runtime <= 12 and rank == 4 and not set(axes) <= {1, 2})  # x/y only before runtime 13


def _split_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    axes = _axes(op, info, 0)
    return axes is not None and not _batch_axis(op, info, axes)


def _pack_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    return _opt(op, "axis") != 0


def _pad_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    pads = info.constant(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if pads is None:
        return False
    pads = pads.reshape(-1, 2)
    if len(pads) >= 2 and pads[0].any():
        return False  # no padding along batch
    return not (runtime <= 12 and len(pads) == 4 and pads[3].any())  # x/y only before runtime 13


def _prelu_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    alpha = info.tensors[op.inputs[1]].shape
    return all(d == 1 for d in alpha[:-1])


def _softmax_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    shape = info.tensors[op.inputs[0]].shape
    return sum(1 for d in shape if d > 1) <= 1 and math.prod(shape) <= 16000


def _strided_slice_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    if _opt(op, "ellipsisMask") or _opt(op, "newAxisMask"):
        return False
    strides = info.constant(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    return strides is not None and bool((strides == 1).all())


def _resize_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    """Resize maps only on image tensors and at scales it can reproduce exactly.

    Coral: "I/O is a 3-D tensor; depending on sizes it may stay on the CPU to avoid precision
    loss", and google-coral/edgetpu#31 (Coral): the compiler refuses the op when its loss of
    precision is above a threshold it does not disclose. Read here as: input and output are
    [1, H, W, C], and along H and W the sampling grid is an exact integer ratio. With align_corners
    the grid spacing is (in-1)/(out-1), which has no exact ratio when the input is a single pixel
    (the Coral deeplab pair's 1x1 -> 33x33 resize, left on the CPU). Where the threshold lies for
    inexact ratios is not public: an inexact ratio is predicted on the CPU, which may be pessimistic.
    No public log shows an align_corners resize from more than one pixel, mapped or refused (searched:
    google-coral issues, CHANGES.md, coral.ai, public compiler logs), so those verdicts are reported
    as unverified (:data:`UNVERIFIED`) rather than changed on a guess.
    """
    src, dst = info.tensors[op.inputs[0]].shape, _outputs(op, info)[0].shape
    if len(src) != 4 or len(dst) != 4:
        return False
    align = bool(_opt(op, "alignCorners", False))
    return all(_exact_scale(a, b, align) for a, b in ((src[1], dst[1]), (src[2], dst[2])))


def _exact_scale(n_in: int, n_out: int, align_corners: bool) -> bool:
    if n_in == n_out:
        return True
    if align_corners:
        n_in, n_out = n_in - 1, n_out - 1
    if n_in < 1 or n_out < 1:
        return False
    big, small = max(n_in, n_out), min(n_in, n_out)
    return big % small == 0


def version_refused(op: OpInfo) -> bool:
    """Ops the compiler parses but logs as ``Operation version not supported``.

    RESIZE_NEAREST_NEIGHBOR with ``half_pixel_centers`` (op version 3, the default of TF2's
    ``tf.image.resize(method="nearest")`` and Keras ``UpSampling2D``). Source: the v14.1 log
    ``tiny_yolo_edgetpu.log`` (rajansaini691/retinanet-model-tflite, quoted in edgetpu-facts.md 1.4)
    and google-coral/edgetpu#187, #206, #420 for compilers 14.1 and 15; no compiler-16 log of this
    op is known, so the rule is kept for 16 and named as such in the analyzer's rules table.

    RESIZE_BILINEAR with ``half_pixel_centers`` is *not* refused by compiler 16: a public model
    compiled with edgetpu_compiler 16 maps three int8 half-pixel 2x upsamplings (1x6x6x64 -> 12x12,
    1x12x12x32 -> 24x24, 1x24x24x24 -> 48x48, align_corners=false), 98 of its 157 ops on the Edge
    TPU (tests/test_edgetpu_rules.py builds the same three resizes between convolutions). Compilers
    14.1-15 refused it (guichristmann/edge-tpu-tiny-yolo#10, tensorflow/tensorflow#42024).
    """
    if op.op == "RESIZE_NEAREST_NEIGHBOR":
        return bool(_opt(op, "halfPixelCenters", False))
    return False


#: Where each rule comes from, per op (a test checks that
#: every op in :data:`LIMITS` has one). "Coral table" is "All operations supported by the Edge TPU
#: and any known limitations" (coral.ai/docs/edgetpu/models-intro, quoted in ops.py); a Coral pair is
#: a google-coral/test_data model with its real compiler output (tests/data/coral, checked exactly).
SOURCES: dict[str, str] = {
    "AVERAGE_POOL_2D": "Coral table: no fused activation function",
    "MAX_POOL_2D": "Coral table: no fused activation function",
    "CONCATENATION": "Coral table: no fused activation; a constant input only as zero padding of 2 inputs",
    "CONV_2D": "Coral table: same dilation in x and y; constant weights (model requirement 3)",
    "DEPTHWISE_CONV_2D": "Coral table: same dilation in x and y; dilation > 1 from runtime 13 (CHANGES.md)",
    "FULLY_CONNECTED": "Coral table: default weights format only; output one-dimensional",
    "TRANSPOSE_CONV": "Coral table; constant weights (model requirement 3)",
    "MEAN": "Coral table: no batch reduction; z-reduction needs z % 4 == 0; x/y only before runtime 13",
    "SUM": "Coral table: not on the batch dimension",
    "REDUCE_MAX": "Coral table: not on the batch dimension",
    "REDUCE_MIN": "Coral table: not on the batch dimension",
    "SPLIT": "Coral table: not on the batch dimension",
    "PACK": "Coral table: no packing in the batch dimension",
    "PAD": "Coral table: no padding in batch; x/y only before runtime 13",
    "PRELU": "Coral table: alpha one-dimensional (only the innermost dimension > 1)",
    "SOFTMAX": "Coral table: one-dimensional input, at most 16,000 elements",
    "STRIDED_SLICE": "Coral table: all strides 1; no ellipsis or new-axis mask",
    "RESIZE_BILINEAR": (
        "Coral table (3-D I/O; may stay on the CPU to avoid precision loss) and Coral's reason "
        "(google-coral/edgetpu#31: the compiler refuses a resize whose precision loss is above a threshold; "
        "#63: an earlier compiler logged 'Image-interpolation layer won't run precisely enough on Edge TPU'), "
        "read as exact integer scales; Coral pair deeplabv3_mnv2_dm05_pascal_quant: its align_corners "
        "1x1 -> 33x33 resize stays on the CPU (the 33 -> 33 and 33 -> 513 resizes after it follow it "
        "there, one subgraph only, so they prove nothing either way); half_pixel_centers maps with "
        "compiler 16 (a public compiler-16 model: three 2x half-pixel upsamplings mapped); a compiler-15 "
        "log of a BiSeNetV2 maps 2 RESIZE_BILINEAR (edgetpu#377; the public TF BiSeNetV2, "
        "MaybeShewill-CV/bisenetv2-tensorflow, upsamples 4x without align_corners). align_corners from "
        "more than one pixel: no public log either way (see UNVERIFIED)"
    ),
    "RESIZE_NEAREST_NEIGHBOR": (
        "Coral table (as RESIZE_BILINEAR); half_pixel_centers (version 3) refused: compiler 14.1 log "
        "tiny_yolo_edgetpu.log, edgetpu#187/#420 (no compiler-16 evidence either way)"
    ),
    "LSTM": "Coral table: unidirectional LSTM only, runtime 14 (CHANGES.md)",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "Coral table: unidirectional LSTM only, runtime 14 (CHANGES.md)",
    "RESHAPE": "Coral table: certain reshapes of large tensors may not map (no public size: rank rule only)",
}


#: Verdicts that no public compiler output confirms, per op: what was searched and found. The
#: analyzer still predicts them (by Coral's table, or by the rule in :data:`LIMITS`) but names them
#: as unverified in the report (``EdgeTPUReport.unverified`` and a hint). Searched: the issues of
#: google-coral/edgetpu, pycoral and libedgetpu, edgetpu CHANGES.md, coral.ai's docs and model pages,
#: and public repositories for compiler logs (``Operator  Count  Status`` tables) and compiled models.
UNVERIFIED: dict[str, str] = {
    "TILE": (
        "TILE is not in Coral's supported-ops table, so it is predicted 'Operation not supported'; no "
        "public compiler log, release note or compiled model shows TILE either mapped or refused, and the "
        "one report of it mapping (a compiler-16 deeplab-slim count, 82 ops mapped where 76 are "
        "predicted) comes without its log."
    ),
    "RESIZE_BILINEAR": (
        "No public compiler log shows an align_corners RESIZE_BILINEAR except the Coral deeplab pair's "
        "1x1 -> 33x33 (on the CPU); none of the mapped resizes in public logs (edgetpu#377, the "
        "compiler-16 half-pixel upsamplings) is known to be align_corners, so the exact-scale rule on "
        "(in-1)/(out-1) is unconfirmed for it either way."
    ),
}


def unverified_reason(op: OpInfo, info: ModelInfo) -> str | None:
    """What no public compiler output confirms about this op's own verdict, or None.

    TILE, and RESIZE_BILINEAR with ``align_corners`` from an input larger than one pixel (the
    single-pixel case is the Coral deeplab pair's, pinned on the CPU). See :data:`UNVERIFIED`.
    """
    if op.op == "TILE":
        return UNVERIFIED["TILE"]
    if op.op == "RESIZE_BILINEAR" and bool(_opt(op, "alignCorners", False)):
        src = info.tensors[op.inputs[0]].shape
        if len(src) == 4 and (src[1], src[2]) != (1, 1):
            return UNVERIFIED["RESIZE_BILINEAR"]
    return None


def _lstm_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    """Coral's table: "LSTM: unidirectional LSTM only" (runtime 14). The cell state of an
    integer LSTM is int16 by TFLite's design, so it is not held against the op; every other
    activation must be 8-bit, and the weights constant. BIDIRECTIONAL_SEQUENCE_LSTM, GRU and RNN
    cells are not in the table at all (``Operation not supported``)."""
    acts = [t for t in op_activations(op, info) if not t.is_variable]
    states = [t for t in op_activations(op, info) if t.is_variable]
    weights = [info.tensors[i] for i in op.inputs[1:9] if i >= 0]
    return (
        all(t.dtype in ("int8", "uint8") for t in acts)
        and all(t.dtype in ("int8", "int16") for t in states)
        and all(t.has_buffer for t in weights)
    )


def _large_reshape_ok(op: OpInfo, info: ModelInfo, runtime: int) -> bool:
    """Coral's table: "Certain reshape operations of large tensors may not be mapped". No public
    log states the size, so only the rank rule (checked before) applies; kept as a named rule so
    the table and the checks stay one to one."""
    return True


LIMITS: dict[str, Callable[[OpInfo, ModelInfo, int], bool]] = {
    "AVERAGE_POOL_2D": _no_fused_activation,
    "MAX_POOL_2D": _no_fused_activation,
    "CONCATENATION": _concat_ok,
    "CONV_2D": _conv_ok,
    "DEPTHWISE_CONV_2D": _depthwise_ok,
    "FULLY_CONNECTED": _fully_connected_ok,
    "TRANSPOSE_CONV": _transpose_conv_ok,
    "MEAN": _mean_ok,
    "SUM": _reduce_ok,
    "REDUCE_MAX": _reduce_ok,
    "REDUCE_MIN": _reduce_ok,
    "SPLIT": _split_ok,
    "PACK": _pack_ok,
    "PAD": _pad_ok,
    "PRELU": _prelu_ok,
    "SOFTMAX": _softmax_ok,
    "STRIDED_SLICE": _strided_slice_ok,
    "RESIZE_BILINEAR": _resize_ok,
    "RESIZE_NEAREST_NEIGHBOR": _resize_ok,
    "LSTM": _lstm_ok,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm_ok,
    "RESHAPE": _large_reshape_ok,
}
