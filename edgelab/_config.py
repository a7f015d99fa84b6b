"""The base of edgelab's option sets (``TrainConfig``, ``ConversionConfig``, ``CompileOptions``).

Each is a frozen dataclass that checks its fields once, in ``__post_init__``. A function that takes one
accepts ``config=`` and, for the simple calls, the same fields as keyword arguments, which replace the
config's values: ``train(model, ds, epochs=5)`` is ``train(model, ds, config=TrainConfig(epochs=5))``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError, did_you_mean

C = TypeVar("C", bound="Options")


class Options:
    """Mixin of the frozen option dataclasses: building one from ``config=`` plus keyword arguments."""

    #: The name errors give the option set (default: the class name).
    options_name: ClassVar[str | None] = None

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied, checked like a new one."""
        return self.__class__.resolve(self, changes)

    @classmethod
    def resolve(cls: type[C], config: C | None, options: Mapping[str, Any], default: C | None = None) -> C:
        """``config`` (else ``default``, else the class defaults) with the keyword ``options`` applied.

        Raises:
            ConfigError: ``config`` is not a ``cls``, or an option is not one of its fields (with a
                did-you-mean hint), or a value is out of range.
        """
        base = config if config is not None else default
        label = cls.options_name or cls.__name__
        if base is not None and not isinstance(base, cls):
            raise ConfigError(f"Expected config to be a {label}. Received: {type(base).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = [name for name in options if name not in fields]
        if unknown:
            raise ConfigError(
                f"Expected options of {label}, one of {fields}. Received: {unknown[0]}="
                f"{options[unknown[0]]!r}.{did_you_mean(unknown[0], fields)}"
            )
        if base is None:
            return cls(**options)
        return dataclasses.replace(base, **options)  # type: ignore[type-var]


def split_options(options: Mapping[str, Any], *classes: type) -> list[dict[str, Any]]:
    """``options`` shared out among the option ``classes`` by field name (one dict per class, in order).

    Raises:
        ConfigError: an option is a field of none of them (with a did-you-mean hint).
    """
    names = [[f.name for f in dataclasses.fields(cls)] for cls in classes]
    parts: list[dict[str, Any]] = [{} for _ in classes]
    for key, value in options.items():
        owner = next((i for i, fields in enumerate(names) if key in fields), None)
        if owner is None:
            known = sorted({n for fields in names for n in fields})
            what = " or ".join(getattr(cls, "options_name", None) or cls.__name__ for cls in classes)
            raise ConfigError(
                f"Expected options of {what}, one of {known}. Received: {key}={value!r}.{did_you_mean(key, known)}"
            )
        parts[owner][key] = value
    return parts


def set_field(config: Any, name: str, value: Any) -> None:
    """Store a checked value on a frozen dataclass from its ``__post_init__``."""
    object.__setattr__(config, name, value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy's too), else a ConfigError naming it."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ConfigError(f"Expected {name} to be True or False. Received: {name}={value!r}")
