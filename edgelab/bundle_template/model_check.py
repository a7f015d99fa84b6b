"""Check a .tflite file before a TFLite runtime loads it (numpy only; Python 3.6+).

The TFLite interpreter is C++ and trusts the file: an index out of range or a subnormal
quantization scale (below 1.1754944e-38, the smallest normal float32) can end the process with a
segmentation fault instead of an error. ``check_file(path)`` reads the flatbuffer with a small
bounds-checked reader and refuses such files with a ModelCheckError naming the tensor or op and the
rule. It checks the fields that have crashed the interpreter: tensor types, shapes, buffer
indices, quantization scales and zero points, graph and op tensor indices, opcode indices.

``check_in_child(path, ...)`` (``classify.py --check``) goes further: it loads the model and runs
it once on zeros in a child process, so a crash no rule foresaw ends the child, not the caller.
"""

import os
import struct
import subprocess
import sys

SMALLEST_SCALE = 1.1754943508222875e-38  # numpy.finfo(numpy.float32).tiny
MAX_TENSOR_BYTES = 2 ** 31 - 1

# TensorType -> (name, bytes per element or None, zero-point range or None)
TYPES = {
    0: ("FLOAT32", 4, (0, 0)),
    1: ("FLOAT16", 2, (0, 0)),
    2: ("INT32", 4, (-(2 ** 31), 2 ** 31 - 1)),
    3: ("UINT8", 1, (0, 255)),
    4: ("INT64", 8, (-(2 ** 63), 2 ** 63 - 1)),
    5: ("STRING", None, None),
    6: ("BOOL", 1, None),
    7: ("INT16", 2, (-32768, 32767)),
    8: ("COMPLEX64", 8, None),
    9: ("INT8", 1, (-128, 127)),
    10: ("FLOAT64", 8, (0, 0)),
    11: ("COMPLEX128", 16, None),
    12: ("UINT64", 8, None),
    13: ("RESOURCE", None, None),
    14: ("VARIANT", None, None),
    15: ("UINT32", 4, (0, 2 ** 32 - 1)),
    16: ("UINT16", 2, (0, 65535)),
    17: ("INT4", 0.5, (-8, 7)),
    18: ("BFLOAT16", 2, (0, 0)),
    19: ("INT2", 0.25, (-2, 1)),
}


class ModelCheckError(ValueError):
    """The file breaks a rule the interpreter would trust; the message says which."""


class _Reader(object):
    """Bounds-checked reads of a flatbuffer: a bad offset raises ModelCheckError, never crashes."""

    def __init__(self, data, name):
        self.data, self.name = data, name

    def bad(self, what):
        raise ModelCheckError("{} is not a valid TFLite model: {}".format(self.name, what))

    def unpack(self, fmt, pos):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            self.bad("an offset points outside the file ({} of {} bytes)".format(pos, len(self.data)))
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field(self, table, index):
        """Position of field ``index`` of the table at ``table``, or None when absent."""
        vtable = table - self.unpack("<i", table)
        vsize = self.unpack("<H", vtable)
        if 4 + 2 * index + 2 > vsize:
            return None
        offset = self.unpack("<H", vtable + 4 + 2 * index)
        return table + offset if offset else None

    def scalar(self, table, index, fmt, default=0):
        pos = self.field(table, index)
        return default if pos is None else self.unpack(fmt, pos)

    def ref(self, table, index):
        pos = self.field(table, index)
        return None if pos is None else pos + self.unpack("<I", pos)

    def vector(self, table, index, fmt):
        """Elements of a scalar vector field (a list; empty when absent)."""
        start = self.ref(table, index)
        if start is None:
            return []
        count = self.unpack("<I", start)
        size = struct.calcsize(fmt)
        if start + 4 + count * size > len(self.data):
            self.bad("a vector of {} elements runs past the end of the file".format(count))
        return list(struct.unpack_from("<{}{}".format(count, fmt[-1]), self.data, start + 4))

    def tables(self, table, index):
        """Positions of the tables in a vector-of-tables field."""
        start = self.ref(table, index)
        if start is None:
            return []
        count = self.unpack("<I", start)
        if start + 4 + 4 * count > len(self.data):
            self.bad("a table vector of {} entries runs past the end of the file".format(count))
        return [start + 4 + 4 * i + self.unpack("<I", start + 4 + 4 * i) for i in range(count)]


def check_bytes(data, name="model"):
    """Check a model's bytes; raises ModelCheckError."""
    r = _Reader(data, name)
    if len(data) < 8:
        r.bad("the file has {} bytes".format(len(data)))
    if data[4:8] != b"TFL3":
        r.bad("it lacks the TFLite file identifier 'TFL3'")
    model = r.unpack("<I", 0)
    opcodes = len(r.tables(model, 1))
    buffers = len(r.tables(model, 4))
    subgraphs = r.tables(model, 2)
    if not subgraphs:
        r.bad("it has no subgraphs")
    for s, graph in enumerate(subgraphs):
        tensors = r.tables(graph, 0)
        n = len(tensors)
        for t, tensor in enumerate(tensors):
            _check_tensor(r, s, t, tensor, buffers)
        for kind, index in (("input", 1), ("output", 2)):
            for k, t in enumerate(r.vector(graph, index, "<i")):
                if not 0 <= t < n:
                    r.bad("subgraph {}, graph {} {}: tensor index {} is outside 0..{}".format(s, kind, k, t, n - 1))
        for o, op in enumerate(r.tables(graph, 3)):
            code = r.scalar(op, 0, "<I")
            if not 0 <= code < opcodes:
                r.bad("subgraph {}, op {}: opcode index {} of {}".format(s, o, code, opcodes))
            for kind, index in (("input", 1), ("output", 2), ("intermediate", 8)):
                for k, t in enumerate(r.vector(op, index, "<i")):
                    if not -1 <= t < n:
                        r.bad("subgraph {}, op {}, {} {}: tensor index {} is outside 0..{}".format(
                            s, o, kind, k, t, n - 1))


def _check_tensor(r, s, t, tensor, buffers):
    import numpy as np

    where = "subgraph {}, tensor {}".format(s, t)
    code = r.scalar(tensor, 1, "<b")
    if code not in TYPES:
        r.bad("{}: unknown tensor type {}".format(where, code))
    type_name, itemsize, zero_range = TYPES[code]
    shape = r.vector(tensor, 0, "<i")
    if any(d < 0 for d in shape):
        r.bad("{}: shape {} has a negative dimension".format(where, shape))
    elements = 1
    for d in shape:
        elements *= d
    if elements * (itemsize or 1) > MAX_TENSOR_BYTES:
        r.bad("{}: shape {} of {} is larger than 2 GiB".format(where, shape, type_name))
    buffer = r.scalar(tensor, 2, "<I")
    if buffer >= max(buffers, 1):
        r.bad("{}: buffer {} of {}".format(where, buffer, buffers))
    quant = r.ref(tensor, 4)
    if quant is None:
        return
    scales = np.asarray(r.vector(quant, 2, "<f"), dtype=np.float64)
    zero_points = r.vector(quant, 3, "<q")
    if len(scales):
        good = np.isfinite(scales) & (scales >= SMALLEST_SCALE)
        if not good.all():
            r.bad("{}: quantization scale {:.6g} is not a finite, positive, normal float32 number "
                  "(the interpreter can crash on it)".format(where, float(scales[~good][0])))
        if zero_points and len(zero_points) not in (1, len(scales)):
            r.bad("{}: {} scales but {} zero points".format(where, len(scales), len(zero_points)))
    if zero_range is not None and len(scales):
        for zp in zero_points:
            if not zero_range[0] <= zp <= zero_range[1]:
                r.bad("{}: zero point {} lies outside {} ({}..{})".format(
                    where, zp, type_name, zero_range[0], zero_range[1]))
    if len(scales) > 1:
        dim = r.scalar(quant, 6, "<i")
        if not 0 <= dim < len(shape) or shape[dim] != len(scales):
            r.bad("{}: {} per-channel scales on dimension {} of shape {}".format(where, len(scales), dim, shape))


def check_file(path):
    """Check the .tflite file at ``path``; raises ModelCheckError (OSError when unreadable)."""
    with open(path, "rb") as fh:
        data = fh.read()
    check_bytes(data, os.path.basename(path))


def check_in_child(path, runtime=None, threads=None, device=None, timeout=300):
    """Load ``path`` and run it once on zeros in a child process; a crash raises ModelCheckError.

    Returns the child's one-line summary (runtime, input and output shapes).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    command = [sys.executable, os.path.join(here, "model_check.py"), "--child", path,
               runtime or "", str(threads or 0), device or ""]
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              universal_newlines=True)
    except subprocess.TimeoutExpired:
        raise ModelCheckError("{} did not load and run within {} s".format(os.path.basename(path), timeout))
    if proc.returncode < 0:
        raise ModelCheckError("the TFLite runtime crashed (signal {}) loading or running {}; the file is "
                              "malformed, do not load it".format(-proc.returncode, os.path.basename(path)))
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        last = [line for line in proc.stderr.splitlines() if line.strip()]
        raise ModelCheckError("{} failed to load or run: {}".format(
            os.path.basename(path), last[-1] if last else "exit code {}".format(proc.returncode)))
    return lines[-1]


def _child(path, runtime, threads, device):
    import numpy as np

    import classify  # this folder is on sys.path: the script's own folder

    edgetpu = classify.is_edgetpu_model(path)
    try:
        interpreter, name = classify.make_interpreter(path, edgetpu, device or None, threads or None, runtime or None)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except classify.ClassifyError as exc:
        sys.stderr.write("{}\n".format(exc))
        return 2
    except (ValueError, RuntimeError) as exc:
        sys.stderr.write("{}\n".format(" ".join(str(exc).split()) or type(exc).__name__))
        return 2
    shapes = lambda details: ", ".join(  # noqa: E731
        "{}{}".format(np.dtype(d["dtype"]).name, [int(v) for v in d["shape"]]) for d in details)
    print("ok: {} loads and runs with {} (inputs {}; outputs {})".format(
        os.path.basename(path), name, shapes(interpreter.get_input_details()),
        shapes(interpreter.get_output_details())))
    return 0


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--child":
    sys.exit(_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
