"""Ctrl-C that always stops long native work (the TFLite converter, TensorFlow saves) promptly.

Three ways a KeyboardInterrupt gets lost: native code that runs for many seconds without returning
to Python (the signal is only acted on afterwards); Python raising it inside a weakref callback
or ``__del__``, where it is printed and dropped; and a C++ extension's module initialisation,
where pybind11 turns it into ``ImportError("initialization failed")`` (its ``__cause__``), which a
fallback import then takes for a missing package. :func:`call_interruptibly` runs the work in a
worker thread while the main thread waits in short, interruptible joins;
:func:`interrupts_surface` re-raises a Ctrl-C that was swallowed inside its block; and
:func:`raise_if_interrupted` re-raises one that hides in another exception's chain.
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


#: Ctrl-Cs received by edgelab's own SIGINT handlers (:func:`install_counting_handler`,
#: :func:`interrupts_surface`) in this process.
_received = 0


def _count_and_raise(signum: int, frame: Any) -> None:
    global _received
    _received += 1
    raise KeyboardInterrupt


def install_counting_handler() -> None:
    """Make Ctrl-C raise KeyboardInterrupt as usual and also count it (:func:`interrupt_count`).

    For the command line, where any Ctrl-C must end the run: a C extension that turns the
    KeyboardInterrupt into its own error while it is imported (numpy's ``ImportError``) leaves no
    trace of it in the chain, but the count still says the user pressed Ctrl-C. Leaves a handler
    someone else installed alone; only from the main thread.
    """
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _count_and_raise)


def interrupt_count() -> int:
    """How many Ctrl-Cs edgelab's handlers have seen in this process (0 without them)."""
    return _received


def interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt in ``exc``'s ``__cause__``/``__context__`` chain (``exc`` included), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def was_interrupted(exc: BaseException, since: int | None = None) -> bool:
    """Whether ``exc`` stands for a Ctrl-C: one is in its chain, or (``since``, an earlier
    :func:`interrupt_count`) one was counted since then."""
    return interrupt_in_chain(exc) is not None or (since is not None and _received > since)


def raise_if_interrupted(exc: BaseException, since: int | None = None) -> None:
    """Raise KeyboardInterrupt if ``exc`` stands for a Ctrl-C (:func:`was_interrupted`), e.g. a C++
    module's ``ImportError`` from a Ctrl-C during its initialisation; return when it does not, so
    the caller handles ``exc`` as usual."""
    if was_interrupted(exc, since):
        raise interrupt_in_chain(exc) or KeyboardInterrupt() from exc


@contextlib.contextmanager
def interrupts_surface() -> Iterator[None]:
    """Raise KeyboardInterrupt at the end of the block if a Ctrl-C inside it was swallowed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous not in (signal.default_int_handler, _count_and_raise):  # someone else handles Ctrl-C
        yield
        return
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        global _received
        _received += 1
        hits.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits:
        raise KeyboardInterrupt
