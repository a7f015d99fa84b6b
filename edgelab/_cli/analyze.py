"""``edgelab analyze MODEL.tflite``: which ops the Edge TPU Compiler will map, how fast and in what memory."""

from __future__ import annotations

import argparse
from typing import Any

from ..edgetpu.analyze import analyze_edgetpu
from ..edgetpu.energy import estimate_energy
from ..edgetpu.latency import estimate_latency
from ..edgetpu.memory import co_compiled_memory, format_bytes, memory_plan
from ..edgetpu.ops import DEFAULT_RUNTIME_VERSION, RUNTIME_VERSIONS
from ..errors import check_int
from . import args as types
from . import print_json


def add_commands(subparsers: Any) -> None:
    """Register ``analyze`` on the ``edgelab`` command."""

    parser = subparsers.add_parser(
        "analyze",
        help="predict which ops of a .tflite map to the Edge TPU, its latency and memory (no compiler needed)",
        description=(
            "Predict, from the .tflite alone, which operations edgetpu_compiler 16 maps to the "
            "Edge TPU and why the others stay on the CPU, the time per inference on each link "
            "(USB 3, USB 2, PCIe, Dev Board; fitted on Coral's published benchmarks) and the "
            "parameter memory (cached on chip vs streamed). An already compiled *_edgetpu.tflite "
            "is read as it is."
        ),
    )
    parser.add_argument("model", metavar="MODEL.tflite", help="the model to analyze")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--runtime-version",
        type=int,
        choices=RUNTIME_VERSIONS,
        default=DEFAULT_RUNTIME_VERSION,
        metavar="N",
        help=f"Edge TPU runtime to target, as edgetpu_compiler -m (default {DEFAULT_RUNTIME_VERSION}; "
        "13 for older libedgetpu)",
    )
    parser.add_argument(
        "-a",
        "--multiple-subgraphs",
        action="store_true",
        help="predict edgetpu_compiler -a (ops after a CPU op may map again, several Edge TPU subgraphs)",
    )
    parser.add_argument(
        "--num-segments",
        type=types.int_range(1),
        default=1,
        metavar="N",
        help="memory per segment when split with edgetpu_compiler -n N (one Edge TPU each)",
    )
    parser.add_argument(
        "--co-compile",
        action="append",
        default=[],
        metavar="OTHER.tflite",
        help="memory when compiled together with these models (they share the cache, this one first)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:

    num_segments = check_int("--num-segments", args.num_segments, minimum=1, maximum=1_000)
    report = analyze_edgetpu(
        args.model, runtime_version=args.runtime_version, multiple_subgraphs=args.multiple_subgraphs
    )
    latency = estimate_latency(args.model)
    energy = estimate_energy(latency)
    plan = (
        memory_plan(args.model, num_segments=num_segments) if not report.compiled and report.verdict.compiles else None
    )
    shared = co_compiled_memory([args.model, *args.co_compile]) if args.co_compile and plan is not None else ()
    if args.json:
        payload = report.to_dict()
        payload["latency_ms"] = latency.ms
        payload["latency"] = latency.to_dict()
        payload["energy"] = energy.to_dict()
        payload["memory"] = plan.to_dict() if plan is not None else None
        if plan is not None:
            payload["memory"]["co_compiled"] = [m.to_dict() for m in shared]
        print_json(payload)
        return 0
    print(report.summary())
    print()
    print(latency.summary())
    print(energy.summary())
    if plan is not None and (num_segments > 1 or not plan.fits):
        print()
        print(plan.summary())
        for seg in plan.segments if num_segments > 1 else ():
            print(
                f"  {seg.name}: {format_bytes(seg.on_chip_bytes)} on chip, {format_bytes(seg.off_chip_bytes)} streamed"
            )
    if shared:
        print("\nCo-compiled (cache shared in this order):")
        for m in shared:
            print(f"  {m.name}: {format_bytes(m.on_chip_bytes)} on chip, {format_bytes(m.off_chip_bytes)} streamed")
    return 0
