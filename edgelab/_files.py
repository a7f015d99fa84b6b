"""Atomic file writes (standard library only, so device-side modules can use them too)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _mode(path: Path) -> int:
    """An existing file's permissions, else what ``open()`` would give a new file (0666 minus umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so readers see either the old file or the complete new one, never half of it.

    The data goes to a temporary file in the same folder, which then replaces ``path``.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _mode(path))  # mkstemp's 0600 would make shared reports and notebooks private
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
