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
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgelabError, ModelFileError, check_int, check_number
from . import child
from .child import DEFAULT_TIMEOUT_S
from .inspection import load_model_bytes
from .interpreter import InterpreterSettings, check_threads, describe, load_checked
from .trust import record_checked
from .validate import validate_bytes

__all__ = ["ModelCheck", "check_model"]


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

    settings = InterpreterSettings(num_threads, use_xnnpack=use_xnnpack)
    loaded = load_checked(data, where, settings, path=path, validate=validate, trusted=trusted)
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

    num_threads = check_threads(num_threads)
    timeout_s = check_number(
        "timeout_s", timeout_s, minimum=0, maximum=1e6, min_open=True, max_open=True, unit="seconds"
    )
    start = time.perf_counter()
    data, path = load_model_bytes(model)
    where = describe(model if isinstance(model, bytes) else Path(model))
    if validate:
        validate_bytes(data, path)
    if isolate:
        result = child.run_child(data, where, path, num_threads, use_xnnpack, float(timeout_s), validate)
        if validate:  # a later in-process load of these bytes skips its own child check
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


def child_entry() -> None:
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
