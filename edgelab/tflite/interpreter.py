"""Find a TFLite runtime and load an interpreter from a checked file (no TensorFlow unless it is the
only runtime installed).

The interpreter comes from LiteRT (``ai_edge_litert``) when it is installed, else from the legacy
``tflite_runtime`` wheel (old device images), else from ``tf.lite`` (TensorFlow, imported only then).
This is the one place edgelab discovers a runtime; the Edge TPU delegate loader asks it too.

Every load runs :func:`edgelab.tflite.validate.validate_bytes` first: the C++ interpreter trusts the
file, and a malformed one can crash the process. Bytes edgelab has not converted or checked before
are then loaded once in a child process (:mod:`edgelab.tflite.trust`), unless ``trusted=True``.

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
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._log import captured_native_output
from ..errors import ConfigError, DelegateError, ModelFileError, check_int
from .discovery import RUNTIMES, get_runtime
from .reader import EDGETPU_CUSTOM_OP, has_edgetpu_custom_op, load_model_bytes
from .trust import ensure_checked
from .validate import validate_bytes

__all__ = ["RUNTIMES", "LoadedInterpreter", "get_runtime", "load_interpreter", "load_interpreter_info"]

#: Most interpreter threads edgelab accepts (XNNPACK's thread pool allocates per thread).
MAX_THREADS = 256


def describe(model: str | Path | bytes) -> str:
    """How errors name a model: its path, or ``model bytes (N bytes)``."""
    return f"model bytes ({len(model)} bytes)" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)


def compiled_for_edgetpu(data: bytes) -> bool:
    """True when checked model bytes hold the Edge TPU compiler's ``edgetpu-custom-op``."""
    try:
        return has_edgetpu_custom_op(data)
    except ModelFileError:
        return EDGETPU_CUSTOM_OP.encode() in data


def check_threads(num_threads: Any) -> int:
    """``num_threads`` as an int from 1 to :data:`MAX_THREADS`, or a ConfigError."""
    return check_int("num_threads", num_threads, maximum=MAX_THREADS)


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


@dataclasses.dataclass(frozen=True)
class InterpreterSettings:
    """How :func:`load_checked` builds an interpreter; checked once, when made.

    Attributes:
        num_threads: CPU threads of the interpreter (1 to :data:`MAX_THREADS`).
        delegates: Loaded delegates (the Edge TPU's), or None.
        use_xnnpack: Let XNNPACK take the float and int8 ops it supports (``EDGELAB_XNNPACK=0`` turns it off).
        runtime: Which TFLite runtime (None: the best installed one).
    """

    num_threads: int = 1
    delegates: Sequence[Any] | None = None
    use_xnnpack: bool = True
    runtime: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_threads", check_threads(self.num_threads))
        if self.delegates is not None:
            object.__setattr__(self, "delegates", tuple(self.delegates))
        object.__setattr__(self, "use_xnnpack", bool(self.use_xnnpack))


def _delegate_nodes(interpreter: Any) -> int | None:
    """How many ``DELEGATE`` nodes the execution plan holds; None if the runtime cannot list ops."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:
        return None
    return sum(1 for op in ops if op.get("op_name") == "DELEGATE")


def load_interpreter_info(
    model: str | Path | bytes,
    num_threads: int = 1,
    delegates: Sequence[Any] | None = None,
    use_xnnpack: bool = True,
    *,
    runtime: str | None = None,
    trusted: bool = False,
) -> LoadedInterpreter:
    """Like :func:`load_interpreter`, but also says whether XNNPACK was used.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, invalid, or fails to load.
        DelegateError: the model needs the Edge TPU delegate and none was given.
        RuntimeNotFoundError: no TFLite runtime is installed.
    """
    data, path = load_model_bytes(model)
    settings = InterpreterSettings(num_threads, delegates, use_xnnpack, runtime)
    return load_checked(data, describe(model), settings, path=path, trusted=trusted)


def load_checked(
    data: bytes,
    where: str,
    settings: InterpreterSettings,
    *,
    path: str | None = None,
    validate: bool = True,
    trusted: bool = False,
) -> LoadedInterpreter:
    """Validate bytes read by :func:`~edgelab.tflite.inspection.load_model_bytes`, then load them
    as ``settings`` say; ``where`` names them in errors (``validate=False`` only for isolated checks).
    Bytes not yet known (:mod:`edgelab.tflite.trust`) are first loaded once in a child process,
    unless ``trusted``."""
    num_threads, delegates, use_xnnpack = settings.num_threads, settings.delegates, settings.use_xnnpack
    runtime = settings.runtime
    if validate:
        validate_bytes(data, path)
    if not delegates and compiled_for_edgetpu(data):
        raise DelegateError(
            f"{where} is compiled for the Edge TPU (it contains edgetpu-custom-op), so it needs the "
            "Edge TPU delegate: load it with delegate='edgetpu' on a machine with libedgetpu and a "
            "Coral device, or use the model from before edgetpu_compiler on the CPU."
        )
    rt = get_runtime(runtime)
    if os.environ.get("EDGELAB_XNNPACK") == "0" and rt.op_resolver_type is not None:
        use_xnnpack = False
    if not trusted and not compiled_for_edgetpu(data):  # the child cannot load Edge TPU models
        ensure_checked(data, where, path, use_xnnpack)
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
    except (ValueError, RuntimeError, IndexError) as exc:  # IndexError: pybind11's std::out_of_range
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
    trusted: bool = False,
) -> tuple[Any, str]:
    """Load and allocate a TFLite interpreter with the best runtime available.

    Args:
        model: path of a .tflite file, or its bytes.
        num_threads: CPU threads for the interpreter's kernels (1 to 256).
        delegates: delegate objects (e.g. the Edge TPU delegate) applied to the graph.
        use_xnnpack: apply LiteRT's default XNNPACK delegate (False: built-in kernels only).
        runtime: force ``"litert"``, ``"tflite_runtime"`` or ``"tensorflow"`` (default: first found).
        trusted: skip the one-time child-process load of bytes edgelab has not seen before
            (:mod:`edgelab.tflite.trust`); only for files you know are sound.

    Returns:
        ``(interpreter, runtime_name)``, e.g. ``(Interpreter, "litert 2.3.0")``.

    Raises:
        ModelFileError: the file is missing, empty, truncated, not TFLite, invalid, or fails to load.
    """
    loaded = load_interpreter_info(model, num_threads, delegates, use_xnnpack, runtime=runtime, trusted=trusted)
    return loaded.interpreter, loaded.runtime
