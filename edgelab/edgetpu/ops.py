"""What the Edge TPU Compiler (version 16) accepts, as data.

Sources: Coral's table "All operations supported by the Edge TPU and any known limitations"
(coral.ai/docs/edgetpu/models-intro), google-coral/edgetpu CHANGES.md for the runtime in which
an op arrived, and the ``Didn't find op for builtin opcode`` reports in google-coral issues for
the op versions compiler 16 cannot parse. The checks that apply the limitations live in
``edgelab.edgetpu.analyze``; this module only states them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..tflite.inspection import EDGETPU_CUSTOM_OP  # the op the compiler puts mapped ops into

__all__ = [
    "COMPILER_VERSION",
    "DEFAULT_RUNTIME_VERSION",
    "EDGETPU_CUSTOM_OP",
    "MAX_PARSE_VERSION",
    "MSG_NOT_QUANTIZED",
    "MSG_OP_VERSION",
    "ON_CHIP_CACHE_BYTES",
    "ON_CHIP_USABLE_BYTES",
    "RUNTIME_VERSIONS",
    "STATUS_DATA_TYPE",
    "STATUS_LIMITATION",
    "STATUS_MAPPED",
    "STATUS_NOT_SUPPORTED",
    "STATUS_RANK",
    "STATUS_SUBGRAPH",
    "STATUS_VERSION",
    "SUPPORTED_OPS",
    "OpSupport",
    "support_for",
]

#: The compiler release whose behaviour the offline analyzer predicts.
COMPILER_VERSION = "16.0.384591198"

#: Runtime version built into libedgetpu 16.0 (``RuntimeVersion::kCurrent``); compiler 16's default.
DEFAULT_RUNTIME_VERSION = 14

#: Runtime versions a compiled model can target (``kMinValidRuntimeVersion`` = 10 .. ``kCurrent``).
RUNTIME_VERSIONS = (10, 11, 12, 13, 14)

#: The custom op that holds everything the compiler mapped.

#: Nominal on-chip SRAM for parameter caching (~8 MB, coral.ai pipelining page).
ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024

#: What compiler 16 logs actually leave for parameters once the executable has its share:
#: "used + remaining" ranges from 6.89 MiB (YOLOv5s) to 7.98 MiB (a tiny model). The analyzer uses
#: the lower figure so that "fits on chip" is a promise rather than a best case.
ON_CHIP_USABLE_BYTES = round(6.89 * 1024 * 1024)

# Per-op status strings, verbatim from the compiler's operation log.
STATUS_MAPPED = "Mapped to Edge TPU"
STATUS_SUBGRAPH = "More than one subgraph is not supported"
STATUS_LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
STATUS_DATA_TYPE = "Operation is working on an unsupported data type"
STATUS_NOT_SUPPORTED = "Operation not supported"
STATUS_VERSION = "Operation version not supported"
STATUS_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"

# Whole-model failures, verbatim.
MSG_NOT_QUANTIZED = "Model not quantized"
MSG_OP_VERSION = "Didn't find op for builtin opcode '{op}' version '{version}'"


@dataclass(frozen=True)
class OpSupport:
    """One row of Coral's supported-operations table.

    Attributes:
        op: TFLite builtin operator name, as in the compiler log (``CONV_2D``).
        name: Coral's name for it (``Conv2d``).
        min_runtime: Oldest Edge TPU runtime version on which the op maps.
        limitation: Coral's known limitation, in short; empty when there is none.
    """

    op: str
    name: str
    min_runtime: int = 10
    limitation: str = ""


_ROWS = (
    OpSupport("ADD", "Add"),
    OpSupport("AVERAGE_POOL_2D", "AveragePool2d", limitation="no fused activation"),
    OpSupport(
        "CONCATENATION",
        "Concatenation",
        limitation="no fused activation; a constant input is allowed only with 2 inputs and all zeros",
    ),
    OpSupport("CONV_2D", "Conv2d", limitation="same dilation in x and y"),
    OpSupport(
        "DEPTHWISE_CONV_2D",
        "DepthwiseConv2d",
        limitation="same dilation in x and y; no dilation before runtime 13",
    ),
    OpSupport("EXPAND_DIMS", "ExpandDims", min_runtime=13),
    OpSupport(
        "FULLY_CONNECTED",
        "FullyConnected",
        limitation="default weight format only; output tensor 1-D",
    ),
    OpSupport("L2_NORMALIZATION", "L2Normalization"),
    OpSupport("LOGISTIC", "Logistic"),
    OpSupport("LSTM", "LSTM", min_runtime=14, limitation="unidirectional only"),
    OpSupport("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", min_runtime=14, limitation="unidirectional only"),
    OpSupport("MAXIMUM", "Maximum"),
    OpSupport("MINIMUM", "Minimum"),
    OpSupport("MAX_POOL_2D", "MaxPool2d", limitation="no fused activation"),
    OpSupport(
        "MEAN",
        "Mean",
        limitation="no reduction over batch; a z-reduction needs z a multiple of 4; x/y only before runtime 13",
    ),
    OpSupport("MUL", "Mul"),
    OpSupport("PACK", "Pack", min_runtime=13, limitation="no packing along batch"),
    OpSupport("PAD", "Pad", limitation="no padding along batch; x/y only before runtime 13"),
    OpSupport("PRELU", "PReLU", min_runtime=13, limitation="alpha must be 1-D (only the innermost dim > 1)"),
    OpSupport("QUANTIZE", "Quantize", min_runtime=13),
    OpSupport("REDUCE_MAX", "ReduceMax", min_runtime=14, limitation="not along batch"),
    OpSupport("REDUCE_MIN", "ReduceMin", min_runtime=14, limitation="not along batch"),
    OpSupport("RELU", "ReLU"),
    OpSupport("RELU6", "ReLU6"),
    OpSupport("RELU_N1_TO_1", "ReLUN1To1"),
    OpSupport("RESHAPE", "Reshape", limitation="some reshapes of large tensors may not be mapped"),
    OpSupport(
        "RESIZE_BILINEAR",
        "ResizeBilinear",
        limitation="I/O is a 3-D tensor; depending on sizes it stays on the CPU to avoid precision loss",
    ),
    OpSupport(
        "RESIZE_NEAREST_NEIGHBOR",
        "ResizeNearestNeighbor",
        limitation="I/O is a 3-D tensor; depending on sizes it stays on the CPU to avoid precision loss",
    ),
    OpSupport("RSQRT", "Rsqrt", min_runtime=14),
    OpSupport("SLICE", "Slice"),
    OpSupport("SOFTMAX", "Softmax", limitation="1-D input only, at most 16,000 elements"),
    OpSupport("SPACE_TO_DEPTH", "SpaceToDepth"),
    OpSupport("SPLIT", "Split", limitation="not along batch"),
    OpSupport("SQUEEZE", "Squeeze"),
    OpSupport(
        "STRIDED_SLICE",
        "StridedSlice",
        limitation="all strides 1, ellipsis mask 0, new-axis mask 0",
    ),
    OpSupport("SUB", "Sub"),
    OpSupport("SUM", "Sum", min_runtime=13, limitation="not along batch"),
    OpSupport("SQUARED_DIFFERENCE", "Squared-difference", min_runtime=14),
    OpSupport("TANH", "Tanh"),
    OpSupport("TRANSPOSE", "Transpose", min_runtime=14),
    OpSupport("TRANSPOSE_CONV", "TransposeConv", min_runtime=13),
)

#: Supported builtin ops by TFLite name.
SUPPORTED_OPS: Mapping[str, OpSupport] = MappingProxyType({row.op: row for row in _ROWS})

#: Highest op version compiler 16's built-in TFLite can parse, for the ops where users hit the
#: limit (a newer version fails the whole model with "Didn't find op for builtin opcode").
#: Evidence: CONV_2D v6 (TF 2.9, edgetpu#631), TRANSPOSE_CONV v4 (edgetpu#845; v3 failed only on
#: compilers before 16, edgetpu#147), EXP v2 (TF 2.16, libedgetpu#71), QUANTIZE v3 (edgetpu#879).
#: Ops not listed are assumed parseable.
MAX_PARSE_VERSION: Mapping[str, int] = MappingProxyType(
    {
        "CONV_2D": 5,
        "TRANSPOSE_CONV": 3,
        "EXP": 1,
        "QUANTIZE": 2,
    }
)


def support_for(op: str) -> OpSupport | None:
    """The supported-ops row for a TFLite builtin name, or None when the Edge TPU lacks the op."""
    return SUPPORTED_OPS.get(op)
