"""Find the TFLite runtime edgelab uses: LiteRT, else the legacy ``tflite_runtime``, else ``tf.lite``.

The one place edgelab discovers a runtime; the interpreter loader (:mod:`edgelab.tflite.interpreter`)
and the Edge TPU delegate loader (:mod:`edgelab.tflite.delegate`) both ask it. TensorFlow is
imported only when it is the only runtime installed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any

from .._interrupt import interrupt_count, raise_if_interrupted
from .._log import logger
from ..errors import ConfigError, RuntimeNotFoundError, did_you_mean

__all__ = ["RUNTIMES", "Runtime", "get_runtime"]

#: Runtimes in the order edgelab tries them.
RUNTIMES = ("litert", "tflite_runtime", "tensorflow")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """One importable TFLite runtime."""

    name: str  # "litert 2.3.0"
    interpreter_cls: Any
    op_resolver_type: Any  # the OpResolverType enum of that runtime, or None when it has none
    load_delegate: Any  # the runtime's load_delegate(library, options), or None


def _import_litert() -> Runtime:
    from ai_edge_litert import interpreter as mod  # deferred: the runtime is probed, it may be absent

    version = getattr(importlib.import_module("ai_edge_litert"), "__version__", "?")
    return Runtime(
        f"litert {version}", mod.Interpreter, getattr(mod, "OpResolverType", None), getattr(mod, "load_delegate", None)
    )


def _import_tflite_runtime() -> Runtime:
    from tflite_runtime import interpreter as mod  # deferred: the runtime is probed, it may be absent

    version = getattr(importlib.import_module("tflite_runtime"), "__version__", "?")
    return Runtime(
        f"tflite_runtime {version}",
        mod.Interpreter,
        getattr(mod, "OpResolverType", None),
        getattr(mod, "load_delegate", None),
    )


def _import_tensorflow() -> Runtime:
    try:  # edgelab._keras sets TensorFlow's flags before the import
        from .._keras import tf  # deferred: TensorFlow, only when it is the only runtime
    except ImportError:  # a device with TensorFlow but without tf_keras
        import tensorflow as tf  # type: ignore[no-redef]  # deferred: TensorFlow, as above
    experimental = getattr(tf.lite, "experimental", None)
    return Runtime(
        f"tensorflow {tf.__version__}",
        tf.lite.Interpreter,
        getattr(experimental, "OpResolverType", None),
        getattr(experimental, "load_delegate", None),
    )


_IMPORTERS = {"litert": _import_litert, "tflite_runtime": _import_tflite_runtime, "tensorflow": _import_tensorflow}


@functools.cache
def get_runtime(name: str | None = None) -> Runtime:
    """The first runtime that imports (or exactly ``name``), cached.

    Raises:
        ConfigError: an unknown runtime name.
        RuntimeNotFoundError: no runtime (or not ``name``) can be imported.
    """
    if name is not None and name not in _IMPORTERS:
        raise ConfigError(
            f"Expected runtime to be one of {list(RUNTIMES)} or None. Received: runtime={name!r}."
            f"{did_you_mean(name, RUNTIMES)}"
        )
    reasons = []
    interrupts = interrupt_count()
    for candidate in [name] if name else RUNTIMES:
        try:
            runtime = _IMPORTERS[candidate]()
        except Exception as exc:
            # A Ctrl-C during a C++ module's initialisation arrives as ImportError (pybind11, numpy):
            # it must stop the run, not make the next runtime (TensorFlow, seconds to import) load.
            raise_if_interrupted(exc, since=interrupts)
            reasons.append(f"{candidate}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        logger.debug("TFLite runtime: %s", runtime.name)
        return runtime
    raise RuntimeNotFoundError(
        "No TFLite runtime could be imported (" + "; ".join(reasons) + "). "
        "Install LiteRT with `pip install ai-edge-litert`."
    )
