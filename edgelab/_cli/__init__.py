"""Subcommands of the ``edgelab`` CLI, one module per area (see edgelab/cli.py)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float as None: JSON has no Infinity or NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return _strict(value.item())  # numpy scalars
    return value


def print_usage(parser: argparse.ArgumentParser) -> int:
    """An area called without its action (``edgelab data``): its help, and the usage exit code."""
    parser.print_help()
    return 2


def print_json(payload: Any) -> None:
    """Machine-readable output for ``--json`` flags: strict JSON (non-finite numbers become null)."""
    json.dump(_strict(payload), sys.stdout, indent=2, default=str, allow_nan=False)
    sys.stdout.write("\n")
