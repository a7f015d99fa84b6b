"""edgelab's typed errors. Every error a user can trigger derives from EdgelabError."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any, Literal, overload


class EdgelabError(Exception):
    """Base class of every error edgelab raises on purpose."""


class ConfigError(EdgelabError, ValueError):
    """An argument or option has the wrong value."""


class DatasetError(EdgelabError):
    """A dataset is missing, empty or laid out in a way edgelab cannot read."""


class ModelFileError(EdgelabError):
    """A .tflite file is missing, truncated, corrupt or not a TFLite model."""


class InterpreterCrashError(ModelFileError):
    """The native TFLite interpreter crashed on a file in a child process; it is not loaded here."""


class ConversionError(EdgelabError):
    """The TFLite converter failed for one precision."""


class QATError(EdgelabError):
    """A model cannot be prepared for quantization-aware training."""


class Keras3ModelError(ConfigError, QATError):
    """A Keras 3 model was given where edgelab needs tf_keras (Keras 2); one message at every entry point."""


class RuntimeNotFoundError(EdgelabError):
    """No TFLite runtime (LiteRT, tflite_runtime or TensorFlow) could be imported."""


class EdgeTPUError(EdgelabError):
    """Edge TPU compiler, delegate or device problems."""


class CompilerNotFoundError(EdgeTPUError):
    """`edgetpu_compiler` is not on PATH."""


class DelegateError(EdgeTPUError):
    """The Edge TPU delegate library or device could not be loaded."""


class DeviceError(EdgelabError):
    """A device reached over SSH cannot do what was asked (edgelab.device)."""


class DeviceUnreachableError(DeviceError):
    """The device does not answer: unknown name, refused or timed-out connection."""


class DeviceAuthError(DeviceError):
    """The device refused the login (no key it accepts, no agent)."""


class HostKeyError(DeviceError):
    """The device's host key is unknown or changed: nothing is run on it."""


class DeviceTimeoutError(DeviceError):
    """A command on the device took longer than its timeout."""


class DeviceRuntimeError(DeviceError):
    """The device has no usable TFLite runtime (or numpy, Pillow) for the bundle."""


class DeviceDiskFullError(DeviceError):
    """The device has not enough free disk for the copy."""


class DeviceFileConflictError(DeviceError):
    """A file edgelab copied to the device was changed there."""


class NotebookError(EdgelabError):
    """A notebook could not be executed: a cell raised or timed out, or its kernel died."""


class TuneError(EdgelabError):
    """A model search (edgelab.tune) cannot start or go on: its storage, study or budget."""


class StorageError(TuneError):
    """An Optuna storage URL is malformed or its database cannot be reached."""


class StudyMismatchError(TuneError):
    """A study exists with another search space, link or constraints than the run asks for."""


class BudgetError(TuneError):
    """No candidate of the search space can meet the latency budget (or the other constraints)."""


class DriftError(ConfigError):
    """A drift check cannot run: a bundle without reference statistics, or too few images to judge."""


class EdgelabWarning(UserWarning):
    """Base class of every warning edgelab shows a user (a number may be wrong, or work was left out).

    Python shows each one once per place in a script and in a notebook; ``warnings.simplefilter("ignore",
    EdgelabWarning)`` silences them all.
    """


class InputRangeWarning(EdgelabWarning):
    """edgelab had to assume which pixel range a model takes, or found another range scoring clearly better."""


class SanityWarning(EdgelabWarning):
    """A trained or float model looks broken (chance-level accuracy, one dominant class), with likely causes."""


class EdgeTPUWarning(EdgelabWarning):
    """A model will not run entirely on the Edge TPU (some ops fall back to the CPU)."""


class ImageTooLargeError(DatasetError):
    """An image's width x height is above the decoded-pixels budget (see :func:`max_pixels`)."""


class NotRegularFileError(DatasetError):
    """An image path is a device, a FIFO, a socket or a symbolic link loop: never opened."""


class PixelFormatError(DatasetError):
    """An image's pixels (signed or 32-bit integers, floats) have no faithful 8-bit RGB form."""


class DecodeWorkerError(EdgelabError):
    """A worker process decoding images failed (could not start, died, or reported an error); the
    image cache catches it and decodes the rest on threads (see :mod:`edgelab.data.workers`)."""


class ModelValidationError(ModelFileError):
    """A ``.tflite`` file breaks a structural rule the interpreter would trust.

    Attributes:
        path: The file (None for bytes).
        subgraph: Subgraph index, or None for model-level rules.
        where: The op or tensor concerned, e.g. ``"op 1 (SPLIT)"`` or ``"tensor 7 'logits'"``.
        rule: The rule broken, in words.
    """

    def __init__(self, message: str, path: str | None, subgraph: int | None, where: str, rule: str) -> None:
        super().__init__(message)
        self.path, self.subgraph, self.where, self.rule = path, subgraph, where, rule


class FolderBusyError(EdgelabError):
    """Another process holds an output folder's lock; the message says who."""


class DatasetWarning(EdgelabWarning):
    """Files were skipped while loading a dataset (details in ``Dataset.skipped``)."""


class CalibrationWarning(EdgelabWarning):
    """Calibration images unlike the data the model sees: int8 ranges will clip real inputs."""


class SetupWarning(EdgelabWarning):
    """A setting did not take effect: TensorFlow's thread pools already sized, tf.keras already Keras 3."""


class ResumeWarning(EdgelabWarning):
    """Saved work (a checkpoint, a training state, a stage's file) was unreadable: that step runs again."""


class PartialResultWarning(EdgelabWarning):
    """Part of a result is missing or replaced: an Edge TPU estimate that failed, compiler counts replaced by
    the offline prediction, a bundle or drift reference not written, images a device could not read."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' hint for a misspelt option, or '' when nothing is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


@overload
def check_int(
    name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None, allow_none: Literal[False] = False
) -> int: ...
@overload
def check_int(
    name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None, allow_none: bool
) -> int | None: ...
def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = 1,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as a plain int, or a ConfigError that says what was expected and echoes it.

    Python and numpy integers pass; bools, floats and strings do not.

    Args:
        name: The argument's name, as the user wrote it.
        value: What the user passed.
        minimum: Smallest allowed value (``None``: no lower bound).
        maximum: Largest allowed value (``None``: no upper bound).
        allow_none: Let ``None`` through (returned as is).

    Raises:
        ConfigError: ``value`` is not an int in range.
    """
    if value is None and allow_none:
        return None
    # numbers.Integral covers numpy integers without importing numpy here; bool is an int, not a count.
    is_count = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if is_count and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return int(value)
    if minimum is not None and maximum is not None:
        expected = f"an int from {minimum} to {maximum}"
    elif maximum is not None:
        expected = f"an int <= {maximum}"
    elif minimum == 1:
        expected = "a positive int"
    elif minimum is not None:
        expected = f"an int >= {minimum}"
    else:
        expected = "an int"
    if allow_none:
        expected += " or None"
    raise ConfigError(f"Expected {name} to be {expected}. Received: {name}={value!r}")


@overload
def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: Literal[False] = False,
    unit: str = "",
) -> float: ...
@overload
def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: bool,
    unit: str = "",
) -> float | None: ...
def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: bool = False,
    unit: str = "",
) -> float | None:
    """``value`` as a finite float in range, or a ConfigError that says what was expected and echoes it.

    Python and numpy ints and floats pass; bools, strings, NaN and infinities do not.

    Args:
        name: The argument's name, as the user wrote it.
        value: What the user passed.
        minimum: Smallest allowed value (``None``: no lower bound); ``min_open`` excludes it.
        maximum: Largest allowed value (``None``: no upper bound); ``max_open`` excludes it.
        allow_none: Let ``None`` through (returned as is).
        unit: What the number counts, for the message (``"seconds"``).

    Raises:
        ConfigError: ``value`` is not a finite number in range.
    """
    if value is None and allow_none:
        return None
    # numbers.Real covers numpy ints and floats without importing numpy here; a bool is not a number.
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value)):
        number = float(value)
        low_ok = minimum is None or (number > minimum if min_open else number >= minimum)
        high_ok = maximum is None or (number < maximum if max_open else number <= maximum)
        if low_ok and high_ok:
            return number
    if minimum is not None and maximum is not None:
        expected = f"a number in {'(' if min_open else '['}{minimum:g}, {maximum:g}{')' if max_open else ']'}"
    elif minimum is not None:
        expected = f"a number {'>' if min_open else '>='} {minimum:g}"
    elif maximum is not None:
        expected = f"a number {'<' if max_open else '<='} {maximum:g}"
    else:
        expected = "a finite number"
    if unit:
        expected += f" ({unit})"
    if allow_none:
        expected += " or None"
    raise ConfigError(f"Expected {name} to be {expected}. Received: {name}={value!r}")
