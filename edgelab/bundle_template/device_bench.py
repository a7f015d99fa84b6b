#!/usr/bin/env python3
"""Measure this bundle's models on this device, with the bundle's own code (classify.py).

    python3 classify.py --bench [--models int8,fp32] [--manifest images.json] [--warmup 10] [--runs 50]
    python3 classify.py --bench --smoke        # load every model, run it once, check its output

Per model: cold start (load + allocate + first inference, the runtime already imported), then a
warm-up and timed inferences (p50/p99), then, with a manifest of test images (a JSON list of
[file, label] pairs, files relative to the manifest), the top-1 class of each image. Prints one line
`EDGELAB-RESULT {json}` at the end. numpy, Pillow and a TFLite runtime only; Python 3.6+.

It stops by itself when its deadline passes, and as soon as the ssh session that started it is gone
(its parent process changes), so an interrupted benchmark never keeps a device busy.
"""

import argparse
import json
import os
import sys
import time

import classify

RESULT_MARKER = "EDGELAB-RESULT "


class Stopped(Exception):
    """The deadline passed or the session that started the benchmark ended."""


class Watch(object):
    def __init__(self, deadline_s, parent=None):
        # The parent the caller names (ssh: the session's pid, as $PPID of the shell that exec'd this), so a
        # session that ended before this process got here is noticed too.
        self.parent = parent if parent else os.getppid()
        self.deadline = time.monotonic() + deadline_s

    def check(self):
        if os.getppid() != self.parent:
            raise Stopped("the session that started the benchmark ended")
        if time.monotonic() > self.deadline:
            raise Stopped("the benchmark ran past its deadline")


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def runtime_version(name):
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None)
    if version is None and name == "ai_edge_litert":
        try:
            from importlib import metadata

            version = metadata.version("ai-edge-litert")
        except Exception:
            version = None
    return version


def load_manifest(path):
    with open(path, encoding="utf-8") as fh:
        pairs = json.load(fh)
    base = os.path.dirname(os.path.abspath(path))
    return [(os.path.join(base, name), int(label)) for name, label in pairs]


def bench_model(entry, bundle_dir, meta, images, args, watch):
    import numpy as np

    path = os.path.join(bundle_dir, entry["file"])
    row = {"model": entry.get("name"), "file": entry["file"], "status": "ok"}
    edgetpu = classify.is_edgetpu_model(path)
    row["edgetpu"] = edgetpu
    # Import the runtime first: the cold start is the model's, not the import's.
    for name in ([args.runtime] if args.runtime else classify.runtimes(edgetpu)):
        if classify.import_runtime(name) is not None:
            break
    start = time.perf_counter()
    interpreter, runtime = classify.make_interpreter(path, edgetpu, args.device, args.threads, args.runtime)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    if images:
        first = classify.preprocess(images[0][0], interpreter, meta)
    else:
        first = np.zeros(detail["shape"], dtype=detail["dtype"])
    interpreter.set_tensor(detail["index"], first)
    interpreter.invoke()
    row["cold_ms"] = (time.perf_counter() - start) * 1000.0
    row["runtime"], row["runtime_version"] = runtime, runtime_version(runtime)
    scores = classify.scores_of(interpreter)
    row["outputs"] = int(len(scores))
    if args.smoke:
        return row
    for _ in range(args.warmup):
        interpreter.invoke()
    watch.check()
    times = []
    began = time.perf_counter()
    while len(times) < args.runs or (time.perf_counter() - began < args.min_time and len(times) < args.max_runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t0) * 1000.0)
        if len(times) % 20 == 0:
            watch.check()
    row["runs"] = len(times)
    row["p50_ms"], row["p99_ms"] = percentile(times, 50), percentile(times, 99)
    row["mean_ms"] = sum(times) / len(times)
    if images:
        predictions, unreadable = [], []
        for k, (image, _label) in enumerate(images):
            try:
                interpreter.set_tensor(detail["index"], classify.preprocess(image, interpreter, meta))
            except classify.ClassifyError:
                predictions.append(-1)
                unreadable.append(os.path.basename(image))
                continue
            interpreter.invoke()
            predictions.append(int(classify.scores_of(interpreter).argmax()))
            if k % 20 == 0:
                watch.check()
        row["predictions"] = predictions
        row["unreadable"] = unreadable
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="classify.py --bench", description="Benchmark this bundle's models.")
    parser.add_argument("--models", help="comma-separated model names or files (default: every model)")
    parser.add_argument("--manifest", help="JSON list of [image file, label] pairs (accuracy and agreement)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50, help="timed inferences at least")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed inferences at least")
    parser.add_argument("--max-runs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", help="Edge TPU: usb, usb:0, pci, pci:0")
    parser.add_argument("--runtime", choices=["ai_edge_litert", "tflite_runtime", "pycoral", "tensorflow"])
    parser.add_argument("--deadline", type=float, default=1800.0, help="stop after this many seconds")
    parser.add_argument("--smoke", action="store_true", help="load and run each model once, no timing")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is no longer the parent")
    parser.add_argument("--bundle", default=classify.HERE)
    args = parser.parse_args(argv)
    watch = Watch(args.deadline, args.parent_pid)
    result = {"ok": True, "rows": []}
    try:
        watch.check()
        try:
            import numpy  # noqa: F401
            import PIL  # noqa: F401
        except ImportError as exc:
            raise classify.ClassifyError("{} is missing: pip install numpy pillow".format(exc.name))
        meta, labels = classify.load_bundle(args.bundle)
        entries = meta.get("models", [])
        if args.models:
            wanted = [m.strip() for m in args.models.split(",") if m.strip()]
            unknown = [w for w in wanted if not any(w in (e.get("name"), e.get("file")) for e in entries)]
            if unknown:
                raise classify.ClassifyError("unknown model(s) {}; this bundle has {}".format(
                    unknown, [e.get("name") for e in entries]))
            entries = [e for e in entries if e.get("name") in wanted or e.get("file") in wanted]
        images = load_manifest(args.manifest) if args.manifest else []
        for entry in entries:
            watch.check()
            try:
                row = bench_model(entry, args.bundle, meta, images, args, watch)
            except classify.ClassifyError as exc:
                row = {"model": entry.get("name"), "file": entry.get("file"), "status": "failed", "reason": str(exc)}
            except (ValueError, RuntimeError) as exc:  # the runtime refused the model
                first = str(exc).strip().splitlines()
                row = {"model": entry.get("name"), "file": entry.get("file"), "status": "failed",
                       "reason": "{}: {}".format(type(exc).__name__, first[0] if first else "")}
            if row.get("status") == "ok" and row.get("outputs") != len(labels):
                row.update(status="failed", reason="the model gives {} scores but labels.txt has {} labels".format(
                    row.get("outputs"), len(labels)))
            result["rows"].append(row)
        result["labels"] = len(labels)
        result["ok"] = all(r.get("status") == "ok" for r in result["rows"])
    except Stopped as exc:
        result = {"ok": False, "stopped": True, "error": str(exc)}
    except classify.ClassifyError as exc:
        result = {"ok": False, "error": str(exc)}
    except (OSError, ValueError) as exc:
        result = {"ok": False, "error": "{}: {}".format(type(exc).__name__, exc)}
    except KeyboardInterrupt:
        result = {"ok": False, "stopped": True, "error": "interrupted"}
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
