"""Will a candidate fit the Edge TPU? Answered from its untrained graph, before any training.

What the Edge TPU compiler maps, how much parameter memory stays on chip, the file size and the
estimated latency per link depend on the graph (ops, shapes, quantization), not on the weights'
values: an untrained model converted to int8 with random calibration images gives the same
answers as the trained one (``edgelab convert --random-calibration`` rests on the same fact). So
each candidate is built, converted and analysed with :func:`edgelab.edgetpu.analyze_edgetpu` and
:func:`edgelab.edgetpu.estimate_latency` in seconds, and one that breaks a constraint is recorded
with the reason and never trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._config import Options
from .._files import write_atomic
from .._log import logger
from ..edgetpu.analyze import analyze_edgetpu
from ..edgetpu.latency import Link, estimate_latency
from ..edgetpu.memory import format_bytes
from ..errors import ConfigError, ConversionError, check_int
from ..records import Record, rounded

#: Random images used to calibrate an untrained graph: enough for the converter to set every
#: tensor's range; the analysis reads the graph, not the ranges' values (1 or 4 images cost the
#: same: the conversion, not the calibration, is the prescreen's time).
CALIBRATION_IMAGES = 4


@dataclass(frozen=True)
class Constraints(Options, Record):
    """What a candidate must satisfy to be trained.

    Attributes:
        budget_ms: Estimated Edge TPU latency per inference on ``link``, at most (None: no limit).
        link: The link the latency is estimated on (``usb3``, ``usb2``, ``pcie``, ``devboard``).
        max_cpu_ops: Ops allowed to stay on the CPU (0: every op mapped to the Edge TPU).
        max_off_chip_bytes: Parameter bytes allowed off chip, streamed over the link on every
            inference (0: every parameter cached in the Edge TPU's on-chip memory).
        max_size_bytes: Largest int8 file (None: no limit).
    """

    budget_ms: float | None = None
    link: Link | str = Link.USB3
    max_cpu_ops: int = 0
    max_off_chip_bytes: int = 0
    max_size_bytes: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "link", Link(str(self.link)))
        except ValueError:
            raise ConfigError(
                f"Expected link to be one of {[x.value for x in Link]}. Received: link={self.link!r}"
            ) from None
        if self.budget_ms is not None and not (isinstance(self.budget_ms, (int, float)) and self.budget_ms > 0):
            raise ConfigError(f"Expected budget_ms to be a positive number. Received: budget_ms={self.budget_ms!r}")
        check_int("max_cpu_ops", self.max_cpu_ops, minimum=0)
        check_int("max_off_chip_bytes", self.max_off_chip_bytes, minimum=0)
        check_int("max_size_bytes", self.max_size_bytes, minimum=1, allow_none=True)


@dataclass(frozen=True)
class Screen(Record):
    """The analysis of one int8 file against the constraints.

    Attributes:
        latency_ms: Estimated Edge TPU time per inference on the constraints' link.
        ops_edgetpu, ops_total: Ops the compiler would map, and all ops.
        off_chip_bytes: Parameter bytes that do not fit on chip.
        size_bytes: The int8 file's size.
        violations: Per constraint, how far it is broken (> 0) or met (<= 0): Optuna's convention.
        reason: Why the candidate is infeasible (None when feasible).
        seconds: Build + conversion + analysis time.
    """

    latency_ms: float
    ops_edgetpu: int
    ops_total: int
    off_chip_bytes: int
    size_bytes: int
    violations: dict[str, float]
    reason: str | None
    seconds: float = field(metadata=rounded(3))

    @property
    def feasible(self) -> bool:
        return self.reason is None


def screen_file(path: str | Path, constraints: Constraints, seconds: float = 0.0) -> Screen:
    """Analyse an int8 ``.tflite`` against ``constraints`` (no TensorFlow)."""
    report = analyze_edgetpu(path)
    latency = estimate_latency(path, links=[constraints.link])[constraints.link].total_ms
    size = Path(path).stat().st_size
    off_chip = int(report.off_chip_bytes or 0)
    reasons: list[str] = []
    violations: dict[str, float] = {}
    if not report.verdict.compiles:
        reasons.append(f"the Edge TPU compiler would refuse it: {report.message}")
    violations["compiles"] = 0.0 if report.verdict.compiles else 1.0
    violations["cpu_ops"] = float(report.ops_cpu - constraints.max_cpu_ops)
    if report.ops_cpu > constraints.max_cpu_ops:
        first = next((op for op in report.ops if str(op.target) == "cpu"), None)
        which = f" (first: {first.op}, {first.reason})" if first is not None else ""
        reasons.append(f"{report.ops_cpu} of {report.ops_total} ops on the CPU > {constraints.max_cpu_ops}{which}")
    violations["off_chip_bytes"] = float(off_chip - constraints.max_off_chip_bytes)
    if off_chip > constraints.max_off_chip_bytes:
        reasons.append(
            f"{format_bytes(off_chip)} of parameters off chip > {format_bytes(constraints.max_off_chip_bytes)} "
            "(streamed over the link on every inference)"
        )
    if constraints.max_size_bytes is not None:
        violations["size_bytes"] = float(size - constraints.max_size_bytes)
        if size > constraints.max_size_bytes:
            reasons.append(f"file {format_bytes(size)} > {format_bytes(constraints.max_size_bytes)}")
    if constraints.budget_ms is not None:
        violations["latency_ms"] = float(latency - constraints.budget_ms)
        if latency > constraints.budget_ms:
            reasons.append(f"{latency:.2f} ms on {constraints.link} > budget {constraints.budget_ms:g} ms")
    return Screen(
        latency_ms=float(latency),
        ops_edgetpu=int(report.ops_edgetpu),
        ops_total=int(report.ops_total),
        off_chip_bytes=off_chip,
        size_bytes=int(size),
        violations=violations,
        reason="; ".join(reasons) or None,
        seconds=seconds,
    )


def prescreen(model: Any, constraints: Constraints, *, out_dir: str | Path, seed: int = 0) -> Screen:
    """Convert the untrained ``model`` to int8 with random calibration and screen the file.

    The graph is converted from its traced function in memory
    (:func:`edgelab.tflite.conversion.convert_graph_int8`: no SavedModel export, about a third of
    the CPU time of :func:`edgelab.convert`, same ops, shapes and quantization); a model that path
    refuses is converted the usual way. The file is written to ``out_dir/untrained_int8.tflite``.
    """
    # deferred: TensorFlow (converting needs it; screening a file does not)
    from ..tflite.conversion import convert, convert_graph_int8

    start = time.perf_counter()
    shape = tuple(int(d) for d in model.input_shape[1:])
    images = np.random.default_rng(seed).integers(0, 256, (CALIBRATION_IMAGES, *shape), dtype=np.uint8)
    path = Path(out_dir) / "untrained_int8.tflite"
    try:
        flatbuffer = convert_graph_int8(model, images)
    except ConversionError as exc:
        logger.info("prescreen: the in-memory conversion failed (%s); exporting the model instead", exc)
        path = convert(
            model, "int8", out_dir=out_dir, calibration=images, calibration_samples=CALIBRATION_IMAGES, name="untrained"
        ).path
    else:
        write_atomic(path, flatbuffer)
    return screen_file(path, constraints, seconds=time.perf_counter() - start)
