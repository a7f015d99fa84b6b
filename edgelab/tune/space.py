"""What a search may try: architectures, widths, input sizes, and optionally learning rate and epochs.

Every choice is a categorical Optuna parameter, so a study's space is a small finite grid that
Optuna's samplers explore and that two workers (or a rerun) can compare exactly: a study remembers
the space it was created with (see :meth:`SearchSpace.to_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..preprocess import EDGELAB_RANGE, RANGE_ATTRIBUTE

#: Width multipliers per architecture: the builder argument each one scales.
WIDTH_ARGUMENT = {"edgecnn": "width", "mobilenetv2": "alpha"}

#: Default widths per architecture (MobileNetV2's are the alphas Keras has ImageNet weights for).
DEFAULT_WIDTHS: dict[str, tuple[float, ...]] = {
    "edgecnn": (0.5, 0.75, 1.0, 1.5),
    "mobilenetv2": (0.35, 0.5, 0.75, 1.0),
}

#: A user's builder: ``builder(trial, num_classes=..., image_size=...)`` returns a tf_keras model and
#: may suggest its own parameters from the Optuna ``trial``.
ModelBuilder = Callable[..., Any]


def _floats(name: str, values: Sequence[Any], positive: bool = True) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"Expected {name} to be a list of numbers. Received: {name}={values!r}") from None
    if not out or (positive and any(not v > 0 for v in out)) or len(set(out)) != len(out):
        raise ConfigError(f"Expected {name} to be distinct positive numbers. Received: {name}={values!r}")
    return out


def _ints(name: str, values: Sequence[Any], minimum: int) -> tuple[int, ...]:
    out = tuple(values)
    if (
        not out
        or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in out)
        or len(set(out)) != len(out)
    ):
        raise ConfigError(f"Expected {name} to be distinct ints >= {minimum}. Received: {name}={values!r}")
    return out


@dataclass(frozen=True)
class SearchSpace:
    """The choices a search samples from.

    Attributes:
        architectures: Names from :data:`edgelab.training.models.ARCHITECTURES` (``build_model``).
        widths: Per architecture, the width multipliers to try (``width`` for edgecnn, ``alpha``
            for MobileNetV2); an architecture without an entry is built at its default width.
        input_sizes: Square input sizes in pixels; images are resized down to each (never up).
        learning_rates: Learning rates to try; ``()`` keeps ``train``'s default.
        epochs: Epoch counts to try; ``()`` uses the search's ``epochs``.
        builder: Your own model builder instead of ``architectures``: called as
            ``builder(trial, num_classes=..., image_size=...)`` with the Optuna trial, from which it
            may suggest its own parameters; it returns a tf_keras model taking pixels in [-1, 1].
        builder_name: The name the study records for ``builder`` (default: its ``__qualname__``).
    """

    architectures: tuple[str, ...] = ("edgecnn", "mobilenetv2")
    widths: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_WIDTHS))
    input_sizes: tuple[int, ...] = (64, 96)
    learning_rates: tuple[float, ...] = ()
    epochs: tuple[int, ...] = ()
    builder: ModelBuilder | None = field(default=None, compare=False)
    builder_name: str | None = None

    def __post_init__(self) -> None:
        # deferred: TensorFlow (the builders are Keras; describing a space is not)
        from ..training.models import ARCHITECTURES

        archs = (self.architectures,) if isinstance(self.architectures, str) else tuple(self.architectures)
        if self.builder is None:
            if not archs:
                raise ConfigError("Expected at least one architecture (or a builder). Received: architectures=()")
            for name in archs:
                if name not in ARCHITECTURES:
                    raise ConfigError(
                        f"Expected architectures from {sorted(ARCHITECTURES)}. Received: {name!r}."
                        + did_you_mean(name, ARCHITECTURES)
                    )
        elif not callable(self.builder):
            raise ConfigError(f"Expected builder to be a function. Received: builder={self.builder!r}")
        object.__setattr__(self, "architectures", archs if self.builder is None else ())
        widths = {a: _floats(f"widths[{a!r}]", w) for a, w in dict(self.widths).items() if a in self.architectures}
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "input_sizes", _ints("input_sizes", self.input_sizes, 8))
        object.__setattr__(
            self, "learning_rates", _floats("learning_rates", self.learning_rates) if self.learning_rates else ()
        )
        object.__setattr__(self, "epochs", _ints("epochs", self.epochs, 1) if self.epochs else ())
        if self.builder is not None and self.builder_name is None:
            name = getattr(self.builder, "__qualname__", None) or type(self.builder).__name__
            object.__setattr__(self, "builder_name", f"{getattr(self.builder, '__module__', '')}.{name}")

    def to_dict(self) -> dict[str, Any]:
        """The space as plain data: what a study records, and compares on reuse."""
        return {
            "architectures": list(self.architectures),
            "widths": {a: list(w) for a, w in sorted(self.widths.items())},
            "input_sizes": list(self.input_sizes),
            "learning_rates": list(self.learning_rates),
            "epochs": list(self.epochs),
            "builder": self.builder_name,
        }

    def smallest(self) -> list[dict[str, Any]]:
        """Per architecture, the narrowest and smallest candidate's parameters: the fastest one it has."""
        if self.builder is not None:
            return []
        size = min(self.input_sizes)
        out = []
        for arch in self.architectures:
            params: dict[str, Any] = {"architecture": arch, "input_size": size}
            if arch in self.widths:
                params["width"] = min(self.widths[arch])
            out.append(params)
        return out

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The trial's parameters (Optuna categorical suggestions), without building anything."""
        params: dict[str, Any] = {}
        if self.builder is None:
            arch = trial.suggest_categorical("architecture", list(self.architectures))
            params["architecture"] = arch
            if arch in self.widths:
                # one parameter per architecture: its choices never change within a study
                params["width"] = trial.suggest_categorical(f"width_{arch}", list(self.widths[arch]))
        params["input_size"] = trial.suggest_categorical("input_size", list(self.input_sizes))
        if self.learning_rates:
            params["learning_rate"] = trial.suggest_categorical("learning_rate", list(self.learning_rates))
        if self.epochs:
            params["epochs"] = trial.suggest_categorical("epochs", list(self.epochs))
        return params

    def build(self, params: Mapping[str, Any], num_classes: int, trial: Any = None) -> Any:
        """The untrained tf_keras model for ``params`` (a user builder gets the trial as well)."""
        size = int(params["input_size"])
        if self.builder is not None:
            model = self.builder(trial, num_classes=num_classes, image_size=size)
            if getattr(model, RANGE_ATTRIBUTE, None) is None:
                setattr(model, RANGE_ATTRIBUTE, EDGELAB_RANGE)
            return model
        # deferred: TensorFlow (the builders are Keras)
        from ..training.models import build_model

        arch = params["architecture"]
        kwargs: dict[str, Any] = {}
        if "width" in params:
            kwargs[WIDTH_ARGUMENT.get(arch, "width")] = params["width"]
        return build_model(arch, num_classes=num_classes, image_size=size, **kwargs)


def describe(params: Mapping[str, Any]) -> str:
    """``edgecnn w0.5 64px lr0.002`` (a short label for tables, plots and progress lines)."""
    parts = [str(params.get("architecture", "custom"))]
    if "width" in params:
        parts.append(f"w{params['width']:g}")
    parts.append(f"{params['input_size']}px")
    if "learning_rate" in params:
        parts.append(f"lr{params['learning_rate']:g}")
    if "epochs" in params:
        parts.append(f"{params['epochs']}ep")
    return " ".join(parts)
