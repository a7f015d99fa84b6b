"""A file edgelab did not write is loaded once in a child process before this process loads it.

:mod:`edgelab.tflite.validate` refuses the malformed files known to crash the TFLite interpreter,
but a list of known bad fields always misses the next one, and the interpreter is C++: a crash in
it ends the process, a Jupyter kernel included. So before the first in-process load of a model's
bytes, edgelab loads and invokes them once in a child process (:mod:`edgelab.tflite.isolation`);
a crash there becomes a :class:`~edgelab.errors.InterpreterCrashError` here.

The verdict is cached by content hash, in memory and in a small folder on disk
(:func:`verdict_dir`: ``$EDGELAB_CACHE_DIR/model-checks``, else
``$XDG_CACHE_HOME/edgelab/model-checks`` or ``~/.cache/edgelab/model-checks``; one JSON file per
verdict, written atomically), so the second load of the same bytes, in this process or another,
costs one hash. Files edgelab converted itself are recorded there when they are written
(:func:`record_converted`) and skip the child. ``trusted=True`` on a load skips it too. A cache
that cannot be written (a full or read-only disk) only means the check runs again next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .._files import write_atomic
from .._log import logger
from ..errors import InterpreterCrashError
from . import child
from .child import DEFAULT_TIMEOUT_S

__all__ = ["content_key", "ensure_checked", "record_converted", "verdict_dir"]

#: The verdict folder's name under edgelab's cache folder.
FOLDER = "model-checks"

_MEMO: dict[str, dict] = {}


def verdict_dir() -> Path:
    """Where model verdicts are cached (beside the decoded-image caches)."""
    env = os.environ.get("EDGELAB_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser() / FOLDER
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgelab" / FOLDER


def content_key(data: bytes, use_xnnpack: bool) -> str:
    """The cache key of a model's bytes loaded with or without XNNPACK (its kernels differ)."""
    digest = hashlib.blake2b(data, digest_size=20).hexdigest()
    return f"{digest}-{'xnnpack' if use_xnnpack else 'builtin'}"


def _lookup(key: str) -> dict | None:
    if key in _MEMO:
        return _MEMO[key]
    try:
        verdict = json.loads((verdict_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(verdict, dict) or verdict.get("verdict") not in ("ok", "crash"):
        return None
    _MEMO[key] = verdict
    return verdict


def _record(key: str, verdict: dict) -> None:
    _MEMO[key] = verdict
    try:
        write_atomic(verdict_dir() / f"{key}.json", json.dumps(verdict))
    except OSError as exc:  # a full or read-only cache disk: the check runs again next time
        logger.debug("cannot cache the model verdict %s: %s", key, exc)


def record_converted(data: bytes) -> None:
    """Record bytes edgelab's converter wrote, so their loads skip the child check."""
    for use_xnnpack in (True, False):
        _record(content_key(data, use_xnnpack), {"verdict": "ok", "source": "converted"})


def record_checked(data: bytes, use_xnnpack: bool) -> None:
    """Record bytes that loaded and ran in a child process (:func:`~edgelab.tflite.isolation.check_model`)."""
    _record(content_key(data, use_xnnpack), {"verdict": "ok", "source": "child check"})


def ensure_checked(data: bytes, where: str, path: str | None, use_xnnpack: bool) -> None:
    """Load and invoke validated bytes once in a child process, unless a verdict is cached.

    Raises:
        InterpreterCrashError: the interpreter crashed on the file (now, or when first checked).
        ModelFileError: the child could not load or run the file, or did not finish in time.
    """
    key = content_key(data, use_xnnpack)
    verdict = _lookup(key)
    if verdict is not None:
        if verdict["verdict"] == "crash":
            raise InterpreterCrashError(str(verdict.get("message", f"the interpreter crashed on {where}")))
        return
    logger.debug("first load of %s: checking it in a child process", where)
    try:
        child.run_child(data, where, path, 1, use_xnnpack, DEFAULT_TIMEOUT_S, False)
    except InterpreterCrashError as exc:
        _record(key, {"verdict": "crash", "message": str(exc)})
        raise
    _record(key, {"verdict": "ok", "source": "child check"})
