"""Range-checked argparse types and the one-line error handling every ``edgelab`` command shares.

A number outside its range (or ``inf``/``nan``) is refused by argparse with a message that states
the range; an expected failure while a command runs (an edgelab error, a full or read-only disk,
out of memory, Ctrl-C) ends with one ``edgelab: error: ...`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from .._files import disk_full_error, quiet_finalizers
from .._interrupt import interrupt_count, was_interrupted
from ..errors import EdgelabError, EdgelabWarning

#: Limits shared by several commands.
MAX_THREADS = 256
MAX_SECONDS = 24 * 3600.0


def int_range(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int from ``minimum`` to ``maximum`` (None: no upper bound)."""
    wanted = f"an int from {minimum} to {maximum}" if maximum is not None else f"an int >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}")
        return value

    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


def float_range(
    minimum: float, maximum: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite float in the range (``inf`` and ``nan`` refused)."""
    wanted = f"a number in {'(' if low_open else '['}{minimum:g}, {maximum:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = (
            math.isfinite(value)
            and (value > minimum if low_open else value >= minimum)
            and (value < maximum if high_open else value <= maximum)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {wanted}, received {text!r}")
        return value

    parse.__name__ = "float"
    return parse


threads = int_range(1, MAX_THREADS)
seconds = float_range(0.0, MAX_SECONDS, low_open=True)
seed = int_range(0, 2**32 - 1)

_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EDQUOT: "the disk quota is exceeded",
}


def one_line_warnings() -> None:
    """On the command line, an edgelab warning is one ``edgelab: warning: ...`` line on stderr.

    Python's default form repeats the warning's source file, line number and code line, which mean
    nothing to a user of the command; other packages' warnings keep that form.
    """
    default = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, EdgelabWarning):
            return f"edgelab: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def _os_error_line(exc: OSError) -> str:
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename and os.path.isfile(exc.filename):
        return f"{exc.filename} is a file, so no folder can be made there or below it"
    what = _DISK_ERRORS.get(exc.errno or 0) or (exc.strerror or str(exc) or type(exc).__name__)
    where = f" ({exc.filename})" if exc.filename else ""
    kept = "; finished steps are kept" if exc.errno in _DISK_ERRORS else ""
    return f"{what}{where}{kept}"


def _quiet_finalizers() -> None:
    """After a full disk, writers' finalizers (h5py's ``__dealloc__``) report failures at exit:
    those reports go to the debug log; the one error line says it all."""
    with quiet_finalizers(restore=False):
        pass


def _is_tensorflow_error(exc: BaseException) -> bool:
    """tf.errors.OpError (e.g. ResourceExhaustedError on a full disk), without importing TensorFlow."""
    return any(cls.__name__ == "OpError" and cls.__module__.startswith("tensorflow") for cls in type(exc).__mro__)


def report_interrupt(exit_fast: bool) -> int:
    """The one line a Ctrl-C ends a command with; exit code 130.

    ``exit_fast`` (the real command line): leave at once instead of waiting seconds for
    TensorFlow's teardown or abandoned native work; everything finished is already on disk.
    """
    print("edgelab: interrupted; finished steps are kept and reused on the next run", file=sys.stderr)
    if exit_fast:  # TensorFlow's teardown, or a conversion left in a worker thread, takes seconds
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 130


def run_command(func: Callable[[Any], Any], args: Any, *, exit_fast: bool = False) -> int:
    """Run a command function; expected failures become one ``edgelab: error:`` line and exit 2.

    ``exit_fast`` (the real command line): after Ctrl-C, leave at once instead of waiting seconds
    for TensorFlow's teardown or abandoned native work; everything finished is already on disk.
    """

    def fail(message: str, code: int = 2) -> int:
        print(f"edgelab: error: {' '.join(message.split())}" if code == 2 else message, file=sys.stderr)
        return code

    interrupts = interrupt_count()
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a full disk or a closed pipe is reported here, not at interpreter exit
        return code
    except EdgelabError as exc:
        if was_interrupted(exc, since=interrupts):  # an error raised while handling a Ctrl-C
            return report_interrupt(exit_fast)
        # Multi-line messages (a folder tree, install steps) keep their first line; -v shows the rest.
        first, _, rest = str(exc).strip().partition("\n")
        if rest.strip():
            logging.getLogger("edgelab").info("%s", rest)
        return fail(first)
    except KeyboardInterrupt:
        return report_interrupt(exit_fast)
    except BrokenPipeError:  # `edgelab ... | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except MemoryError:
        return fail("out of memory; use smaller sizes or counts")
    except OSError as exc:
        if exc.errno in _DISK_ERRORS:
            _quiet_finalizers()
        return fail(_os_error_line(exc))
    except Exception as exc:
        if was_interrupted(exc, since=interrupts):  # a Ctrl-C a C extension's import turned into its error
            return report_interrupt(exit_fast)
        full = disk_full_error(exc, os.getcwd(), check_free=False)
        if full is not None:  # a writer's own error around ENOSPC (TensorFlow's SaveV2, h5py)
            _quiet_finalizers()
            return fail(_os_error_line(full))
        if _is_tensorflow_error(exc):
            message = getattr(exc, "message", None) or str(exc)
            return fail(f"TensorFlow failed: {message.splitlines()[0] if message else type(exc).__name__}")
        raise


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``-h`` still prints the full usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} -h')\n")
