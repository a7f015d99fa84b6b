"""Ctrl-C that always stops long native work (the TFLite converter, TensorFlow saves) promptly.

Two ways a KeyboardInterrupt gets lost: native code that runs for many seconds without returning
to Python (the signal is only acted on afterwards), and Python raising it inside a weakref
callback or ``__del__``, where it is printed and dropped. :func:`call_interruptibly` runs the work
in a worker thread while the main thread waits in short, interruptible joins; and
:func:`interrupts_surface` re-raises a Ctrl-C that was swallowed inside its block.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Name of the worker threads :func:`call_interruptibly` starts.
WORKER_THREAD = "edgelab-native-work"


def call_interruptibly(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; Ctrl-C stops the wait within 0.1 s.

    On Ctrl-C the worker is abandoned (a daemon thread: it cannot keep the process alive) and its
    result, when it comes, is dropped; nothing is written from it.
    """
    if threading.current_thread() is not threading.main_thread():
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=work, name=WORKER_THREAD, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextlib.contextmanager
def interrupts_surface() -> Iterator[None]:
    """Raise KeyboardInterrupt at the end of the block if a Ctrl-C inside it was swallowed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # someone else handles Ctrl-C: leave it to them
        yield
        return
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits:
        raise KeyboardInterrupt
