"""Predict the Edge TPU Compiler's verdict from a ``.tflite`` file alone (no compiler, no TensorFlow).

The rules, in the order the compiler meets them:

1. Parsing: an op version newer than compiler 16's built-in TFLite knows fails the whole model
   (``Didn't find op for builtin opcode 'X' version 'N'``).
2. Quantization: a model with dynamic dimensions, or where no op works on 8-bit quantized
   tensors, fails with ``Model not quantized``.
3. Per op: the op must be in Coral's supported list for the target runtime, work on 8-bit
   tensors, keep every activation within 3 innermost dimensions larger than 1, and respect the
   op's known limitations. Each failure gets the compiler's own status string.
4. Partitioning: everything mapped goes into one ``edgetpu-custom-op``. Ops that fail step 3
   before anything is mapped upstream of them (float-input QUANTIZE, say) simply run first on
   the CPU; an op that fails *after* mapped ops cuts the graph, and every op that depends on it
   stays on the CPU with ``More than one subgraph is not supported`` (Coral's note quoted in
   google-coral/edgetpu#663, log symptom in #461). With ``-a`` (``multiple_subgraphs=True``,
   the experimental ``--enable_multiple_subgraphs``; edgetpu#317, #342, #356) those ops map
   again, and every run of mapped ops in execution order becomes one more Edge TPU subgraph.

Parameters of the mapped ops are then laid into the on-chip cache in execution order; what does
not fit is streamed from host memory on every inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._log import logger
from .._text import hanging
from ..errors import ConfigError
from ..records import Record
from ..tflite.inspection import ModelInfo, OpInfo, TensorInfo, inspect_model
from ..units import MIB, format_bytes
from . import ops as table
from .cache import parameter_memory
from .mapping import EdgeTPUMapping, Source, Target, Verdict
from .ops import (
    EDGETPU_CUSTOM_OP,
    MSG_NOT_QUANTIZED,
    MSG_OP_VERSION,
    STATUS_DATA_TYPE,
    STATUS_LIMITATION,
    STATUS_MAPPED,
    STATUS_NOT_SUPPORTED,
    STATUS_RANK,
    STATUS_SUBGRAPH,
    STATUS_VERSION,
)
from .rules import LIMITS, op_activations, op_inputs, unverified_reason, version_refused

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["EdgeTPUReport", "OpVerdict", "analyze_edgetpu"]

TARGET_EDGETPU = Target.EDGETPU
TARGET_CPU = Target.CPU

REASON_COMPILED = "Edge TPU custom op (already compiled)"
REASON_LEFT_ON_CPU = "Left on the CPU by the Edge TPU Compiler"

_EIGHT_BIT = ("int8", "uint8")
_LSTM_OPS = ("LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM")
_PARAM_TYPES = ("int32", "int64")  # unquantized constant operands: shapes, axes, paddings, biases
_FLOAT = ("float32", "float16", "float64", "bfloat16")


@dataclass(frozen=True)
class OpVerdict(Record):
    """Where one op runs after compilation, and why.

    Attributes:
        index: Op index in the analyzed model's execution order.
        op: Builtin name or custom code.
        version: Op version.
        target: :class:`~edgelab.edgetpu.mapping.Target` (``"edgetpu"`` or ``"cpu"``).
        reason: The compiler's status wording (``"Mapped to Edge TPU"``, ``"Operation not supported"``...).
    """

    index: int
    op: str
    version: int
    target: Target
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Target(self.target))


@dataclass(frozen=True)
class EdgeTPUReport(Record):
    """The predicted (or, for a compiled file, observed) Edge TPU mapping of a model.

    Attributes:
        path: The model analyzed, None for bytes.
        ops: One :class:`OpVerdict` per op.
        ops_total: Number of ops in the analyzed model.
        ops_edgetpu: Ops mapped to the Edge TPU (for a compiled model: its custom ops).
        ops_cpu: Ops that run on the CPU.
        verdict: A :class:`~edgelab.edgetpu.mapping.Verdict`.
        message: One line: the compiler's whole-model message or a summary of the mapping.
        runtime_version: Edge TPU runtime targeted (None for an already compiled model).
        compiled: True when the input already went through the compiler.
        subgraphs: Edge TPU subgraphs (custom ops) the compiled model has or would have.
        on_chip_bytes: Estimated parameter bytes cached on chip (None if unknown).
        off_chip_bytes: Estimated parameter bytes streamed from host memory (None if unknown).
        on_chip_capacity_bytes: Cache size the estimate assumes.
        hints: Advice on what keeps ops off the Edge TPU and how to fix it.
        unverified: Indices of ops whose own verdict rests on a rule no public compiler output
            confirms (``rules.UNVERIFIED``: TILE, align_corners RESIZE_BILINEAR); a hint names them.
    """

    #: ``to_dict``: the JSON document of ``edgelab analyze --json``.
    RECORD_KEYS = (
        "path",
        "verdict",
        "message",
        "compiled",
        "runtime_version",
        ("compiler_version", lambda report: table.COMPILER_VERSION),
        "ops_total",
        "ops_edgetpu",
        "ops_cpu",
        "subgraphs",
        "on_chip_bytes",
        "off_chip_bytes",
        "on_chip_capacity_bytes",
        "hints",
        "unverified",
        "ops",
    )

    path: str | None
    ops: tuple[OpVerdict, ...]
    ops_total: int
    ops_edgetpu: int
    ops_cpu: int
    verdict: Verdict
    message: str
    runtime_version: int | None
    compiled: bool
    subgraphs: int
    on_chip_bytes: int | None
    off_chip_bytes: int | None
    on_chip_capacity_bytes: int
    hints: tuple[str, ...] = ()
    unverified: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    @property
    def mapping(self) -> EdgeTPUMapping:
        """The counts and memory as the shared :class:`EdgeTPUMapping` (source: predicted, or
        compiler for an already compiled file)."""
        return EdgeTPUMapping(
            source=Source.COMPILER if self.compiled else Source.PREDICTED,
            status=self.verdict,
            ops_edgetpu=self.ops_edgetpu,
            ops_cpu=self.ops_cpu,
            ops_total=self.ops_total,
            subgraphs=self.subgraphs,
            on_chip_bytes=self.on_chip_bytes,
            off_chip_bytes=self.off_chip_bytes,
            compiler_version=None if self.compiled else table.COMPILER_VERSION,
            report=self,
        )

    @property
    def cpu_ops(self) -> tuple[OpVerdict, ...]:
        """The ops that run on the CPU."""
        return tuple(v for v in self.ops if v.target == TARGET_CPU)

    def operator_table(self) -> pd.DataFrame:
        """Rows of (op, count, status) as in the compiler's ``.log``, in order of first appearance."""
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        counts: dict[tuple[str, str], int] = {}
        for v in self.ops:
            counts[(v.op, v.reason)] = counts.get((v.op, v.reason), 0) + 1
        rows = [{"op": op, "count": n, "status": status} for (op, status), n in counts.items()]
        return pd.DataFrame(rows, columns=["op", "count", "status"])

    def to_frame(self) -> pd.DataFrame:
        """One row per op: index, op, version, target, reason."""
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        columns = ["index", "op", "version", "target", "reason"]
        return pd.DataFrame([v.to_dict() for v in self.ops], columns=columns)

    def summary(self) -> str:
        """Readable multi-line text: verdict, memory estimate, the operator table, CPU ops, hints."""
        name = Path(self.path).name if self.path else "<bytes>"
        if self.compiled:
            head = f"Edge TPU analysis of {name} (already compiled)"
        else:
            major = table.COMPILER_VERSION.split(".")[0]
            target = f", runtime {self.runtime_version}" if self.runtime_version else ""
            head = f"Edge TPU analysis of {name} (offline prediction for edgetpu_compiler {major}{target})"
        lines = [head, f"Verdict: {self.verdict.value} - {self.message}"]
        lines.append(
            f"Operations: {self.ops_edgetpu} on Edge TPU, {self.ops_cpu} on CPU, "
            f"{self.ops_total} total; Edge TPU subgraphs: {self.subgraphs}"
        )
        if self.on_chip_bytes is not None and self.off_chip_bytes is not None:
            lines.append(
                f"Parameters (estimate): {format_bytes(self.on_chip_bytes)} cached on chip, "
                f"{format_bytes(self.off_chip_bytes)} streamed "
                f"(cache {format_bytes(self.on_chip_capacity_bytes)})"
            )
        mapped_or_not = self.verdict.compiles
        if self.ops and mapped_or_not:  # whole-model failures print no operator table
            lines += ["", f"{'Operator':<31}{'Count':<11}Status"]
            for row in self.operator_table().itertuples(index=False):
                lines.append(hanging(f"{row.op:<31}{row.count:<11}{row.status}", 42))
        cpu = self.cpu_ops
        if cpu and mapped_or_not:
            lines += ["", "On the CPU:"]
            lines += [hanging(f"  #{v.index:<4} {v.op:<28} v{v.version:<3} {v.reason}", 42) for v in cpu]
        if self.hints:
            lines += ["", "Hints:"] + [hanging(f"  - {h}", 4) for h in self.hints]
        return "\n".join(lines)

    def __repr__(self) -> str:
        def mib(n: int | None) -> str:
            return "None" if n is None else f"{n / MIB:.2f} MiB"

        return (
            f"EdgeTPUReport(verdict={self.verdict.value!r}, ops_edgetpu={self.ops_edgetpu}, "
            f"ops_cpu={self.ops_cpu}, ops_total={self.ops_total}, compiled={self.compiled}, "
            f"runtime_version={self.runtime_version}, on_chip={mib(self.on_chip_bytes)}, "
            f"off_chip={mib(self.off_chip_bytes)})"
        )


def analyze_edgetpu(
    model: str | Path | bytes | ModelInfo,
    runtime_version: int = table.DEFAULT_RUNTIME_VERSION,
    multiple_subgraphs: bool = False,
) -> EdgeTPUReport:
    """Predict which ops ``edgetpu_compiler`` 16 maps to the Edge TPU, from the ``.tflite`` alone.

    Args:
        model: A ``.tflite`` path, its bytes, or a :class:`~edgelab.tflite.inspection.ModelInfo`. An
            already compiled ``*_edgetpu.tflite`` is read as it is (its custom op and the ops
            left on the CPU).
        runtime_version: Edge TPU runtime to target (``-m``); 14 is compiler 16's default,
            13 for devices still on libedgetpu 13-15.
        multiple_subgraphs: Predict ``edgetpu_compiler -a`` (several Edge TPU subgraphs): ops
            after a CPU op may map again.

    Returns:
        An :class:`EdgeTPUReport`.

    Raises:
        ModelFileError: the model cannot be read.
        ConfigError: ``runtime_version`` is not a runtime version the compiler can target.
    """
    if isinstance(runtime_version, bool) or runtime_version not in table.RUNTIME_VERSIONS:
        choices = ", ".join(str(v) for v in table.RUNTIME_VERSIONS)
        raise ConfigError(
            f"Expected runtime_version to be one of {choices}. Received: runtime_version={runtime_version!r}"
        )
    info = model if isinstance(model, ModelInfo) else inspect_model(model)
    if info.is_edgetpu_compiled:
        return _read_compiled(info)
    if not info.ops:
        return _whole_model(info, runtime_version, Verdict.INVALID, "Model has no operations", ())
    failure = _parse_failure(info, runtime_version)
    if failure is not None:
        return failure
    failure = _quantization_failure(info, runtime_version)
    if failure is not None:
        return failure
    return _predict(info, runtime_version, bool(multiple_subgraphs))


# --- whole-model failures -------------------------------------------------------------------


def _parse_failure(info: ModelInfo, runtime: int) -> EdgeTPUReport | None:
    for op in info.ops:
        limit = table.MAX_PARSE_VERSION.get(op.op)
        if not op.is_custom and limit is not None and op.version > limit:
            message = MSG_OP_VERSION.format(op=op.op, version=op.version)
            hints = (
                f"Compiler {table.COMPILER_VERSION} reads {op.op} up to version {limit}; this model "
                f"has version {op.version} (op #{op.index}). Convert with an older TensorFlow "
                "(about 2.5-2.8 for compiler 16), with the old converter "
                "(converter.experimental_new_converter = False), or avoid the op.",
            )
            return _whole_model(info, runtime, Verdict.UNSUPPORTED_OP_VERSION, message, hints)
    return None


def _quantization_failure(info: ModelInfo, runtime: int) -> EdgeTPUReport | None:
    dynamic = [t for t in info.tensors if not t.has_buffer and t.is_dynamic]
    if dynamic:
        t = dynamic[0]
        hints = (
            f"Tensor {t.name!r} has a dynamic shape {list(t.shape_signature)}: the compiler needs "
            "static shapes with batch 1. Fix the input shape before converting, e.g. "
            "model.input.set_shape((1,) + model.input.shape[1:]) or "
            "concrete_func.inputs[0].set_shape([1, H, W, 3]).",
        )
        return _whole_model(info, runtime, Verdict.NOT_QUANTIZED, MSG_NOT_QUANTIZED, hints)
    if not any(_works_in_8bit(op, info) for op in info.ops):
        kinds = sorted({t.dtype for op in info.ops for t in op_activations(op, info)} - set(_EIGHT_BIT))
        hints = (
            f"No operation works on 8-bit quantized tensors (activations are {', '.join(kinds) or 'unquantized'}). "
            "Convert with full-integer quantization: optimizations=[tf.lite.Optimize.DEFAULT], "
            "a representative_dataset, supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8] and "
            "uint8 input/output.",
        )
        return _whole_model(info, runtime, Verdict.NOT_QUANTIZED, MSG_NOT_QUANTIZED, hints)
    return None


def _whole_model(info: ModelInfo, runtime: int, verdict: Verdict, message: str, hints: Any) -> EdgeTPUReport:
    # Nothing compiles: every op stays where the interpreter would run it, the CPU.
    ops = tuple(OpVerdict(op.index, op.op, op.version, TARGET_CPU, message) for op in info.ops)
    return EdgeTPUReport(
        path=info.path,
        ops=ops,
        ops_total=len(ops),
        ops_edgetpu=0,
        ops_cpu=len(ops),
        verdict=verdict,
        message=message,
        runtime_version=runtime,
        compiled=False,
        subgraphs=0,
        on_chip_bytes=0,
        off_chip_bytes=0,
        on_chip_capacity_bytes=table.ON_CHIP_USABLE_BYTES,
        hints=tuple(hints),
    )


# --- per-op prediction ----------------------------------------------------------------------


def _predict(info: ModelInfo, runtime: int, multiple_subgraphs: bool = False) -> EdgeTPUReport:
    own = [_own_reason(op, info, runtime) for op in info.ops]
    producer = {t: op.index for op in info.ops for t in op.outputs}
    on_tpu = [False] * len(info.ops)
    after_tpu = [False] * len(info.ops)  # some ancestor is mapped
    blocked = [False] * len(info.ops)  # some ancestor is a CPU op that comes after mapped ops
    reasons: list[str] = []
    for op in info.ops:
        parents = {producer[t] for t in op.inputs if t in producer}
        after_tpu[op.index] = any(on_tpu[p] or after_tpu[p] for p in parents)
        blocked[op.index] = not multiple_subgraphs and any(
            blocked[p] or (not on_tpu[p] and after_tpu[p]) for p in parents
        )
        if own[op.index] is None and not blocked[op.index]:
            on_tpu[op.index] = True
            reasons.append(STATUS_MAPPED)
        else:
            reasons.append(own[op.index] or STATUS_SUBGRAPH)

    verdicts = tuple(
        OpVerdict(op.index, op.op, op.version, TARGET_EDGETPU if on_tpu[op.index] else TARGET_CPU, r)
        for op, r in zip(info.ops, reasons, strict=True)
    )
    n_tpu = sum(on_tpu)
    n_cpu = len(verdicts) - n_tpu
    on_chip, off_chip = parameter_memory(info, [op for op in info.ops if on_tpu[op.index]])
    # Without -a there is at most one subgraph; with it, each run of mapped ops in execution order.
    runs = sum(1 for i, m in enumerate(on_tpu) if m and (i == 0 or not on_tpu[i - 1]))
    if n_cpu == 0:
        verdict, message = Verdict.OK, f"all {n_tpu} operations map to the Edge TPU"
    elif n_tpu == 0:
        verdict, message = Verdict.NONE_MAPPED, f"no operation maps to the Edge TPU ({n_cpu} on the CPU)"
    else:
        verdict = Verdict.PARTIAL
        message = f"{n_tpu} of {len(verdicts)} operations map to the Edge TPU, {n_cpu} run on the CPU"
    # Ops whose printed status comes from their own unverified rule (not from the partition, the
    # data type or the rank, which stand on their own sources).
    decided_by_rule = (STATUS_MAPPED, STATUS_LIMITATION, STATUS_NOT_SUPPORTED)
    unverified = tuple(
        op.index
        for op in info.ops
        if not op.is_custom and reasons[op.index] in decided_by_rule and unverified_reason(op, info) is not None
    )
    hints = _hints(info, verdicts, own, after_tpu, runtime, off_chip) + _unverified_hints(info, verdicts, unverified)
    report = EdgeTPUReport(
        path=info.path,
        ops=verdicts,
        ops_total=len(verdicts),
        ops_edgetpu=n_tpu,
        ops_cpu=n_cpu,
        verdict=verdict,
        message=message,
        runtime_version=runtime,
        compiled=False,
        subgraphs=(runs if multiple_subgraphs else 1) if n_tpu else 0,
        on_chip_bytes=on_chip,
        off_chip_bytes=off_chip,
        on_chip_capacity_bytes=table.ON_CHIP_USABLE_BYTES,
        hints=hints,
        unverified=unverified,
    )
    logger.info("Edge TPU analysis of %s: %s", info.path or "<bytes>", message)
    return report


def _own_reason(op: OpInfo, info: ModelInfo, runtime: int) -> str | None:
    """Why the op cannot map on its own, in compiler wording; None when it can."""
    if op.is_custom:
        return STATUS_NOT_SUPPORTED
    row = table.support_for(op.op)
    if op.op == "QUANTIZE" and any(t.dtype in _FLOAT for t in op_inputs(op, info)):
        # A float->int8 Quantize at the graph input: logged as an unspecified limitation.
        return STATUS_LIMITATION
    if not _types_ok(op, info):
        return STATUS_DATA_TYPE
    if row is None or row.min_runtime > runtime:
        return STATUS_NOT_SUPPORTED
    if version_refused(op):
        return STATUS_VERSION
    if any(_rank_too_high(t) for t in op_activations(op, info)):
        return STATUS_RANK
    check = LIMITS.get(op.op)
    if check is not None and not check(op, info, runtime):
        return STATUS_LIMITATION
    return None


def _works_in_8bit(op: OpInfo, info: ModelInfo) -> bool:
    acts = op_activations(op, info)
    if op.op in _LSTM_OPS:  # the int16 cell state is by design (rules._lstm_ok checks it)
        acts = [t for t in acts if not t.is_variable]
    return bool(acts) and all(t.dtype in _EIGHT_BIT and t.quantized for t in acts)


def _types_ok(op: OpInfo, info: ModelInfo) -> bool:
    if not _works_in_8bit(op, info):
        return False
    for t in op_inputs(op, info) if op.op not in _LSTM_OPS else ():  # LSTM: int16 layer-norm weights
        if t.has_buffer and not (t.dtype in _EIGHT_BIT or t.dtype in _PARAM_TYPES):
            return False  # float or int16 weights
    return True


def _rank_too_high(t: TensorInfo) -> bool:
    # Only the 3 innermost dimensions may be larger than 1: [1,128,128,3] works, [3,128,128,1] not.
    return any(d > 1 for d in t.shape[:-3])


def _hints(info, verdicts, own, after_tpu, runtime, off_chip) -> tuple[str, ...]:
    hints: list[str] = []
    cuts = [v for v in verdicts if v.target == TARGET_CPU and own[v.index] is not None]
    for v in cuts:
        op = info.ops[v.index]
        row = table.support_for(op.op)
        if op.is_custom:
            continue
        if row is not None and row.min_runtime > runtime and v.reason == STATUS_NOT_SUPPORTED:
            hints.append(
                f"{op.op} (#{op.index}) needs Edge TPU runtime {row.min_runtime} or newer; "
                f"compile with -m {row.min_runtime} if your devices have it."
            )
    # The op that cut the graph: the first one refused after something upstream was mapped.
    first_cut = next((v for v in cuts if after_tpu[v.index]), None)
    n_after = sum(1 for v in verdicts if v.reason == STATUS_SUBGRAPH)
    if first_cut is not None and n_after:
        hints.append(
            f"{first_cut.op} (#{first_cut.index}) stays on the CPU ({first_cut.reason}) after mapped "
            f"ops, so {n_after} supported op(s) that depend on it stay on the CPU too. Replace it, move "
            "it to the end of the graph, or compile with -a (several Edge TPU subgraphs)."
        )
    if any(v.reason == STATUS_RANK for v in verdicts):
        hints.append(
            "Tensors may be larger than 1 only in their 3 innermost dimensions: use batch 1 and avoid 5-D reshapes."
        )
    if any(t.dtype in _FLOAT for t in list(info.inputs) + list(info.outputs)):
        hints.append(
            "Float model input/output keep the boundary QUANTIZE/DEQUANTIZE on the CPU; convert "
            "with inference_input_type = inference_output_type = tf.uint8."
        )
    if off_chip:
        hints.append(
            f"About {format_bytes(off_chip)} of parameters do not fit in the on-chip cache and are "
            "streamed from host memory on every inference; a smaller model or segmenting it (-n) "
            "keeps them on chip."
        )
    return tuple(hints)


def _unverified_hints(info: ModelInfo, verdicts: tuple[OpVerdict, ...], unverified: tuple[int, ...]) -> tuple[str, ...]:
    """One hint per (op, status) whose verdict no public compiler output confirms."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in unverified:
        groups.setdefault((verdicts[i].op, verdicts[i].reason), []).append(i)
    hints = []
    for (op, reason), indices in groups.items():
        where = "on the Edge TPU" if reason == STATUS_MAPPED else f"on the CPU ({reason})"
        note = unverified_reason(info.ops[indices[0]], info)
        hints.append(
            f"Unverified: {op} ({', '.join(f'#{i}' for i in indices)}) is predicted {where}, by a rule no "
            f"public compiler output confirms. {note} Compile with edgetpu_compiler to be sure."
        )
    return tuple(hints)


# --- already compiled models ----------------------------------------------------------------


def _read_compiled(info: ModelInfo) -> EdgeTPUReport:
    verdicts = []
    for op in info.ops:
        on_tpu = op.op == EDGETPU_CUSTOM_OP
        verdicts.append(
            OpVerdict(
                op.index,
                op.op,
                op.version,
                TARGET_EDGETPU if on_tpu else TARGET_CPU,
                REASON_COMPILED if on_tpu else REASON_LEFT_ON_CPU,
            )
        )
    n_tpu = sum(1 for v in verdicts if v.target == TARGET_EDGETPU)
    n_cpu = len(verdicts) - n_tpu
    message = f"already compiled: {n_tpu} Edge TPU custom op(s), {n_cpu} op(s) left on the CPU"
    hints: tuple[str, ...] = ()
    if n_cpu:
        left = ", ".join(sorted({v.op for v in verdicts if v.target == TARGET_CPU}))
        hints = (f"Ops left on the CPU by the compiler: {left}.",)
    return EdgeTPUReport(
        path=info.path,
        ops=tuple(verdicts),
        ops_total=len(verdicts),
        ops_edgetpu=n_tpu,
        ops_cpu=n_cpu,
        verdict=Verdict.OK if n_cpu == 0 else Verdict.PARTIAL,
        message=message,
        runtime_version=None,
        compiled=True,
        subgraphs=n_tpu,
        on_chip_bytes=None,
        off_chip_bytes=None,
        on_chip_capacity_bytes=table.ON_CHIP_USABLE_BYTES,
        hints=hints,
    )
