"""``ConversionConfig``: how :func:`edgelab.convert`, :func:`edgelab.convert_all` and
:func:`edgelab.run_comparison` convert a model (light: no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._config import Options, check_bool, set_field
from ..errors import ConfigError, check_int
from ..precision import Precision

IO_DTYPES = ("uint8", "int8")


@dataclass(frozen=True)
class ConversionConfig(Options):
    """What is converted and how; checked once, when it is made.

    Args:
        precisions: Which precisions ``convert_all`` and ``run_comparison`` produce (default: every
            convertible one; ``qat_int8`` only with a quantization-aware model, ``mixed_int8`` only with
            ``keep_float``). ``convert`` takes its one precision as an argument instead.
        io_dtype: Input/output type of integer models: ``"uint8"`` (Edge TPU, pycoral) or ``"int8"``.
        calibration_samples: Number of calibration images.
        seed: Which calibration images are drawn.
        keep_float: For ``mixed_int8``: layer or tensor names kept in float (see
            :func:`edgelab.tflite.mixed.keep_float_names`).
        name: File name stem: files are ``<name>_<precision>.tflite``.
        reuse: Keep an existing ``<name>_<precision>.tflite`` made with the same settings instead of
            converting again (an interrupted run resumes).
    """

    precisions: Sequence[Precision | str] | None = None
    io_dtype: str = "uint8"
    calibration_samples: int = 200
    seed: int = 0
    keep_float: Sequence[str] = ()
    name: str = "model"
    reuse: bool = False

    def __post_init__(self) -> None:
        if self.precisions is not None:
            wanted = [self.precisions] if isinstance(self.precisions, str) else list(self.precisions)
            set_field(self, "precisions", tuple(Precision.parse(p, "precision") for p in wanted))
        if self.io_dtype not in IO_DTYPES:
            raise ConfigError(f"Expected io_dtype to be one of {list(IO_DTYPES)}. Received: io_dtype={self.io_dtype!r}")
        set_field(self, "calibration_samples", check_int("calibration_samples", self.calibration_samples))
        set_field(self, "seed", check_int("seed", self.seed, minimum=0))
        keep = [self.keep_float] if isinstance(self.keep_float, str) else list(self.keep_float)
        if not all(isinstance(k, str) and k for k in keep):
            raise ConfigError(f"Expected keep_float to be layer or tensor names. Received: keep_float={keep!r}")
        set_field(self, "keep_float", tuple(keep))
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\\0"):
            raise ConfigError(f"Expected name to be a file name stem (no folders). Received: name={self.name!r}")
        set_field(self, "reuse", check_bool("reuse", self.reuse))
        if self.keep_float and self.precisions is not None and Precision.MIXED_INT8 not in self.precisions:
            raise ConfigError(
                "Expected 'mixed_int8' in precisions when keep_float is given (keep_float only shapes that row). "
                f"Received: precisions={[str(p) for p in self.precisions]}, keep_float={list(self.keep_float)}"
            )
