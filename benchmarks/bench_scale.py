"""How edgelab's data path scales: time and peak memory against the number of images on disk.

    make bench-scale      # or: python benchmarks/bench_scale.py --out runs/bench

Writes synthetic scenes at 150x150 in Intel's layout at 1x, 4x and 16x a base size (600, 2,400 and
9,600 images by default), then measures each step in a fresh process (its own peak resident memory,
VmHWM):
  check   edgelab data check's scan: every image decoded once to verify it
  load    load_dataset at 96x96 and every split's arrays, from a cold decoded-image cache
  epoch   one training epoch of the default model on the train split (cache warm)
and its CPU utilisation (user + system time of every thread and of the decoding worker processes /
wall time, in % of one core; the workers' own peak memory is workers_peak_mb), and
fits a line through the three sizes. The slopes go to bench.json under ``scale``:
``seconds_per_1k_images`` and ``peak_mb_per_1k_images`` per step (merged into an existing
bench.json). The load average is recorded too: on a shared machine the times are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")

STEPS = ("check", "load", "epoch")
IMAGE_SIZE = 96


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system time of this process (every thread) and of its waited-for children (the
    image cache's decoding workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _workers_peak_mb() -> float:
    """Peak resident memory of the largest waited-for child process (a decoding worker), 0 without one."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def child(step: str, root: str, cache: str) -> dict:
    """One step, timed, in this (fresh) process."""
    from edgelab.data import load_dataset, scan

    if step == "check":
        start, cpu = time.perf_counter(), _cpu_seconds()
        result = scan(root, verify=True, progress=False)
        seconds, images = time.perf_counter() - start, len(result.paths)
    elif step == "load":
        start, cpu = time.perf_counter(), _cpu_seconds()
        ds = load_dataset(root, image_size=IMAGE_SIZE, progress=False, cache_dir=cache)
        images = sum(len(ds.arrays(split)[1]) for split in ("train", "val", "test"))
        seconds = time.perf_counter() - start
    else:
        from edgelab.training.fit import train
        from edgelab.training.models import build_model

        ds = load_dataset(root, image_size=IMAGE_SIZE, progress=False, cache_dir=cache)
        ds.arrays("train"), ds.arrays("val")  # warm cache: decoding is the load step's figure
        model = build_model("edgecnn", num_classes=len(ds.class_names), image_size=IMAGE_SIZE)
        start, cpu = time.perf_counter(), _cpu_seconds()
        train(model, ds, epochs=1, progress=False)
        seconds, images = time.perf_counter() - start, len(ds.train)
    cpu = _cpu_seconds() - cpu  # the step's own CPU time (every thread), as the wall time above
    return {
        "seconds": round(seconds, 3),
        "peak_mb": round(_peak_mb(), 1),
        "workers_peak_mb": round(_workers_peak_mb(), 1),
        "images": images,
        "cpu_utilisation": round(100 * cpu / seconds, 1) if seconds else 0.0,
    }


def _scenes(work: Path, total: int) -> Path:
    """``total`` scenes on disk (reused when an earlier run wrote the same ones)."""
    from edgelab.data.scene_files import MARKER_NAME, make_scenes

    per_class = total // 6
    root = work / f"scenes-{total}"
    marker = root / MARKER_NAME
    if marker.is_file():
        params = json.loads(marker.read_text())
        if params.get("complete") and params.get("per_class") == per_class and params.get("image_size") == [150, 150]:
            return root
    make_scenes(root, per_class, image_size=150, progress=False)
    return root


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench", help="folder of bench.json (merged into when present)")
    parser.add_argument("--base", type=int, default=600, help="images on disk at 1x (default: 600)")
    parser.add_argument("--factors", default="1,4,16", help="multiples of --base (default: 1,4,16)")
    parser.add_argument("--work", default=None, help="where the scenes are written (default: a temporary folder)")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "ROOT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    factors = [int(f) for f in args.factors.split(",")]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edgelab-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    points = []
    for factor in factors:
        total = args.base * factor
        root = _scenes(work, total)
        cache = work / f"cache-{total}"
        shutil.rmtree(cache, ignore_errors=True)
        point: dict = {"images": total, "load_average": round(os.getloadavg()[0], 2)}
        for step in STEPS:
            done = subprocess.run(
                [sys.executable, __file__, "--child", step, str(root), str(cache)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                raise SystemExit(f"bench_scale: step {step} at {total} images failed (exit {done.returncode})")
            point[step] = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{total:>6} images  {step:<5}  {point[step]['seconds']:7.2f} s  {point[step]['peak_mb']:7.1f} MB peak"
                f"  {point[step]['cpu_utilisation']:6.1f}% CPU",
                flush=True,
            )
        points.append(point)
        shutil.rmtree(cache, ignore_errors=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)

    thousands = [p["images"] / 1000 for p in points]
    scale = {
        "seconds_per_1k_images": {s: round(_slope(thousands, [p[s]["seconds"] for p in points]), 3) for s in STEPS},
        "peak_mb_per_1k_images": {s: round(_slope(thousands, [p[s]["peak_mb"] for p in points]), 1) for s in STEPS},
        "image_size": IMAGE_SIZE,
        "points": points,
        "cpus": os.cpu_count(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["scale"] = {**results.get("scale", {}), **scale}  # bench.py's decode figures stay
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: scale[k] for k in ("seconds_per_1k_images", "peak_mb_per_1k_images")}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
