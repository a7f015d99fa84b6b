"""Run encoded input tensors through an interpreter, several images per ``invoke()`` when that is
both possible and exact.

A second interpreter, resized to the batch, is made on first use. Batching switches itself off
for good when the model cannot be resized, when its output does not follow the batch (a Reshape to
a fixed ``[1, classes]`` inside the graph), or when a batched result differs from the
one-at-a-time result on a probe (checked once per model). Edge TPU models are compiled for a
fixed batch of one and never batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._log import logger
from ..errors import ModelFileError

__all__ = ["BatchRunner"]


class BatchRunner:
    """Invoke an interpreter on input tensors, batch first.

    Args:
        interpreter: the batch-one interpreter (allocated).
        input_index: the image input's tensor index.
        output_index: the output's tensor index.
        make_interpreter: builds a fresh interpreter of the same model (for the batched one).
        batching: try several images per ``invoke()``.
        where: names the model in errors.
    """

    def __init__(
        self,
        interpreter: Any,
        input_index: int,
        output_index: int,
        make_interpreter: Callable[[], Any],
        batching: bool,
        where: str,
    ) -> None:
        self.interpreter = interpreter
        self._in, self._out = input_index, output_index
        self._make = make_interpreter
        self.batching = batching
        self._where = where
        self._batched: Any = None
        self._batched_size = 0
        self._checked = False

    def _invoke(self, interp: Any, x: np.ndarray) -> np.ndarray:
        """One ``invoke()``; a runtime error (a kernel rejecting the graph) becomes a ModelFileError."""
        try:
            interp.set_tensor(self._in, x)
            interp.invoke()
            return interp.get_tensor(self._out)  # get_tensor copies
        except (RuntimeError, ValueError) as exc:
            cause = " ".join(str(exc).split()) or type(exc).__name__
            raise ModelFileError(f"Cannot run {self._where}: the interpreter failed: {cause}") from None

    def run_single(self, x: np.ndarray) -> np.ndarray:
        """One image per ``invoke()`` on the batch-one interpreter."""
        return np.stack([self._invoke(self.interpreter, x[i : i + 1])[0] for i in range(x.shape[0])])

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output tensor for an encoded batch, batched when possible."""
        result = self._run_batch(x) if self.batching and x.shape[0] > 1 else None
        return self.run_single(x) if result is None else result

    def _off(self, message: str, *args: Any) -> None:
        logger.debug(message, *args)
        self.batching, self._batched = False, None

    def _ensure_batched(self, n: int, image_shape: tuple[int, ...]) -> Any:
        """The batched interpreter resized to ``n`` images, or None when the model will not batch."""
        if self._batched is None:
            try:
                self._batched = self._make()
            except Exception as exc:
                self._off("batched interpreter unavailable, running one image at a time: %s", exc)
                return None
        if self._batched_size != n:
            try:
                self._batched.resize_tensor_input(self._in, [n, *image_shape])
                self._batched.allocate_tensors()
                out_shape = tuple(self._batched.get_tensor(self._out).shape)
            except Exception as exc:
                self._off("model cannot be resized to a batch of %d, running one at a time: %s", n, exc)
                return None
            if out_shape[:1] != (n,):
                self._off("output shape %s does not follow the batch of %d; running one at a time", out_shape, n)
                return None
            self._batched_size = n
        return self._batched

    def _run_batch(self, x: np.ndarray) -> np.ndarray | None:
        interp = self._ensure_batched(x.shape[0], x.shape[1:])
        if interp is None:
            return None
        try:
            out = self._invoke(interp, x)
        except ModelFileError as exc:
            self._off("batched invoke failed, running one at a time: %s", exc)
            return None
        if not self._checked:
            # The batched graph must give exactly the one-at-a-time result; check once per model.
            probe = [0, x.shape[0] - 1]
            if not np.array_equal(self.run_single(x[probe]), out[probe]):
                logger.warning("batched results differ from one-at-a-time results; running one at a time")
                self._off("batched results differ")
                return None
            self._checked = True
        return out
