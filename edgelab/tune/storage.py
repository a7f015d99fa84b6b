"""Where a study lives: Optuna's storages, opened from one URL, and trials whose worker died.

* default: a journal file in the run folder (``<run_dir>/optuna.journal``), one process or several
  on one machine; a rerun continues the study;
* ``journal:PATH``: Optuna's ``JournalStorage`` with a file backend, for workers on one machine or
  on a shared file system;
* ``postgresql://...``, ``mysql://...``: Optuna's RDB storage on a database server, for workers on
  many machines (with Optuna's heartbeat: a trial whose worker stops beating is marked failed);
* ``sqlite:///PATH``: Optuna's RDB storage in a file, for a single process.

A worker marks each running trial by holding an exclusive lock on a file in the trial's folder
(``.running``, recording host and pid). The operating system drops the lock when the worker
exits, even on SIGKILL, so any worker on the same host finds a trial whose worker died, at once
and without timing, and marks it failed (:func:`fail_dead_trials`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._log import logger
from ..errors import StorageError

#: Seconds between heartbeats of RDB storages, and after which a silent trial is failed.
HEARTBEAT_INTERVAL = 30
HEARTBEAT_GRACE = 120

RUNNING_FILE = ".running"


def default_storage_url(run_dir: str | os.PathLike) -> str:
    return f"journal:{Path(run_dir) / 'optuna.journal'}"


def open_storage(url: str | None, run_dir: str | os.PathLike) -> Any:
    """An Optuna storage for ``url`` (None: the journal file in ``run_dir``).

    Raises:
        StorageError: the URL's scheme is unknown, or its database cannot be reached (one line
            naming the URL without its password, and the cause).
    """
    # deferred: optuna (about a second to import)
    import optuna

    if url is None:
        url = default_storage_url(run_dir)
    if url.startswith("journal:"):
        path = Path(url[len("journal:") :]).expanduser()
        if not str(path) or path.is_dir():
            raise StorageError(f"Expected journal:PATH naming a file. Received: {url!r}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # deferred: optuna (about a second to import)
            from optuna.storages.journal import JournalFileBackend

            backend = JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        except OSError as exc:
            raise StorageError(f"Cannot open the journal storage {path}: {exc.strerror or exc}") from None
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("postgresql", "postgres", "mysql", "sqlite"):
        raise StorageError(
            f"Expected --storage to be journal:PATH, sqlite:///PATH, postgresql://... or mysql://... "
            f"Received: {redact_url(url)!r}"
        )
    kwargs: dict[str, Any] = {}
    if scheme != "sqlite":
        kwargs = {
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "grace_period": HEARTBEAT_GRACE,
            "engine_kwargs": {"pool_pre_ping": True},
        }
    if scheme == "sqlite":
        file = url.split(":///", 1)[-1]
        if file and file != ":memory:":
            Path(file).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # Optuna flags its heartbeat as experimental; edgelab relies on it
            warnings.simplefilter("ignore")
            if scheme != "sqlite":
                kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=1)
            return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # SQLAlchemy: OperationalError, ArgumentError; Optuna: ImportError for drivers
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200] or type(exc).__name__
        if isinstance(exc, ImportError) or "DB access module" in cause:
            raise StorageError(
                f"The storage {redact_url(url)} needs its database driver: pip install psycopg2-binary (PostgreSQL) "
                "or PyMySQL (MySQL, with a mysql+pymysql:// URL)"
            ) from None
        raise StorageError(f"Cannot reach the storage {redact_url(url)}: {cause}") from None


def redact_url(url: str) -> str:  # public: the CLI and the search print storage URLs
    """The URL without its password (``postgresql://user:***@host/db``)."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


@contextlib.contextmanager
def running_mark(folder: Path, study: str, number: int) -> Iterator[None]:
    """Hold the trial's ``.running`` lock while the block runs (released by the OS if the process dies)."""
    try:
        # deferred: fcntl is POSIX-only (Windows has none)
        import fcntl
    except ImportError:  # pragma: no cover - Windows: only the storage's own mechanisms apply
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / RUNNING_FILE
    tmp = folder / f".running.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "study": study, "trial": number}
        os.write(fd, json.dumps(info).encode())
        os.replace(tmp, final)  # visible only once locked: a reader never sees an unlocked live mark
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(final)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)


def _worker_died(folder: Path) -> bool:
    """True when the trial's ``.running`` file exists on this host and no process holds its lock."""
    try:
        # deferred: fcntl is POSIX-only (Windows has none)
        import fcntl
    except ImportError:  # pragma: no cover
        return False
    path = folder / RUNNING_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except ValueError:
            info = {}
        if info.get("host") != socket.gethostname():
            return False  # another machine's lock cannot be tested here: its heartbeat decides
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # held: the worker is alive
        try:  # a worker that finished removed the file before releasing the lock
            return os.fstat(fd).st_ino == os.stat(path).st_ino
        except OSError:
            return False
    finally:
        os.close(fd)


def fail_dead_trials(study: Any, trial_folder: Any) -> list[int]:
    """Mark failed every running trial of ``study`` whose worker on this host has died.

    ``trial_folder(number)`` gives a trial's folder. Returns the numbers marked failed.
    """
    # deferred: optuna (about a second to import)
    import optuna
    from optuna.trial import TrialState

    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        folder = trial_folder(t.number)
        if not _worker_died(folder):
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "reason", "its worker stopped mid-trial (killed?)")
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker marked it first
        with contextlib.suppress(OSError):
            (folder / RUNNING_FILE).unlink()
        logger.warning("trial %d of %s: its worker stopped mid-trial; marked failed", t.number, study.study_name)
        failed.append(t.number)
    return failed
