"""``edgelab compile``, ``read-log``, ``export-bundle`` and ``devices``."""

from __future__ import annotations

import argparse
import json

from ..bundle import export_bundle
from ..edgetpu.compiler import compile_edgetpu, compiler_version, find_compiler
from ..edgetpu.delegate import delegate_status
from ..edgetpu.logs import read_log
from ..edgetpu.mapping import CompileStatus
from ..edgetpu.memory import format_bytes
from . import args as types
from . import print_json

#: Exit codes of ``edgelab compile`` beyond 0 (compiled or partial) and 2 (bad input).
EXIT_COMPILE_FAILED = 1
EXIT_NOT_INSTALLED = 3


def add_commands(subparsers) -> None:
    """Register the Edge TPU subcommands on the ``edgelab`` parser."""
    p = subparsers.add_parser(
        "compile",
        help="compile a .tflite for the Edge TPU with edgetpu_compiler",
        description="Run the Edge TPU Compiler (when installed) and summarise its verdict. "
        f"Exit codes: 0 compiled or partial, {EXIT_COMPILE_FAILED} failed or timeout, "
        f"2 bad input, {EXIT_NOT_INSTALLED} compiler not installed.",
    )
    p.add_argument("model", help="a fully int8-quantized .tflite")
    p.add_argument("--out-dir", help="where the _edgetpu.tflite and .log go (default: beside the model)")
    p.add_argument(
        "--min-runtime-version", type=types.int_range(10, 16), help="oldest Edge TPU runtime to support (10-16)"
    )
    p.add_argument("--search-delegate", action="store_true", help="back off from a failing op (compiler 16)")
    p.add_argument(
        "--delegate-search-step", type=types.int_range(1, 10_000), help="ops per back-off step (with --search-delegate)"
    )
    p.add_argument("--num-segments", type=types.int_range(1, 1_000), help="split into N segments for pipelining")
    p.add_argument("--timeout", type=types.seconds, default=180, help="seconds before the compiler is stopped (180)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_compile)

    p = subparsers.add_parser(
        "read-log",
        help="parse edgetpu_compiler output or a <model>_edgetpu.log",
        description="Parse an Edge TPU Compiler log or saved stdout (compiler 2.x to 16).",
    )
    p.add_argument("file", help="a <model>_edgetpu.log or saved compiler stdout")
    p.add_argument("--json", action="store_true", help="print JSON (absent fields are null)")
    p.set_defaults(func=_read_log)

    p = subparsers.add_parser(
        "export-bundle",
        help="write a deploy folder: models, labels, classify.py, README",
        description="Write a standalone deploy bundle (numpy + Pillow + a TFLite runtime on the device).",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="M.tflite",
        help="a model file; repeat for several (the first is the default)",
    )
    p.add_argument("--labels", required=True, help="labels.txt, one class name per line")
    p.add_argument("--out", required=True, help="the bundle folder")
    p.add_argument(
        "--image-size",
        type=types.int_range(1, 4096),
        nargs=2,
        metavar=("H", "W"),
        help="model input size (default: read from the model)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a bundle in a non-empty folder")
    p.add_argument(
        "--reference",
        metavar="DIR",
        help="images the model did not train on (e.g. the validation split): their statistics and the "
        "model's outputs on them go into reference.json for the drift check",
    )
    p.add_argument("--version", dest="bundle_version", help="the bundle's version (default: a hash of its content)")
    p.set_defaults(func=_export_bundle)

    p = subparsers.add_parser(
        "devices",
        help="list Edge TPUs and whether the delegate can load",
        description="List Edge TPUs (USB, PCIe) and check the runtime library and compiler.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_devices)


def _fmt(n: int | None) -> str:

    return "-" if n is None else f"{format_bytes(n)} ({n} B)"


def _print_report(report) -> None:
    rows = [
        ("compiler version", report.compiler_version),
        ("input model", report.input_model),
        ("output model", report.output_model),
        ("compile time", None if report.compile_time_ms is None else f"{report.compile_time_ms} ms"),
        ("ops on Edge TPU", report.ops_edgetpu),
        ("ops on CPU", report.ops_cpu),
        ("ops total", report.ops_total),
        ("Edge TPU subgraphs", report.subgraphs),
        ("on-chip memory used", _fmt(report.on_chip_used_bytes)),
        ("on-chip memory remaining", _fmt(report.on_chip_remaining_bytes)),
        ("off-chip memory used", _fmt(report.off_chip_used_bytes)),
    ]
    if report.on_chip_available_bytes is not None:
        rows.append(("on-chip memory available", _fmt(report.on_chip_available_bytes)))
    for label, value in rows:
        print(f"{label:<26}{'-' if value is None else value}")
    if report.failure is not None:
        print(f"{'failure':<26}{report.failure.kind.value}: {report.failure.message}")
        print(f"{'hint':<26}{report.failure.hint}")
    if report.operators:
        width = max(len("operator"), *(len(r.op) for r in report.operators)) + 2
        print()
        print(f"{'operator':<{width}}{'count':>5}  status")
        for row in report.operators:
            print(f"{row.op:<{width}}{row.count:>5}  {row.status}")


def _compile(args: argparse.Namespace) -> int:

    result = compile_edgetpu(
        args.model,
        out_dir=args.out_dir,
        min_runtime_version=args.min_runtime_version,
        search_delegate=args.search_delegate,
        delegate_search_step=args.delegate_search_step,
        num_segments=args.num_segments,
        timeout_s=args.timeout,
        missing="status",
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"status: {result.status.value}")
        if result.reason:
            print(f"reason: {result.reason}")
        if result.compiled_model:
            print(f"compiled model: {result.compiled_model}")
        if result.log_path:
            print(f"log: {result.log_path}")
        if result.report is not None and result.report.recognized:
            print()
            _print_report(result.report)
    if result.ok:
        return 0
    return EXIT_NOT_INSTALLED if result.status == CompileStatus.NOT_INSTALLED else EXIT_COMPILE_FAILED


def _read_log(args: argparse.Namespace) -> int:

    report = read_log(args.file)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0


def _export_bundle(args: argparse.Namespace) -> int:

    out = export_bundle(
        args.model,
        args.labels,
        out_dir=args.out,
        image_size=tuple(args.image_size) if args.image_size else None,
        overwrite=args.overwrite,
        reference=args.reference,
        version=args.bundle_version,
    )
    version = json.loads((out / "bundle.json").read_text(encoding="utf-8"))["version"]
    print(f"bundle written to {out} (version {version})")
    if args.reference:
        size = (out / "reference.json").stat().st_size
        print(f"reference statistics: {size / 1024:.1f} KiB; check a window of images with: edgelab drift {out} DIR")
    print(f"try: python3 {out / 'classify.py'} IMAGE.jpg")
    return 0


def _devices(args: argparse.Namespace) -> int:

    status = delegate_status()
    path = find_compiler()
    payload = {
        **status.to_dict(),
        "compiler": str(path) if path else None,
        "compiler_version": compiler_version() if path else None,
    }
    if args.json:
        print_json(payload)
        return 0
    if status.devices:
        for dev in status.devices:
            print(f"edge tpu: {dev['type']} {dev['path']}")
    else:
        print("edge tpu: none found")
    print(f"delegate library: {status.library or '-'} ({'found' if status.library_found else 'not installed'})")
    print(f"python runtime: {status.runtime or 'none'}")
    print(f"delegate usable: {'yes' if status.usable else 'no'}" + (f" ({status.reason})" if status.reason else ""))
    print(
        f"compiler: {payload['compiler'] or 'not installed'}"
        + (f" (version {payload['compiler_version']})" if payload["compiler_version"] else "")
    )
    return 0
