"""The closed sets of the Edge TPU stage and the one result type "n of m ops on the Edge TPU".

The analyzer (a prediction), the compiler wrapper (a real run) and the log parser (saved output)
all answer the same question; each exposes the answer as an :class:`EdgeTPUMapping` whose
``source`` says who answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..enums import StrEnum
from ..records import SKIP, Record
from ..units import format_bytes

__all__ = ["CompileStatus", "EdgeTPUMapping", "Source", "Target", "Verdict"]


class Source(StrEnum):
    """Who said how the model maps: the offline analyzer, a compiler run, or a saved log."""

    PREDICTED = "predicted"
    COMPILER = "compiler"
    LOG = "log"


class Verdict(StrEnum):
    """The analyzer's whole-model verdict: all ops mapped, some, none; or a failure before mapping."""

    OK = "ok"
    PARTIAL = "partial"
    NONE_MAPPED = "none_mapped"
    NOT_QUANTIZED = "not_quantized"
    UNSUPPORTED_OP_VERSION = "unsupported_op_version"
    INVALID = "invalid"

    @property
    def compiles(self) -> bool:
        """True when the compiler writes a model (possibly with every op on the CPU)."""
        return self in (Verdict.OK, Verdict.PARTIAL, Verdict.NONE_MAPPED)


class Target(StrEnum):
    """Where one op runs, or where a model will run (:func:`edgelab.compare.recommend`)."""

    EDGETPU = "edgetpu"
    CPU = "cpu"


class CompileStatus(StrEnum):
    """The outcome of one ``edgetpu_compiler`` run."""

    COMPILED = "compiled"
    PARTIAL = "partial"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NOT_INSTALLED = "not_installed"


@dataclass(frozen=True)
class EdgeTPUMapping(Record):
    """How many ops of a model run on the Edge TPU, and who said so. Unknown figures are None.

    Attributes:
        source: :class:`Source`: predicted, compiler or log.
        status: The analyzer's :class:`Verdict` or the compiler's :class:`CompileStatus`.
        ops_edgetpu: Ops mapped to the Edge TPU.
        ops_cpu: Ops left on the CPU.
        ops_total: Ops in the model.
        subgraphs: Edge TPU subgraphs (custom ops).
        on_chip_bytes: Parameter bytes cached on chip.
        off_chip_bytes: Parameter bytes streamed from host memory on every inference.
        compiler_version: The compiler that ran, or the one the prediction imitates.
        report: The analyzer's per-op :class:`~edgelab.edgetpu.analyze.EdgeTPUReport` when there is one
            (it explains each op), else None.
    """

    source: Source
    status: str
    ops_edgetpu: int | None
    ops_cpu: int | None
    ops_total: int | None
    subgraphs: int | None = None
    on_chip_bytes: int | None = None
    off_chip_bytes: int | None = None
    compiler_version: str | None = None
    report: Any = field(default=None, repr=False, compare=False, metadata=SKIP)

    @property
    def mapped(self) -> str:
        """``"n/m"``, or ``"?"`` when the counts are unknown."""
        if self.ops_edgetpu is None or self.ops_total is None:
            return "?"
        return f"{self.ops_edgetpu}/{self.ops_total}"

    def __repr__(self) -> str:
        return (
            f"EdgeTPUMapping({self.mapped} ops on the Edge TPU, source={self.source.value!r}, "
            f"status={str(self.status)!r}, on_chip={format_bytes(self.on_chip_bytes)}, "
            f"off_chip={format_bytes(self.off_chip_bytes)})"
        )
