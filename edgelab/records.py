"""Result objects as plain data: one ``to_dict``/``to_frame`` for edgelab's result dataclasses.

A result class derives from :class:`Record`; its ``to_dict()`` holds every dataclass field in order,
as JSON-friendly values (:func:`plain`: enums become their values, paths strings, numpy scalars
Python numbers, arrays and tuples lists, nested records dicts). A field marked ``field(metadata=SKIP)``
is left out (a model, a history frame, raw samples); ``metadata=rounded(4)`` rounds a float, and a
class attribute ``RECORD_DIGITS`` rounds every float field. A class whose dict has its own key order,
or holds a property beside the fields, names its keys in ``RECORD_KEYS`` (fields and properties, in
order). An entry of ``RECORD_KEYS`` may also be a pair ``(key, source)``: the dict's ``key`` holds
the attribute named ``source`` (a field, a property, or a method taking no argument, which is called),
or ``source(obj)`` when ``source`` is a callable, for a renamed key or a computed value. A plain name
naming a method is called the same way. ``to_frame()`` is that dict as one row.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SKIP", "Record", "RecordKey", "plain", "record_dict", "rounded"]

#: One entry of ``RECORD_KEYS``: a field/property/method name, or ``(key, name or callable)``.
RecordKey = str | tuple[str, str | Callable[[Any], Any]]

#: ``field(metadata=SKIP)``: the field stays out of ``to_dict``.
SKIP: Mapping[str, Any] = {"record": False}


def rounded(digits: int) -> Mapping[str, Any]:
    """``field(metadata=rounded(4))``: the float is rounded to ``digits`` decimals in ``to_dict``."""
    return {"round": digits}


def plain(value: Any) -> Any:
    """``value`` as JSON-friendly Python data (see the module's docstring)."""
    if isinstance(value, np.generic):  # before float: numpy's float64 is a float
        return value.item()
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else record_dict(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


def _round(value: Any, digits: int | None) -> Any:
    if digits is None or not isinstance(value, float) or not math.isfinite(value):
        return value
    return round(value, digits)


def record_dict(obj: Any) -> dict[str, Any]:
    """The fields of the dataclass ``obj`` as plain data, in definition order (or ``RECORD_KEYS``'s)."""
    default_digits = getattr(obj, "RECORD_DIGITS", None)
    fields = {f.name: f for f in dataclasses.fields(obj)}
    keys = getattr(obj, "RECORD_KEYS", None)
    out: dict[str, Any] = {}
    for entry in keys if keys is not None else fields:
        key, source = entry if isinstance(entry, tuple) else (entry, entry)
        if callable(source):
            out[key] = _round(plain(source(obj)), default_digits)
            continue
        f = fields.get(source)
        if f is not None and f.metadata.get("record", True) is False and keys is None:
            continue
        digits = f.metadata.get("round", default_digits) if f is not None else default_digits
        value = getattr(obj, source)
        if f is None and callable(value):  # a method: its result
            value = value()
        out[key] = _round(plain(value), digits)
    return out


class Record:
    """Mixin of result dataclasses: ``to_dict()`` from the fields, ``to_frame()`` as one row."""

    #: Decimals every float field is rounded to in ``to_dict`` (None: as is).
    RECORD_DIGITS: ClassVar[int | None] = None
    #: The keys of ``to_dict``, in order: fields, properties, methods, or ``(key, source)`` pairs
    #: (None: every field not marked ``SKIP``).
    RECORD_KEYS: ClassVar[tuple[RecordKey, ...] | None] = None

    def to_dict(self) -> dict[str, Any]:
        """Every field (but those marked ``SKIP``) as JSON-friendly values."""
        return record_dict(self)

    def to_frame(self) -> pd.DataFrame:
        """``to_dict()`` as a one-row DataFrame."""
        # deferred: pandas (the records of the device-side modules are used without it)
        import pandas as pd

        return pd.DataFrame([self.to_dict()])
