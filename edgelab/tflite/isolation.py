"""Vet a ``.tflite`` file before trusting this process with it: validate it, then load and invoke it
once in a child process, so a native crash ends the child, not your Jupyter kernel.

:mod:`edgelab.tflite.validate` rules out the malformed files known to crash the interpreter, but a
C++ kernel can still fault on something no structural rule catches. The CLI's load-and-run commands
(``edgelab benchmark``) make their first load this way; in a notebook, call
``el.check_model(path, isolate=True)`` on a downloaded model before ``el.TFLiteModel(path)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .._log import logger
from ..errors import DelegateError, EdgelabError, InterpreterCrashError, ModelFileError, check_int
from .inspection import load_model_bytes
from .validate import validate_bytes

__all__ = ["ModelCheck", "check_model"]

#: Seconds a child may take to load and invoke a model before it is stopped.
DEFAULT_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class ModelCheck:
    """A model that passed validation and one load + invoke.

    Attributes:
        model: The file checked (or ``<bytes>``).
        runtime: The runtime that loaded it, e.g. ``"litert 2.3.0"``.
        inputs: ``dtype[shape]`` of each input.
        outputs: ``dtype[shape]`` of each output.
        isolated: True when the load ran in a child process.
        seconds: Wall time of the check, child start included.
    """

    model: str
    runtime: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    isolated: bool
    seconds: float

    def __repr__(self) -> str:
        return (
            f"ModelCheck({self.model!r}, ok, runtime={self.runtime!r}, inputs={list(self.inputs)}, "
            f"outputs={list(self.outputs)}, isolated={self.isolated})"
        )


def _load_and_invoke(
    data: bytes,
    where: str,
    path: str | None,
    num_threads: int,
    use_xnnpack: bool,
    validate: bool = True,
    trusted: bool = False,
) -> dict[str, Any]:
    """Load, allocate, fill every input with zeros and invoke once; what the check reports."""
    import numpy as np

    from .interpreter import load_checked

    loaded = load_checked(
        data, where, num_threads, None, use_xnnpack, None, path=path, validate=validate, trusted=trusted
    )
    interp = loaded.interpreter

    def describe(details: list[dict]) -> list[str]:
        return [f"{np.dtype(d['dtype']).name}{list(int(x) for x in d['shape'])}" for d in details]

    try:
        for detail in interp.get_input_details():
            interp.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interp.invoke()
        for detail in interp.get_output_details():
            interp.get_tensor(detail["index"])
    except (RuntimeError, ValueError) as exc:
        cause = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelFileError(f"Cannot run {where}: the interpreter failed: {cause}") from None
    return {
        "runtime": loaded.runtime,
        "inputs": describe(interp.get_input_details()),
        "outputs": describe(interp.get_output_details()),
    }


def check_model(
    model: str | os.PathLike | bytes,
    *,
    isolate: bool = True,
    num_threads: int = 1,
    use_xnnpack: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    validate: bool = True,
) -> ModelCheck:
    """Validate a ``.tflite`` file, then load it and invoke it once on zeros.

    Args:
        model: Path of a ``.tflite`` file, or its bytes.
        isolate: Load and invoke in a child process (about 0.2-0.5 s more), so that a crash in
            the native interpreter becomes a ModelFileError here instead of ending this process.
            A pass is cached by content (:mod:`edgelab.tflite.trust`): a later
            ``TFLiteModel(path)`` of the same bytes skips its own child check. ``isolate=False``
            loads in this process, after that child check when the file is not yet known.
        num_threads: Interpreter threads for the check.
        use_xnnpack: Apply LiteRT's XNNPACK delegate, as a later load would.
        timeout_s: Seconds before an isolated check is stopped.
        validate: Run :mod:`edgelab.tflite.validate` first (False: ask the interpreter alone, e.g.
            to see whether a file the rules refuse loads anyway; keep ``isolate=True`` then).

    Returns:
        A :class:`ModelCheck`.

    Raises:
        ModelFileError: the file is unreadable, breaks a rule of :mod:`edgelab.tflite.validate`,
            fails to load or run, or crashed the interpreter (an InterpreterCrashError naming the signal).
        DelegateError: a model compiled for the Edge TPU (it cannot run on the CPU).
    """
    from .interpreter import check_threads, describe

    num_threads = check_threads(num_threads)
    if not (isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool) and 0 < timeout_s < 1e6):
        from ..errors import ConfigError

        raise ConfigError(
            f"Expected timeout_s to be a number of seconds in (0, 1e6). Received: timeout_s={timeout_s!r}"
        )
    start = time.perf_counter()
    data, path = load_model_bytes(model)
    where = describe(model if isinstance(model, bytes) else Path(model))
    if validate:
        validate_bytes(data, path)
    if isolate:
        result = _run_child(data, where, path, num_threads, use_xnnpack, float(timeout_s), validate)
        if validate:  # a later in-process load of these bytes skips its own child check
            from .trust import record_checked

            record_checked(data, use_xnnpack)
    else:
        result = _load_and_invoke(data, where, path, num_threads, use_xnnpack, validate)
    name = Path(path).name if path is not None else "<bytes>"
    return ModelCheck(
        name,
        result["runtime"],
        tuple(result["inputs"]),
        tuple(result["outputs"]),
        isolate,
        round(time.perf_counter() - start, 3),
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "an unknown signal"


def _run_child(
    data: bytes, where: str, path: str | None, num_threads: int, use_xnnpack: bool, timeout_s: float, validate: bool
) -> dict:
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
                [sys.executable, "-X", "faulthandler", "-c", "from edgelab.tflite.isolation import _child; _child()"],
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


def _child() -> None:
    """Entry point of the check's child process: one JSON request on stdin, one JSON line out."""
    request = json.loads(sys.stdin.read())
    try:
        data, _ = load_model_bytes(request["model"])
        check_int("num_threads", request["num_threads"])
        reply = _load_and_invoke(
            data,
            request["where"],
            request["path"],
            request["num_threads"],
            request["use_xnnpack"],
            request["validate"],
            trusted=True,  # this process is the isolated one
        )
    except EdgelabError as exc:
        reply = {"error": str(exc), "kind": type(exc).__name__}
    except Exception as exc:
        reply = {"error": f"Cannot load {request['where']}: {type(exc).__name__}: {exc}", "kind": "ModelFileError"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
