"""Run a converted .tflite classifier without TensorFlow.

The interpreter comes from LiteRT (``ai_edge_litert``) when it is installed, else from the legacy
``tflite_runtime`` wheel (old device images), else from ``tf.lite`` (TensorFlow, imported only then).
Everything here needs only numpy and one of those runtimes, so the same code runs on a device.

Inputs are raw uint8 pixels; :class:`TFLiteModel` normalises them with
:func:`edgelab.preprocess.normalize` and quantizes them with the model's own scale and zero point,
then dequantizes the outputs back to float probabilities.

XNNPACK detection: LiteRT applies its default delegate (XNNPACK, the only default delegate of the
CPU build) lazily, inside the first ``allocate_tensors()``; it replaces the ops it takes with one
``DELEGATE`` node in the execution plan. edgelab counts ``DELEGATE`` nodes before and after that
first allocation: new nodes mean XNNPACK took part of the graph (``xnnpack=True``). A model XNNPACK
cannot run (int16x8, for example) keeps its plain ops and reports ``xnnpack=False`` even though the
delegate was enabled. ``use_xnnpack=False`` builds the interpreter with
``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``, which never applies it; so does the
environment variable ``EDGELAB_XNNPACK=0`` for every interpreter edgelab builds (to check results
with the built-in kernels, the way a CPU without XNNPACK's fast paths computes them).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._log import captured_native_output, logger, tqdm
from ..errors import ConfigError, DelegateError, ModelFileError, RuntimeNotFoundError, check_int, did_you_mean
from .inspection import EDGETPU_CUSTOM_OP, has_edgetpu_custom_op, load_model_bytes
from ..precision import Precision
from ..preprocess import normalize

__all__ = [
    "RUNTIMES",
    "LoadedInterpreter",
    "TFLiteModel",
    "as_model",
    "dequantize",
    "load_interpreter",
    "load_interpreter_info",
    "quantize",
]

#: Runtimes in the order edgelab tries them.
RUNTIMES = ("litert", "tflite_runtime", "tensorflow")

_INT_DTYPES = (np.int8, np.uint8, np.int16)


# --------------------------------------------------------------------------- runtime discovery


@dataclasses.dataclass(frozen=True)
class _Runtime:
    name: str  # "litert 2.3.0"
    interpreter_cls: Any
    op_resolver_type: Any  # the OpResolverType enum of that runtime, or None when it has none


def _import_litert() -> _Runtime:
    from ai_edge_litert import interpreter as mod

    version = getattr(importlib.import_module("ai_edge_litert"), "__version__", "?")
    return _Runtime(f"litert {version}", mod.Interpreter, getattr(mod, "OpResolverType", None))


def _import_tflite_runtime() -> _Runtime:
    from tflite_runtime import interpreter as mod

    version = getattr(importlib.import_module("tflite_runtime"), "__version__", "?")
    return _Runtime(f"tflite_runtime {version}", mod.Interpreter, getattr(mod, "OpResolverType", None))


def _import_tensorflow() -> _Runtime:
    try:  # edgelab._keras sets TensorFlow's environment flags before the import
        from .._keras import tf
    except ImportError:
        import tensorflow as tf  # a device with TensorFlow but without tf_keras
    resolver = getattr(getattr(tf.lite, "experimental", None), "OpResolverType", None)
    return _Runtime(f"tensorflow {tf.__version__}", tf.lite.Interpreter, resolver)


_IMPORTERS = {"litert": _import_litert, "tflite_runtime": _import_tflite_runtime, "tensorflow": _import_tensorflow}


@functools.lru_cache(maxsize=None)
def _get_runtime(name: str | None = None) -> _Runtime:
    """The first runtime that imports (or exactly ``name``), cached."""
    if name is not None and name not in _IMPORTERS:
        raise ConfigError(
            f"Expected runtime to be one of {list(RUNTIMES)} or None. Received: runtime={name!r}."
            f"{did_you_mean(name, RUNTIMES)}"
        )
    reasons = []
    for candidate in [name] if name else RUNTIMES:
        try:
            runtime = _IMPORTERS[candidate]()
        except Exception as exc:  # noqa: BLE001 - e.g. tflite_runtime 2.14 under numpy 2 fails on import
            reasons.append(f"{candidate}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        logger.debug("TFLite runtime: %s", runtime.name)
        return runtime
    raise RuntimeNotFoundError(
        "No TFLite runtime could be imported (" + "; ".join(reasons) + "). "
        "Install LiteRT with `pip install ai-edge-litert`."
    )


# --------------------------------------------------------------------------- file checks


def _describe(model: str | Path | bytes) -> str:
    return f"model bytes ({len(model)} bytes)" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)


def _compiled_for_edgetpu(data: bytes) -> bool:
    """True when checked model bytes hold the Edge TPU compiler's ``edgetpu-custom-op``."""
    try:
        return has_edgetpu_custom_op(data)
    except ModelFileError:
        # Unparseable bytes: the interpreter reports the file (with its path) right after this.
        return EDGETPU_CUSTOM_OP.encode() in data


# --------------------------------------------------------------------------- loading


@dataclasses.dataclass(frozen=True)
class LoadedInterpreter:
    """An allocated interpreter and how it was made.

    Attributes:
        interpreter: the runtime's ``Interpreter``, tensors allocated.
        runtime: which runtime ran, e.g. ``"litert 2.3.0"``.
        xnnpack: whether XNNPACK took part of the graph (None when the runtime cannot tell).
        model_bytes: the model's bytes (kept alive for the interpreter's lifetime).
    """

    interpreter: Any
    runtime: str
    xnnpack: bool | None
    model_bytes: bytes = dataclasses.field(repr=False)


def _delegate_nodes(interpreter: Any) -> int | None:
    """How many ``DELEGATE`` nodes the execution plan holds; None if the runtime cannot list ops."""
    try:
        ops = interpreter._get_ops_details()  # noqa: SLF001 - the only op listing the Python API has
    except Exception:  # noqa: BLE001
        return None
    return sum(1 for op in ops if op.get("op_name") == "DELEGATE")


def load_interpreter_info(
    model: str | Path | bytes,
    num_threads: int = 1,
    delegates: Sequence[Any] | None = None,
    use_xnnpack: bool = True,
    *,
    runtime: str | None = None,
) -> LoadedInterpreter:
    """Like :func:`load_interpreter`, but also says whether XNNPACK was used.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, or fails to load.
        DelegateError: the model needs the Edge TPU delegate and none was given.
        RuntimeNotFoundError: no TFLite runtime is installed.
    """
    data, _ = load_model_bytes(model)
    return _load_checked(data, _describe(model), num_threads, delegates, use_xnnpack, runtime)


def _load_checked(
    data: bytes,
    where: str,
    num_threads: int,
    delegates: Sequence[Any] | None,
    use_xnnpack: bool,
    runtime: str | None,
) -> LoadedInterpreter:
    """Load bytes already checked by :func:`~edgelab.tflite.inspection.load_model_bytes`; ``where`` names
    them in errors."""
    num_threads = check_int("num_threads", num_threads)
    if not delegates and _compiled_for_edgetpu(data):
        raise DelegateError(
            f"{where} is compiled for the Edge TPU (it contains edgetpu-custom-op), so it needs the "
            "Edge TPU delegate: load it with delegate='edgetpu' on a machine with libedgetpu and a "
            "Coral device, or use the model from before edgetpu_compiler on the CPU."
        )
    rt = _get_runtime(runtime)
    if os.environ.get("EDGELAB_XNNPACK") == "0" and rt.op_resolver_type is not None:
        use_xnnpack = False
    kwargs: dict[str, Any] = {"model_content": data, "num_threads": num_threads}
    if delegates:
        kwargs["experimental_delegates"] = list(delegates)
    if not use_xnnpack:
        if rt.op_resolver_type is None:
            raise ConfigError(f"{rt.name} cannot turn XNNPACK off (no OpResolverType). Received: use_xnnpack=False")
        kwargs["experimental_op_resolver_type"] = rt.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        # The runtime's C++ notices ("Created TensorFlow Lite XNNPACK delegate") go to the debug log.
        with warnings.catch_warnings(), captured_native_output(f"{rt.name} interpreter"):
            # tf.lite.Interpreter warns that it is deprecated in favour of LiteRT on every load.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            interpreter = rt.interpreter_cls(**kwargs)
            before = _delegate_nodes(interpreter)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        cause = " ".join(str(exc).split()) or type(exc).__name__
        if "not a valid Flatbuffer" in cause:
            cause = f"the file is corrupt or truncated ({len(data)} bytes): {cause}"
        elif delegates:
            raise DelegateError(f"Cannot load {where} with {rt.name} and its delegate: {cause}") from None
        raise ModelFileError(f"Cannot load {where} with {rt.name}: {cause}") from None
    after = _delegate_nodes(interpreter)
    xnnpack = None if before is None or after is None else (use_xnnpack and after > before)
    return LoadedInterpreter(interpreter, rt.name, xnnpack, data)


def load_interpreter(
    model: str | Path | bytes,
    num_threads: int = 1,
    delegates: Sequence[Any] | None = None,
    use_xnnpack: bool = True,
    *,
    runtime: str | None = None,
) -> tuple[Any, str]:
    """Load and allocate a TFLite interpreter with the best runtime available.

    Args:
        model: path of a .tflite file, or its bytes.
        num_threads: CPU threads for the interpreter's kernels.
        delegates: delegate objects (e.g. the Edge TPU delegate) applied to the graph.
        use_xnnpack: apply LiteRT's default XNNPACK delegate (False: built-in kernels only).
        runtime: force ``"litert"``, ``"tflite_runtime"`` or ``"tensorflow"`` (default: first found).

    Returns:
        ``(interpreter, runtime_name)``, e.g. ``(Interpreter, "litert 2.3.0")``.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, or fails to load.
    """
    loaded = load_interpreter_info(model, num_threads, delegates, use_xnnpack, runtime=runtime)
    return loaded.interpreter, loaded.runtime


# --------------------------------------------------------------------------- (de)quantization


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """Float values -> integer ``dtype`` with TFLite's rule ``round(x / scale) + zero_point``.

    Rounding is half away from zero (TFLite's ``QUANTIZE`` op), the sum is done in int64 so
    extreme zero points cannot overflow, and the result is clipped to the dtype's range.
    """
    dtype = np.dtype(dtype)
    if dtype.type not in _INT_DTYPES:
        raise ConfigError(f"Expected an int8, uint8 or int16 dtype. Received: dtype={dtype}")
    if not scale > 0:
        raise ConfigError(f"Expected a positive quantization scale. Received: scale={scale!r}")
    scaled = np.asarray(x, np.float64) / float(scale)
    rounded = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)
    info = np.iinfo(dtype)
    return np.clip(rounded + np.int64(zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer values -> float32 ``scale * (q - zero_point)``, the difference taken in int64."""
    return (float(scale) * (np.asarray(q).astype(np.int64) - np.int64(zero_point))).astype(np.float32)


def _quant_params(detail: dict) -> tuple[float, int]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    if scales is not None and len(scales) > 1:
        raise ModelFileError(
            f"Expected per-tensor quantization on the model's input/output {detail.get('name')!r}. "
            f"Received: {len(scales)} per-channel scales."
        )
    return float(scale), int(zero_point)


# --------------------------------------------------------------------------- the model object


def _read_labels(labels: Sequence[str] | str | Path | None) -> tuple[str, ...] | None:
    if labels is None or (not isinstance(labels, (str, Path)) and len(labels) == 0):
        return None
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.is_file():
            raise ConfigError(
                f"Expected labels to be a list of class names or a labels file. Received: labels={str(labels)!r} "
                "(no such file)"
            )
        return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return tuple(str(name) for name in labels)


def _parse_delegate(delegate: str | None) -> str | None:
    """``None | "edgetpu" | "edgetpu:usb:0"`` -> the device selector ('' for any device)."""
    if delegate is None:
        return None
    text = str(delegate).strip()
    head, _, device = text.partition(":")
    if head.lower() != "edgetpu":
        raise ConfigError(
            "Expected delegate to be None, 'edgetpu' or 'edgetpu:<device>' (e.g. 'edgetpu:usb:0', "
            f"'edgetpu:pci:0'). Received: delegate={delegate!r}.{did_you_mean(head, ['edgetpu'])}"
        )
    return device


def _load_edgetpu(device: str) -> Any:
    try:
        from ..edgetpu.delegate import load_edgetpu_delegate
    except ImportError as exc:
        raise DelegateError(f"Edge TPU delegate support is not available in this edgelab install: {exc}") from None
    return load_edgetpu_delegate(device or None)


class TFLiteModel:
    """A converted .tflite classifier: raw uint8 pixels in, float probabilities out.

    Args:
        model_path_or_bytes: path of a .tflite file, or its bytes.
        labels: class names, or the path of a labels file (one name per line).
        num_threads: CPU threads for the interpreter.
        delegate: None (CPU), ``"edgetpu"`` or ``"edgetpu:<device>"`` (``usb``, ``usb:0``, ``pci:0``).
        precision: the model's precision (a :class:`edgelab.precision.Precision` or its name), kept
            for tables and reports.
        use_xnnpack: apply LiteRT's XNNPACK delegate on the CPU.
        batching: run several images per ``invoke()`` when the model allows it. None (default):
            only with ``num_threads > 1``, where measured here it gives 1.2-1.3x the images/s
            (2 threads, batch 8-32); with one thread it gained nothing and batch 32 lost up to 25%
            on float models (cache pressure), so one image per ``invoke()`` is the default there.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, or fails to load.
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
    ) -> None:
        self._precision = Precision.parse(precision) if precision is not None else None
        self._path = None if isinstance(model_path_or_bytes, (bytes, bytearray, memoryview)) else Path(model_path_or_bytes)
        self._device = _parse_delegate(delegate)
        self._where = where = _describe(model_path_or_bytes)  # names the model in errors
        data, _ = load_model_bytes(model_path_or_bytes)  # a bad file is reported before a missing delegate
        self._delegates = [_load_edgetpu(self._device)] if self._device is not None else None
        self._use_xnnpack = bool(use_xnnpack)
        loaded = _load_checked(data, where, num_threads, self._delegates, self._use_xnnpack, None)
        self._loaded = loaded
        self._interpreter = loaded.interpreter
        self._num_threads = int(num_threads)
        self._edgetpu = _compiled_for_edgetpu(loaded.model_bytes)

        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelFileError(
                f"Expected a classifier with one image input and one output. Received: {where} with "
                f"{len(inputs)} inputs and {len(outputs)} outputs."
            )
        self._in, self._out = inputs[0], outputs[0]
        shape = tuple(int(d) for d in self._in["shape"])
        if len(shape) != 4:
            raise ModelFileError(f"Expected an NHWC image input of rank 4. Received: {where} with input shape {shape}")
        self._in_dtype = np.dtype(self._in["dtype"])
        self._out_dtype = np.dtype(self._out["dtype"])
        self._in_q = _quant_params(self._in)
        self._out_q = _quant_params(self._out)
        self._lut = self._input_table()
        self._labels = _read_labels(labels)
        n_out = int(np.prod(self._out["shape"][1:]))
        if self._labels is not None and len(self._labels) != n_out:
            raise ConfigError(
                f"Expected {n_out} labels (the model's output size). Received: {len(self._labels)} labels"
            )
        # Batched invocation: a second interpreter resized to the batch, made on first use. The Edge
        # TPU custom op is compiled for a fixed batch of one, so compiled models run one at a time.
        wanted = self._num_threads > 1 if batching is None else bool(batching)
        self._batching = wanted and not self._edgetpu
        self._batched: Any = None
        self._batched_size = 0
        self._batch_checked = False

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
        return int(np.prod(self._out["shape"][1:]))

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
        return self._in_dtype

    @property
    def output_dtype(self) -> np.dtype:
        """The output tensor's dtype."""
        return self._out_dtype

    @property
    def input_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the input; ``(0.0, 0)`` for a float input."""
        return self._in_q

    @property
    def output_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the output; ``(0.0, 0)`` for a float output."""
        return self._out_q

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
        return self._batching

    @property
    def interpreter(self) -> Any:
        """The batch-one interpreter (for benchmarking and low-level use)."""
        return self._interpreter

    # ------------------------------------------------------------------ input / output

    def _input_table(self) -> np.ndarray | None:
        """For an integer input: the quantized model input of each uint8 pixel value (a lookup table).

        Every pixel maps independently, so indexing this table gives exactly the element-wise
        ``quantize(normalize(x))`` at a fraction of the cost. Float inputs need no table.
        """
        if self._in_dtype.kind == "f":
            return None
        if self._in_dtype.type not in _INT_DTYPES:
            raise ModelFileError(
                f"Expected a float, uint8, int8 or int16 input. Received: {self._in_dtype} in {self._where}"
            )
        scale, zero_point = self._in_q
        if not scale > 0:
            raise ModelFileError(
                f"Expected quantization parameters on the {self._in_dtype} input of {self._where}. "
                f"Received: scale={scale}, zero_point={zero_point}"
            )
        return quantize(normalize(np.arange(256, dtype=np.uint8)), scale, zero_point, self._in_dtype)

    def _encode(self, images: np.ndarray) -> np.ndarray:
        """Checked uint8 images -> the input tensor (normalized, then quantized for integer inputs)."""
        if self._lut is None:
            return normalize(images).astype(self._in_dtype, copy=False)
        return self._lut[images]

    def _check_images(self, images: Any) -> np.ndarray:
        received = np.asarray(images)
        expected = self.image_shape
        arr = received[None] if received.ndim == 3 else received
        h, w, c = expected
        if arr.ndim != 4 or arr.shape[1:] != expected or arr.dtype != np.uint8:
            raise ConfigError(
                f"Expected uint8 images of shape (N, {h}, {w}, {c}) or ({h}, {w}, {c}) (raw pixels; "
                f"normalization happens inside). Received: shape={tuple(received.shape)}, dtype={received.dtype}. "
                "Resizing is the caller's job, e.g. with PIL's Image.resize."
            )
        return arr

    def prepare_input(self, images: Any) -> np.ndarray:
        """Raw uint8 pixels -> the model's input tensor (normalized and quantized), batch first."""
        return self._encode(self._check_images(images))

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        if self._out_dtype.type in _INT_DTYPES:
            scale, zero_point = self._out_q
            if scale > 0:
                return dequantize(raw, scale, zero_point)
        return raw.astype(np.float32)

    def set_input(self, image: Any) -> None:
        """Set one image (raw uint8 pixels) as the batch-one interpreter's input."""
        x = self.prepare_input(image)
        if x.shape[0] != 1:
            raise ConfigError(f"Expected one image. Received: shape={tuple(np.asarray(image).shape)}")
        self._interpreter.set_tensor(self._in["index"], x)

    def invoke_once(self) -> None:
        """Run the batch-one interpreter once on its current input (for benchmarking)."""
        self._interpreter.invoke()

    # ------------------------------------------------------------------ inference

    def _run_single(self, x: np.ndarray) -> np.ndarray:
        interp, out_index, in_index = self._interpreter, self._out["index"], self._in["index"]
        rows = []
        for i in range(x.shape[0]):
            interp.set_tensor(in_index, x[i : i + 1])
            interp.invoke()
            rows.append(interp.get_tensor(out_index)[0])  # get_tensor copies
        return np.stack(rows)

    def _ensure_batched(self, n: int) -> Any:
        """The batched interpreter resized to ``n`` images, or None when the model will not batch."""
        if self._batched is None:
            try:
                self._batched = load_interpreter_info(
                    self._loaded.model_bytes, self._num_threads, None, self._use_xnnpack
                ).interpreter
            except Exception as exc:  # noqa: BLE001 - any failure means: run one at a time
                logger.debug("batched interpreter unavailable, running one image at a time: %s", exc)
                self._batching = False
                return None
        if self._batched_size != n:
            try:
                self._batched.resize_tensor_input(self._in["index"], [n, *self.image_shape])
                self._batched.allocate_tensors()
                out_shape = tuple(self._batched.get_tensor(self._out["index"]).shape)
            except Exception as exc:  # noqa: BLE001
                logger.debug("model cannot be resized to a batch of %d, running one at a time: %s", n, exc)
                self._batching, self._batched = False, None
                return None
            if out_shape[:1] != (n,):
                # e.g. a Reshape to a fixed [1, classes] inside the graph: batching would be wrong.
                logger.debug("output shape %s does not follow the batch of %d; running one at a time", out_shape, n)
                self._batching, self._batched = False, None
                return None
            self._batched_size = n
        return self._batched

    def _run_batch(self, x: np.ndarray) -> np.ndarray | None:
        interp = self._ensure_batched(x.shape[0])
        if interp is None:
            return None
        interp.set_tensor(self._in["index"], x)
        interp.invoke()
        out = interp.get_tensor(self._out["index"])
        if not self._batch_checked:
            # The batched graph must give exactly the one-at-a-time result; check once per model.
            probe = [0, x.shape[0] - 1]
            if not np.array_equal(self._run_single(x[probe]), out[probe]):
                logger.warning("batched results differ from one-at-a-time results; running one at a time")
                self._batching, self._batched = False, None
                return None
            self._batch_checked = True
        return out

    def predict_raw(self, images: Any, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Like :meth:`predict` but returns the output tensor as stored (quantized for int models)."""
        batch_size = check_int("batch_size", batch_size)
        images = self._check_images(images)
        n = images.shape[0]
        out = np.empty((n, *self._out["shape"][1:]), dtype=self._out_dtype)
        with tqdm(total=n, unit="img", desc="predict", leave=False, progress=progress) as bar:
            start = 0
            while start < n:
                # Encode chunk by chunk: a whole float32 test set at once can take gigabytes.
                chunk = self._encode(images[start : start + batch_size])
                result = self._run_batch(chunk) if self._batching and chunk.shape[0] > 1 else None
                if result is None:
                    result = self._run_single(chunk)
                out[start : start + chunk.shape[0]] = result
                start += chunk.shape[0]
                bar.update(chunk.shape[0])
        return out

    def predict(self, images: Any, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Class probabilities for raw uint8 images.

        Args:
            images: uint8 pixels, ``(N, H, W, 3)`` or one ``(H, W, 3)`` image, already at the model's size.
            batch_size: images per ``invoke()`` when batching is possible (1: one at a time).
            progress: show a progress bar (None: on unless ``EDGELAB_PROGRESS=0``).

        Returns:
            float32 array ``(N, classes)`` (dequantized for integer models).

        Raises:
            ConfigError: images of the wrong shape or dtype.
        """
        return self._decode(self.predict_raw(images, batch_size=batch_size, progress=progress))

    def predict_classes(self, images: Any, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Predicted class indices (int64) for raw uint8 images."""
        probs = self.predict(images, batch_size=batch_size, progress=progress)
        return probs.reshape(probs.shape[0], -1).argmax(axis=1).astype(np.int64)

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
        in_q = f", q=({self._in_q[0]:.6g}, {self._in_q[1]})" if self._in_dtype.kind in "iu" else ""
        out_shape = tuple(int(d) for d in self._out["shape"])
        return (
            f"TFLiteModel({name!r}, input={self.input_shape} {self._in_dtype}{in_q}, "
            f"output={out_shape} {self._out_dtype}, size={self.size_bytes / 1024:.1f} KiB, "
            f"runtime={self.runtime!r}, threads={self._num_threads}, xnnpack={self.xnnpack}"
            + (f", delegate={self.delegate!r}" if self._device is not None else "")
            + ")"
        )


def as_model(model: "TFLiteModel | str | Path | bytes", **kwargs: Any) -> TFLiteModel:
    """A :class:`TFLiteModel` from a model object, path or bytes (objects pass through)."""
    return model if isinstance(model, TFLiteModel) else TFLiteModel(model, **kwargs)
