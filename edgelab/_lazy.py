"""Lazy re-exports for package ``__init__`` files.

A stage package lists its public names and the submodule that defines each; a name is imported on
first use. That keeps ``import edgelab`` light and lets the device-side packages be imported without
TensorFlow even though a sibling module (conversion, training) needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for a package that re-exports ``name -> "module"`` lazily.

    ``"module:attr"`` exports ``attr`` of ``module`` under another name (the top level uses it for
    names such as ``analyze_edgetpu``).
    """

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attr = target.partition(":")
        value = getattr(importlib.import_module(f".{module_name}", package), attr or name)
        importlib.import_module(package).__dict__[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
