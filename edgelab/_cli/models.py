"""``edgelab inspect`` and ``edgelab benchmark``: look at and time any .tflite file (no TensorFlow)."""

from __future__ import annotations

from ..compare.benchmark import measure_latency
from ..tflite.inspection import inspect_model
from ..tflite.isolation import check_model
from . import args as types
from . import print_json


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="ops, tensors, quantization, parameter bytes and MACs of a .tflite",
        description="Read a .tflite file without TensorFlow and list its ops.",
    )
    p.add_argument("model", help="the .tflite file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_inspect)

    p = subparsers.add_parser(
        "benchmark",
        help="single-image latency of a .tflite on this machine",
        description="Time invoke() after warm-up; the run count is sized by --min-time.",
    )
    p.add_argument("model", help="the .tflite file")
    p.add_argument("--threads", type=types.threads, default=1, help=f"interpreter threads (1-{types.MAX_THREADS})")
    p.add_argument(
        "--min-time",
        type=types.float_range(0.0, 3600.0),
        default=1.0,
        help="seconds of timed runs at least (0-3600; at least 20 runs either way)",
    )
    p.add_argument("--no-xnnpack", action="store_true", help="built-in kernels only")
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="trust the file: skip the first load in a child process (it turns an interpreter crash "
        "on a bad file into an error line; costs about 0.3 s once per file content)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_benchmark)


def run_inspect(args) -> int:

    info = inspect_model(args.model)
    if args.json:
        print_json({**info.to_dict(), "ops": info.to_frame().to_dict(orient="records")})
        return 0
    print(repr(info))
    for label, tensors in (("input", info.inputs), ("output", info.outputs)):
        for t in tensors:
            quant = f" scale={t.scale:.6g} zero_point={t.zero_point}" if t.scale else ""
            print(f"{label}: {t.name} {list(t.shape)} {t.dtype}{quant}")
    print(f"parameters: {info.param_bytes / 1024:.1f} KiB, MACs: {info.macs:,}")
    print(info.to_frame().to_string(index=False))
    return 0


def run_benchmark(args) -> int:

    # A file that crashes the native interpreter ends a child process, not this one.
    if not args.no_isolate:
        check_model(args.model, isolate=True, num_threads=args.threads, use_xnnpack=not args.no_xnnpack)
    result = measure_latency(
        args.model,
        num_threads=args.threads,
        min_time_s=args.min_time,
        use_xnnpack=not args.no_xnnpack,
        trusted=args.no_isolate,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    print(
        f"{result.model}: p50 {result.p50_ms:.3f} ms, p90 {result.p90_ms:.3f} ms, p99 {result.p99_ms:.3f} ms, "
        f"mean {result.mean_ms:.3f} +- {result.std_ms:.3f} ms over {result.runs} runs"
    )
    print(
        f"first (cold) invoke {result.cold_ms:.3f} ms, load {result.load_ms:.1f} ms; {result.runtime}, "
        f"{result.num_threads} thread(s), XNNPACK {'on' if result.xnnpack else 'off'}"
    )
    return 0
