"""The precisions edgelab converts to, as values rather than strings scattered through callers."""

from __future__ import annotations

from .enums import StrEnum


class Precision(StrEnum):
    """A TFLite precision. The value is the short name used in tables, files and the CLI."""

    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"
    INT8 = "int8"
    INT16X8 = "int16x8"
    QAT_INT8 = "qat_int8"
    MIXED_INT8 = "mixed_int8"
    #: int8 of a repaired float model (edgelab.training.equalize): equalized, bias-corrected, both.
    INT8_EQ = "int8+eq"
    INT8_BC = "int8+bc"
    INT8_EQ_BC = "int8+eq+bc"
    EDGETPU = "edgetpu"

    @property
    def is_full_integer(self) -> bool:
        """True when every op and the model's I/O are integer (what the Edge TPU needs)."""
        return self in (*REPAIRED.values(), Precision.INT8, Precision.QAT_INT8, Precision.EDGETPU)


#: Every precision a Keras model converts to directly (EDGETPU is an int8 model after the compiler).
CONVERTIBLE = (
    Precision.FP32,
    Precision.FP16,
    Precision.DYNAMIC,
    Precision.INT8,
    Precision.INT16X8,
    Precision.QAT_INT8,
)

#: The int8 rows of repaired models, by the repair steps applied (equalization first, as in the paper).
REPAIRED = {
    ("equalize",): Precision.INT8_EQ,
    ("bias_correction",): Precision.INT8_BC,
    ("equalize", "bias_correction"): Precision.INT8_EQ_BC,
}
