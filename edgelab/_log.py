"""Logging and progress bars: the library logs and never prints."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def captured_native_output(label: str):
    """Route what C++ code writes to file descriptors 1 and 2 into the debug log.

    The TFLite converter prints calibration chatter straight to the process's stdout/stderr,
    below Python's ``sys.stdout``; this keeps CLI and report output clean. Python-level output
    is flushed first so nothing is reordered.
    """
    import sys
    import tempfile

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real descriptors (embedded interpreters): nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                logger.debug("%s: %s", label, text)
