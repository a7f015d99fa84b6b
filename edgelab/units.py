"""Byte units: one way to print a byte count, in the Edge TPU compiler's own style (a leaf module)."""

from __future__ import annotations

__all__ = ["GIB", "KIB", "MIB", "format_bytes"]

KIB = 1024
MIB = 1024**2
GIB = 1024**3

_UNITS = (("GiB", GIB), ("MiB", MIB), ("KiB", KIB))


def format_bytes(n: int | None) -> str | None:
    """Bytes in the compiler's own style (``7224689`` -> ``'6.89MiB'``); None stays None."""
    if n is None:
        return None
    for unit, size in _UNITS:
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.2f}B"
