"""Mutated .tflite files and a crash-proof way to push them through edgelab.

``mutants(seed, n)`` makes seeded mutants of the models tests/data ships: bit flips, bytes set to
0x00/0xFF, 4-byte integers swapped for -1 / 2**31-1 / 1000, floats set to inf/nan, truncations, and
field edits repacked with the flatbuffers object API (indices, scales, zero points, shapes, op
options, names). ``run(paths)`` feeds them to a worker process (``python tests/_fuzz.py worker``)
that inspects, analyzes, loads and invokes each; a worker killed by a signal or stuck past the
timeout is recorded against the file it was on and replaced.
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
        ]
    )
    if kind == "scale" and tensors[t].quantization is not None and tensors[t].quantization.scale is not None:
        tensors[t].quantization.scale = np.array(
            [rng.choice([np.inf, np.nan, 0.0, -1.0])] * len(tensors[t].quantization.scale), np.float32
        )
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
    kind = rng.choices(["bitflip", "byte", "int", "float", "truncate", "edit"], [2, 2, 3, 1, 1, 3])[0]
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
        struct.pack_into("<f", buf, at, rng.choice([float("inf"), float("nan"), -float("inf")]))
    elif kind == "truncate":
        return kind, bytes(buf[: rng.randrange(8, len(buf))])
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


@dataclasses.dataclass
class Outcome:
    ok: int = 0
    clean: int = 0
    tracebacks: list = dataclasses.field(default_factory=list)
    signals: list = dataclasses.field(default_factory=list)
    hangs: list = dataclasses.field(default_factory=list)
    done: int = 0


def run(paths: list[Path], timeout_s: float = 20.0, budget_s: float | None = None) -> Outcome:
    """Push every file through the worker; stop starting new files after ``budget_s``."""
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
                        if outcome.done == 0:
                            raise RuntimeError(f"the fuzz worker cannot start (exit code {code})")
                    current = None
                    break
                reply = json.loads(line)
                outcome.done += 1
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
    """Read paths on stdin; for each, inspect, analyze, load and invoke; one JSON line per file."""
    import traceback

    import numpy as np

    from edgelab.edgetpu import analyze_edgetpu as analyze
    from edgelab.errors import EdgelabError
    from edgelab.tflite.inspection import inspect_model
    from edgelab.tflite.isolation import check_model
    from edgelab.tflite.runtime import TFLiteModel

    for line in sys.stdin:
        path = line.strip()
        result, detail = "ok", ""
        for step in ("inspect", "analyze", "load+invoke", "predict"):
            try:
                if step == "inspect":
                    json.dumps(inspect_model(path).to_dict(), allow_nan=False)
                elif step == "analyze":
                    json.dumps(analyze(path).to_dict(), allow_nan=False, default=str)
                elif step == "load+invoke":
                    check_model(path, isolate=False)
                else:
                    model = TFLiteModel(path)
                    model.predict(np.zeros((2, *model.image_shape), np.uint8), progress=False)
            except EdgelabError:
                result = "clean" if result == "ok" else result
            except Exception as exc:
                result, detail = "traceback", f"{step}: {type(exc).__name__}: {exc}"[:300]
                traceback.print_exc()
                break
        sys.stdout.write(json.dumps({"result": result, "detail": detail}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        _worker()
    else:  # python tests/_fuzz.py SEED N [BUDGET_S]: a campaign from the command line
        import tempfile

        seed, n = int(sys.argv[1]), int(sys.argv[2])
        with tempfile.TemporaryDirectory() as tmp:
            made = mutants(seed, n, Path(tmp))
            labels = {str(p): label for label, p in made}
            start = time.monotonic()
            out = run([p for _, p in made], budget_s=float(sys.argv[3]) if len(sys.argv) > 3 else None)
            print(
                f"{out.done + len(out.signals) + len(out.hangs)} mutants in {time.monotonic() - start:.0f} s: "
                f"{out.ok} ok, {out.clean} clean errors, {len(out.tracebacks)} tracebacks, "
                f"{len(out.signals)} signals, {len(out.hangs)} hangs"
            )
            for path, detail in out.tracebacks:
                print("TRACEBACK", labels[path], detail)
            for path, code in out.signals:
                print("SIGNAL", code, labels[path])
            for path in out.hangs:
                print("HANG", labels[path])
