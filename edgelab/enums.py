"""The one base of edgelab's closed sets of names: a ``str`` enum that prints as its value and parses
user input the same way everywhere (a leaf module).

    class Link(StrEnum):
        USB3 = "usb3"

    Link.parse("USB3")      # Link.USB3: letter case and surrounding spaces do not matter
    Link.parse("usb4")      # ConfigError: Expected link to be one of ['usb3']. Received: ... Did you mean 'usb3'?
    str(Link.USB3)          # "usb3", also in f-strings, tables, CSV and JSON
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from .errors import ConfigError, did_you_mean

__all__ = ["StrEnum"]

E = TypeVar("E", bound="StrEnum")


class StrEnum(str, enum.Enum):
    """A ``str`` enum whose ``str()`` is its value and whose :meth:`parse` explains a wrong name.

    Values are lower case. Error messages name the argument (``parse(value, "output")``), by
    default the class name in lower case.
    """

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def choices(cls) -> list[str]:
        """Every value, in definition order."""
        return [m.value for m in cls]

    @classmethod
    def parse(cls: type[E], value: Any, name: str | None = None) -> E:
        """A member from itself, its value or its name, ignoring letter case and surrounding spaces.

        Args:
            value: A member, or text such as ``"int8"``, ``"INT8"`` or ``" Int8 "``.
            name: The argument's name in the error message (default: the enum's label).

        Raises:
            ConfigError: no member has that value; the message lists the values and, when one is
                close, suggests it.
        """
        if isinstance(value, cls):
            return value
        text = str(getattr(value, "value", value)).strip().lower()
        for member in cls:
            if text in (member.value.lower(), member.name.lower()):
                return member
        label = name or cls.__name__.lower()
        choices = cls.choices()
        raise ConfigError(
            f"Expected {label} to be one of {choices}. Received: {label}={value!r}.{did_you_mean(text, choices)}"
        )
