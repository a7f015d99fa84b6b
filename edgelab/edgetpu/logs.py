"""Parse what ``edgetpu_compiler`` prints and writes: its stdout summary and ``<model>_edgetpu.log``.

Both formats are covered from compiler 2.x to 16 (the last release). The stdout summary of v14-v16::

    Edge TPU Compiler version 16.0.384591198
    Model compiled successfully in 3438 ms.
    Input model: yolov5s-int8.tflite
    On-chip memory used for caching model parameters: 6.89MiB
    ...
    Number of Edge TPU subgraphs: 1
    Total number of operations: 229

and the operator table of the ``.log`` file (also on stdout with ``-s``)::

    Operator                       Count      Status
    CONV_2D                        11         Mapped to Edge TPU
    CONV_2D                        2          More than one subgraph is not supported

TensorFlow-free: this module only reads text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from .._log import logger
from ..enums import StrEnum
from ..errors import EdgeTPUError
from ..records import Record
from ..units import format_bytes
from .mapping import CompileStatus, EdgeTPUMapping, Source
from .ops import STATUS_MAPPED

#: Multipliers of the size units the compiler prints (binary, two decimals: ``6.89MiB``).
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


class FailureKind(StrEnum):
    """Why the compiler refused a whole model (not one op)."""

    NOT_QUANTIZED = "not_quantized"
    OP_VERSION_NOT_SUPPORTED = "op_version_not_supported"
    LARGE_ACTIVATIONS = "large_activations"
    INTERNAL_ERROR = "internal_error"
    TIMEOUT = "timeout"
    INVALID_MODEL = "invalid_model"
    UNKNOWN = "unknown"


#: What a user can do about each failure (from the fixes in google-coral/edgetpu issues).
FAILURE_HINTS = {
    FailureKind.NOT_QUANTIZED: (
        "convert with full-integer quantization (representative dataset, TFLITE_BUILTINS_INT8, "
        "uint8 input/output) and a fixed batch size of 1"
    ),
    FailureKind.OP_VERSION_NOT_SUPPORTED: (
        "the converter emitted an op version newer than compiler 16 knows; convert with an older "
        "TensorFlow (about 2.5-2.8) or replace the op"
    ),
    FailureKind.LARGE_ACTIVATIONS: (
        "reduce the input size or layer widths, or retry with search_delegate=True / num_segments"
    ),
    FailureKind.INTERNAL_ERROR: (
        "often a tensor too large for the Edge TPU; try a smaller input, search_delegate=True, or num_segments"
    ),
    FailureKind.TIMEOUT: "usually large activations; try a smaller input or a longer timeout",
    FailureKind.INVALID_MODEL: (
        "the compiler could not load the model: check it runs in a TFLite interpreter and has static shapes (batch 1)"
    ),
    FailureKind.UNKNOWN: "see the compiler output",
}


@dataclass(frozen=True)
class CompilerFailure(Record):
    """A whole-model failure: its kind, the compiler's own line, and for op-version errors the op."""

    kind: FailureKind
    message: str
    op: str | None = None
    op_version: int | None = None

    @property
    def hint(self) -> str:
        """What usually fixes this kind of failure."""
        return FAILURE_HINTS[self.kind]


@dataclass(frozen=True)
class OperatorRow(Record):
    """One row of the operator table: ``count`` ops of type ``op`` ended with ``status``."""

    op: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        """True when these ops run on the Edge TPU."""
        return self.status == STATUS_MAPPED


@dataclass(frozen=True)
class CompilerReport(Record):
    """What one compiler run said about one model. Fields the output did not contain are None.

    Derived values (only where the arithmetic is exact, never guessed):

    * ``ops_edgetpu`` / ``ops_cpu``: from the ``Number of operations that will run on ...`` lines;
      otherwise from the operator table (rows ``Mapped to Edge TPU`` vs every other row), which
      lists every op of the model; otherwise one from the other and ``ops_total``. When the
      output is known to be complete (the operator table, the ``See the operation log file``
      line or v16's ``Compilation child process completed`` line is present), compilation
      succeeded and the partial-mapping warning is absent, every op was mapped:
      ``ops_edgetpu = ops_total`` and ``ops_cpu = 0``. A truncated summary stays None.
    * ``ops_total``: from ``Total number of operations``; otherwise ``ops_edgetpu + ops_cpu``.
    * ``subgraphs`` and the memory figures are never derived (the printed sizes are rounded to
      two decimals, so for example used + remaining is not exact).
    """

    #: The keys of ``to_dict``; the first nine are the stable ``edgelab read-log --json`` schema.
    RECORD_KEYS = (
        "compiler_version",
        "ops_edgetpu",
        "ops_cpu",
        "ops_total",
        "subgraphs",
        "on_chip_used_bytes",
        "on_chip_remaining_bytes",
        "off_chip_used_bytes",
        "operators",
        "on_chip_available_bytes",
        "input_model",
        "output_model",
        "input_size_bytes",
        "output_size_bytes",
        "compile_time_ms",
        "compiled",
        "failure",
    )

    compiler_version: str | None = None
    input_model: str | None = None
    output_model: str | None = None
    input_size_bytes: int | None = None
    output_size_bytes: int | None = None
    compile_time_ms: int | None = None
    ops_edgetpu: int | None = None
    ops_cpu: int | None = None
    ops_total: int | None = None
    subgraphs: int | None = None
    on_chip_used_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    #: Only compiler 2.0.291256449 printed ``On-chip memory available ...``.
    on_chip_available_bytes: int | None = None
    off_chip_used_bytes: int | None = None
    operators: tuple[OperatorRow, ...] = ()
    failure: CompilerFailure | None = None
    #: True when the output said the model compiled (``Model compiled successfully``).
    compiled: bool = False
    log_file: str | None = None

    @property
    def recognized(self) -> bool:
        """True when the text held anything the compiler prints."""
        return any(not _is_empty(getattr(self, f.name)) for f in fields(self))

    @property
    def mapping(self) -> EdgeTPUMapping:
        """The counts and memory as the shared :class:`EdgeTPUMapping` (source: log)."""
        status: str = "unknown"  # saved output that says neither
        if self.failure is not None:
            status = CompileStatus.TIMEOUT if self.failure.kind is FailureKind.TIMEOUT else CompileStatus.FAILED
        elif self.compiled or self.ops_total is not None:
            status = CompileStatus.PARTIAL if self.ops_cpu or self.subgraphs == 0 else CompileStatus.COMPILED
        return EdgeTPUMapping(
            source=Source.LOG,
            status=status,
            ops_edgetpu=self.ops_edgetpu,
            ops_cpu=self.ops_cpu,
            ops_total=self.ops_total,
            subgraphs=self.subgraphs,
            on_chip_bytes=self.on_chip_used_bytes,
            off_chip_bytes=self.off_chip_used_bytes,
            compiler_version=self.compiler_version,
        )

    @property
    def partial(self) -> bool:
        """True when the model compiled but some ops run on the CPU."""
        return self.failure is None and bool(self.ops_cpu)

    def to_frame(self):
        """The operator table as a pandas DataFrame (columns op, count, status, mapped)."""
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        return pd.DataFrame(
            [{**row.to_dict(), "mapped": row.mapped} for row in self.operators],
            columns=["op", "count", "status", "mapped"],
        )

    def __repr__(self) -> str:
        parts = [
            f"compiler_version={self.compiler_version!r}",
            f"input_model={self.input_model!r}",
            f"ops_edgetpu={self.ops_edgetpu}",
            f"ops_cpu={self.ops_cpu}",
            f"ops_total={self.ops_total}",
            f"subgraphs={self.subgraphs}",
            f"on_chip_used={format_bytes(self.on_chip_used_bytes)!r}",
            f"on_chip_remaining={format_bytes(self.on_chip_remaining_bytes)!r}",
            f"off_chip_used={format_bytes(self.off_chip_used_bytes)!r}",
            f"operators={len(self.operators)} rows",
            f"failure={self.failure.kind.value if self.failure else None}",
        ]
        return f"CompilerReport({', '.join(parts)})"


def _is_empty(value: Any) -> bool:
    # Not `value in (None, (), False)`: 0 == False, and a count of 0 ops is information.
    return value is None or value is False or value == ()


def parse_size(text: str) -> int:
    """``'6.89MiB'`` -> 7224689 bytes (binary units, rounded half up to whole bytes).

    Raises:
        ValueError: the text is not a number followed by B, KiB, MiB or GiB.
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB)\s*", text)
    if not match:
        raise ValueError(f"Expected a size such as '6.89MiB'. Received: {text!r}")
    # Decimal keeps 6.89 * 2**20 exact before rounding (float gives 7224688.639999...).
    value = Decimal(match.group(1)) * _UNITS[match.group(2)]
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


_VERSION = re.compile(r"Edge TPU Compiler version\s+(\S+)")
_COMPILED = re.compile(r"Models? compiled successfully(?: in (\d+) ?ms)?")
_INPUT = re.compile(r"^Input(?: model)?:\s*(.+?)\s*$")
_OUTPUT = re.compile(r"^Output(?: model)?:\s*(.+?)\s*$")
_SIZES = {
    "input_size_bytes": re.compile(r"^Input size:\s*(\S+)"),
    "output_size_bytes": re.compile(r"^Output size:\s*(\S+)"),
    "on_chip_used_bytes": re.compile(r"^On-chip memory used for caching model parameters:\s*(\S+)"),
    "on_chip_remaining_bytes": re.compile(r"^On-chip memory remaining for caching model parameters:\s*(\S+)"),
    "on_chip_available_bytes": re.compile(r"^On-chip memory available for caching model parameters:\s*(\S+)"),
    "off_chip_used_bytes": re.compile(r"^Off-chip memory used for streaming uncached model parameters:\s*(\S+)"),
}
_COUNTS = {
    "subgraphs": re.compile(r"^Number of Edge TPU subgraphs:\s*(\d+)"),
    "ops_total": re.compile(r"^Total number of operations:\s*(\d+)"),
    "ops_edgetpu": re.compile(r"^Number of operations that will run on Edge TPU:\s*(\d+)"),
    "ops_cpu": re.compile(r"^Number of operations that will run on CPU:\s*(\d+)"),
}
_LOG_FILE = re.compile(r"^Operation log:\s*(.+?)\s*$")
_TABLE_HEADER = re.compile(r"^Operator\s+Count\s+Status\s*$")
_TABLE_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")
_PARTIAL = "not all operations are supported by the Edge TPU"
_COMPLETE_MARKERS = (
    "See the operation log file for individual operation details",
    "Compilation child process completed within timeout period",
)
_OP_VERSION = re.compile(r"Didn't find op for builtin opcode '([^']+)' version '(\d+)'")

# Whole-model failures, most specific first: the compiler often prints a generic line
# ("Invalid model: x.tflite", "Compilation failed!") next to the one that says why.
_FAILURES: tuple[tuple[FailureKind, re.Pattern[str]], ...] = (
    (FailureKind.NOT_QUANTIZED, re.compile(r"Model not quantized")),
    (FailureKind.OP_VERSION_NOT_SUPPORTED, _OP_VERSION),
    (FailureKind.LARGE_ACTIVATIONS, re.compile(r"large activation tensors")),
    # Case-sensitive: v16 always prints "Started a compilation timeout timer of 180 seconds."
    (FailureKind.TIMEOUT, re.compile(r"Compilation timeout(?! timer)|timed out")),
    (FailureKind.INTERNAL_ERROR, re.compile(r"Internal compiler error")),
    (
        FailureKind.INVALID_MODEL,
        re.compile(
            r"Invalid model|Model could not be parsed|dynamic-sized tensors"
            r"|Model failed in Tflite interpreter|Failed to read|not a valid"
        ),
    ),
    (FailureKind.UNKNOWN, re.compile(r"Compilation failed|^ERROR:", re.MULTILINE)),
)


def _find_failure(text: str) -> CompilerFailure | None:
    for kind, pattern in _FAILURES:
        match = pattern.search(text)
        if not match:
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        line = text[start : end if end != -1 else len(text)].strip()
        if kind is FailureKind.OP_VERSION_NOT_SUPPORTED:
            return CompilerFailure(kind, line, op=match.group(1), op_version=int(match.group(2)))
        return CompilerFailure(kind, line)
    return None


def _split_sections(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """Split into global lines (before the first model) and one block per input model."""
    head: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if _INPUT.match(line.strip()):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            head.append(line)
    return head, sections


def _parse_table(lines: list[str]) -> tuple[OperatorRow, ...]:
    rows: list[OperatorRow] = []
    in_table = False
    for line in lines:
        stripped = line.strip()
        if _TABLE_HEADER.match(stripped):
            if rows:  # a second table in one block (stdout with -s plus a pasted log): keep one
                break
            in_table = True
            continue
        if not in_table:
            continue
        if not stripped:
            if rows:
                in_table = False
            continue
        match = _TABLE_ROW.match(stripped)
        if not match:
            in_table = False
            continue
        rows.append(OperatorRow(match.group(1), int(match.group(2)), match.group(3)))
    return tuple(rows)


def _parse_block(lines: list[str], shared: dict[str, Any], markers: tuple[str, ...]) -> CompilerReport:
    values: dict[str, Any] = dict(shared)
    for raw in lines:
        line = raw.strip()
        if m := _INPUT.match(line):
            values.setdefault("input_model", m.group(1))
        elif m := _OUTPUT.match(line):
            values.setdefault("output_model", m.group(1))
        elif m := _LOG_FILE.match(line):
            values.setdefault("log_file", m.group(1))
        else:
            for name, pattern in _SIZES.items():
                if m := pattern.match(line):
                    try:
                        values.setdefault(name, parse_size(m.group(1)))
                    except ValueError:
                        logger.warning("Unrecognised size in compiler output: %r", line)
                    break
            else:
                for name, pattern in _COUNTS.items():
                    if m := pattern.match(line):
                        values.setdefault(name, int(m.group(1)))
                        break
    text = "\n".join(lines)
    report = CompilerReport(operators=_parse_table(lines), **values)
    complete = bool(report.operators) or bool(markers)
    return _derive(report, partial_warning=_PARTIAL in text, complete=complete)


def _derive(report: CompilerReport, *, partial_warning: bool, complete: bool) -> CompilerReport:
    """Fill op counts that follow exactly from the others (see CompilerReport's docstring)."""
    edgetpu, cpu, total = report.ops_edgetpu, report.ops_cpu, report.ops_total
    if report.operators:
        table_tpu = sum(r.count for r in report.operators if r.mapped)
        table_cpu = sum(r.count for r in report.operators if not r.mapped)
        if (edgetpu, cpu) != (None, None) and (edgetpu, cpu) != (table_tpu, table_cpu):
            logger.warning(
                "Compiler summary (%s on Edge TPU, %s on CPU) disagrees with its operator table "
                "(%d, %d); keeping the summary",
                edgetpu,
                cpu,
                table_tpu,
                table_cpu,
            )
        edgetpu = table_tpu if edgetpu is None else edgetpu
        cpu = table_cpu if cpu is None else cpu
    if total is not None:
        if edgetpu is not None and cpu is None:
            cpu = total - edgetpu
        elif cpu is not None and edgetpu is None:
            edgetpu = total - cpu
    if (
        edgetpu is None
        and cpu is None
        and total is not None
        and complete
        and report.compiled
        and report.failure is None
        and not partial_warning
    ):
        edgetpu, cpu = total, 0
    if total is None and edgetpu is not None and cpu is not None:
        total = edgetpu + cpu
    return replace(report, ops_edgetpu=edgetpu, ops_cpu=cpu, ops_total=total)


def parse_compiler_outputs(text: str) -> list[CompilerReport]:
    """Parse compiler output that may cover several co-compiled models: one report per model.

    Blocks that name the same input model (stdout followed by that model's ``.log``) are merged.
    """
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    head, sections = _split_sections(lines)
    shared: dict[str, Any] = {}
    if m := _VERSION.search(text):
        shared["compiler_version"] = m.group(1)
    if m := _COMPILED.search(text):
        shared["compiled"] = True
        if m.group(1):
            shared["compile_time_ms"] = int(m.group(1))
    failure = None if shared.get("compiled") else _find_failure(text)
    if failure is not None:
        shared["failure"] = failure
    markers = tuple(marker for marker in _COMPLETE_MARKERS if marker in text)
    if not sections:
        return [_parse_block(head, shared, markers)]
    reports: dict[str, CompilerReport] = {}
    for index, block in enumerate(sections):
        if index == 0:
            block = head + block  # Sample A style text puts the counts before any Input line
        report = _parse_block(block, shared, markers)
        key = Path(report.input_model or f"#{index}").name
        reports[key] = merge_reports(reports[key], report) if key in reports else report
    return list(reports.values())


def parse_compiler_output(text: str) -> CompilerReport:
    """Parse the stdout/stderr of ``edgetpu_compiler`` or the text of a ``<model>_edgetpu.log``.

    Never raises on odd text: fields that are not found are None (check ``report.recognized``).
    For co-compiled models this returns the first model; use :func:`parse_compiler_outputs`.

    Args:
        text: the compiler's output, any version from 2.x to 16.

    Returns:
        A CompilerReport (see its docstring for which figures are derived and when).
    """
    reports = parse_compiler_outputs(text)
    if len(reports) > 1:
        logger.warning(
            "Compiler output covers %d models; returning the first (%s). Use parse_compiler_outputs for all.",
            len(reports),
            reports[0].input_model,
        )
    return reports[0]


def merge_reports(primary: CompilerReport, secondary: CompilerReport) -> CompilerReport:
    """Combine two reports of one model (e.g. stdout and the .log): primary wins field by field."""
    values = {}
    for f in fields(CompilerReport):
        a, b = getattr(primary, f.name), getattr(secondary, f.name)
        values[f.name] = b if _is_empty(a) else a
    # Counts are re-derived from the merged fields, so drop derived ones taken from one side only.
    merged = CompilerReport(**values)
    return _derive(merged, partial_warning=bool(merged.ops_cpu), complete=bool(merged.operators))


def read_log(path: str | Path) -> CompilerReport:
    """Read a ``<model>_edgetpu.log`` file (or saved compiler stdout) and parse it.

    Raises:
        EdgeTPUError: the file is missing, unreadable, binary or holds no compiler output.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EdgeTPUError(f"Cannot read Edge TPU compiler log {str(path)!r}: {exc.strerror or exc}") from None
    if b"\x00" in data[:4096]:
        raise EdgeTPUError(f"Expected a text file of Edge TPU compiler output. Received a binary file: {str(path)!r}")
    report = parse_compiler_output(data.decode("utf-8", errors="replace"))
    if not report.recognized:
        raise EdgeTPUError(
            "Expected Edge TPU compiler output (a <model>_edgetpu.log or the compiler's stdout). "
            f"Found none in {str(path)!r}"
        )
    return report
