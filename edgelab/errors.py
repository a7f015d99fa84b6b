"""edgelab's typed errors. Every error a user can trigger derives from EdgelabError."""

from __future__ import annotations

import difflib
from typing import Iterable


class EdgelabError(Exception):
    """Base class of every error edgelab raises on purpose."""


class ConfigError(EdgelabError, ValueError):
    """An argument or option has the wrong value."""


class DatasetError(EdgelabError):
    """A dataset is missing, empty or laid out in a way edgelab cannot read."""


class ModelFileError(EdgelabError):
    """A .tflite file is missing, truncated, corrupt or not a TFLite model."""


class ConversionError(EdgelabError):
    """The TFLite converter failed for one precision."""


class QATError(EdgelabError):
    """A model cannot be prepared for quantization-aware training."""


class RuntimeNotFoundError(EdgelabError):
    """No TFLite runtime (LiteRT, tflite_runtime or TensorFlow) could be imported."""


class EdgeTPUError(EdgelabError):
    """Edge TPU compiler, delegate or device problems."""


class CompilerNotFoundError(EdgeTPUError):
    """`edgetpu_compiler` is not on PATH."""


class DelegateError(EdgeTPUError):
    """The Edge TPU delegate library or device could not be loaded."""


class EdgeTPUWarning(UserWarning):
    """A model will not run entirely on the Edge TPU (some ops fall back to the CPU)."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' hint for a misspelt option, or '' when nothing is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
