"""Drift check benchmark: windows flagged per camera shift, false alarms, accuracy, time on 120 images.

    edgelab demo                                   # writes runs/demo/bundle (int8 + drift reference)
    python benchmarks/bench_drift.py --bundle runs/demo/bundle --out runs/bench

For the in-distribution case and every shift of ``edgelab.data.shifts`` it draws ``--windows``
windows of ``--window-size`` fresh synthetic scenes (a seed the reference never saw, every class
equally), runs ``edgelab.drift.check_drift`` on each and counts the windows flagged; it also
measures the bundle model's accuracy on those images. Then it times ``check_drift`` on one window
of JPEG files (read, resize, features, model, verdict) and reports the reference's size.
Writes ``drift.json`` into ``--out`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")

import numpy as np
from PIL import Image

from edgelab.data.scenes import generate_scenes
from edgelab.data.shifts import SHIFTS
from edgelab.drift import check_drift
from edgelab.drift.check import bundle_reference, reference_model_path
from edgelab.tflite.runtime import TFLiteModel


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(bundle: Path, shift: str | None, windows: int, size: int, seed: int) -> dict:
    _, meta, reference = bundle_reference(bundle)
    image_size = reference["image_size"]
    per_class = -(-windows * size // 6)
    images, labels = generate_scenes(per_class, tuple(image_size), seed=seed, shift=shift, progress=False)
    model = TFLiteModel(reference_model_path(bundle, meta, reference), num_threads=1)
    accuracy = float(np.mean(model.predict(images, progress=False).argmax(axis=1) == labels))
    flagged, scores, messages = 0, [], collections.Counter()
    for w in range(windows):
        result = check_drift(bundle, images[w * size : (w + 1) * size], progress=False)
        flagged += result.drift
        scores.append(result.score)
        messages.update(result.messages)
    return {
        "shift": shift or "none (in distribution)",
        "windows": windows,
        "flagged": flagged,
        "accuracy": round(accuracy, 4),
        "score_min": round(min(scores), 3),
        "score_max": round(max(scores), 3),
        "messages": [m for m, _ in messages.most_common(3)],
    }


def time_window(bundle: Path, size: int, seed: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (this process) of ``check_drift`` on ``size`` JPEG files, ``repeats`` times."""
    images, _ = generate_scenes(-(-size // 6), 150, seed=seed, progress=False)  # camera-sized JPEGs
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images[:size]):
            Image.fromarray(img).save(Path(tmp) / f"{i:04d}.jpg", quality=90)
        times, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            check_drift(bundle, tmp, progress=False)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return times, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="runs/demo/bundle", help="a bundle exported with a reference")
    parser.add_argument("--out", default="runs/bench", help="folder for drift.json")
    parser.add_argument("--windows", type=int, default=10, help="windows per shift (default 10)")
    parser.add_argument("--window-size", type=int, default=120, help="images per window (default 120)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the fresh scenes (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of one window (default 5)")
    args = parser.parse_args(argv)

    bundle = Path(args.bundle)
    if not (bundle / "reference.json").is_file():
        print(f"bench_drift: error: no reference.json in {bundle}: run `edgelab demo` first", file=sys.stderr)
        return 2
    rows = [measure(bundle, shift, args.windows, args.window_size, args.seed) for shift in (None, *SHIFTS)]
    times, cpu = time_window(bundle, args.window_size, args.seed + 1, args.repeats)
    reference_kib = (bundle / "reference.json").stat().st_size / 1024
    result = {
        "cpu": cpu_name(),
        "bundle": str(bundle),
        "window_size": args.window_size,
        "rows": rows,
        "check_seconds": [round(t, 3) for t in times],
        "check_seconds_median": round(float(np.median(times)), 3),
        "check_cpu_seconds_median": round(float(np.median(cpu)), 3),
        "load_average": round(os.getloadavg()[0], 1),
        "reference_kib": round(reference_kib, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(result, indent=2) + "\n")

    print(f"| shift | windows flagged (of {args.windows} x {args.window_size}) | accuracy | score range | named |")
    print("|---|---|---|---|---|")
    for r in rows:
        named = "; ".join(r["messages"]) or "-"
        print(
            f"| {r['shift']} | {r['flagged']}/{r['windows']} | {r['accuracy']:.3f} | "
            f"{r['score_min']:.2f}-{r['score_max']:.2f} | {named} |"
        )
    print(
        f"\ncheck_drift on {args.window_size} JPEG files (read, resize, features, int8 model, verdict): "
        f"median {result['check_seconds_median']:.2f} s wall, {result['check_cpu_seconds_median']:.2f} s CPU "
        f"of {args.repeats} runs (load average {result['load_average']}); reference.json "
        f"{reference_kib:.1f} KiB; CPU: {result['cpu']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
