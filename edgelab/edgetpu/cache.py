"""The Edge TPU's parameter cache, op by op: which constants stay in the 8 MiB SRAM, which are streamed.

The cache fills layer by layer in execution order (compiler-16 logs); this module only counts
bytes. :mod:`edgelab.edgetpu.memory` builds the per-model plan on top of the analyzer's mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..tflite.inspection import ModelInfo, OpInfo
from .ops import ON_CHIP_USABLE_BYTES

__all__ = ["cached_flags", "fill", "parameter_bytes", "parameter_memory"]


def parameter_bytes(info: ModelInfo, ops: Iterable[OpInfo]) -> list[int]:
    """Constant bytes each op brings (a buffer shared by several ops counts once, at first use)."""
    seen: set[int] = set()
    sizes = []
    for op in ops:
        size = 0
        for i in op.inputs:
            t = info.tensors[i] if i >= 0 else None
            if t is not None and t.has_buffer and t.buffer not in seen:
                seen.add(t.buffer)
                size += t.bytes
        sizes.append(size)
    return sizes


def cached_flags(sizes: Sequence[int], capacity: int = ON_CHIP_USABLE_BYTES) -> list[bool]:
    """Which ops keep their parameters on chip: the cache fills layer by layer in execution order,
    and once one layer does not fit the rest is streamed."""
    flags = []
    used = 0
    full = False
    for size in sizes:
        full = full or used + size > capacity
        used += 0 if full else size
        flags.append(not full)
    return flags


def fill(sizes: Sequence[int], capacity: int) -> tuple[int, int]:
    """(cached, streamed) bytes of ``sizes`` laid into a cache of ``capacity`` bytes in order."""
    flags = cached_flags(sizes, capacity)
    used = sum(s for s, cached in zip(sizes, flags, strict=True) if cached)
    return used, sum(sizes) - used


def parameter_memory(
    info: ModelInfo, mapped: Iterable[OpInfo], capacity: int = ON_CHIP_USABLE_BYTES
) -> tuple[int, int]:
    """(cached, streamed) bytes: constants of the mapped ops laid into the cache in execution order."""
    return fill(parameter_bytes(info, mapped), capacity)
