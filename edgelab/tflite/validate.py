"""Check a ``.tflite`` file's structure before any interpreter sees it.

The TFLite interpreter is C++ and trusts the file: an out-of-range index, an op that reads a
tensor nothing wrote, or SPLIT told to make 771 outputs where the graph has 6 can end the process
with a segmentation fault (a Jupyter kernel included), and an infinite quantization scale has
done the same. This module reads the flatbuffer with LiteRT's generated Python schema (pure
Python: a bad offset raises, it never crashes) and checks the rules below. A violation raises
:class:`ModelValidationError` (a :class:`~edgelab.errors.ModelFileError`) naming the file, the
subgraph, the op or tensor, and the rule.

Rules: indices in range (opcodes, tensors, graph inputs/outputs, buffers, subgraphs, signatures);
every op input defined before use (a graph input, a constant, a variable, or an earlier op's
output); inputs only optional (-1) where the op allows it; buffer sizes equal shape x dtype;
shapes non-negative and at most :data:`MAX_TENSOR_BYTES` per tensor; quantization scales finite,
positive and normal (at least 1.1754944e-38, the smallest normal float32), zero points within the
tensor type (a zero point on a float or other unquantizable type must be 0), per-channel counts matching the quantized dimension;
op options consistent with the tensors they index (SPLIT/SPLIT_V ``num_splits``, UNPACK ``num``,
PACK ``values_count``, axes); ops that keep an 8-bit input's type (ADD, CONV_2D, pools, ...) write
that type, with a quantization scale where they requantize; names and custom op codes valid UTF-8.

Like TFLite's own verifier it cannot rule out every kernel bug; the CLI's load-and-run commands
also make their first load in a child process (:mod:`edgelab.tflite.isolation`).
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any

import numpy as np

from ..errors import (
    ModelValidationError,  # re-exported: every error class lives in edgelab.errors
)
from .reader import corrupt_model_error, load_model_bytes, schema_module

__all__ = ["MAX_TENSOR_BYTES", "ModelValidationError", "validate_model"]

#: Largest tensor (bytes at its static shape) a model may declare: 2 GiB, TFLite's own int32 limit.
MAX_TENSOR_BYTES = 2**31 - 1

# TensorType -> bytes per element (None: variable size, not checked).
_ITEMSIZE: dict[str, float | None] = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "INT32": 4,
    "UINT8": 1,
    "INT64": 8,
    "STRING": None,
    "BOOL": 1,
    "INT16": 2,
    "COMPLEX64": 8,
    "INT8": 1,
    "FLOAT64": 8,
    "COMPLEX128": 16,
    "UINT64": 8,
    "RESOURCE": None,
    "VARIANT": None,
    "UINT32": 4,
    "UINT16": 2,
    "INT4": 0.5,
    "BFLOAT16": 2,
    "INT2": 0.25,
}
_ZERO_POINT_RANGE = {
    "INT8": (-128, 127),
    "UINT8": (0, 255),
    "INT16": (-32768, 32767),
    "UINT16": (0, 65535),
    "INT4": (-8, 7),
    "INT2": (-2, 1),
    "INT32": (-(2**31), 2**31 - 1),
    "UINT32": (0, 2**32 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    # A float tensor's scale only records a range; a non-zero point on it is a corrupt field.
    "FLOAT32": (0, 0),
    "FLOAT16": (0, 0),
    "FLOAT64": (0, 0),
    "BFLOAT16": (0, 0),
}
# The smallest normal float32: XNNPACK segfaults in allocate_tensors on a subnormal output scale
# (1.08e-42 in a converted int8 model), and a scale that small quantizes every value to the zero point.
_SMALLEST_SCALE = float(np.finfo(np.float32).tiny)
# Input positions that may be -1 (an omitted optional input); other ops take none.
_OPTIONAL_INPUTS = {"CONV_2D": {2}, "DEPTHWISE_CONV_2D": {2}, "FULLY_CONNECTED": {2}, "TRANSPOSE_CONV": {3}}
# Ops whose kernels take many optional inputs (recurrent cells) or are opaque: -1 is allowed anywhere.
_ANY_OPTIONAL = ("LSTM", "RNN", "SVDF", "CUSTOM", "DELEGATE", "STABLEHLO")
# (fewest, most) inputs of common ops (None: no upper bound); kernels read these positions unchecked.
_INPUT_COUNTS: dict[str, tuple[int, int | None]] = {
    "CONV_2D": (2, 3),
    "DEPTHWISE_CONV_2D": (2, 3),
    "FULLY_CONNECTED": (2, 4),
    "TRANSPOSE_CONV": (3, 4),
    "ADD": (2, 2),
    "SUB": (2, 2),
    "MUL": (2, 2),
    "DIV": (2, 2),
    "SPLIT": (2, 2),
    "SPLIT_V": (3, 3),
    "CONCATENATION": (1, None),
    "PACK": (1, None),
    "UNPACK": (1, 1),
    "SOFTMAX": (1, 1),
    "LOGISTIC": (1, 1),
    "RESHAPE": (1, 2),
    "AVERAGE_POOL_2D": (1, 1),
    "MAX_POOL_2D": (1, 1),
    "MEAN": (2, 2),
    "QUANTIZE": (1, 1),
    "DEQUANTIZE": (1, 1),
    "RELU": (1, 1),
    "RELU6": (1, 1),
    "PAD": (2, 3),
    "HARD_SWISH": (1, 1),
}

# Ops whose kernels read a count from their options unchecked: without the table SPLIT segfaults
# (CONV_2D, pools and CONCATENATION without options fail cleanly in their kernels).
_OPTIONS_REQUIRED = {"SPLIT", "SPLIT_V", "PACK", "UNPACK"}

# Ops whose kernels give their output the input's 8-bit type: TFLite's ADD overwrites the output's
# type with its input's, and an output without the quantization its requantization divides by then
# aborts the process (TFLITE_CHECK in QuantizeMultiplier), as a tensor whose table lost its vtable
# (all fields at their defaults: FLOAT32, no shape, no quantization) did under ADD.
_SAME_8BIT_TYPE_OPS = {
    "ADD",
    "SUB",
    "MUL",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "CONCATENATION",
    "RESHAPE",
    "PAD",
}
# Of those, the ones whose kernels requantize with the output's scale.
_REQUANTIZING_OPS = {"ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D", "CONCATENATION"}
_BROADCAST_OPS = {"ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM"}


_VALID: dict[bytes, bool] = {}  # digests of bytes that passed, so repeated loads check once


def validate_model(source: str | os.PathLike | bytes, *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> None:
    """Check a ``.tflite`` file (path or bytes) before an interpreter loads it.

    Args:
        source: Path to a ``.tflite`` file, or the model's bytes.
        max_tensor_bytes: Largest tensor allowed, in bytes at its static shape.

    Raises:
        ModelValidationError: the file breaks a rule (message: file, subgraph, op or tensor, rule).
        ModelFileError: the file is missing, unreadable, not TFLite, or its flatbuffer cannot be parsed.
    """
    data, path = load_model_bytes(source)
    validate_bytes(data, path, max_tensor_bytes=max_tensor_bytes)


def validate_bytes(data: bytes, path: str | None, *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> None:
    """:func:`validate_model` on bytes already read (``path`` names them in errors); cached per content."""
    key = hashlib.blake2b(data, digest_size=16).digest() + max_tensor_bytes.to_bytes(8, "little")
    if key in _VALID:
        return
    schema = schema_module()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the generated reader raises whatever a bad offset triggers
        raise corrupt_model_error(path, data, exc) from None
    check_parsed(schema, model, data, path, max_tensor_bytes=max_tensor_bytes)
    if len(_VALID) > 256:
        _VALID.clear()
    _VALID[key] = True


def check_parsed(
    schema: Any, model: Any, data: bytes, path: str | None, *, max_tensor_bytes: int = MAX_TENSOR_BYTES
) -> None:
    """The rules, on a model already unpacked with ``schema.ModelT`` (inspection reuses its parse)."""
    _Checker(schema, model, data, path, max_tensor_bytes).run()


def _enum_names(enum_cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]


class _Checker:
    def __init__(self, schema: Any, model: Any, data: bytes, path: str | None, max_tensor_bytes: int) -> None:
        self.schema, self.model, self.data, self.path = schema, model, data, path
        self.max_bytes = max_tensor_bytes
        self.op_names = _enum_names(schema.BuiltinOperator)
        self.type_names = _enum_names(schema.TensorType)
        self.option_names = _enum_names(schema.BuiltinOptions)
        by_name = {name[: -len("Options")].lower(): value for value, name in self.option_names.items()}
        self.options_for = {
            op: by_name[op.lower().replace("_", "")]
            for op in self.op_names.values()
            if op.lower().replace("_", "") in by_name
        }
        for pool in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
            self.options_for[pool] = by_name["pool2d"]
        self.buffers = model.buffers or []
        self.subgraphs = model.subgraphs or []

    def fail(self, subgraph: int | None, where: str, rule: str, detail: str) -> None:
        subject = f"Model file '{self.path}'" if self.path is not None else f"Model bytes ({len(self.data)} bytes)"
        place = ", ".join(p for p in (f"subgraph {subgraph}" if subgraph is not None else "", where) if p)
        raise ModelValidationError(
            f"{subject} is not a valid TFLite model: {place}: {detail} (rule: {rule}). "
            "An interpreter could crash on it, so edgelab will not load it.",
            self.path,
            subgraph,
            where,
            rule,
        )

    def text(self, value: Any, subgraph: int | None, where: str, what: str) -> str:
        if value is None:
            return ""
        try:
            return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)
        except UnicodeDecodeError:
            self.fail(
                subgraph, where, "names are valid UTF-8", f"its {what} is not valid UTF-8 ({bytes(value)[:32]!r})"
            )
            raise  # unreachable: fail() raises

    def run(self) -> None:
        if not self.subgraphs:
            self.fail(None, "model", "a model has at least one subgraph", "it has no subgraphs")
        self.op_labels = []
        for i, code in enumerate(self.model.operatorCodes or []):
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            name = self.op_names.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                custom = self.text(code.customCode, None, f"operator code {i}", "custom op name")
                self.op_labels.append(("CUSTOM", custom or "CUSTOM"))
            else:
                self.op_labels.append((name, name))
        for i, buf in enumerate(self.buffers):
            offset, size = int(buf.offset or 0), int(buf.size or 0)
            if offset > 1 and (size < 0 or offset + size > len(self.data)):
                self.fail(
                    None,
                    f"buffer {i}",
                    "buffer data lies inside the file",
                    f"offset {offset} + size {size} runs past the end of the file ({len(self.data)} bytes)",
                )
        for s, graph in enumerate(self.subgraphs):
            self.check_subgraph(s, graph)
        self.check_signatures_and_metadata()

    def check_subgraph(self, s: int, graph: Any) -> None:
        tensors = graph.tensors or []
        n = len(tensors)
        self.text(graph.name, s, "subgraph name", "name")
        defined: set[int] = set()
        for t_index, tensor in enumerate(tensors):
            if self.check_tensor(s, t_index, tensor):
                defined.add(t_index)
        inputs, outputs = _ints(graph.inputs), _ints(graph.outputs)
        for kind, indices in (("input", inputs), ("output", outputs)):
            for k, t in enumerate(indices):
                if not 0 <= t < n:
                    self.fail(
                        s,
                        f"graph {kind} {k}",
                        "graph inputs and outputs are tensor indices in range",
                        f"tensor index {t} is outside 0..{n - 1}",
                    )
        defined.update(inputs)
        for o_index, op in enumerate(graph.operators or []):
            self.check_op(s, o_index, op, tensors, defined)
        for k, t in enumerate(outputs):
            if t not in defined:
                self.fail(
                    s,
                    f"graph output {k} (tensor {t})",
                    "every graph output is computed",
                    "no op writes it and it is neither an input nor a constant",
                )

    def check_tensor(self, s: int, index: int, tensor: Any) -> bool:
        """Checks one tensor; True when it holds data before any op runs (a constant or variable)."""
        name = self.text(tensor.name, s, f"tensor {index}", "name")
        where = f"tensor {index} {name!r}"
        type_name = self.type_names.get(int(tensor.type), "")
        if not type_name:
            self.fail(s, where, "tensor types are TFLite TensorTypes", f"unknown type {tensor.type}")
        shape = _ints(tensor.shape)
        if any(d < 0 for d in shape):
            self.fail(s, where, "shapes are non-negative", f"its shape {shape} has a negative dimension")
        signature = _ints(tensor.shapeSignature)
        if signature and (len(signature) != len(shape) or any(d < -1 for d in signature)):
            self.fail(
                s,
                where,
                "a shape signature matches the shape's rank, -1 marking dynamic dimensions",
                f"shape {shape}, shape signature {signature}",
            )
        elements = math.prod(shape)
        itemsize = _ITEMSIZE.get(type_name)
        if elements * (itemsize or 1) > self.max_bytes:
            self.fail(
                s,
                where,
                f"a tensor is at most {self.max_bytes:,} bytes",
                f"its shape {shape} of {type_name} needs {math.ceil(elements * (itemsize or 1)):,} bytes",
            )
        buffer = int(tensor.buffer or 0)
        if not 0 <= buffer < max(len(self.buffers), 1):
            self.fail(s, where, "buffer indices are in range", f"buffer {buffer} of {len(self.buffers)}")
        stored = self.buffer_size(buffer)
        if stored and itemsize is not None and tensor.sparsity is None:
            packed = math.ceil(elements * itemsize)
            if stored not in (packed, elements * math.ceil(itemsize)):
                self.fail(
                    s,
                    where,
                    "a constant's buffer size equals its shape x dtype size",
                    f"shape {shape} of {type_name} needs {packed} bytes, buffer {buffer} holds {stored}",
                )
        self.check_quantization(s, where, tensor, type_name, shape)
        return bool(stored) or elements == 0 or bool(tensor.isVariable)

    def buffer_size(self, index: int) -> int:
        if index <= 0 or index >= len(self.buffers):
            return 0
        buf = self.buffers[index]
        if buf is None:
            return 0
        if buf.data is not None and len(buf.data):
            return len(buf.data)
        return int(buf.size or 0) if int(buf.offset or 0) > 1 else 0

    def check_quantization(self, s: int, where: str, tensor: Any, type_name: str, shape: list[int]) -> None:
        q = tensor.quantization
        if q is None or q.scale is None or not len(q.scale):
            return
        scales = np.asarray(q.scale, dtype=np.float64)
        good = np.isfinite(scales) & (scales >= _SMALLEST_SCALE)
        if not np.all(good):
            bad = scales[~good][0]
            self.fail(
                s,
                where,
                f"quantization scales are finite, positive and normal float32 numbers (>= {_SMALLEST_SCALE:.8g})",
                f"it has scale {bad:.6g}",
            )
        zero_points = _ints(q.zeroPoint)
        if zero_points and len(zero_points) not in (1, len(scales)):
            self.fail(s, where, "one zero point per scale", f"{len(scales)} scales but {len(zero_points)} zero points")
        bounds = _ZERO_POINT_RANGE.get(type_name)
        if bounds is not None:
            for zp in zero_points:
                if not bounds[0] <= zp <= bounds[1]:
                    self.fail(
                        s,
                        where,
                        f"zero points lie within the tensor type ({type_name}: {bounds[0]}..{bounds[1]})",
                        f"it has zero point {zp}",
                    )
        if len(scales) > 1:
            dim = int(q.quantizedDimension or 0)
            if not 0 <= dim < len(shape) or shape[dim] != len(scales):
                self.fail(
                    s,
                    where,
                    "per-channel scales match the quantized dimension",
                    f"{len(scales)} scales on dimension {dim} of shape {shape}",
                )

    def check_op(self, s: int, index: int, op: Any, tensors: list, defined: set[int]) -> None:
        codes = self.op_labels
        opcode = int(op.opcodeIndex)
        if not 0 <= opcode < len(codes):
            self.fail(s, f"op {index}", "opcode indices are in range", f"opcode {opcode} of {len(codes)}")
        kind, name = codes[opcode]
        where = f"op {index} ({name})"
        n = len(tensors)
        inputs, outputs = _ints(op.inputs), _ints(op.outputs)
        any_optional = any(tag in kind for tag in _ANY_OPTIONAL)
        optional = _OPTIONAL_INPUTS.get(kind, set())
        counts = _INPUT_COUNTS.get(kind)
        if counts and not (counts[0] <= len(inputs) and (counts[1] is None or len(inputs) <= counts[1])):
            wanted = f"{counts[0]}" if counts[0] == counts[1] else f"{counts[0]} to {counts[1] or 'any'}"
            self.fail(s, where, f"{kind} takes {wanted} inputs", f"it has {len(inputs)}")
        for k, t in enumerate(inputs):
            if t == -1 and (any_optional or k in optional):
                continue
            if not 0 <= t < n:
                self.fail(
                    s,
                    f"{where}, input {k}",
                    "op inputs are tensor indices in range (-1 only where optional)",
                    f"tensor index {t} is outside 0..{n - 1}",
                )
            if t not in defined:
                self.fail(
                    s,
                    f"{where}, input {k} (tensor {t})",
                    "every op input is defined before use",
                    "it is not a graph input, a constant, a variable or an earlier op's output",
                )
        if not outputs and not any_optional:
            self.fail(s, where, "an op has at least one output", "it has none")
        for k, t in enumerate(outputs):
            if t == -1 and any_optional:
                continue
            if not 0 <= t < n:
                self.fail(
                    s,
                    f"{where}, output {k}",
                    "op outputs are tensor indices in range",
                    f"tensor index {t} is outside 0..{n - 1}",
                )
        for k, t in enumerate(_ints(op.intermediates)):
            if not 0 <= t < n:
                self.fail(s, f"{where}, intermediate {k}", "intermediate tensors are in range", f"tensor index {t}")
        self.check_8bit_outputs(s, where, kind, inputs, outputs, tensors)
        self.check_options(s, where, kind, op, inputs, outputs, tensors)
        defined.update(t for t in outputs if t >= 0)

    def check_8bit_outputs(
        self, s: int, where: str, kind: str, inputs: list[int], outputs: list[int], tensors: list
    ) -> None:
        """An op of :data:`_SAME_8BIT_TYPE_OPS` on a (u)int8 input writes the same type, quantized."""
        if kind not in _SAME_8BIT_TYPE_OPS or not inputs or inputs[0] < 0 or not outputs or outputs[0] < 0:
            return
        in_type = self.type_names.get(int(tensors[inputs[0]].type), "")
        if in_type not in ("UINT8", "INT8"):
            return
        output = tensors[outputs[0]]
        out_type = self.type_names.get(int(output.type), "")
        if out_type != in_type:
            self.fail(
                s,
                f"{where}, output 0 (tensor {outputs[0]})",
                f"{kind} on {in_type} writes {in_type}",
                f"its input is {in_type} but its output is {out_type or output.type}",
            )
        q = output.quantization
        if kind in _REQUANTIZING_OPS and (q is None or q.scale is None or not len(q.scale)):
            self.fail(
                s,
                f"{where}, output 0 (tensor {outputs[0]})",
                f"a quantized {kind}'s output has a quantization scale",
                f"its {out_type} output has none",
            )

    def check_options(
        self, s: int, where: str, kind: str, op: Any, inputs: list[int], outputs: list[int], tensors: list
    ) -> None:
        opts = op.builtinOptions
        expected = self.options_for.get(kind)
        given = int(op.builtinOptionsType or 0)
        if expected is not None and given and given != expected:
            self.fail(
                s,
                where,
                f"{kind} carries {self.option_names[expected]}",
                f"its options are {self.option_names.get(given, given)}",
            )
        if opts is None:
            if kind in _OPTIONS_REQUIRED:
                self.fail(s, where, f"{kind} carries its options", "it has none")
            return
        for key in (
            "strideW",
            "strideH",
            "dilationWFactor",
            "dilationHFactor",
            "filterWidth",
            "filterHeight",
            "depthMultiplier",
        ):
            value = getattr(opts, key, None)
            if isinstance(value, (int, np.integer)) and value <= 0 and not (key == "depthMultiplier" and value == 0):
                self.fail(s, where, f"{kind} {key} is positive", f"{key} is {int(value)}")
        for key, value in vars(opts).items():
            in_options = key.endswith("SubgraphIndex") and isinstance(value, (int, np.integer))
            if in_options and not 0 <= int(value) < len(self.subgraphs):
                self.fail(
                    s,
                    where,
                    "subgraph indices in options are in range",
                    f"{key} {int(value)} of {len(self.subgraphs)} subgraphs",
                )
        rank = lambda t: len(_ints(tensors[t].shape)) if 0 <= t < len(tensors) else 0  # noqa: E731
        if kind in ("SPLIT", "SPLIT_V"):
            num = int(getattr(opts, "numSplits", 0) or 0)
            if num != len(outputs) or num <= 0:
                self.fail(
                    s,
                    where,
                    f"{kind} num_splits equals its number of outputs",
                    f"num_splits is {num} and it has {len(outputs)} outputs",
                )
            if kind == "SPLIT" and len(inputs) == 2:
                self.check_split_axis(s, where, inputs, num, tensors)
        elif kind == "UNPACK":
            num = int(getattr(opts, "num", 0) or 0)
            if num != len(outputs):
                self.fail(s, where, "UNPACK num equals its number of outputs", f"num is {num}, outputs {len(outputs)}")
            self.check_axis(s, where, kind, int(getattr(opts, "axis", 0) or 0), rank(inputs[0]) if inputs else 0)
        elif kind == "PACK":
            count = int(getattr(opts, "valuesCount", 0) or 0)
            if count != len(inputs):
                self.fail(
                    s,
                    where,
                    "PACK values_count equals its number of inputs",
                    f"values_count is {count}, inputs {len(inputs)}",
                )
            self.check_axis(s, where, kind, int(getattr(opts, "axis", 0) or 0), rank(outputs[0]) if outputs else 0)
        elif kind in _BROADCAST_OPS and len(inputs) == 2 and len(outputs) == 1 and min(inputs) >= 0:
            # The kernel resizes its output to the broadcast of the inputs; a mismatch with the stored
            # shape means a graph that silently runs at another size (480x the work in one mutant).
            a, b, out = (tuple(_ints(tensors[t].shape)) for t in (*inputs, outputs[0]))
            try:
                broadcast = tuple(np.broadcast_shapes(a, b))
            except ValueError:
                broadcast = None
            if broadcast != out and a and b and out:
                self.fail(
                    s,
                    where,
                    f"{kind}'s output shape is the broadcast of its input shapes",
                    f"inputs {list(a)} and {list(b)}, output {list(out)}",
                )
        elif kind == "CONCATENATION" and outputs:
            self.check_axis(s, where, kind, int(getattr(opts, "axis", 0) or 0), rank(outputs[0]))

    def check_axis(self, s: int, where: str, kind: str, axis: int, rank: int) -> None:
        if rank and not -rank <= axis < rank:
            self.fail(s, where, f"{kind} axis lies within the tensor's rank", f"axis {axis} for rank {rank}")

    def check_split_axis(self, s: int, where: str, inputs: list[int], num: int, tensors: list) -> None:
        axis_t, value_t = inputs
        axis_value = self.constant_int(axis_t, tensors)
        shape = _ints(tensors[value_t].shape)
        if axis_value is None or not shape:
            return
        self.check_axis(s, where, "SPLIT", axis_value, len(shape))
        dim = shape[axis_value]
        if num and dim % num:
            self.fail(s, where, "SPLIT divides its axis evenly", f"dimension {dim} into {num} parts")

    def constant_int(self, index: int, tensors: list) -> int | None:
        tensor = tensors[index]
        buf = self.buffers[int(tensor.buffer or 0)] if 0 < int(tensor.buffer or 0) < len(self.buffers) else None
        if buf is None or buf.data is None or len(buf.data) != 4:
            return None
        return int(np.frombuffer(bytes(np.asarray(buf.data, np.uint8)), np.int32)[0])

    def check_signatures_and_metadata(self) -> None:
        for i, sig in enumerate(self.model.signatureDefs or []):
            where = f"signature {i}"
            self.text(sig.signatureKey, None, where, "key")
            sub = int(sig.subgraphIndex or 0)
            if not 0 <= sub < len(self.subgraphs):
                self.fail(None, where, "signature subgraph indices are in range", f"subgraph {sub}")
            n = len(self.subgraphs[sub].tensors or [])
            for entry in (sig.inputs or []) + (sig.outputs or []):
                self.text(entry.name, sub, where, "tensor name")
                if not 0 <= int(entry.tensorIndex) < n:
                    self.fail(sub, where, "signature tensor indices are in range", f"tensor {int(entry.tensorIndex)}")
        for i, meta in enumerate(self.model.metadata or []):
            self.text(meta.name, None, f"metadata {i}", "name")
            if not 0 <= int(meta.buffer) < len(self.buffers):
                self.fail(None, f"metadata {i}", "metadata buffer indices are in range", f"buffer {int(meta.buffer)}")
        for k, b in enumerate(_ints(self.model.metadataBuffer)):
            if not 0 <= b < len(self.buffers):
                self.fail(None, f"metadata buffer {k}", "metadata buffer indices are in range", f"buffer {b}")
