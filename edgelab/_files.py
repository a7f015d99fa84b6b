"""Files edgelab writes and reads back: atomic writes, output-folder locks, ``labels.txt`` and file
hashes (standard library only, so device-side modules can use them too)."""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import (
    ConfigError,
    EdgelabError,
    FolderBusyError,  # re-exported: every error class lives in edgelab.errors
)

logger = logging.getLogger("edgelab")

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def not_a_regular_file(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it is not a regular file (or a link to one), else None.

    E.g. ``"a character device"``, ``"a symbolic link to a FIFO (named pipe) (/tmp/fifo)"``,
    ``"a symbolic link loop"``. Reading a device or a FIFO could block forever or never end
    (``/dev/zero``), so callers refuse these before opening them. A missing file gives None
    (the caller's open reports it), except a broken link, which is named.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return f"a broken symbolic link (to {os.readlink(os.fspath(path))})"
        return None
    for test, kind in _KINDS:
        if test(mode):
            return f"a symbolic link to {kind} ({os.path.realpath(path)})" if os.path.islink(path) else kind
    return None


def _mode(path: Path) -> int:
    """An existing file's permissions, else what ``open()`` would give a new file (0666 minus umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


_FULL_ERRNOS = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded"}
#: A writer that fails while its file system has less than this free is taken to have hit a full
#: disk: h5py reports it as "Slist already enabled?", TensorFlow as a SaveV2 error.
NEARLY_FULL_BYTES = 1 << 20


def _free_bytes(path: Path) -> int | None:
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    return st.f_bavail * st.f_frsize


def disk_full_error(exc: BaseException, path: str | os.PathLike, *, check_free: bool = True) -> OSError | None:
    """An ``OSError(ENOSPC or EDQUOT, ..., path)`` when ``exc`` (raised while writing ``path``) came
    from a full disk or quota, else None.

    Writers wrap that cause in their own errors: h5py's ``RuntimeError: Slist already enabled?``,
    TensorFlow's ``SaveV2 ... No space left on device``. So the chain is searched for the errno or
    its text, and (``check_free``) a failure on a file system left with less than
    :data:`NEARLY_FULL_BYTES` free counts as a full disk too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return OSError(current.errno, _FULL_ERRNOS[current.errno], current.filename or os.fspath(path))
        text = str(current).lower()
        for number, words in _FULL_ERRNOS.items():
            if words.lower() in text:
                return OSError(number, words, os.fspath(path))
        current = current.__cause__ or current.__context__
    free = _free_bytes(Path(path)) if check_free else None
    if free is not None and free < NEARLY_FULL_BYTES:
        return OSError(errno.ENOSPC, _FULL_ERRNOS[errno.ENOSPC], os.fspath(path))
    return None


def _release(exc: BaseException) -> None:
    """Drop what a failed writer's frames hold (h5py files, TensorFlow savers) now, so their
    finalizers run here and their "Exception ignored in ... __dealloc__" reports go to the debug
    log instead of stderr."""
    current: BaseException | None = exc
    while current is not None:
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
    with quiet_finalizers():
        gc.collect()


def _log_unraisable(report: object) -> None:
    exc = getattr(report, "exc_value", None)
    logger.debug("after a full disk, while cleaning up: %s: %s", type(exc).__name__, exc)


def _log_exception(kind: type, value: BaseException, tb: object) -> None:
    logger.debug("after a full disk, while cleaning up: %s: %s", kind.__name__, value)


@contextlib.contextmanager
def quiet_finalizers(restore: bool = True) -> Iterator[None]:
    """Send finalizers' failure reports to the debug log: Python's "Exception ignored in ..."
    (``sys.unraisablehook``) and the full tracebacks Cython's ``__dealloc__`` prints through
    ``sys.excepthook`` (h5py after a failed write). ``restore=False`` keeps them quiet for the
    rest of the process (the CLI, about to exit after its one error line)."""
    previous = sys.unraisablehook, sys.excepthook
    sys.unraisablehook, sys.excepthook = _log_unraisable, _log_exception
    try:
        yield
    finally:
        if restore:
            sys.unraisablehook, sys.excepthook = previous


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Around a third-party writer of ``path``: a full disk becomes ``OSError(ENOSPC, ..., path)``
    (one "the disk is full" line on the CLI), whatever the writer raised."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, EdgelabError):
        raise
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.errno is not None and exc.errno not in _FULL_ERRNOS:
            raise  # already says what went wrong (permission, read-only file system, ...)
        full = disk_full_error(exc, path)
        if full is None:
            raise
        _release(exc)
        raise full from None


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished temporary file ``tmp`` onto ``path`` in one rename (``os.replace``).

    The last step of :func:`write_atomic` and :func:`atomic_path`, and the seam for checking what
    they leave when it fails (a full disk, a vanished folder): patch this function, not ``os.replace``,
    which the whole process shares.
    """
    os.replace(tmp, path)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so readers see either the old file or the complete new one, never half of it.

    The data goes to a temporary file in the same folder, which then replaces ``path``.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path):  # a full disk names the file being written, not its temporary twin
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.chmod(tmp, _mode(path))  # mkstemp's 0600 would make shared reports and notebooks private
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            publish(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (h5py, pandas, TF);
    it replaces ``path`` only when the block finishes, and is removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep every suffix: writers pick the format from it (tf_keras reads ".weights.h5" as its
    # layer-keyed format, which QAT models need, and plain ".h5" as the legacy one).
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    tmp = path.with_name(f".{stem}.{os.getpid()}.tmp{suffixes}")
    try:
        with writing(path):
            yield tmp
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def shared_output(folder: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``folder`` (an output folder whose files are reused).

    Two processes that fill the same cache (e.g. two notebook runs sharing ``runs-cache/``) then
    make each file once: the second waits and finds the first's files. The lock is on the folder
    itself, so no lock file is left behind; the operating system drops it when the holder exits.
    Without ``fcntl`` (Windows) nothing is locked.
    """
    try:
        # deferred: fcntl is POSIX-only (Windows has none)
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def run_lock(folder: Path, command: str = "edgelab") -> Iterator[None]:
    """Hold an exclusive lock on an output folder while a run writes it.

    The lock file sits beside the folder (``.<name>.edgelab-lock``), so ``--fresh`` can delete the
    folder while the lock is held; it records who holds it (pid, host, start time, command). The
    operating system drops the lock when the holder exits, even on SIGKILL, so a stale file never
    blocks. Without ``fcntl`` (Windows) runs are not locked.

    Raises:
        FolderBusyError: another live process holds the lock; the message names it.
    """
    try:
        # deferred: fcntl is POSIX-only (Windows has none)
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.edgelab-lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderBusyError(
                f"{folder} is in use by another edgelab run ({holder}). Wait for it to finish, or write to "
                "another folder (--out / out_dir=...)."
            ) from None
        try:  # the file may have been unlinked by the holder we waited on: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)  # closing releases the lock


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` that replaces it when the block finishes (for writers
    that produce several files, such as a TensorFlow checkpoint); removed when the block fails."""

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with writing(path):
            yield tmp
        if path.exists():
            os.replace(path, old)  # two renames: a reader finds either the old folder or the new one
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


LABELS_FILE = "labels.txt"


def write_labels(folder: Path, labels: Sequence[str]) -> Path:
    """``folder/labels.txt``: one class name per line, in class-index order (written atomically)."""
    path = Path(folder) / LABELS_FILE
    write_atomic(path, ("\n".join(read_labels(labels)) + "\n").encode("utf-8"))
    return path


def read_labels(labels: Sequence[str] | str | os.PathLike) -> tuple[str, ...]:
    """Class names from a list, or from a labels file (one name per line, blank lines ignored).

    Raises:
        ConfigError: the file cannot be read, or the names are empty, blank or span several lines.
    """
    if isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Expected labels to be a list of class names or a readable labels file. Received: "
                f"labels={str(path)!r} ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})"
            ) from None
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    else:
        names = tuple(str(label) for label in labels)
    if not names or any(not name.strip() or "\n" in name for name in names):
        raise ConfigError(
            "Expected labels to be a non-empty list of one-line class names (or a labels.txt). "
            f"Received: labels={labels!r}"
        )
    return names


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (models can be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
