"""Logging and progress bars: the library logs and never prints."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("edgelab")
logger.addHandler(logging.NullHandler())


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars are on unless turned off by argument or by EDGELAB_PROGRESS=0."""
    if progress is not None:
        return bool(progress)
    return os.environ.get("EDGELAB_PROGRESS", "1") not in ("0", "false", "False", "")


def tqdm(*args, progress: bool | None = None, **kwargs):
    """``tqdm.auto.tqdm`` (a widget in JupyterLab) that honours :func:`progress_enabled`."""
    from tqdm.auto import tqdm as _tqdm

    kwargs.setdefault("disable", not progress_enabled(progress))
    return _tqdm(*args, **kwargs)
