"""A converted .tflite image classifier on any device: raw uint8 pixels in, float scores out.

:class:`TFLiteModel` puts three parts together, each in its own module: the interpreter and the
runtime it comes from (:mod:`~edgelab.tflite.interpreter`, which validates the file first), the
quantized input and output (:mod:`~edgelab.tflite.quantized_io`), and the batched runner
(:mod:`~edgelab.tflite.batching`). Everything here needs only numpy and a TFLite runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import read_labels
from .._log import tqdm
from .._text import fields_repr
from ..enums import StrEnum
from ..errors import ConfigError, ModelFileError, check_int
from ..metrics import EvalResult, check_class_names, classification_metrics
from ..precision import Precision
from .batching import BatchRunner
from .delegate import load_edgetpu, parse_delegate
from .inspection import load_model_bytes
from .interpreter import (
    RUNTIMES,
    InterpreterSettings,
    LoadedInterpreter,
    check_threads,
    compiled_for_edgetpu,
    describe,
    load_checked,
    load_interpreter,
    load_interpreter_info,
)
from .quantized_io import ImageIO, dequantize, quantize
from .validate import validate_bytes

__all__ = [
    "RUNTIMES",
    "LoadedInterpreter",
    "PredictOutput",
    "TFLiteModel",
    "as_model",
    "dequantize",
    "load_interpreter",
    "load_interpreter_info",
    "quantize",
]


class PredictOutput(StrEnum):
    """What :meth:`TFLiteModel.predict` returns."""

    SCORES = "scores"  # float32 (N, classes), dequantized for integer models
    RAW = "raw"  # the output tensor as stored (quantized for integer models)
    CLASSES = "classes"  # int64 (N,) class indices


def _read_labels(labels: Sequence[str] | str | Path | None) -> tuple[str, ...] | None:
    if labels is None or (not isinstance(labels, (str, Path)) and len(labels) == 0):
        return None
    return read_labels(labels)


class TFLiteModel:
    """A converted .tflite classifier: raw uint8 pixels in, float probabilities out.

    Args:
        model_path_or_bytes: path of a .tflite file, or its bytes.
        labels: class names, or the path of a labels file (one name per line).
        num_threads: CPU threads for the interpreter (1 to 256).
        delegate: None (CPU), ``"edgetpu"`` or ``"edgetpu:<device>"`` (``usb``, ``usb:0``, ``pci:0``).
        precision: the model's precision (a :class:`edgelab.precision.Precision` or its name), kept
            for tables and reports.
        use_xnnpack: apply LiteRT's XNNPACK delegate on the CPU.
        batching: run several images per ``invoke()`` when the model allows it. None (default):
            only with ``num_threads > 1``, where measured here it gives 1.2-1.3x the images/s
            (2 threads, batch 8-32); with one thread it gained nothing and batch 32 lost up to 25%
            on float models (cache pressure), so one image per ``invoke()`` is the default there.
        trusted: skip the child-process load that precedes the first in-process load of a file
            edgelab did not convert or check before (:mod:`edgelab.tflite.trust`); for files you
            know are sound. The structural checks run either way.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, breaks a structural rule
            (:mod:`edgelab.tflite.validate`), or fails to load.
        DelegateError: an Edge TPU model without the Edge TPU delegate, or the delegate fails.
    """

    def __init__(
        self,
        model_path_or_bytes: str | Path | bytes,
        labels: Sequence[str] | str | Path | None = None,
        num_threads: int = 1,
        delegate: str | None = None,
        precision: Any = None,
        *,
        use_xnnpack: bool = True,
        batching: bool | None = None,
        trusted: bool = False,
    ) -> None:
        self._precision = Precision.parse(precision) if precision is not None else None
        self._path = (
            None if isinstance(model_path_or_bytes, (bytes, bytearray, memoryview)) else Path(model_path_or_bytes)
        )
        self._device = parse_delegate(delegate)
        self._where = where = describe(model_path_or_bytes)  # names the model in errors
        self._num_threads = check_threads(num_threads)
        data, path = load_model_bytes(model_path_or_bytes)
        validate_bytes(data, path)  # a bad file is reported before a missing delegate
        self._delegates = [load_edgetpu(self._device)] if self._device is not None else None
        self._use_xnnpack = bool(use_xnnpack)
        settings = InterpreterSettings(self._num_threads, self._delegates, self._use_xnnpack)
        self._loaded = load_checked(data, where, settings, path=path, trusted=trusted)
        self._interpreter = self._loaded.interpreter
        self._edgetpu = compiled_for_edgetpu(data)

        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelFileError(
                f"Expected a classifier with one image input and one output. Received: {where} with "
                f"{len(inputs)} inputs and {len(outputs)} outputs."
            )
        self._in, self._out = inputs[0], outputs[0]
        self._io = ImageIO(self._in, self._out, where)
        self._labels = _read_labels(labels)
        if self._labels is not None and len(self._labels) != self._io.num_classes:
            raise ConfigError(
                f"Expected {self._io.num_classes} labels (the model's output size). Received: {len(self._labels)} labels"
            )
        # The Edge TPU custom op is compiled for a fixed batch of one, so compiled models run one at a time.
        wanted = self._num_threads > 1 if batching is None else bool(batching)
        self._runner = BatchRunner(
            self._interpreter,
            self._in["index"],
            self._out["index"],
            self._batched_interpreter,
            wanted and not self._edgetpu,
            where,
        )

    def _batched_interpreter(self) -> Any:
        return load_interpreter_info(
            self._loaded.model_bytes,
            self._num_threads,
            None,
            self._use_xnnpack,
            trusted=True,  # loaded above
        ).interpreter

    # ------------------------------------------------------------------ properties

    @property
    def path(self) -> Path | None:
        """The .tflite file (None when made from bytes)."""
        return self._path

    @property
    def model_bytes(self) -> bytes:
        """The model's bytes."""
        return self._loaded.model_bytes

    @property
    def size_bytes(self) -> int:
        """Size of the .tflite flatbuffer in bytes."""
        return len(self._loaded.model_bytes)

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names, or None when none were given."""
        return self._labels

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names, or ``("0", "1", ...)`` when no labels were given."""
        return self._labels if self._labels is not None else tuple(str(i) for i in range(self.num_classes))

    @property
    def num_classes(self) -> int:
        """The model's output size."""
        return self._io.num_classes

    @property
    def precision(self) -> Any:
        """The precision given at load time (a Precision), or None."""
        return self._precision

    @property
    def input_details(self) -> list[dict]:
        """The interpreter's input details (batch-one interpreter)."""
        return self._interpreter.get_input_details()

    @property
    def output_details(self) -> list[dict]:
        """The interpreter's output details (batch-one interpreter)."""
        return self._interpreter.get_output_details()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model's input shape as stored in the file, batch first, e.g. ``(1, 96, 96, 3)``."""
        return tuple(int(d) for d in self._in["shape"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of one image the model takes, ``(height, width, channels)``."""
        return self.input_shape[1:]  # type: ignore[return-value]

    @property
    def input_dtype(self) -> np.dtype:
        """The input tensor's dtype (float32, uint8, int8 or int16)."""
        return self._io.input_dtype

    @property
    def output_dtype(self) -> np.dtype:
        """The output tensor's dtype."""
        return self._io.output_dtype

    @property
    def input_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the input; ``(0.0, 0)`` for a float input."""
        return self._io.input_quantization

    @property
    def output_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the output; ``(0.0, 0)`` for a float output."""
        return self._io.output_quantization

    @property
    def runtime(self) -> str:
        """Which runtime runs the model, e.g. ``"litert 2.3.0"``."""
        return self._loaded.runtime

    @property
    def num_threads(self) -> int:
        """CPU threads of the interpreter."""
        return self._num_threads

    @property
    def xnnpack(self) -> bool | None:
        """Whether XNNPACK runs part of the graph (see the module docstring for how it is read)."""
        return self._loaded.xnnpack

    @property
    def use_xnnpack(self) -> bool:
        """Whether XNNPACK was allowed when loading."""
        return self._use_xnnpack

    @property
    def delegate(self) -> str | None:
        """``"edgetpu"`` / ``"edgetpu:<device>"``, or None on the CPU."""
        if self._device is None:
            return None
        return "edgetpu" + (f":{self._device}" if self._device else "")

    @property
    def is_edgetpu(self) -> bool:
        """True when the model was compiled for the Edge TPU."""
        return self._edgetpu

    @property
    def batching(self) -> bool:
        """Whether :meth:`predict` runs several images per ``invoke()`` (off for Edge TPU models, and
        switched off when the model cannot be resized or a batched result differs from a single one)."""
        return self._runner.batching

    @property
    def interpreter(self) -> Any:
        """The batch-one interpreter (for benchmarking and low-level use)."""
        return self._interpreter

    # ------------------------------------------------------------------ input / output

    def prepare_input(self, images: Any) -> np.ndarray:
        """Raw uint8 pixels -> the model's input tensor (normalized and quantized), batch first."""
        return self._io.encode(self._io.check_images(images))

    def set_input(self, image: Any) -> None:
        """Set one image (raw uint8 pixels) as the batch-one interpreter's input (for benchmarking)."""
        x = self.prepare_input(image)
        if x.shape[0] != 1:
            raise ConfigError(f"Expected one image. Received: shape={tuple(np.asarray(image).shape)}")
        self._interpreter.set_tensor(self._in["index"], x)

    # ------------------------------------------------------------------ inference

    def predict(
        self,
        images: Any,
        batch_size: int = 32,
        progress: bool | None = None,
        *,
        output: PredictOutput | str = PredictOutput.SCORES,
    ) -> np.ndarray:
        """Run the model on raw uint8 images.

        Args:
            images: uint8 pixels, ``(N, H, W, 3)`` or one ``(H, W, 3)`` image, already at the model's size.
            batch_size: images per ``invoke()`` when batching is possible (1: one at a time).
            progress: show a progress bar (None: on unless ``EDGELAB_PROGRESS=0``).
            output: ``"scores"`` (float32 ``(N, classes)``, dequantized for integer models),
                ``"raw"`` (the output tensor as stored) or ``"classes"`` (int64 class indices ``(N,)``).

        Returns:
            The array ``output`` names.

        Raises:
            ConfigError: images of the wrong shape or dtype, or an unknown ``output``.
            ModelFileError: the interpreter rejected the model while running it.
        """
        batch_size = check_int("batch_size", batch_size)
        kind = PredictOutput.parse(output, "output")
        images = self._io.check_images(images)
        n = images.shape[0]
        raw = np.empty((n, *self._io.output_shape[1:]), dtype=self._io.output_dtype)
        with tqdm(total=n, unit="img", desc="predict", leave=False, progress=progress) as bar:
            for start in range(0, n, batch_size):
                # Encode chunk by chunk: a whole float32 test set at once can take gigabytes.
                chunk = self._io.encode(images[start : start + batch_size])
                raw[start : start + chunk.shape[0]] = self._runner.run(chunk)
                bar.update(chunk.shape[0])
        if kind is PredictOutput.RAW:
            return raw
        scores = self._io.decode(raw)
        if kind is PredictOutput.CLASSES:
            return scores.reshape(n, -1).argmax(axis=1).astype(np.int64)
        return scores

    def evaluate(
        self,
        images: np.ndarray,
        labels: Any,
        class_names: Sequence[str] | None = None,
        reference_pred: Any = None,
        batch_size: int = 32,
        progress: bool | None = None,
    ) -> EvalResult:
        """Accuracy, per-class metrics, confusion matrix and agreement of this file on labelled images.

        See :func:`edgelab.compare.evaluate_model` (which takes a path too) for the arguments.

        Raises:
            ConfigError: images/labels that do not match each other or the model.
        """
        names = check_class_names(class_names) if class_names is not None else self.class_names
        if len(names) != self.num_classes:
            raise ConfigError(
                f"Expected {self.num_classes} class names (the model's output size). Received: {len(names)}"
            )
        n_images = int(np.shape(images)[0]) if np.ndim(images) == 4 else 1
        n_labels = int(np.shape(labels)[0]) if np.ndim(labels) >= 1 else 1
        if n_images != n_labels:
            raise ConfigError(f"Expected one label per image. Received: {n_images} images and {n_labels} labels")
        probs = self.predict(images, batch_size=batch_size, progress=progress)
        return classification_metrics(labels, probs, names, reference_pred, predictions=probs)

    def classify(self, image: Any, top_k: int = 3) -> list[tuple[str, float]]:
        """The ``top_k`` ``(label, score)`` pairs for one raw uint8 image, best first."""
        top_k = check_int("top_k", top_k)
        arr = np.asarray(image)
        if arr.ndim == 4 and arr.shape[0] != 1:
            raise ConfigError(f"Expected one image. Received: shape={tuple(arr.shape)}")
        scores = self.predict(arr, batch_size=1, progress=False).reshape(-1)
        order = np.argsort(-scores, kind="stable")[:top_k]
        names = self.class_names
        return [(names[i], float(scores[i])) for i in order]

    def __repr__(self) -> str:
        name = self._path.name if self._path is not None else "<bytes>"
        io = self._io
        in_q = (
            [f"q=({io.input_quantization[0]:.6g}, {io.input_quantization[1]})"] if io.input_dtype.kind in "iu" else []
        )
        return fields_repr(
            "TFLiteModel",
            repr(name),
            f"input={self.input_shape} {io.input_dtype}",
            *in_q,
            f"output={io.output_shape} {io.output_dtype}",
            f"size={self.size_bytes / 1024:.1f} KiB",
            ("runtime", self.runtime),
            f"threads={self._num_threads}",
            f"xnnpack={self.xnnpack}",
            *([("delegate", self.delegate)] if self._device is not None else []),
        )


def as_model(model: TFLiteModel | str | Path | bytes, **kwargs: Any) -> TFLiteModel:
    """A :class:`TFLiteModel` from a model object, path or bytes (objects pass through)."""
    return model if isinstance(model, TFLiteModel) else TFLiteModel(model, **kwargs)
