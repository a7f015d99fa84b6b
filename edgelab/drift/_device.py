"""The bundle's own drift code (``edgelab/bundle_template/drift_check.py``), loaded as a module.

The device runs that file next to ``classify.py``; the host imports the very same file, so the
features, scores and verdicts of ``edgelab drift`` and ``classify.py --drift`` come from one
implementation.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

_NAME = "edgelab.drift._drift_check"


@cache
def device_module() -> ModuleType:
    """``drift_check.py`` of edgelab's bundle template, imported once."""
    path = resources.files("edgelab") / "bundle_template" / "drift_check.py"
    spec = importlib.util.spec_from_file_location(_NAME, str(path))
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with edgelab
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


def __getattr__(name: str) -> Any:  # dc.image_stats etc. for the host modules
    return getattr(device_module(), name)
