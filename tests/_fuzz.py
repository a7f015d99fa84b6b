"""Mutated .tflite files and a crash-proof way to push them through edgelab.

``mutants(seed, n)`` makes seeded mutants of the models tests/data ships: bit flips, bytes set to
0x00/0xFF, 4-byte integers swapped for -1 / 2**31-1 / 1000, special floats (inf, nan, subnormal,
huge, tiny, zero, negative) written over raw words and into every float field of the object tree,
offsets into every table (uoffsets of each table and vector field, each table's vtable pointer and
vtable entries) set out of range, truncations, and field edits repacked with the flatbuffers object
API (indices, scales, zero points, shapes, op options, names). ``run(paths)`` feeds them to a
worker process (``python tests/_fuzz.py worker``) that runs each through ``inspect`` (and the Edge
TPU ``analyze``), ``benchmark`` (measure_latency) and an in-process load + predict, all in the
worker's own process with ``trusted=True`` (no child check in front: a gap in the structural rules
shows up as a signal); a worker killed by a signal or stuck past the timeout is recorded against
the file it was on and replaced, so a crash is counted, never fatal to the caller.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import selectors
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORAL = ROOT / "tests" / "data" / "coral"
# (file, weight): the small graphs are where structure is dense; compiled models exercise the readers.
MODELS = (
    ("split_concat.tflite", 4),
    ("mobilenet_v1_0.25_128_quant.tflite", 3),
    ("deeplabv3_mnv2_dm05_pascal_quant.tflite", 1),
    ("split_concat_edgetpu.tflite", 1),
    ("mobilenet_v1_0.25_128_quant_edgetpu.tflite", 1),
)
INTS = (-1, 2**31 - 1, 1000, 0, 771)
#: Floats written into float fields: non-finite, subnormal (below 1.1754944e-38), huge, tiny, signed zero.
FLOATS = (
    float("inf"),
    -float("inf"),
    float("nan"),
    1.08e-42,  # subnormal: the scale that made XNNPACK segfault
    1.4e-45,  # the smallest float32 subnormal
    1e-40,
    3.4e38,  # near float32's largest
    1e30,
    1e-30,  # tiny but normal
    0.0,
    -0.0,
    -1.0,
)

# Offset-typed fields of the TFLite schema (field index -> kind, child table) for the tables the
# offset mutator walks: "vt" a vector of tables, "t" a table (None: a union or leaf, not walked),
# "v" a scalar vector, "s" a string.
_SPEC: dict[str, dict[int, tuple[str, str | None]]] = {
    "Model": {
        1: ("vt", "OperatorCode"),
        2: ("vt", "SubGraph"),
        3: ("s", None),
        4: ("vt", "Buffer"),
        5: ("v", None),
        6: ("vt", "Metadata"),
        7: ("vt", "SignatureDef"),
    },
    "OperatorCode": {1: ("s", None)},
    "SubGraph": {0: ("vt", "Tensor"), 1: ("v", None), 2: ("v", None), 3: ("vt", "Operator"), 4: ("s", None)},
    "Tensor": {0: ("v", None), 3: ("s", None), 4: ("t", "QuantizationParameters"), 6: ("t", None), 7: ("v", None)},
    "Operator": {1: ("v", None), 2: ("v", None), 4: ("t", None), 5: ("v", None), 7: ("v", None), 8: ("v", None)},
    "QuantizationParameters": {0: ("v", None), 1: ("v", None), 2: ("v", None), 3: ("v", None), 5: ("t", None)},
    "Buffer": {0: ("v", None)},
    "Metadata": {0: ("s", None)},
    "SignatureDef": {0: ("vt", "TensorMap"), 1: ("vt", "TensorMap"), 2: ("s", None)},
    "TensorMap": {0: ("s", None)},
}


def offset_sites(data: bytes) -> dict[str, list[tuple[str, int]]]:
    """Where a valid model stores offsets, grouped by ``Table.field``: ``(kind, position)`` with kind
    ``"uoffset"`` (a field or vector element pointing at a table, vector or string), ``"soffset"``
    (a table's pointer to its vtable) or ``"vtable"`` (a vtable's 16-bit field offset)."""
    sites: dict[str, list[tuple[str, int]]] = {}
    u32 = lambda pos: struct.unpack_from("<I", data, pos)[0]  # noqa: E731
    seen: set[int] = set()

    def table(name: str, pos: int) -> None:
        if pos in seen or not 0 <= pos < len(data) - 4:
            return
        seen.add(pos)
        sites.setdefault(f"{name}.<vtable pointer>", []).append(("soffset", pos))
        vtable = pos - struct.unpack_from("<i", data, pos)[0]
        vsize = struct.unpack_from("<H", data, vtable)[0]
        for slot in range((vsize - 4) // 2):
            sites.setdefault(f"{name}.<vtable entry>", []).append(("vtable", vtable + 4 + 2 * slot))
        for index, (kind, child) in _SPEC.get(name, {}).items():
            if 4 + 2 * index + 2 > vsize:
                continue
            rel = struct.unpack_from("<H", data, vtable + 4 + 2 * index)[0]
            if not rel:
                continue
            field = pos + rel
            sites.setdefault(f"{name}.{index}", []).append(("uoffset", field))
            target = field + u32(field)
            if kind == "t" and child:
                table(child, target)
            elif kind == "vt" and child:
                for i in range(u32(target)):
                    element = target + 4 + 4 * i
                    sites.setdefault(f"{name}.{index}[]", []).append(("uoffset", element))
                    table(child, element + u32(element))

    table("Model", u32(0))
    return sites


def _offset_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One offset of a randomly chosen table field (every table and field equally likely) set out of range."""
    sites = offset_sites(data)
    name = rng.choice(sorted(sites))
    kind, pos = rng.choice(sites[name])
    buf = bytearray(data)
    if kind == "uoffset":
        old = struct.unpack_from("<I", buf, pos)[0]
        value = rng.choice([0, 1, 3, len(buf), len(buf) - pos, 2**31 - 1, 2**32 - 1, old + 4, max(old - 4, 0)])
        struct.pack_into("<I", buf, pos, value % 2**32)
    elif kind == "soffset":
        old = struct.unpack_from("<i", buf, pos)[0]
        value = rng.choice([0, pos, -len(buf), 2**31 - 1, -(2**31), old + 4, old - 4, -pos])
        struct.pack_into("<i", buf, pos, max(-(2**31), min(2**31 - 1, value)))
    else:
        old = struct.unpack_from("<H", buf, pos)[0]
        struct.pack_into("<H", buf, pos, rng.choice([0, 1, 2, 0xFFFF, (old + 4) % 0x10000, max(old - 4, 0)]))
    return f"offset:{name}", bytes(buf)


def _float_fields(obj, label: str, out: list, depth: int = 0) -> None:
    """Every float scalar and float array reachable in an object-API model, as (owner, attr, label)."""
    import numpy as np

    if depth > 6 or obj is None or isinstance(obj, (int, bytes, str, bool)):
        return
    if isinstance(obj, list):
        for item in obj:
            _float_fields(item, label, out, depth + 1)
        return
    if not hasattr(obj, "__dict__"):
        return
    for attr, value in vars(obj).items():
        where = f"{type(obj).__name__}.{attr}"
        is_array = isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size > 0
        is_list = isinstance(value, list) and bool(value) and isinstance(value[0], float)
        if isinstance(value, float) or is_array or is_list:
            out.append((obj, attr, where))
        elif not isinstance(value, np.ndarray):
            _float_fields(value, where, out, depth + 1)


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def structure_end(data: bytes) -> int:
    """Where constant buffer data starts: mutations before it hit tables, not weights."""
    flat = _schema().Model.GetRootAsModel(data, 0)
    starts = [len(data)]
    for i in range(flat.BuffersLength()):
        tab = flat.Buffers(i)._tab
        o = tab.Offset(4)
        if o and tab.VectorLen(o) > 16:
            starts.append(tab.Vector(o))
    return max(64, min(starts))


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One field edit through the object API, repacked."""
    import numpy as np

    model = _schema().ModelT.InitFromPackedBuf(data, 0)
    graph = model.subgraphs[0]
    tensors, ops = graph.tensors, graph.operators
    t = rng.randrange(len(tensors))
    o = rng.randrange(len(ops))
    value = rng.choice(INTS)
    kind = rng.choice(
        [
            "scale",
            "zero_point",
            "op_input",
            "op_output",
            "graph_io",
            "shape",
            "buffer",
            "opcode",
            "type",
            "name",
            "options",
            "swap_ops",
            "num_splits",
            "float_field",
            "float_field",
        ]
    )
    if kind == "float_field":
        found: list = []
        _float_fields(model, "Model", found)
        if found:
            by_field: dict[str, list] = {}
            for owner, attr, where in found:
                by_field.setdefault(where, []).append((owner, attr))
            where = rng.choice(sorted(by_field))  # every kind of float field equally likely
            owner, attr = rng.choice(by_field[where])
            special = rng.choice(FLOATS)
            value = getattr(owner, attr)
            if isinstance(value, float):
                setattr(owner, attr, special)
            else:
                array = np.array(value, np.float32)
                if rng.random() < 0.5:
                    array[rng.randrange(array.size)] = special
                else:
                    array[:] = special
                setattr(owner, attr, array)
            return f"edit:float_field:{where}", _pack(model)
    if kind == "scale" and tensors[t].quantization is not None and tensors[t].quantization.scale is not None:
        tensors[t].quantization.scale = np.array([rng.choice(FLOATS)] * len(tensors[t].quantization.scale), np.float32)
    elif kind == "zero_point" and tensors[t].quantization is not None and tensors[t].quantization.zeroPoint is not None:
        tensors[t].quantization.zeroPoint = np.array(
            [rng.choice([1000, -1000, 2**40])] * len(tensors[t].quantization.zeroPoint), np.int64
        )
    elif kind in ("op_input", "op_output") and ops:
        field = "inputs" if kind == "op_input" else "outputs"
        values = np.array(getattr(ops[o], field), np.int32)
        if len(values):
            values[rng.randrange(len(values))] = rng.choice([-1, len(tensors), 2**31 - 1, rng.randrange(len(tensors))])
            setattr(ops[o], field, values)
    elif kind == "graph_io":
        field = rng.choice(["inputs", "outputs"])
        values = np.array(getattr(graph, field), np.int32)
        values[rng.randrange(len(values))] = rng.choice([-1, len(tensors), rng.randrange(len(tensors))])
        setattr(graph, field, values)
    elif kind == "shape" and tensors[t].shape is not None and len(tensors[t].shape):
        shape = np.array(tensors[t].shape, np.int32)
        shape[rng.randrange(len(shape))] = rng.choice([-1, 0, 1000, 2**31 - 1, 7])
        tensors[t].shape = shape
    elif kind == "buffer":
        tensors[t].buffer = rng.choice([len(model.buffers), 2**31 - 1, rng.randrange(len(model.buffers))])
    elif kind == "opcode" and ops:
        ops[o].opcodeIndex = rng.choice([len(model.operatorCodes), 2**31 - 1, rng.randrange(len(model.operatorCodes))])
    elif kind == "type":
        tensors[t].type = rng.randrange(0, 20)
    elif kind == "name":
        tensors[t].name = b"\xff\xfe" + (tensors[t].name or b"")[:8]
    elif kind == "options" and ops and ops[o].builtinOptions is not None:
        opts = ops[o].builtinOptions
        keys = [k for k, v in vars(opts).items() if isinstance(v, int) and not isinstance(v, bool)]
        if keys:
            setattr(opts, rng.choice(keys), rng.choice([value, 7, -7]))
    elif kind == "swap_ops" and len(ops) > 1:
        i = rng.randrange(len(ops) - 1)
        ops[i], ops[i + 1] = ops[i + 1], ops[i]
    elif kind == "num_splits":
        for op in ops:
            if op.builtinOptions is not None and hasattr(op.builtinOptions, "numSplits"):
                op.builtinOptions.numSplits = rng.choice([771, 1000, 0, 1, 2**31 - 1])
    return f"edit:{kind}", _pack(model)


def mutate(data: bytes, rng: random.Random, end: int) -> tuple[str, bytes]:
    """One mutant of ``data`` and a label for it."""
    kind = rng.choices(["bitflip", "byte", "int", "float", "truncate", "edit", "offset"], [2, 2, 3, 2, 1, 4, 3])[0]
    buf = bytearray(data)
    pick = lambda: rng.randrange(8, end) if rng.random() < 0.85 else rng.randrange(8, len(buf))  # noqa: E731
    if kind == "bitflip":
        at = pick()
        buf[at] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        at = rng.randrange(8, min(end, 4096))
        buf[at] = rng.choice([0x00, 0xFF])
    elif kind == "int":
        at = pick() & ~3
        struct.pack_into("<i", buf, at, rng.choice(INTS[:3]))
    elif kind == "float":
        at = pick() & ~3
        struct.pack_into("<f", buf, at, rng.choice(FLOATS))
    elif kind == "truncate":
        return kind, bytes(buf[: rng.randrange(8, len(buf))])
    elif kind == "offset":
        return _offset_mutation(data, rng)
    else:
        try:
            return _edit(data, rng)
        except Exception:
            buf[pick()] ^= 0xFF
            return "edit-fallback", bytes(buf)
    return kind, bytes(buf)


def mutants(seed: int, n: int, out_dir: Path) -> list[tuple[str, Path]]:
    """Write ``n`` seeded mutants to ``out_dir``; returns ``(label, path)`` pairs."""
    rng = random.Random(seed)
    sources = [(CORAL / name).read_bytes() for name, _ in MODELS]
    ends = [structure_end(d) for d in sources]
    weights = [w for _, w in MODELS]
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for i in range(n):
        k = rng.choices(range(len(MODELS)), weights)[0]
        label, data = mutate(sources[k], rng, ends[k])
        path = out_dir / f"m{i:04d}_{Path(MODELS[k][0]).stem}.tflite"
        path.write_bytes(data)
        result.append((f"{MODELS[k][0]} {label}", path))
    return result


#: The commands each mutant goes through in the worker (analyze rides along with inspect).
COMMANDS = ("inspect", "benchmark", "load+predict")


@dataclasses.dataclass
class Outcome:
    """What a campaign saw. ``ok``/``clean`` count mutants (every command ran, or at least one was
    refused with an EdgelabError); ``runs`` counts command runs; ``native_loads`` counts
    ``allocate_tensors`` calls in the worker (in-process interpreter loads past validation)."""

    ok: int = 0
    clean: int = 0
    tracebacks: list = dataclasses.field(default_factory=list)
    signals: list = dataclasses.field(default_factory=list)
    hangs: list = dataclasses.field(default_factory=list)
    done: int = 0
    runs: int = 0
    native_loads: int = 0
    load_attempts: int = 0

    @property
    def tried(self) -> int:
        return self.done + len(self.signals) + len(self.hangs)

    def summary(self) -> str:
        return (
            f"{self.tried} mutants x {len(COMMANDS)} commands ({self.runs} command runs, {self.load_attempts} "
            f"in-process load + predict attempts, {self.native_loads} in-process interpreter loads): {self.ok} ok, "
            f"{self.clean} clean errors, {len(self.tracebacks)} tracebacks, {len(self.signals)} signals, "
            f"{len(self.hangs)} hangs"
        )


#: Seconds a fresh worker may take to import edgelab and a runtime (a bound on a broken start only).
STARTUP_TIMEOUT_S = 600.0


def run(paths: list[Path], timeout_s: float = 60.0, budget_s: float | None = None) -> Outcome:
    """Push every file through the worker (a fresh one after a crash or hang). ``timeout_s`` is how
    long one file may take before it counts as a hang; ``budget_s`` (command-line campaigns only)
    stops starting new files after that many seconds."""
    outcome = Outcome()
    todo = list(paths)
    began = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "EDGELAB_PROGRESS": "0"}
    while todo:
        proc = subprocess.Popen(
            [sys.executable, __file__, "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current = None
        try:
            # A file's timeout starts once the worker has imported everything: a slow start on a
            # busy machine is not a hang of the file it would have read first.
            if not sel.select(STARTUP_TIMEOUT_S) or not proc.stdout.readline().startswith('{"ready"'):
                raise RuntimeError(
                    f"the fuzz worker did not start within {STARTUP_TIMEOUT_S:g} s (exit code {proc.poll()})"
                )
            while todo or current is not None:
                if current is None:
                    if budget_s is not None and time.monotonic() - began > budget_s:
                        todo.clear()
                        break
                    current = todo.pop(0)
                    proc.stdin.write(f"{current}\n")
                    proc.stdin.flush()
                if not sel.select(timeout_s):
                    outcome.hangs.append(str(current))
                    proc.kill()
                    current = None
                    break
                line = proc.stdout.readline()
                if not line:  # the worker died on this file
                    code = proc.wait()
                    if code < 0:  # killed by a signal
                        outcome.signals.append((str(current), code))
                    else:  # exited: an uncaught error at import or exit, as bad as a traceback
                        outcome.tracebacks.append((str(current), f"worker exited with code {code}"))
                    current = None
                    break
                reply = json.loads(line)
                outcome.done += 1
                outcome.runs += reply["runs"]
                outcome.native_loads += reply["native_loads"]
                outcome.load_attempts += reply["load_attempts"]
                if reply["result"] == "ok":
                    outcome.ok += 1
                elif reply["result"] == "clean":
                    outcome.clean += 1
                else:
                    outcome.tracebacks.append((str(current), reply["detail"]))
                current = None
        finally:
            if proc.poll() is None:
                proc.stdin.close()
                proc.kill()
            proc.wait()
    return outcome


def _worker() -> None:
    """Read paths on stdin; for each, inspect (+ analyze), benchmark, load + predict, all in this
    process (``trusted=True``: no child check in front); one JSON line per file."""
    import traceback

    import numpy as np

    from edgelab.compare.benchmark import measure_latency
    from edgelab.edgetpu import analyze_edgetpu as analyze
    from edgelab.errors import EdgelabError
    from edgelab.tflite.inspection import inspect_model
    from edgelab.tflite.interpreter import get_runtime
    from edgelab.tflite.runtime import TFLiteModel

    native = {"loads": 0}
    interpreter_cls = get_runtime().interpreter_cls
    allocate = interpreter_cls.allocate_tensors

    def counted(self, *args, **kwargs):
        native["loads"] += 1
        return allocate(self, *args, **kwargs)

    interpreter_cls.allocate_tensors = counted
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()

    for line in sys.stdin:
        path = line.strip()
        result, detail, runs, attempts = "ok", "", 0, 0
        native["loads"] = 0
        for step in COMMANDS:
            try:
                runs += 1
                if step == "inspect":
                    json.dumps(inspect_model(path).to_dict(), allow_nan=False)
                    json.dumps(analyze(path).to_dict(), allow_nan=False, default=str)
                elif step == "benchmark":
                    json.dumps(
                        measure_latency(path, warmup=1, min_time_s=0.0, runs=2, max_runs=2, trusted=True).to_dict(),
                        allow_nan=False,
                    )
                else:
                    attempts += 1
                    model = TFLiteModel(path, trusted=True)
                    model.predict(np.zeros((2, *model.image_shape), np.uint8), progress=False)
            except EdgelabError:
                result = "clean" if result == "ok" else result
            except Exception as exc:
                result, detail = "traceback", f"{step}: {type(exc).__name__}: {exc}"[:300]
                traceback.print_exc()
                break
        reply = {"result": result, "detail": detail, "runs": runs, "native_loads": native["loads"]}
        sys.stdout.write(json.dumps({**reply, "load_attempts": attempts}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        _worker()
    else:  # python tests/_fuzz.py SEED N [BUDGET_S]: a campaign from the command line
        import tempfile

        seed, n = int(sys.argv[1]), int(sys.argv[2])
        budget = float(sys.argv[3]) if len(sys.argv) > 3 else None
        with tempfile.TemporaryDirectory() as tmp:
            made = mutants(seed, n, Path(tmp))
            labels = {str(p): label for label, p in made}
            start = time.monotonic()
            total = Outcome()
            for chunk in range(0, n, 100):  # a running total every 100 mutants
                left = None if budget is None else budget - (time.monotonic() - start)
                if left is not None and left <= 0:
                    break
                out = run([p for _, p in made[chunk : chunk + 100]], budget_s=left)
                for name in ("ok", "clean", "done", "runs", "native_loads", "load_attempts"):
                    setattr(total, name, getattr(total, name) + getattr(out, name))
                for name in ("tracebacks", "signals", "hangs"):
                    getattr(total, name).extend(getattr(out, name))
                print(f"seed {seed}: {total.summary()}; {time.monotonic() - start:.0f} s", flush=True)
            kinds: dict[str, int] = {}
            for label, _ in made[: total.tried]:
                key = label.split(" ", 1)[1].split(":")[0]
                kinds[key] = kinds.get(key, 0) + 1
            print("mutation kinds:", json.dumps(dict(sorted(kinds.items()))))
            for path, detail in total.tracebacks:
                print("TRACEBACK", labels[path], detail)
            for path, code in total.signals:
                print("SIGNAL", code, labels[path])
            for path in total.hangs:
                print("HANG", labels[path])
