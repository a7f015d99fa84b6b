"""Edge TPU parameter memory: what the on-chip cache holds and what is streamed on every inference.

The Edge TPU has about 8 MB of SRAM; the compiler reserves part of it for the model's executable
and caches parameters (weights, biases) in what is left. Parameters that do not fit are
"Off-chip memory used for streaming uncached model parameters": they are read from host memory
(over USB for the USB Accelerator) on every inference, which dominates the latency of large models
(VGG16: 296 ms on USB 3 for 15.5 G MACs, while MobileNet v1 needs 2.4 ms for 0.57 G MACs).
Sources: coral.ai/docs/edgetpu/compiler ("Parameter data caching"), coral.ai/docs/edgetpu/pipeline
(segments for several Edge TPUs; "similar amount of parameter data" per segment), and
coral.ai/docs/edgetpu/multiple-edgetpu (co-compiling models that share the cache; the first
model on the command line gets the cache first). The usable size comes from compiler-16 logs
(see :data:`edgelab.edgetpu.ops.ON_CHIP_USABLE_BYTES`).

TensorFlow-free: everything is read from the ``.tflite`` file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError, check_int
from ..records import Record
from ..tflite.inspection import ModelInfo, OpInfo, inspect_model
from ..units import format_bytes
from .analyze import TARGET_EDGETPU, analyze_edgetpu
from .cache import cached_flags, fill, parameter_bytes, parameter_memory
from .ops import ON_CHIP_USABLE_BYTES

__all__ = [
    "MemoryPlan",
    "SegmentMemory",
    "cached_flags",
    "co_compiled_memory",
    "format_bytes",
    "memory_plan",
    "parameter_bytes",
    "parameter_memory",
    "require_uncompiled",
]


@dataclass(frozen=True)
class SegmentMemory(Record):
    """Parameter memory of one compiled model or one pipeline segment.

    Attributes:
        name: The model file name, or ``"segment i of N"``.
        on_chip_bytes: Parameter bytes cached in the Edge TPU's SRAM.
        off_chip_bytes: Parameter bytes streamed from host memory on every inference.
        capacity_bytes: Cache the estimate gave this model or segment.
    """

    name: str
    on_chip_bytes: int
    off_chip_bytes: int
    capacity_bytes: int

    @property
    def fits(self) -> bool:
        """True when nothing is streamed."""
        return self.off_chip_bytes == 0

    def __repr__(self) -> str:
        return (
            f"SegmentMemory({self.name!r}, on_chip={format_bytes(self.on_chip_bytes)}, "
            f"off_chip={format_bytes(self.off_chip_bytes)})"
        )


@dataclass(frozen=True)
class MemoryPlan(Record):
    """The parameter memory of a model on one Edge TPU, and what ``--num_segments`` changes.

    Attributes:
        parameter_bytes: Constant bytes of the ops mapped to the Edge TPU.
        on_chip_bytes: Of these, cached on chip when compiled as one model.
        off_chip_bytes: Streamed from host memory on every inference.
        capacity_bytes: Usable cache the estimate assumes (compiler-16 logs).
        segments: Per-segment memory with ``num_segments`` Edge TPUs (one entry when 1).
        segments_to_fit: Fewest segments (Edge TPUs in a pipeline) that stream nothing, or None
            when a single layer is larger than the cache.
    """

    RECORD_KEYS = (
        "parameter_bytes",
        "on_chip_bytes",
        "off_chip_bytes",
        "capacity_bytes",
        ("fits_on_chip", "fits"),
        "segments_to_fit",
        "segments",
    )

    parameter_bytes: int
    on_chip_bytes: int
    off_chip_bytes: int
    capacity_bytes: int
    segments: tuple[SegmentMemory, ...]
    segments_to_fit: int | None

    @property
    def fits(self) -> bool:
        """True when every mapped parameter stays on chip."""
        return self.off_chip_bytes == 0

    def summary(self) -> str:
        """One or two lines for the analyzer's text report."""
        text = (
            f"Parameters (estimate): {format_bytes(self.on_chip_bytes)} cached on chip, "
            f"{format_bytes(self.off_chip_bytes)} streamed (cache {format_bytes(self.capacity_bytes)})"
        )
        if not self.fits:
            need = (
                f"{self.segments_to_fit} segments (-n {self.segments_to_fit}, one Edge TPU each) keep them on chip"
                if self.segments_to_fit
                else "a single layer is larger than the cache: segments cannot keep it on chip"
            )
            text += f"\n  {need}"
        return text

    def __repr__(self) -> str:
        return (
            f"MemoryPlan(on_chip={format_bytes(self.on_chip_bytes)}, off_chip={format_bytes(self.off_chip_bytes)}, "
            f"segments={len(self.segments)}, segments_to_fit={self.segments_to_fit})"
        )


def _split(sizes: Sequence[int], n: int) -> list[list[int]]:
    """Cut the ops into ``n`` runs with about the same parameter bytes (the compiler's default)."""
    total = sum(sizes) or 1
    parts: list[list[int]] = [[] for _ in range(n)]
    done = 0
    for size in sizes:
        k = min(n - 1, int(n * done / total))
        parts[k].append(size)
        done += size
    return parts


def _segments_to_fit(sizes: Sequence[int], capacity: int, limit: int = 64) -> int | None:
    if max(sizes, default=0) > capacity:
        return None
    for n in range(1, limit + 1):
        if all(fill(part, capacity)[1] == 0 for part in _split(sizes, n)):
            return n
    return None


def require_uncompiled(info: ModelInfo) -> None:
    """The one check that a model has not been through the compiler (estimates read the graph).

    Raises:
        ConfigError: the model holds an ``edgetpu-custom-op``.
    """
    if info.is_edgetpu_compiled:
        raise ConfigError(
            "Expected an uncompiled .tflite: a compiled model keeps its graph and parameters inside the "
            f"Edge TPU custom op. Received: {info.path or '<bytes>'} (already compiled: use the model "
            "you compiled it from)"
        )


def _mapped_ops(info: ModelInfo) -> list[OpInfo]:
    report = analyze_edgetpu(info)
    return [info.ops[v.index] for v in report.ops if v.target == TARGET_EDGETPU]


def memory_plan(
    model: str | os.PathLike | bytes | ModelInfo,
    num_segments: int = 1,
    capacity_bytes: int = ON_CHIP_USABLE_BYTES,
) -> MemoryPlan:
    """Predict the compiler's memory lines, for one Edge TPU or a pipeline of ``num_segments``.

    Args:
        model: An uncompiled quantized ``.tflite`` (path, bytes or ModelInfo).
        num_segments: ``edgetpu_compiler --num_segments``: each segment runs on its own Edge TPU
            with its own cache.
        capacity_bytes: Usable parameter cache per Edge TPU.

    Returns:
        A :class:`MemoryPlan`.
    """
    num_segments = check_int("num_segments", num_segments, minimum=1)
    info = model if isinstance(model, ModelInfo) else inspect_model(model)
    require_uncompiled(info)
    sizes = parameter_bytes(info, _mapped_ops(info))
    on, off = fill(sizes, capacity_bytes)
    segments = (
        tuple(
            SegmentMemory(f"segment {i} of {num_segments}", *fill(part, capacity_bytes), capacity_bytes)
            for i, part in enumerate(_split(sizes, num_segments))
        )
        if num_segments > 1
        else (SegmentMemory(os.path.basename(info.path or "<bytes>"), on, off, capacity_bytes),)
    )
    return MemoryPlan(sum(sizes), on, off, capacity_bytes, segments, _segments_to_fit(sizes, capacity_bytes))


def co_compiled_memory(
    models: Sequence[str | os.PathLike | bytes | ModelInfo], capacity_bytes: int = ON_CHIP_USABLE_BYTES
) -> tuple[SegmentMemory, ...]:
    """Memory when several models are compiled together (``edgetpu_compiler a.tflite b.tflite``).

    They share one cache so that switching between them does not reload parameters; the models
    are served in command-line order, each taking what it needs of what is left.
    """
    if not models:
        raise ConfigError("Expected at least one model to co-compile. Received: an empty list")
    left = capacity_bytes
    result = []
    for model in models:
        info = model if isinstance(model, ModelInfo) else inspect_model(model)
        require_uncompiled(info)
        on, off = fill(parameter_bytes(info, _mapped_ops(info)), left)
        result.append(SegmentMemory(os.path.basename(info.path or "<bytes>"), on, off, left))
        left -= on
    return tuple(result)
