"""``edgelab demo``: the whole workflow on built-in synthetic scenes (or your dataset folder)."""

from __future__ import annotations

import argparse
import time

from .._machine import int8_measured
from ..demo import DemoConfig, run_demo
from ..device import Device
from ..errors import ConfigError, did_you_mean
from . import args as types

#: Bytes of decoded images the CLI lets a synthetic demo hold (per_class x 6 x size^2 x 3).
MAX_SYNTHETIC_BYTES = 8 * 2**30


def add_commands(subparsers) -> None:
    defaults = DemoConfig()
    p = subparsers.add_parser(
        "demo",
        help="synthetic scenes -> train -> QAT -> every precision -> compare -> report",
        description="Train the default scene classifier, fine-tune it with quantization-aware training, convert it "
        "to every TFLite precision, measure each file and write a report. A rerun reuses finished steps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default=defaults.out_dir, help="output folder")
    p.add_argument(
        "--data", default=None, help="dataset folder (Intel layout or class folders) instead of synthetic scenes"
    )
    p.add_argument(
        "--per-class",
        type=types.int_range(3, 100_000),
        default=defaults.per_class,
        help="synthetic images per class (3-100000: one per class in train, validation and test at least)",
    )
    p.add_argument(
        "--image-size",
        type=types.int_range(16, 1024),
        default=defaults.image_size,
        help="model input size in pixels (16-1024)",
    )
    p.add_argument("--arch", default=defaults.architecture, help="model architecture (edgecnn, mobilenetv2)")
    p.add_argument(
        "--epochs",
        type=types.int_range(1, 10_000),
        default=defaults.epochs,
        help="float training epochs (early stopping)",
    )
    p.add_argument(
        "--qat-epochs",
        type=types.int_range(0, 10_000),
        default=defaults.qat_epochs,
        help="quantization-aware epochs (0 skips QAT)",
    )
    p.add_argument("--seed", type=types.seed, default=defaults.seed)
    p.add_argument(
        "--threads",
        type=types.threads,
        default=defaults.num_threads,
        help="interpreter threads for evaluation and latency",
    )
    p.add_argument(
        "--min-time",
        type=types.float_range(0.0, 3600.0, low_open=True),
        default=defaults.min_time_s,
        help="seconds of timed runs per latency measurement",
    )
    p.add_argument(
        "--max-per-class",
        type=types.int_range(3),
        default=None,
        help="cap images per class of a --data folder (3 or more; needs --data)",
    )
    p.add_argument(
        "--device",
        metavar="HOST",
        help="also run every converted file on this device over SSH (an ssh_config alias or user@host[:port]): "
        "device columns and a device section in the report",
    )
    p.add_argument("--ssh-config", metavar="FILE", help="ssh client config for --device (default: ~/.ssh/config)")
    p.add_argument("--device-python", default="python3", help="the device's Python interpreter (default: python3)")
    p.add_argument("--fresh", action="store_true", help="delete the output folder's earlier demo run first")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    # deferred: pandas (the CLI starts without it)
    from ..compare.report import int8_latency_ratio, summary_frame

    if args.max_per_class is not None and args.data is None:
        raise ConfigError(
            "--max-per-class caps the images of a --data folder. Received: --max-per-class "
            f"{args.max_per_class} without --data (for synthetic scenes use --per-class)"
        )
    # deferred: TensorFlow (the builders are Keras; the CLI starts without it)
    from ..training.models import ARCHITECTURES

    if args.arch not in ARCHITECTURES:  # before the dataset is read
        names = sorted(ARCHITECTURES)
        raise ConfigError(
            f"Expected --arch to be one of {names}. Received: {args.arch!r}.{did_you_mean(args.arch, names)}"
        )
    needed = args.per_class * 6 * args.image_size**2 * 3
    if args.data is None and needed > MAX_SYNTHETIC_BYTES:
        raise ConfigError(
            f"Expected --per-class x 6 classes x --image-size^2 x 3 bytes to fit in "
            f"{MAX_SYNTHETIC_BYTES / 2**30:.0f} GiB. Received: --per-class {args.per_class} "
            f"--image-size {args.image_size}, {needed / 2**30:.1f} GiB"
        )
    config = DemoConfig(
        out_dir=args.out,
        data=args.data,
        per_class=args.per_class,
        image_size=args.image_size,
        architecture=args.arch,
        epochs=args.epochs,
        qat_epochs=args.qat_epochs,
        seed=args.seed,
        num_threads=args.threads,
        max_per_class=args.max_per_class,
        min_time_s=args.min_time,
    )
    device = None
    if args.device:
        device = Device(args.device, args.ssh_config, args.device_python)
    start = time.perf_counter()
    result = run_demo(config, fresh=args.fresh, progress=False if args.no_progress else None, device=device)
    table = summary_frame(result.comparison.table)
    print()
    print(
        f"Float Keras model: test accuracy {result.float_accuracy:.4f} "
        f"({len(result.comparison.test_labels)} test images)"
    )
    print(table.to_string(index=False))
    if device is not None:
        # deferred: pandas (the CLI starts without it)
        from ..compare.report import DEVICE_TABLE

        on_device = result.comparison.table
        print(f"\nOn the device {device.host}:")
        print(on_device[[c for c in DEVICE_TABLE if c in on_device.columns]].to_string(index=False))
    print(int8_measured(int8_latency_ratio(result.comparison.table)))
    if result.bundle is not None:
        ref = result.bundle / "reference.json"
        extra = f", drift reference {ref.stat().st_size / 1024:.1f} KiB" if ref.is_file() else ", no drift reference"
        print(f"Deploy bundle: {result.bundle} (int8{extra})")
    if result.reused:
        print(f"(reused finished steps: {', '.join(result.reused)})")
    print(f"\nReport: {result.report}  ({time.perf_counter() - start:.0f} s)")
    return 0
