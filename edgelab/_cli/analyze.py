"""``edgelab analyze MODEL.tflite``: which ops the Edge TPU Compiler will map, predicted offline."""

from __future__ import annotations

import argparse

from . import print_json


def add_commands(subparsers) -> None:
    """Register ``analyze`` on the ``edgelab`` command."""
    from ..edgetpu.ops import DEFAULT_RUNTIME_VERSION, RUNTIME_VERSIONS

    parser = subparsers.add_parser(
        "analyze",
        help="predict which ops of a .tflite map to the Edge TPU (no compiler needed)",
        description=(
            "Predict, from the .tflite alone, which operations edgetpu_compiler 16 maps to the "
            "Edge TPU and why the others stay on the CPU. An already compiled *_edgetpu.tflite "
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
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..edgetpu.analyze import analyze

    report = analyze(args.model, runtime_version=args.runtime_version)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary())
    return 0
