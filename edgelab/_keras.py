"""The one place edgelab imports Keras, and the one check that a model is a tf_keras (Keras 2) model.

tensorflow-model-optimization only accepts Keras 2 models, so edgelab builds everything with
``tf_keras``. Importing this module is light: it only sets the environment (``import edgelab``
does it first thing), so that a ``tf.keras`` the user touches afterwards resolves to tf_keras and
TensorFlow's native start-up lines stay quiet. ``tf`` and ``keras`` are imported on first use
(``from edgelab._keras import keras``).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from typing import Any

from ._log import captured_native_output, warn_user_fmt
from .errors import ConfigError, Keras3ModelError, SetupWarning


def _legacy_keras_too_late() -> bool:
    """True when ``tf.keras`` was already resolved to Keras 3 in this process (setting the flag is too late)."""
    tf_module = sys.modules.get("tensorflow")
    loader = getattr(tf_module, "__dict__", {}).get("keras") if tf_module is not None else None
    if loader is None:
        return False
    if type(loader).__name__ == "KerasLazyLoader":  # not resolved yet, or resolved in place
        return (
            bool(getattr(loader, "_tfll_initialized", False))
            and getattr(loader, "_tfll_keras_version", None) == "keras_3"
        )
    return str(getattr(loader, "__name__", "")).startswith("keras.")  # replaced by the Keras 3 module itself


def prepare_environment() -> None:
    """Make ``tf.keras`` mean tf_keras and quiet TensorFlow's C++ start-up lines, if it is not too late.

    TensorFlow reads ``TF_USE_LEGACY_KERAS`` when ``tf.keras`` is first used and
    ``TF_CPP_MIN_LOG_LEVEL`` when it is imported; both are only set when the user has not chosen.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("TF_USE_LEGACY_KERAS") is None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if _legacy_keras_too_late():
        warn_user_fmt(
            SetupWarning,
            "tf.keras already resolved to Keras 3 in this process (TensorFlow was used before edgelab was "
            "imported), so models built with tf.keras are Keras 3 models, which edgelab refuses. Restart the "
            "kernel and `import edgelab` first, or build models with `import tf_keras as keras`.",
        )
    elif os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        warn_user_fmt(
            SetupWarning,
            "TF_USE_LEGACY_KERAS=%s: tf.keras will be Keras 3, which edgelab refuses; build models with "
            "`import tf_keras as keras`.",
            os.environ.get("TF_USE_LEGACY_KERAS"),
        )


class _QuietLoader:
    """Runs TensorFlow's import with its native start-up lines routed to the debug log."""

    def __init__(self, loader: Any):
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # everything else (resources, get_data...) is the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with captured_native_output(f"{module.__name__} import"):
            self._loader.exec_module(module)


class _QuietTensorFlowImport:
    """A meta-path finder for the first ``import tensorflow`` (direct, or through tf_keras) after ``import
    edgelab``: absl writes its start-up lines (oneDNN, CUDA probing) before any log level applies, so
    the only way to keep them out of the user's stderr is to capture them during the import."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        _remove_import_hook()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)  # type: ignore[assignment]
        return spec


def _remove_import_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]


def _install_import_hook() -> None:
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


prepare_environment()
_install_import_hook()

_loaded: dict[str, Any] = {}


def _load() -> dict[str, Any]:
    if not _loaded:
        # TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines, absl notices) goes to
        # the debug log instead of the user's terminal; Python-level errors still propagate.
        with captured_native_output("tensorflow import"):
            # deferred: TensorFlow (seconds to import) loads on first use of edgelab._keras.tf/keras
            import tensorflow as tf
            import tf_keras as keras

            tf.config.list_physical_devices()  # runs the CUDA probe now, inside the capture
        _loaded.update(tf=tf, keras=keras)
    return _loaded


def __getattr__(name: str) -> Any:
    if name in ("tf", "keras"):
        value = _load()[name]
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KERAS3_MESSAGE", "check_keras2_model", "is_keras3_model", "is_qat_model", "keras", "tf"]  # noqa: F822 (lazy)

#: The one message every entry point that takes a model gives for a Keras 3 model.
KERAS3_MESSAGE = (
    "Expected a tf_keras (Keras 2) model: edgelab trains, quantizes and converts with tf_keras, because "
    "tensorflow-model-optimization cannot handle Keras 3. Received: the Keras 3 model {name!r} ({kind}). "
    "Fix: `import edgelab` before TensorFlow (or set TF_USE_LEGACY_KERAS=1 before importing it) so that "
    "tf.keras is tf_keras, or build the model with `import tf_keras as keras`; then rebuild it and load its "
    "weights with model.load_weights(...)."
)


def is_keras3_model(model: object) -> bool:
    """True for a Keras 3 (``keras`` package) model, which tfmot cannot quantize."""
    module = type(model).__module__
    return (module == "keras" or module.startswith("keras.")) and not module.startswith("keras.api._v")


def check_keras2_model(model: Any, argument: str = "model") -> None:
    """Refuse anything but a tf_keras model, with one message for Keras 3 models.

    Raises:
        Keras3ModelError: a Keras 3 model (a ConfigError and a QATError; the message says what to do).
        ConfigError: not a Keras model at all.
    """
    if is_keras3_model(model):
        raise Keras3ModelError(
            KERAS3_MESSAGE.format(
                name=getattr(model, "name", "?"), kind=f"{type(model).__module__}.{type(model).__name__}"
            )
        )
    keras_module = __getattr__("keras") if "keras" not in globals() else globals()["keras"]
    if not isinstance(model, keras_module.Model):
        raise ConfigError(
            f"Expected {argument} to be a tf_keras Model. Received: {type(model).__module__}.{type(model).__name__}"
        )


def is_qat_model(model: Any) -> bool:
    """True when the model carries tfmot quantization wrappers (a layer-name check: imports nothing)."""
    return any(
        type(layer).__name__ in ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")
        for layer in getattr(model, "layers", [])
    )
