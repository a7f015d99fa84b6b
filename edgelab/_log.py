"""Logging and progress bars: the library logs and never prints."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import tempfile
import types
import warnings

logger = logging.getLogger("edgelab")
logger.addHandler(logging.NullHandler())


def warn_user(message: str, category: type[Warning], stacklevel: int = 2) -> None:
    """Show ``message`` to the person running a script or notebook (``warnings.warn``: printed on stderr
    once per place by Python's default filters, visible in Jupyter), and log it at debug level.

    Library code never prints; a warning is how a possibly wrong number reaches the user.
    """

    logger.debug("%s: %s", category.__name__, message)
    warnings.warn(message, category, stacklevel=stacklevel + 1)


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by the caller of this function at the first
    frame outside edgelab (the user's line), however many edgelab calls lie between."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


#: A ``progress=`` given to an outer call (``train``, ``run_comparison``) reaches the bars drawn by
#: the functions it calls (dataset loading, conversion) through this stack.
_forced: list[bool] = []


@contextlib.contextmanager
def progress_scope(progress: bool | None):
    """Within the block, bars that are not told otherwise follow ``progress`` (``None`` changes nothing)."""
    if progress is None:
        yield
        return
    _forced.append(bool(progress))
    try:
        yield
    finally:
        _forced.pop()


def _someone_watches() -> bool:
    """A terminal, or a Jupyter kernel with a front end a person looks at (not nbclient/nbval/papermill)."""

    shell = type(sys.modules["IPython"].get_ipython()).__name__ if "IPython" in sys.modules else ""
    if shell == "ZMQInteractiveShell":
        # JupyterLab/Notebook (jupyter_server) name the session; VS Code and Colab set their own variables.
        # A kernel started headlessly (nbconvert, nbval, papermill) has none of them.
        return any(key == "JPY_SESSION_NAME" or key.startswith(("VSCODE_", "COLAB_")) for key in os.environ)
    stream = getattr(sys, "stderr", None)
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_enabled(progress: bool | None) -> bool:
    """Whether to draw a bar: the argument if given, else an enclosing :func:`progress_scope`, else
    ``EDGELAB_PROGRESS`` (``0``/``1``), else on only where someone watches (a terminal or an interactive
    Jupyter front end; off in CI logs and headless notebook runs)."""
    if progress is not None:
        return bool(progress)
    if _forced:
        return _forced[-1]
    env = os.environ.get("EDGELAB_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "False", "")
    return _someone_watches()


_bar_classes: dict[type, type] = {}


def _bar_class() -> type:
    """``tqdm.auto.tqdm``; in a notebook, a subclass whose widget turns into text when the bar closes.

    A tqdm widget bar stays a widget after it finished: saved without the widget state (JupyterLab's
    default) or with its model closed (``leave=False``), the reopened notebook shows "Error displaying
    widget: model not found" in its place. This bar shows its widget through a display handle and, on
    ``close()``, closes the widget and replaces the output with the final bar as plain text (or with
    nothing for ``leave=False``), so no finished bar leaves a widget behind.
    """
    if "IPython" not in sys.modules:  # no notebook front end (tqdm.auto checks the same): the text bar,
        from tqdm.std import tqdm as text  # deferred: without IPython, ipywidgets and asyncio (most of a

        return text  # short CLI command's start-up)
    from tqdm.auto import tqdm as auto  # deferred: tqdm.auto probes for a notebook front end

    try:
        from tqdm.notebook import tqdm as notebook  # deferred: imports IPython and ipywidgets
    except ImportError:  # pragma: no cover - tqdm without its notebook module
        return auto
    if not issubclass(auto, notebook):
        return auto
    if auto not in _bar_classes:

        class ClosingBar(auto):  # type: ignore[misc, valid-type]
            def __init__(self, *args, **kwargs):
                kwargs["display"] = False
                self._handle = None
                super().__init__(*args, **kwargs)
                if not self.disable and hasattr(self, "container"):
                    from IPython.display import display  # deferred: IPython only in a notebook

                    self._handle = display(self.container, display_id=True)
                    self.displayed = True

            def close(self):
                if self.disable or getattr(self, "_closed_as_text", False):
                    return super().close()
                super().close()
                handle, self._handle = self._handle, None
                if handle is None:
                    return
                self._closed_as_text = True
                failed = bool(self.total and self.n < self.total)
                text = self.format_meter(**{**self.format_dict, "ncols": None}) if self.leave or failed else ""
                for widget in [*self.container.children, self.container]:
                    with contextlib.suppress(Exception):  # a widget may be closed already
                        widget.close()
                handle.update({"text/plain": text}, raw=True)

        _bar_classes[auto] = ClosingBar
    return _bar_classes[auto]


def tqdm(*args, progress: bool | None = None, **kwargs):
    """``tqdm.auto.tqdm`` (a widget in JupyterLab, text once finished) that honours :func:`progress_enabled`."""
    kwargs.setdefault("disable", not progress_enabled(progress))
    return _bar_class()(*args, **kwargs)


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

    if not was_enabled:
        faulthandler.disable()
        return
    try:
        faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    except (AttributeError, ValueError, OSError):  # a stderr without a descriptor (some notebooks)
        faulthandler.disable()


def warn_user_fmt(category: type[Warning], message: str, *args: object, stacklevel: int = 2) -> None:
    """:func:`warn_user` with logging-style ``%`` arguments."""
    warn_user(message % args if args else message, category, stacklevel=stacklevel + 1)
