"""edgelab benchmarks: measured ratios on this machine, written to runs/bench/bench.json.

    make bench            # or: python benchmarks/bench.py --out runs/bench
    python benchmarks/bench.py --decode-only [--work DIR]   # only the scale.decode_* figures

Ratios (each measured in this one run, same files, same machine):
  int8_fp32_p50_ratio             int8 p50 latency / fp32 p50 latency (default model, 1 thread); measured,
                                  not predicted: it differs by CPU (machine.cpu_model and machine.isa name it)
  harness_overhead_ratio          edgelab.measure_latency p50 / bare interpreter.invoke() loop p50 (same file)
  convert_all_vs_one_ratio        time of convert_all (every precision incl. qat_int8) / one fp32 from_keras_model
  convert_all_vs_one_cpu_ratio    the same ratio in CPU seconds (user + system, every thread): steadier under load
  eval_vs_keras_throughput_ratio  images/s of edgelab evaluating the fp32 .tflite / images/s of Keras predict
                                  (both with every core of the machine)

Rates and shares (measured in this run; on a shared machine they depend on its load, recorded beside them):
  scale.decode_images_per_s       first load_dataset of a 1,000-image on-disk folder (150x150 JPEG scenes,
                                  decoded at 96x96 into a cold cache, every split's arrays), images / wall second
  scale.decode_cpu_utilisation    that load's CPU time (user + system, os.times) / wall time, in % of one core
                                  (200% = both cores of a 2-core machine busy)
  scale.decode_cpu_s_per_1k_images  that load's CPU seconds per 1,000 images (less sensitive to other load)
  scale.decode_method             how the image cache decoded them: "processes" (worker processes) or "threads"
  demo_stage_s                    the demo's per-stage seconds (data, train, qat, convert_and_measure, bundle)
                                  from a fresh run_demo (skip with --no-demo), with demo_wall_s and its accuracy
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")

import numpy as np

import edgelab as el


def bare_invoke_p50_ms(path: Path, runs: int, num_threads: int = 1) -> float:
    """The simplest possible timing loop: what a user would write by hand."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(5):
        interpreter.invoke()
    times = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = time.perf_counter_ns()
        interpreter.invoke()
        times[i] = time.perf_counter_ns() - start
    return float(np.percentile(times, 50)) / 1e6


def _cpu_seconds() -> float:
    """User + system CPU time of this process (every thread) and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _DecodeMethods(logging.Handler):
    """Collects how the image cache decoded (``decode_method`` on its log records)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.methods: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        method = getattr(record, "decode_method", None)
        if method is not None:
            self.methods.append(method)


def decode_figures(work: Path, images: int) -> dict[str, object]:
    """First load of an on-disk folder into a cold cache: images per second and CPU utilisation."""
    from edgelab.data.scene_files import MARKER_NAME, make_scenes

    root = work / "decode-scenes"
    per_class = max(1, images // 6)
    try:  # scenes an earlier --decode-only --work run wrote are reused (the figures time the load only)
        marker = json.loads((root / MARKER_NAME).read_text())
        reuse = marker.get("complete") and marker.get("per_class") == per_class
    except (OSError, ValueError):
        reuse = False
    if not reuse:
        make_scenes(root, per_class, image_size=150, progress=False)
    shutil.rmtree(work / "decode-cache", ignore_errors=True)  # a cold cache
    # Warm-up: a 12-image load first, so the first use of what a load imports (tqdm, numpy.ma) is not
    # timed with --decode-only either (the full run has imported them before it gets here).
    warm = work / "decode-warm-up"
    if not (warm / MARKER_NAME).is_file():
        make_scenes(warm, 2, image_size=150, progress=False)
    el.load_dataset(warm, image_size=96, progress=False, cache_dir=work / "decode-warm-cache").arrays("train")
    shutil.rmtree(work / "decode-warm-cache", ignore_errors=True)
    logger = logging.getLogger("edgelab")
    methods, level = _DecodeMethods(), logger.level
    logger.addHandler(methods)
    logger.setLevel(logging.INFO)
    try:
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), _cpu_seconds()
        ds = el.load_dataset(root, image_size=96, progress=False, cache_dir=work / "decode-cache")
        count = sum(len(ds.arrays(split)[1]) for split in ("train", "val", "test"))
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    finally:
        logger.removeHandler(methods)
        logger.setLevel(level)
    return {
        "decode_images": count,
        "decode_method": "+".join(dict.fromkeys(methods.methods)) or "none",  # processes or threads
        "decode_wall_s": round(wall, 3),
        "decode_images_per_s": round(count / wall, 1),
        "decode_cpu_utilisation": round(100 * cpu / wall, 1),
        "decode_cpu_s_per_1k_images": round(1000 * cpu / count, 3),  # the work done, whatever the load
        "decode_load_average": round(load, 2),
        "cpus": os.cpu_count() or 1,
    }


def demo_figures(work: Path) -> dict[str, object]:
    """A fresh demo run: wall time, per-stage seconds (its manifest's timings) and accuracy."""
    from edgelab.demo import DemoConfig, run_demo

    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), _cpu_seconds()
    result = run_demo(DemoConfig(out_dir=str(work / "demo")), fresh=True, progress=False)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return {
        "demo_wall_s": round(wall, 2),
        "demo_cpu_utilisation": round(100 * cpu / wall, 1),
        "demo_stage_s": {k: round(v, 2) for k, v in result.timings.items()},
        "demo_float_accuracy": round(float(result.float_accuracy), 4),
        "demo_load_average": round(load, 2),
    }


def _print_decode(sc: dict[str, object]) -> None:
    print(
        f"scale.decode_images_per_s {sc['decode_images_per_s']}  scale.decode_cpu_utilisation "
        f"{sc['decode_cpu_utilisation']}% of one core, decoded on {sc['decode_method']} "
        f"({sc['cpus']} CPUs, load average {sc['decode_load_average']}, "
        f"{sc['decode_cpu_s_per_1k_images']} CPU s per 1,000 images)"
    )


def decode_only(out: Path, images: int, work: str | None) -> int:
    """``--decode-only``: the decode figures alone, merged into ``out/bench.json``'s ``scale``."""
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="edgelab-bench-"))
    try:
        figures = decode_figures(folder, images)
    finally:
        shutil.rmtree(folder / "decode-cache" if work else folder, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**earlier, "scale": {**earlier.get("scale", {}), **figures}}, indent=2))
    _print_decode(figures)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench", help="output folder for bench.json")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--per-class", type=int, default=100, help="synthetic images per class")
    parser.add_argument(
        "--rounds", type=int, default=15, help="alternating latency rounds (median of the ratios is kept)"
    )
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per latency measurement")
    parser.add_argument("--decode-images", type=int, default=1000, help="images on disk for the decode figures")
    parser.add_argument("--no-demo", action="store_true", help="skip the fresh demo run (its per-stage seconds)")
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="measure only the decode figures (scale.decode_*), merged into an existing bench.json",
    )
    parser.add_argument(
        "--work",
        default=None,
        help="with --decode-only: keep the scenes here and reuse them (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    if args.decode_only:
        return decode_only(Path(args.out), args.decode_images, args.work)

    from edgelab._keras import tf

    el.seed_everything(0)
    data = el.synthetic_dataset(per_class=args.per_class, image_size=args.image_size, seed=0)
    model = el.build_model("edgecnn", image_size=args.image_size)
    el.train(model, data, epochs=2, seed=0)
    qat_model = el.training.prepare_qat(model)
    test_x, test_y = data.arrays("test")
    work = Path(tempfile.mkdtemp(prefix="edgelab-bench-"))
    results: dict[str, object] = {}

    # Conversion: every precision from one export vs one plain from_keras_model conversion.
    # CPU seconds beside the wall seconds: on a shared machine the wall ratio moves with the load.
    start, cpu = time.perf_counter(), _cpu_seconds()
    tf.lite.TFLiteConverter.from_keras_model(model).convert()
    one_s, one_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    start, cpu = time.perf_counter(), _cpu_seconds()
    converted = el.convert_all(model, out_dir=work, calibration=data, labels=data.class_names, qat_model=qat_model)
    all_s, all_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    failed = {p.value: v.reason for p, v in converted.items() if isinstance(v, el.tflite.ConversionFailure)}
    results["convert_one_fp32_from_keras_s"] = round(one_s, 2)
    results["convert_all_s"] = round(all_s, 2)
    results["convert_all_precisions"] = [p.value for p in converted]
    results["convert_failures"] = failed
    results["convert_all_vs_one_ratio"] = round(all_s / one_s, 3)
    results["convert_one_fp32_from_keras_cpu_s"] = round(one_cpu, 2)
    results["convert_all_cpu_s"] = round(all_cpu, 2)
    results["convert_all_vs_one_cpu_ratio"] = round(all_cpu / one_cpu, 3)
    results["convert_load_average"] = round(os.getloadavg()[0], 2)

    fp32 = converted[el.Precision.FP32].path
    int8 = converted[el.Precision.INT8].path

    # Latency: many short alternating rounds, one ratio per round, median of the ratios, so that
    # drifting machine load hits both sides of every ratio alike.
    p50 = {"fp32": [], "int8": [], "bare_fp32": []}
    for _ in range(args.rounds):
        fp32_lat = el.measure_latency(fp32, num_threads=1, min_time_s=args.min_time)
        p50["fp32"].append(fp32_lat.p50_ms)
        p50["bare_fp32"].append(bare_invoke_p50_ms(fp32, runs=fp32_lat.runs))
        p50["int8"].append(el.measure_latency(int8, num_threads=1, min_time_s=args.min_time).p50_ms)
    series = {k: np.asarray(v) for k, v in p50.items()}
    results["p50_ms"] = {k: round(float(np.median(v)), 4) for k, v in series.items()}
    results["int8_fp32_p50_ratio"] = round(float(np.median(series["int8"] / series["fp32"])), 3)
    results["harness_overhead_ratio"] = round(float(np.median(series["fp32"] / series["bare_fp32"])), 3)
    results["runtime"] = fp32_lat.runtime
    results["xnnpack"] = fp32_lat.xnnpack

    # Evaluation throughput: edgelab on the fp32 file vs Keras predict, same images.
    keras_times, eval_times = [], []
    el.training.predict_keras(model, test_x[:8])  # both sides warm (Keras traces its predict function once)
    threads = os.cpu_count() or 1  # Keras predict uses every core: give the interpreter the same
    el.evaluate_model(fp32, test_x[:8], test_y[:8], class_names=data.class_names, num_threads=threads)
    for _ in range(3):
        start = time.perf_counter()
        el.training.predict_keras(model, test_x)
        keras_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        el.evaluate_model(fp32, test_x, test_y, class_names=data.class_names, num_threads=threads)
        eval_times.append(time.perf_counter() - start)
    keras_ips = len(test_x) / float(np.median(keras_times))
    eval_ips = len(test_x) / float(np.median(eval_times))
    results["keras_predict_images_per_s"] = round(keras_ips, 1)
    results["edgelab_eval_images_per_s"] = round(eval_ips, 1)
    results["eval_vs_keras_throughput_ratio"] = round(eval_ips / keras_ips, 3)
    results["eval_images"] = len(test_x)

    results["scale"] = decode_figures(work, args.decode_images)
    if not args.no_demo:
        results.update(demo_figures(work))

    from edgelab._machine import int8_measured, machine_info

    results["machine"] = machine_info()  # cpu_model and isa: int8 vs fp32 latency depends on them
    from edgelab.compare.report import package_versions

    results["packages"] = package_versions()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    scale = {**earlier.get("scale", {}), **results["scale"]}  # bench_scale.py's figures stay
    path.write_text(json.dumps({**results, "scale": scale}, indent=2))
    for key in (
        "int8_fp32_p50_ratio",
        "harness_overhead_ratio",
        "convert_all_vs_one_ratio",
        "eval_vs_keras_throughput_ratio",
    ):
        print(f"{key:32s} {results[key]}")
    print(
        f"p50 ms (medians): {results['p50_ms']}  convert: all {all_s:.1f} s vs one {one_s:.1f} s "
        f"(CPU {all_cpu:.1f} s vs {one_cpu:.1f} s, ratio {results['convert_all_vs_one_cpu_ratio']})  "
        f"eval: {eval_ips:.0f} vs keras {keras_ips:.0f} images/s"
    )
    _print_decode(results["scale"])  # type: ignore[arg-type]
    if "demo_stage_s" in results:
        print(
            f"demo: {results['demo_wall_s']} s wall, {results['demo_cpu_utilisation']}% CPU, stages "
            f"{results['demo_stage_s']}, float accuracy {results['demo_float_accuracy']}"
        )
    print(int8_measured(results["int8_fp32_p50_ratio"], results["machine"]["cpu_model"], results["machine"]["isa"]))
    print(f"wrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
