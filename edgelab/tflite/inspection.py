"""Read a ``.tflite`` file without TensorFlow: ops, versions, tensors, quantization, MACs.

The flatbuffer schema ships with LiteRT (``ai_edge_litert.schema_py_generated``), so this runs on a
device that has only numpy and LiteRT. Everything describes the main subgraph (subgraph 0), which
is the one an interpreter runs and the one the Edge TPU Compiler partitions.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFileError
from ..records import Record
from .reader import (
    EDGETPU_CUSTOM_OP,
    corrupt_model_error,
    has_edgetpu_custom_op,
    load_model_bytes,
    model_subject,
    schema_module,
    text_of,
)
from .validate import check_parsed

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "EDGETPU_CUSTOM_OP",
    "ModelInfo",
    "OpInfo",
    "TensorInfo",
    "has_edgetpu_custom_op",
    "inspect_model",
    "load_model_bytes",
    "short_name",
]


# TFLite TensorType name -> (numpy-style dtype name, bytes per element).
_DTYPES: dict[str, tuple[str, float]] = {
    "FLOAT32": ("float32", 4),
    "FLOAT16": ("float16", 2),
    "INT32": ("int32", 4),
    "UINT8": ("uint8", 1),
    "INT64": ("int64", 8),
    "STRING": ("string", 0),
    "BOOL": ("bool", 1),
    "INT16": ("int16", 2),
    "COMPLEX64": ("complex64", 8),
    "INT8": ("int8", 1),
    "FLOAT64": ("float64", 8),
    "COMPLEX128": ("complex128", 16),
    "UINT64": ("uint64", 8),
    "RESOURCE": ("resource", 0),
    "VARIANT": ("variant", 0),
    "UINT32": ("uint32", 4),
    "UINT16": ("uint16", 2),
    "INT4": ("int4", 0.5),
    "BFLOAT16": ("bfloat16", 2),
    "INT2": ("int2", 0.25),
}

# Builtin op codes whose MACs are estimated (multiply-accumulates per inference).
_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


@dataclass(frozen=True)
class TensorInfo(Record):
    """One tensor of the main subgraph.

    Attributes:
        index: Tensor index in the subgraph.
        name: Tensor name from the converter.
        shape: Static shape (batch included).
        shape_signature: Shape with -1 where a dimension is dynamic (equals ``shape`` when static).
        dtype: numpy-style dtype name (``"uint8"``, ``"int8"``, ``"float32"`` ...).
        scale: Quantization scale (the first channel's for per-channel tensors), None if unquantized.
        zero_point: Quantization zero point (first channel's), None if unquantized.
        per_channel: True when the tensor has one scale per channel.
        is_variable: True for variable (state) tensors.
        has_buffer: True when the tensor is a constant stored in the file (weights, biases, shapes).
        buffer: Index of the file buffer holding the constant (tensors may share one), 0 if none.
        bytes: Stored bytes for constants, else the size of the tensor at its static shape.
    """

    #: ``to_dict``: the tensor as the JSON summary of a model lists it.
    RECORD_KEYS = ("name", "shape", "shape_signature", "dtype", "scale", "zero_point")

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None
    per_channel: bool
    is_variable: bool
    has_buffer: bool
    buffer: int
    bytes: int

    @property
    def quantized(self) -> bool:
        """True when the tensor carries quantization parameters."""
        return self.scale is not None

    @property
    def is_dynamic(self) -> bool:
        """True when some dimension is only known at run time (-1 in the shape signature)."""
        return any(d < 0 for d in self.shape_signature)

    def describe(self) -> str:
        """Short text such as ``uint8[1,96,96,3] q(0.0078,128)``."""
        dims = ",".join("?" if d < 0 else str(d) for d in self.shape_signature)
        text = f"{self.dtype}[{dims}]"
        if self.scale is not None:
            text += f" q({self.scale:.4g},{self.zero_point})"
        return text

    def __repr__(self) -> str:
        return f"TensorInfo(index={self.index}, name={self.name!r}, {self.describe()})"


@dataclass(frozen=True)
class OpInfo:
    """One operator of the main subgraph, in execution order.

    Attributes:
        index: Position in the execution order.
        op: Builtin name (``"CONV_2D"``) or, for custom ops, the custom code
            (``"edgetpu-custom-op"``).
        version: Operator version recorded by the converter.
        inputs: Input tensor indices (-1 marks an omitted optional input).
        outputs: Output tensor indices.
        macs: Estimated multiply-accumulates (conv, depthwise, fully connected, transpose conv).
        is_custom: True for custom ops.
        options: The builtin options as plain Python values (``{"strideW": 2, ...}``).
    """

    index: int
    op: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    macs: int = 0
    is_custom: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"OpInfo(index={self.index}, op={self.op!r}, version={self.version}, "
            f"inputs={list(self.inputs)}, outputs={list(self.outputs)}, macs={self.macs})"
        )


@dataclass(frozen=True)
class ModelInfo(Record):
    """What a ``.tflite`` file contains, read without running it.

    Attributes:
        path: The file read, or None when the model came as bytes.
        size_bytes: File size.
        ops: Operators of the main subgraph in execution order.
        tensors: Tensors of the main subgraph.
        inputs: Model input tensors.
        outputs: Model output tensors.
        subgraphs: Number of subgraphs (more than 1 means control flow or signatures).
        param_bytes: Bytes of constant tensors (weights, biases, shape operands) in the main
            subgraph. A compiled Edge TPU model keeps its mapped parameters inside the custom
            op's options, which are not counted.
        macs: Sum of the per-op MAC estimates.
        custom_ops: Distinct custom op codes, in order of first use.
    """

    #: ``to_dict``: a JSON-ready summary (no per-tensor listing).
    RECORD_KEYS = (
        "path",
        "size_bytes",
        "subgraphs",
        ("ops_total", lambda info: len(info.ops)),
        "op_counts",
        "custom_ops",
        "param_bytes",
        "macs",
        "inputs",
        "outputs",
    )

    path: str | None
    size_bytes: int
    ops: tuple[OpInfo, ...]
    tensors: tuple[TensorInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    subgraphs: int
    param_bytes: int
    macs: int
    custom_ops: tuple[str, ...]
    _constants: Mapping[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_edgetpu_compiled(self) -> bool:
        """True when the model already went through the Edge TPU Compiler."""
        return EDGETPU_CUSTOM_OP in self.custom_ops

    def constant(self, index: int) -> np.ndarray | None:
        """The stored value of a constant tensor (typed and shaped), or None if it has no data."""
        raw = self._constants.get(index)
        if raw is None:
            return None
        tensor = self.tensors[index]
        try:
            values = raw.view(np.dtype(tensor.dtype))
            return values.reshape(tensor.shape) if values.size == math.prod(tensor.shape) else values
        except (TypeError, ValueError):
            return raw  # packed or exotic types (int4, strings): raw bytes

    def op_counts(self) -> dict[str, int]:
        """Ops per type, most frequent first (ties by name)."""
        counts = Counter(op.op for op in self.ops)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_frame(self) -> pd.DataFrame:
        """One row per op: index, op, version, input_shapes, output_shapes, dtype, macs."""
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        rows = []
        for op in self.ops:
            ins = [self.tensors[i] for i in op.inputs if i >= 0]
            outs = [self.tensors[i] for i in op.outputs if i >= 0]
            rows.append(
                {
                    "index": op.index,
                    "op": op.op,
                    "version": op.version,
                    "input_shapes": tuple(t.shape for t in ins),
                    "output_shapes": tuple(t.shape for t in outs),
                    "dtype": outs[0].dtype if outs else "",
                    "macs": op.macs,
                }
            )
        columns = ["index", "op", "version", "input_shapes", "output_shapes", "dtype", "macs"]
        return pd.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        name = Path(self.path).name if self.path else "<bytes>"
        ins = ", ".join(t.describe() for t in self.inputs)
        outs = ", ".join(t.describe() for t in self.outputs)
        return (
            f"ModelInfo({name!r}, size_bytes={self.size_bytes}, ops={len(self.ops)}, "
            f"tensors={len(self.tensors)}, inputs=[{ins}], outputs=[{outs}], "
            f"param_bytes={self.param_bytes}, macs={self.macs})"
        )


def inspect_model(source: str | os.PathLike | bytes) -> ModelInfo:
    """Read ops, tensors, quantization, parameter bytes and MACs from a ``.tflite`` model.

    Args:
        source: Path to a ``.tflite`` file, or the model's bytes.

    Returns:
        A :class:`ModelInfo` describing the main subgraph.

    Raises:
        ModelFileError: the file is missing, empty, truncated, corrupt or not TFLite, or breaks a
            structural rule (a :class:`~edgelab.tflite.validate.ModelValidationError`).
        ImportError: LiteRT (``ai_edge_litert``), which ships the flatbuffer schema, is not installed.
    """
    data, path = load_model_bytes(source)
    schema = schema_module()

    try:
        return _parse(schema, data, path)
    except ModelFileError:
        raise
    except Exception as exc:  # the generated reader raises whatever a bad offset triggers
        raise corrupt_model_error(path, data, exc) from exc


def _parse(schema: Any, data: bytes, path: str | None) -> ModelInfo:
    where = model_subject(path, len(data), capital=True)
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    check_parsed(schema, model, data, path)  # the same rules as before a load, on this parse
    subgraphs = model.subgraphs or []
    if not subgraphs:
        raise ModelFileError(f"{where} is not a usable TFLite model: it has no subgraphs.")
    graph = subgraphs[0]
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)

    raw_tensors = graph.tensors or []
    constants: dict[int, np.ndarray] = {}
    tensors = []
    for i, t in enumerate(raw_tensors):
        tensors.append(_tensor_info(i, t, buffers, type_names, data, constants, where))

    n_tensors = len(tensors)
    ops = []
    for i, op in enumerate(graph.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise ModelFileError(f"{where} is corrupt: op {i} uses unknown opcode {op.opcodeIndex}.")
        code = codes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        is_custom = name == "CUSTOM"
        if is_custom:
            name = text_of(code.customCode) or "CUSTOM"
        inputs = _indices(op.inputs)
        outputs = _indices(op.outputs)
        for t in inputs + outputs:
            if t >= n_tensors or t < -1:
                raise ModelFileError(f"{where} is corrupt: op {i} ({name}) refers to tensor {t}.")
        ops.append(
            OpInfo(
                index=i,
                op=name,
                version=int(code.version or 1),
                inputs=inputs,
                outputs=outputs,
                macs=_macs(name, inputs, outputs, tensors),
                is_custom=is_custom,
                options=_options(op.builtinOptions),
            )
        )

    graph_inputs = tuple(tensors[i] for i in _indices(graph.inputs) if 0 <= i < n_tensors)
    graph_outputs = tuple(tensors[i] for i in _indices(graph.outputs) if 0 <= i < n_tensors)
    seen_buffers: set[int] = set()
    param_bytes = 0
    for t in tensors:
        if t.has_buffer and t.buffer not in seen_buffers:  # the converter shares equal constants
            seen_buffers.add(t.buffer)
            param_bytes += t.bytes
    custom = tuple(dict.fromkeys(op.op for op in ops if op.is_custom))
    return ModelInfo(
        path=path,
        size_bytes=len(data),
        ops=tuple(ops),
        tensors=tuple(tensors),
        inputs=graph_inputs,
        outputs=graph_outputs,
        subgraphs=len(subgraphs),
        param_bytes=param_bytes,
        macs=sum(op.macs for op in ops),
        custom_ops=custom,
        _constants=constants,
    )


def _tensor_info(index, t, buffers, type_names, data, constants, where) -> TensorInfo:
    type_name = type_names.get(int(t.type), f"TYPE_{t.type}")
    dtype, itemsize = _DTYPES.get(type_name, (type_name.lower(), 0))
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    signature = (
        tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None and len(t.shapeSignature) else shape
    )
    raw = None
    if t.buffer and t.buffer > 0:
        if t.buffer >= len(buffers):
            raise ModelFileError(f"{where} is corrupt: tensor {index} refers to buffer {t.buffer}.")
        raw = _buffer_bytes(buffers[t.buffer], data)
    if raw is not None and raw.size:
        raw.flags.writeable = False
        constants[index] = raw
        nbytes = int(raw.nbytes)
    else:
        nbytes = math.ceil(math.prod(max(d, 0) for d in shape) * itemsize)
    scale = zero_point = None
    per_channel = False
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scale = float(q.scale[0])
        zps = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0]
        zero_point = int(zps[0])
        per_channel = len(q.scale) > 1
    return TensorInfo(
        index=index,
        name=text_of(t.name),
        shape=shape,
        shape_signature=signature,
        dtype=dtype,
        scale=scale,
        zero_point=zero_point,
        per_channel=per_channel,
        is_variable=bool(t.isVariable),
        has_buffer=index in constants,
        buffer=int(t.buffer) if index in constants else 0,
        bytes=nbytes,
    )


def _buffer_bytes(buf, data: bytes) -> np.ndarray | None:
    if buf is None:
        return None
    if buf.data is not None and len(buf.data):
        return np.asarray(buf.data, dtype=np.uint8)
    # Models over 2 GB keep buffers after the flatbuffer, addressed by offset/size.
    offset, size = int(buf.offset or 0), int(buf.size or 0)
    if offset > 1 and size:
        if offset + size > len(data):
            raise ValueError("buffer data runs past the end of the file")
        return np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
    return None


def _macs(name: str, inputs, outputs, tensors) -> int:
    if name not in _MAC_OPS or not outputs:
        return 0
    try:
        out = tensors[outputs[0]].shape
        if name == "CONV_2D":
            _, kh, kw, cin = tensors[inputs[1]].shape
            return math.prod(out) * kh * kw * cin
        if name == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = tensors[inputs[1]].shape
            return math.prod(out) * kh * kw
        if name == "FULLY_CONNECTED":
            cin = tensors[inputs[1]].shape[-1]
            return math.prod(out) * cin
        if name == "TRANSPOSE_CONV":
            # inputs: output_shape, weights [cout, kh, kw, cin], input; each input value feeds
            # kh * kw * cout outputs.
            cout, kh, kw, _ = tensors[inputs[1]].shape
            return math.prod(tensors[inputs[2]].shape) * kh * kw * cout
    except (IndexError, ValueError):
        return 0  # unusual layouts: no estimate rather than a wrong one
    return 0


def _options(opts) -> dict[str, Any]:
    if opts is None:
        return {}
    result = {}
    for key, value in vars(opts).items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, (np.integer, np.floating, np.bool_)):
            value = value.item()
        if isinstance(value, (bool, int, float, str, list)) or value is None:
            result[key] = value
    return result


def _indices(values) -> tuple[int, ...]:
    if values is None:
        return ()
    return tuple(int(v) for v in values)


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def short_name(tensor: str) -> str:
    """The Keras layer behind a converter tensor name (``edgecnn/conv2_relu/Relu6;...`` -> ``conv2_relu``)."""
    first = tensor.split(";")[0]
    parts = [p for p in first.split("/") if p]
    return parts[1] if len(parts) >= 3 else first
