"""Run the interpreter's first load of a model in a child process, so a native crash ends the child,
not this process. The child's entry point is in :mod:`edgelab.tflite.isolation`, named here as text
(so this module imports no interpreter; :mod:`edgelab.tflite.trust` and ``check_model`` both use it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .._log import logger
from ..errors import DelegateError, InterpreterCrashError, ModelFileError

__all__ = ["DEFAULT_TIMEOUT_S", "run_child"]

#: Seconds a child may take to load and invoke a model before it is stopped.
DEFAULT_TIMEOUT_S = 120.0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "an unknown signal"


def run_child(
    data: bytes, where: str, path: str | None, num_threads: int, use_xnnpack: bool, timeout_s: float, validate: bool
) -> dict:
    """Load and invoke ``data`` once in a child Python (``edgelab.tflite.isolation``'s entry point).

    Returns:
        The child's reply: runtime, inputs, outputs.

    Raises:
        InterpreterCrashError: the child died of a signal (the native interpreter crashed).
        ModelFileError: the child timed out, reported an error or gave no result.
        DelegateError: the model needs the Edge TPU delegate.
    """
    with tempfile.TemporaryDirectory(prefix="edgelab-check-") as tmp:
        source = path
        if source is None:
            source = os.path.join(tmp, "model.tflite")
            Path(source).write_bytes(data)
        request = json.dumps(
            {
                "model": source,
                "where": where,
                "path": path,
                "num_threads": num_threads,
                "use_xnnpack": use_xnnpack,
                "validate": validate,
            }
        )
        env = {
            **os.environ,
            "EDGELAB_CAPTURE_NATIVE": "0",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        # The child must import this edgelab, wherever it is (an editable install, PYTHONPATH, tests).
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-X",
                    "faulthandler",
                    "-c",
                    "from edgelab.tflite.isolation import child_entry; child_entry()",
                ],
                input=request,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise ModelFileError(
                f"the interpreter did not finish loading and running {where} within {timeout_s:g} s; "
                "it was stopped (raise timeout_s for a very large model)."
            ) from None
    native = [line for line in proc.stderr.splitlines() if line.strip()]
    if native:
        logger.debug("isolated check of %s, native output:\n%s", where, "\n".join(native[-40:]))
    if proc.returncode < 0:
        number = -proc.returncode
        # The runtime's own last words (e.g. glibc's "free(): invalid pointer"), not faulthandler's stack.
        noise = ("Fatal Python", "Current thread", "  File", "Thread", "Extension", "INFO:", "<no Python frame>")
        last = next((line.strip() for line in reversed(native) if not line.startswith(noise)), "")
        raise InterpreterCrashError(
            f"the interpreter crashed on {where} (signal {number}): {_signal_name(number)} in the TFLite runtime "
            f"while loading or running it{f' ({last})' if last else ''}. The file is malformed in a way "
            "edgelab's checks do not catch; do not load it in this process."
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = native[-1] if native else f"exit code {proc.returncode}"
        raise ModelFileError(f"the check of {where} ended without a result ({tail}).")
    reply = json.loads(lines[-1])
    if "error" in reply:
        kind = DelegateError if reply.get("kind") == "DelegateError" else ModelFileError
        raise kind(reply["error"])
    return reply
