"""Convert a Keras model to TFLite/LiteRT at every precision, from one table of recipes.

The model is exported once, as a minimal SavedModel holding only its batch-1 serving function with
its weights frozen into constants; every precision converts from that export (loading a full Keras
SavedModel dominates conversion time, a bare function loads in a fraction of a second). Files are written atomically next to a
``labels.txt``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import shared_output, write_atomic, write_labels, writing
from .._interrupt import call_interruptibly, interrupts_surface
from .._keras import check_keras2_model, is_qat_model, keras, tf
from .._log import captured_native_output, logger, tqdm
from .._text import fields_repr
from ..data.calibration import representative_dataset  # calibration lives with the data
from ..errors import ConfigError, ConversionError
from ..metrics import EvalResult
from ..precision import CONVERTIBLE, Precision
from ..records import Record
from ..training.flatten import serving_function
from .config import ConversionConfig
from .inspection import inspect_model
from .mixed import quantize_except
from .runtime import TFLiteModel
from .trust import record_converted


@dataclass(frozen=True)
class Recipe:
    """How one precision is produced by the TFLite converter."""

    precision: Precision
    description: str
    optimize: bool = False
    supported_types: tuple = ()
    ops_set: str = "TFLITE_BUILTINS"
    needs_calibration: bool = False
    integer_io: bool = False
    needs_qat_model: bool = False


#: One recipe per precision; callers look up here instead of branching on names.
RECIPES: dict[Precision, Recipe] = {
    Precision.FP32: Recipe(Precision.FP32, "float32 weights and activations"),
    Precision.FP16: Recipe(
        Precision.FP16, "float16 weights, float32 compute", optimize=True, supported_types=("float16",)
    ),
    Precision.DYNAMIC: Recipe(Precision.DYNAMIC, "int8 weights, float activations (dynamic-range)", optimize=True),
    Precision.INT8: Recipe(
        Precision.INT8,
        "int8 weights and activations, integer I/O",
        optimize=True,
        ops_set="TFLITE_BUILTINS_INT8",
        needs_calibration=True,
        integer_io=True,
    ),
    Precision.INT16X8: Recipe(
        Precision.INT16X8,
        "int16 activations, int8 weights, float I/O",
        optimize=True,
        ops_set="EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",
        needs_calibration=True,
    ),
    Precision.QAT_INT8: Recipe(
        Precision.QAT_INT8,
        "int8 from a quantization-aware-trained model, integer I/O",
        optimize=True,
        # The converter insists on a representative dataset for integer I/O even though the
        # quantization ranges come from training.
        ops_set="TFLITE_BUILTINS_INT8",
        needs_calibration=True,
        integer_io=True,
        needs_qat_model=True,
    ),
    # Named layers stay float (edgelab.diagnose.selective); float kernels must be allowed.
    Precision.MIXED_INT8: Recipe(
        Precision.MIXED_INT8,
        "int8 with chosen layers kept in float, integer I/O",
        optimize=True,
        needs_calibration=True,
        integer_io=True,
    ),
}


@dataclass(frozen=True)
class ConvertedModel(Record):
    """A converted .tflite file that knows its precision, labels and I/O quantization."""

    #: ``to_dict``: the file, its precision and its I/O (not the labels).
    RECORD_KEYS = (
        "path",
        "precision",
        "size_bytes",
        "input_dtype",
        "output_dtype",
        "input_quantization",
        "output_quantization",
    )

    path: Path
    precision: Precision
    labels: tuple[str, ...] = ()
    size_bytes: int = 0
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    input_quantization: tuple[float, int] | None = None
    output_quantization: tuple[float, int] | None = None
    convert_seconds: float = field(default=0.0, compare=False)
    # Runtime models by (num_threads, options): predict/evaluate reuse one interpreter per setting.
    _loaded: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __repr__(self) -> str:
        return fields_repr(
            "ConvertedModel",
            ("precision", self.precision.value),
            ("path", self.path.name),
            f"size_kib={self.size_bytes / 1024:.1f}",
            f"input={self.input_dtype}, output={self.output_dtype}",  # kept together on one line
        )

    @classmethod
    def from_file(
        cls, path: str | Path, precision: Precision | str, labels: Sequence[str] = (), convert_seconds: float = 0.0
    ) -> ConvertedModel:
        """Describe an existing .tflite file (reads its I/O tensors without TensorFlow)."""
        info = inspect_model(path)
        inp, out = info.inputs[0], info.outputs[0]

        def quant(t) -> tuple[float, int] | None:
            return (float(t.scale), int(t.zero_point)) if t.scale else None

        return cls(
            path=Path(path),
            precision=Precision.parse(precision),
            labels=tuple(labels),
            size_bytes=info.size_bytes,
            input_dtype=inp.dtype,
            output_dtype=out.dtype,
            input_quantization=quant(inp),
            output_quantization=quant(out),
            convert_seconds=convert_seconds,
        )

    def load(self, num_threads: int = 1, **kwargs: Any) -> TFLiteModel:
        """The runtime :class:`edgelab.tflite.runtime.TFLiteModel` for this file, made once per setting."""
        key = (num_threads, tuple(sorted(kwargs.items())))
        if key not in self._loaded:
            self._loaded[key] = TFLiteModel(self.path, labels=list(self.labels), num_threads=num_threads, **kwargs)
        return self._loaded[key]

    def predict(self, images: np.ndarray, num_threads: int = 1, **kwargs) -> np.ndarray:
        """Class probabilities for uint8 images, computed by the converted file."""
        return self.load(num_threads=num_threads).predict(images, **kwargs)

    def evaluate(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        reference_pred: np.ndarray | None = None,
        num_threads: int = 1,
        **kwargs: Any,
    ) -> EvalResult:
        """Accuracy, per-class metrics, confusion matrix and agreement, measured on the file."""
        return self.load(num_threads=num_threads).evaluate(
            images, labels, class_names=list(self.labels) or None, reference_pred=reference_pred, **kwargs
        )


class ExportedModel:
    """A Keras model exported once (batch fixed to 1) for all of its conversions.

    Use as a context manager or call :meth:`cleanup`; the export lives in a temporary folder.
    """

    def __init__(self, model: keras.Model, batch_size: int = 1):
        _check_keras_model(model)
        self.model = model
        shape = [batch_size, *model.input_shape[1:]]
        if any(d is None for d in shape[1:]):
            raise ConfigError(
                f"Expected a model with a static input shape (H, W, C). Received: input_shape={model.input_shape}"
            )
        self.input_shape = tuple(shape)
        self._dir = Path(tempfile.mkdtemp(prefix="edgelab-export-"))
        start = time.perf_counter()
        module, signature = _export_module(model, shape)
        tf_logger = logging.getLogger("tensorflow")
        level = tf_logger.level
        tf_logger.setLevel(logging.WARNING)  # "Assets written to /tmp/..." is noise at INFO level
        try:
            with writing(self._dir):  # a full disk is one OSError(ENOSPC), not TensorFlow's SaveV2 text
                tf.saved_model.save(module, str(self._dir), signatures={"serving_default": signature})
        except BaseException:
            self.cleanup()
            raise
        finally:
            tf_logger.setLevel(level)
        self.export_seconds = time.perf_counter() - start
        logger.info("exported %s in %.1f s", model.name, self.export_seconds)

    @property
    def saved_model_dir(self) -> Path:
        return self._dir

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ExportedModel:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _export_module(model: keras.Model, shape: list) -> tuple[Any, Any]:
    """The module to save and its serving signature: the batch-``shape`` function with its weights frozen.

    Every file takes edgelab's [-1, 1] input, whatever range the Keras model expects (edgelab.preprocess).
    Freezing the weights into constants before saving leaves the SavedModel without variables: no
    checkpoint is written, and each converter loads a bare graph instead of restoring every variable
    (for a QAT model that is every quantizer's min/max too). The converter folds the same constants
    either way: ops, tensors, quantization and weights of the files are the same; only the output
    tensor's name differs (``PartitionedCall:0`` for ``StatefulPartitionedCall:0``). A function that
    cannot be frozen (resources other than variables) is saved with its variables as before.
    """
    from tensorflow.python.framework.convert_to_constants import (  # deferred: TensorFlow internals
        convert_variables_to_constants_v2,
    )

    serve, variables = serving_function(model)
    function = tf.function(serve, input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    module = tf.Module()
    try:
        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    except Exception as exc:  # e.g. a lookup table: keep the variables in the export
        logger.debug("exporting %s with its variables (not frozen: %s)", model.name, exc)
        module.variables_ = variables  # keeps the weights tracked by the export
        module.serve = function
        return module, function
    module.serve = frozen
    return module, frozen


def _check_keras_model(model: Any) -> None:
    check_keras2_model(model)


def _checked_samples(generate: Callable[[], Iterable], shape: tuple[int, ...]) -> Callable[[], Iterable]:
    """Refuse calibration samples of another shape: the converter would silently resize its input to them
    and calibrate on images the model never sees (e.g. a dataset loaded at another image size)."""

    def checked():
        for sample in generate():
            if isinstance(sample, dict):  # samples keyed by input name
                sample_values = list(sample.values())
                first = sample_values[0] if sample_values else None
            else:
                first = sample[0] if isinstance(sample, (list, tuple)) else sample
            if tuple(np.shape(first)) != tuple(shape):
                raise ConfigError(
                    f"Expected calibration samples of the model's input shape {tuple(shape)}. "
                    f"Received: shape={tuple(np.shape(first))}"
                )
            yield sample

    return checked


def _converter(exported: ExportedModel, recipe: Recipe, calibration, io_dtype: str):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(exported.saved_model_dir))
    return _configure(converter, recipe, calibration, io_dtype)


def _configure(converter: Any, recipe: Recipe, calibration, io_dtype: str) -> Any:
    if recipe.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.supported_types:
        converter.target_spec.supported_types = [getattr(tf, t) for t in recipe.supported_types]
    converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, recipe.ops_set)]
    if recipe.needs_calibration:
        converter.representative_dataset = calibration
    if recipe.integer_io:
        converter.inference_input_type = getattr(tf, io_dtype)
        converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def convert(
    model: keras.Model | ExportedModel,
    precision: Precision | str,
    *,
    out_dir: str | Path,
    calibration: Any = None,
    labels: Sequence[str] = (),
    config: ConversionConfig | None = None,
    **options: Any,
) -> ConvertedModel:
    """Convert one model to one precision and write ``<out_dir>/<name>_<precision>.tflite``.

    Args:
        model: A tf_keras model, or an :class:`ExportedModel` to reuse one export for many precisions.
            For ``qat_int8`` this must be the quantization-aware model (see :mod:`edgelab.training.qat`).
        precision: One of ``fp32, fp16, dynamic, int8, int16x8, qat_int8, mixed_int8``.
        out_dir: Folder for the .tflite and ``labels.txt``.
        calibration: Representative data for int8/int16x8 (see :func:`representative_dataset`).
        labels: Class names, written to ``labels.txt``.
        config: A :class:`ConversionConfig` (I/O type, calibration samples and seed, ``keep_float``,
            file name stem, reuse); default: ``ConversionConfig()``.
        **options: Fields of :class:`ConversionConfig` (``name="m"``, ``io_dtype="int8"``, ...),
            replacing the config's.

    Raises:
        ConfigError: an option is unknown or out of range, or the precision needs what is missing.
        ConversionError: The converter failed; the message names the precision and the cause.
    """
    cfg = ConversionConfig.resolve(config, options)
    io_dtype, calibration_samples, seed = cfg.io_dtype, cfg.calibration_samples, cfg.seed
    keep_float, name = cfg.keep_float, cfg.name
    precision = Precision.parse(precision)
    if precision not in RECIPES:
        raise ConfigError(
            f"Expected a precision the converter produces, one of {[p.value for p in CONVERTIBLE]}. "
            f"Received: {precision.value!r} (edgetpu models come from edgelab.edgetpu.compile on an int8 file)."
        )
    recipe = RECIPES[precision]
    if precision is Precision.MIXED_INT8 and not keep_float:
        raise ConfigError(
            "Expected layers to keep in float for 'mixed_int8' (keep_float=[...]). Received: keep_float=[]"
        )
    if recipe.needs_calibration and calibration is None:
        raise ConfigError(
            f"Precision {precision.value!r} needs calibration data: pass calibration=dataset or (images, labels)."
        )
    out_path = Path(out_dir) / f"{name}_{precision.value}.tflite"
    if cfg.reuse and _reusable(out_path, precision, keep_float):
        try:
            return ConvertedModel.from_file(out_path, precision, labels)
        except Exception as exc:  # an unreadable leftover is converted again
            logger.warning("re-converting %s: %s", out_path.name, exc)
    owns_export = not isinstance(model, ExportedModel)
    if owns_export:
        _check_keras_model(model)
    # Check before exporting: a refused model must not cost an export (nor leave its temp folder).
    _check_qat(model if owns_export else model.model, recipe)
    exported = ExportedModel(model) if owns_export else model
    try:
        gen = None
        if recipe.needs_calibration:
            gen = _checked_samples(representative_dataset(calibration, calibration_samples, seed), exported.input_shape)
        start = time.perf_counter()
        try:
            with captured_native_output(f"converter ({precision.value})"):

                def run() -> bytes:
                    converter = _converter(exported, recipe, gen, io_dtype)
                    if precision is Precision.MIXED_INT8:
                        return quantize_except(converter, keep_float, io_dtype)
                    return converter.convert()

                # In a worker thread: Ctrl-C stops the wait at once, not after the C++ converter returns.
                flatbuffer = call_interruptibly(run)
        except Exception as exc:  # the converter raises many types; keep the cause, name the precision
            cause = str(exc).strip().splitlines()
            raise ConversionError(
                f"Converting to {precision.value} failed: {type(exc).__name__}: {cause[-1] if cause else ''}"
            ) from exc
        seconds = time.perf_counter() - start
    finally:
        if owns_export:
            exported.cleanup()
    write_atomic(out_path, flatbuffer)
    record_converted(flatbuffer)  # edgelab wrote it: its loads skip the child-process check
    if precision is Precision.MIXED_INT8:  # which layers stayed float decides whether the file can be reused
        write_atomic(_keep_float_record(out_path), json.dumps(sorted(keep_float)).encode())
    if labels:
        write_labels(out_path.parent, labels)
    logger.info("%s: %d bytes in %.1f s", out_path.name, len(flatbuffer), seconds)
    return ConvertedModel.from_file(out_path, precision, labels, convert_seconds=seconds)


def _keep_float_record(path: Path) -> Path:
    return path.with_suffix(".keep_float.json")


def _reusable(path: Path, precision: Precision, keep_float: Sequence[str]) -> bool:
    """An existing file is reused only if it was made with the same settings."""
    if not path.exists():
        return False
    if precision is not Precision.MIXED_INT8:
        return True
    try:
        return json.loads(_keep_float_record(path).read_text()) == sorted(keep_float)
    except (OSError, ValueError):
        return False


def _check_qat(model: keras.Model, recipe: Recipe) -> None:
    if recipe.needs_qat_model and not is_qat_model(model):
        raise ConfigError(
            "Expected a quantization-aware-trained model for 'qat_int8' (see edgelab.training.qat.quantize_aware). "
            f"Received: {model.name!r}, which has no quantization wrappers; use 'int8' for post-training quantization."
        )
    if not recipe.needs_qat_model and is_qat_model(model):
        raise ConfigError(
            f"Expected a float model for {recipe.precision.value!r}. Received: the quantization-aware model "
            f"{model.name!r}; convert it with precision 'qat_int8'."
        )


@dataclass(frozen=True)
class ConversionFailure:
    """A precision that could not be converted: kept as a row, never lost in an exception."""

    precision: Precision
    reason: str

    def __repr__(self) -> str:
        return f"ConversionFailure(precision={self.precision.value!r}, reason={self.reason!r})"


def convert_all(
    model: keras.Model,
    *,
    out_dir: str | Path,
    calibration: Any,
    labels: Sequence[str] = (),
    qat_model: keras.Model | None = None,
    config: ConversionConfig | None = None,
    progress: bool | None = None,
    **options: Any,
) -> dict[Precision, ConvertedModel | ConversionFailure]:
    """Convert one model to several precisions from a single export; failures become entries.

    Args:
        model: The float tf_keras model.
        out_dir: Folder for the .tflite files and ``labels.txt``.
        calibration: Representative data for the calibrated precisions.
        labels: Class names.
        qat_model: The quantization-aware model, for ``qat_int8``.
        config: A :class:`ConversionConfig`: which precisions (default: all; ``qat_int8`` only when
            ``qat_model`` is given, ``mixed_int8`` only with ``keep_float``), I/O type, calibration
            samples, file name stem, reuse of existing files.
        progress: Show a progress bar.
        **options: Fields of :class:`ConversionConfig` (``precisions=["int8"]``, ``reuse=True``, ...),
            replacing the config's.
    """
    cfg = ConversionConfig.resolve(config, options)
    keep_float, reuse, name = cfg.keep_float, cfg.reuse, cfg.name
    wanted = (
        list(cfg.precisions)
        if cfg.precisions is not None
        else [p for p in CONVERTIBLE if p is not Precision.QAT_INT8 or qat_model is not None]
        + ([Precision.MIXED_INT8] if keep_float else [])
    )
    results: dict[Precision, ConvertedModel | ConversionFailure] = {}
    exports: dict[int, ExportedModel] = {}
    # With reuse, another process filling the same folder finishes first and its files are reused.
    with shared_output(Path(out_dir)) if reuse else contextlib.nullcontext():
        try:
            for precision in tqdm(wanted, desc="convert", unit="model", progress=progress):
                with interrupts_surface():  # a Ctrl-C swallowed by TensorFlow's callbacks stops here
                    source = qat_model if precision is Precision.QAT_INT8 else model
                    path = Path(out_dir) / f"{name}_{precision.value}.tflite"
                    if reuse and _reusable(path, precision, keep_float):
                        try:
                            results[precision] = ConvertedModel.from_file(path, precision, labels)
                            continue
                        except Exception as exc:  # an unreadable leftover is converted again
                            logger.warning("re-converting %s: %s", path.name, exc)
                    if source is None:
                        results[precision] = ConversionFailure(
                            precision, "no quantization-aware model given (qat_model=None)"
                        )
                        continue
                    try:
                        if id(source) not in exports:
                            exports[id(source)] = ExportedModel(source)
                        results[precision] = convert(
                            exports[id(source)],
                            precision,
                            out_dir=out_dir,
                            calibration=calibration,
                            labels=labels,
                            config=cfg.replace(reuse=False),  # checked above, before the export
                        )
                    except (ConversionError, ConfigError) as exc:
                        logger.warning("%s", exc)
                        results[precision] = ConversionFailure(precision, str(exc))
        finally:
            for exported in exports.values():
                exported.cleanup()
    if labels:
        write_labels(Path(out_dir), labels)
    return results


def convert_graph_int8(model: keras.Model, images: np.ndarray, io_dtype: str = "uint8") -> bytes:
    """The int8 flatbuffer of ``model``'s graph, converted from its traced function frozen in memory.

    For analysing a graph, not for shipping: :func:`convert` exports a SavedModel and converts it
    (the file carries a serving signature); this converts the same batch-1 serving function (same
    [-1, 1] input, same :data:`RECIPES` settings) without writing and reloading an export, in about
    a third of the CPU time. The ops, their shapes and quantization are those of :func:`convert`'s
    file; the file lacks the signature (a few hundred bytes). ``edgelab.tune``'s prescreen uses it.

    Args:
        model: A float tf_keras model with a static input shape.
        images: Calibration images, uint8 pixels of the model's input shape (a few random ones will
            do: the graph, not the ranges, is what is analysed).
        io_dtype: ``"uint8"`` or ``"int8"`` input and output.

    Raises:
        ConversionError: The converter failed.
    """
    _check_keras_model(model)
    recipe = RECIPES[Precision.INT8]
    shape = (1, *(int(d) for d in model.input_shape[1:]))
    samples = _checked_samples(representative_dataset(images, len(images), 0), shape)
    try:
        with captured_native_output("converter (int8, graph)"), warnings.catch_warnings():
            # the frozen-graph converter warns that inputs carry no statistics: the calibration sets them
            warnings.simplefilter("ignore", UserWarning)

            def run() -> bytes:
                serve, variables = serving_function(model)
                module = tf.Module()
                module.variables_ = variables
                module.serve = tf.function(serve, input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
                converter = tf.lite.TFLiteConverter.from_concrete_functions(
                    [module.serve.get_concrete_function()], module
                )
                converter.experimental_lower_to_saved_model = False  # freeze in memory: no SavedModel round trip
                return _configure(converter, recipe, samples, io_dtype).convert()

            flatbuffer = call_interruptibly(run)
    except Exception as exc:  # the converter raises many types; keep the cause
        cause = str(exc).strip().splitlines()
        raise ConversionError(
            f"Converting the graph to int8 failed: {type(exc).__name__}: {cause[-1] if cause else ''}"
        ) from exc
    record_converted(flatbuffer)
    return flatbuffer
