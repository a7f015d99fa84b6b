"""One Edge TPU verdict per model: the real compiler's when it is installed, else the offline prediction."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._log import logger
from .analyze import EdgeTPUReport, analyze
from .compiler import compile as run_compiler
from .compiler import find_compiler


@dataclass(frozen=True)
class EdgeTPUVerdict:
    """How many ops of a model run on the Edge TPU, and who said so.

    Attributes:
        ops_edgetpu: Ops mapped to the Edge TPU.
        ops_total: Ops in the model.
        source: ``"compiler <version>"`` when the real compiler ran, else ``"predicted"``.
        status: The analyzer's verdict or the compiler's status.
        report: The offline :class:`EdgeTPUReport` (always computed: it explains each op).
    """

    ops_edgetpu: int
    ops_total: int
    source: str
    status: str
    report: EdgeTPUReport

    def __repr__(self) -> str:
        return f"EdgeTPUVerdict({self.ops_edgetpu}/{self.ops_total} ops, source={self.source!r}, status={self.status!r})"

    @property
    def mapped(self) -> str:
        return f"{self.ops_edgetpu}/{self.ops_total}"


def edgetpu_verdict(model: str | Path, use_compiler: bool = True, timeout: float = 180) -> EdgeTPUVerdict:
    """Predict offline, and when ``edgetpu_compiler`` is on PATH confirm with the real compiler.

    The compiler only runs for fully quantized models (it rejects the others outright).
    """
    report = analyze(model)
    if use_compiler and report.verdict not in ("not_quantized", "invalid") and find_compiler() is not None:
        with tempfile.TemporaryDirectory(prefix="edgelab-edgetpu-") as tmp:
            result = run_compiler(model, out_dir=tmp, timeout=timeout, missing="status")
        counts = result.report
        if result.ok and counts is not None and counts.ops_edgetpu is not None and counts.ops_total is not None:
            return EdgeTPUVerdict(counts.ops_edgetpu, counts.ops_total, f"compiler {result.compiler_version}",
                                  result.status, report)
        logger.warning("edgetpu_compiler gave no op counts for %s (%s); using the offline prediction",
                       Path(model).name, result.reason or result.status)
    return EdgeTPUVerdict(report.ops_edgetpu, report.ops_total, "predicted", report.verdict, report)
