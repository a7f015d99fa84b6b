"""Subcommands of the ``edgelab`` CLI, one module per area (see edgelab/cli.py)."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(payload: Any) -> None:
    """Machine-readable output for ``--json`` flags."""
    json.dump(payload, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
