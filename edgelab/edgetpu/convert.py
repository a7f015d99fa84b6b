"""Convert a Keras model with the Edge TPU's settings and check the file before the compiler does."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._keras import is_qat_model
from .._text import LOG_WIDTH, wrap
from ..errors import EdgeTPUWarning
from ..precision import Precision
from .analyze import EdgeTPUReport, analyze_edgetpu

if TYPE_CHECKING:  # pragma: no cover
    from ..tflite.conversion import ConvertedModel

__all__ = ["convert_for_edgetpu"]


def convert_for_edgetpu(
    model: Any,
    *,
    out_dir: str | Path,
    calibration: Any,
    labels: Sequence[str] = (),
    calibration_samples: int = 200,
    name: str = "model",
    runtime_version: int = 14,
) -> tuple[ConvertedModel, EdgeTPUReport]:
    """Convert with the Edge TPU's requirements and check the result before the compiler does.

    The Edge TPU needs batch 1, uint8 input and output, and integer-only ops with no float
    fallback: the ``int8`` recipe (``qat_int8`` for a quantization-aware model) with ``uint8`` I/O
    guarantees all three. The file is then analyzed offline; when some ops would fall back to the
    CPU (splitting the graph), an :class:`edgelab.errors.EdgeTPUWarning` names the first one and why.

    Returns:
        ``(converted_model, edgetpu_report)``.
    """
    # deferred: TensorFlow (converting needs it; the rest of edgelab.edgetpu runs on a device without it)
    from ..tflite.conversion import convert

    precision = Precision.QAT_INT8 if is_qat_model(model) else Precision.INT8
    converted = convert(
        model,
        precision,
        out_dir=out_dir,
        calibration=calibration,
        labels=labels,
        io_dtype="uint8",
        calibration_samples=calibration_samples,
        name=name,
    )
    report = analyze_edgetpu(converted.path, runtime_version=runtime_version)
    if report.ops_cpu:
        first = next(op for op in report.ops if op.target == "cpu")
        warnings.warn(
            wrap(
                f"{converted.path.name}: {report.ops_cpu} of {report.ops_total} ops will run on the CPU, not the "
                f"Edge TPU. The first is {first.op} (op {first.index}): {first.reason}. Every op after an "
                "unmappable one leaves the Edge TPU too; replace or move that op to the end of the model.",
                LOG_WIDTH,
            ),
            EdgeTPUWarning,
            stacklevel=2,
        )
    return converted, report
