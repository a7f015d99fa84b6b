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

    A native crash inside the block still reaches the real stderr: faulthandler writes its report
    to the saved descriptor. ``EDGELAB_CAPTURE_NATIVE=0`` turns the capture off (isolated checks
    use it so their parent sees everything).
    """
    import faulthandler
    import sys
    import tempfile

    if os.environ.get("EDGELAB_CAPTURE_NATIVE", "1") == "0":
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real descriptors (embedded interpreters): nothing to capture
        yield
        return
    was_enabled = faulthandler.is_enabled()
    with tempfile.TemporaryFile() as sink:
        try:
            faulthandler.enable(file=saved[1])
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            _restore_faulthandler(was_enabled)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                logger.debug("%s: %s", label, text)


def _restore_faulthandler(was_enabled: bool) -> None:
    import faulthandler
    import sys

    if not was_enabled:
        faulthandler.disable()
        return
    try:
        faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    except (AttributeError, ValueError, OSError):  # a stderr without a descriptor (some notebooks)
        faulthandler.disable()
