"""Run a ``.tflite`` with every intermediate tensor kept, and run one of its ops on its own.

No TensorFlow: LiteRT's interpreter (``experimental_preserve_all_tensors=True``, XNNPACK off so no
tensor is fused away) and LiteRT's flatbuffer schema, which also writes a one-op copy of a model
(the op, its constants, nothing else) so an op can be fed any inputs we like.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..tflite.discovery import get_runtime
from ..tflite.inspection import ModelInfo
from ..tflite.validate import validate_bytes

_INT = ("int8", "uint8", "int16")


def make_interpreter(data: bytes, preserve: bool = False, num_threads: int = 1) -> Any:
    """An interpreter on built-in kernels only (XNNPACK would fuse ops and drop their tensors)."""
    validate_bytes(data, None)  # the interpreter trusts the file; a malformed one can crash the process
    rt = get_runtime(None)
    kwargs: dict[str, Any] = {"model_content": data, "num_threads": num_threads}
    if rt.op_resolver_type is not None:
        kwargs["experimental_op_resolver_type"] = rt.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if preserve:
        kwargs["experimental_preserve_all_tensors"] = True
    try:
        interpreter = rt.interpreter_cls(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ModelFileError(
            f"Cannot load the model with {rt.name} for per-layer analysis: {' '.join(str(exc).split())}"
        ) from None
    return interpreter


class Runner:
    """Feeds batches to one interpreter, resizing its inputs when the batch size changes."""

    def __init__(self, data: bytes, preserve: bool = False):
        self.interpreter = make_interpreter(data, preserve)
        self.inputs = [d["index"] for d in self.interpreter.get_input_details()]
        self._batch: int | None = None
        self.batchable = True

    def run(self, values: list[np.ndarray]) -> Any:
        """Invoke on ``values`` (one array per input, batch first); returns the interpreter."""
        n = values[0].shape[0]
        if self.batchable and self._batch != n:
            try:
                for index, value in zip(self.inputs, values):
                    self.interpreter.resize_tensor_input(index, list(value.shape))
                self.interpreter.allocate_tensors()
                self._batch = n
            except (ValueError, RuntimeError):
                self.batchable = False  # e.g. a RESHAPE to a fixed batch of one
        if not self.batchable:
            raise _NotBatchable()
        for index, value in zip(self.inputs, values):
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()
        return self.interpreter


class _NotBatchable(Exception):
    pass


def run_batches(runner: Runner, values: list[np.ndarray], outputs: list[int]) -> dict[int, np.ndarray]:
    """``{tensor: value}`` for ``outputs``, batched when the graph allows it, else one image at a time."""
    try:
        interp = runner.run(values)
        return {t: interp.get_tensor(t) for t in outputs}
    except _NotBatchable:
        pass
    if runner._batch != 1:
        for index, value in zip(runner.inputs, values):
            runner.interpreter.resize_tensor_input(index, [1, *value.shape[1:]])
        runner.interpreter.allocate_tensors()
        runner._batch = 1
    parts: dict[int, list[np.ndarray]] = {t: [] for t in outputs}
    for i in range(values[0].shape[0]):
        for index, value in zip(runner.inputs, values):
            runner.interpreter.set_tensor(index, value[i : i + 1])
        runner.interpreter.invoke()
        for t in outputs:
            parts[t].append(runner.interpreter.get_tensor(t))
    return {t: np.concatenate(v) for t, v in parts.items()}


class OpSlicer:
    """One-op models cut from a model's flatbuffer: ``model_bytes(op_index)``."""

    def __init__(self, data: bytes):
        # deferred: LiteRT's flatbuffer schema, optional on a device
        from ai_edge_litert import schema_py_generated as schema

        self._schema = schema
        self._model = schema.ModelT.InitFromPackedBuf(data, 0)

    def inputs(self, op_index: int) -> list[int]:
        """The op's non-constant input tensors (the one-op model's inputs), in op order."""
        graph = self._model.subgraphs[0]
        op = graph.operators[op_index]
        buffers = self._model.buffers
        return [int(t) for t in op.inputs if t >= 0 and not _has_data(buffers, graph.tensors[int(t)].buffer)]

    def model_bytes(self, op_index: int) -> bytes:
        # deferred: flatbuffers (with LiteRT), only to write one-op models
        import flatbuffers

        schema, model = self._schema, self._model
        graph = model.subgraphs[0]
        op = graph.operators[op_index]
        used = {int(graph.tensors[int(t)].buffer) for t in op.inputs if t >= 0}
        inputs = self.inputs(op_index)
        saved = (model.subgraphs, model.buffers, model.signatureDefs, graph.operators, graph.inputs, graph.outputs)
        try:
            # Only this op's constants are written; the other buffers stay empty placeholders.
            model.buffers = [b if i in used else schema.BufferT() for i, b in enumerate(saved[1])]
            model.subgraphs, model.signatureDefs = [graph], []
            graph.operators = [op]
            graph.inputs = np.asarray(inputs, np.int32)
            graph.outputs = np.asarray([int(t) for t in op.outputs], np.int32)
            builder = flatbuffers.Builder(1024)
            builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
            return bytes(builder.Output())
        finally:
            model.subgraphs, model.buffers, model.signatureDefs, graph.operators, graph.inputs, graph.outputs = saved


def _has_data(buffers, index) -> bool:
    if not index or index >= len(buffers):
        return False
    b = buffers[index]
    return (b.data is not None and len(b.data) > 0) or bool(getattr(b, "size", 0))


def to_float(info: ModelInfo, tensor: int, value: np.ndarray) -> np.ndarray:
    """A tensor's value as float32 (dequantized when it is an integer activation)."""
    t = info.tensors[tensor]
    if t.dtype in _INT and t.scale:
        # float32 holds every int8/int16 value exactly; scale * (q - zero_point) as the runtime does.
        return (np.asarray(value).astype(np.float32) - np.float32(t.zero_point or 0)) * np.float32(t.scale)
    return np.asarray(value, np.float32)


def to_tensor(info: ModelInfo, tensor: int, value: np.ndarray) -> np.ndarray:
    """Float values in the tensor's own type (quantized with its scale and zero point)."""
    t = info.tensors[tensor]
    if t.dtype in _INT and t.scale:
        # TFLite's rule: round half away from zero, add the zero point, clip to the type.
        # In float64, as edgelab's runtime does: inputs such as normalized pixels sit on exact halves.
        scaled = np.asarray(value, np.float64) / float(t.scale)
        rounded = np.copysign(np.floor(np.abs(scaled) + 0.5), scaled) + float(t.zero_point or 0)
        limits = np.iinfo(np.dtype(t.dtype))
        return np.clip(rounded, limits.min, limits.max).astype(t.dtype)
    return np.asarray(value, np.dtype(t.dtype) if t.dtype in ("float32", "float16") else np.float32)


def quantized_range(info: ModelInfo, tensor: int) -> tuple[float, float] | None:
    """The float values an integer tensor can hold, ``(low, high)``; None for float tensors."""
    t = info.tensors[tensor]
    if t.dtype not in _INT or not t.scale:
        return None
    limits = np.iinfo(np.dtype(t.dtype))
    zp = t.zero_point or 0
    return float(t.scale * (limits.min - zp)), float(t.scale * (limits.max - zp))
