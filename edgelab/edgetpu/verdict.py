"""One Edge TPU mapping per model: the real compiler's when it is installed, else the offline prediction."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from .._log import warn_user_fmt
from ..errors import PartialResultWarning
from .analyze import analyze_edgetpu
from .compiler import compile_edgetpu, find_compiler
from .mapping import EdgeTPUMapping


def edgetpu_verdict(model: str | Path, use_compiler: bool = True, *, timeout_s: float = 180) -> EdgeTPUMapping:
    """Predict offline, and when ``edgetpu_compiler`` is on PATH confirm with the real compiler.

    The compiler only runs for models it accepts (it rejects float models outright). The result's
    ``source`` says which answered; its ``report`` is always the analyzer's per-op explanation.
    """
    report = analyze_edgetpu(model)
    if use_compiler and report.verdict.compiles and find_compiler() is not None:
        with tempfile.TemporaryDirectory(prefix="edgelab-edgetpu-") as tmp:
            result = compile_edgetpu(model, out_dir=tmp, timeout_s=timeout_s, missing="status")
        mapping = result.mapping
        if result.ok and mapping.ops_edgetpu is not None and mapping.ops_total is not None:
            return replace(mapping, report=report)
        warn_user_fmt(
            PartialResultWarning,
            "edgetpu_compiler gave no op counts for %s (%s); using the offline prediction",
            Path(model).name,
            result.reason or result.status,
        )
    return report.mapping
