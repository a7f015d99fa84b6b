"""``edgelab layers FLOAT.tflite QUANT.tflite --data ROOT``: per-layer error of a quantized model (no TensorFlow)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.datasets import load_dataset
from ..errors import ConfigError
from ..tflite.inspection import inspect_model, short_name
from . import args as types
from . import print_json


def add_commands(subparsers) -> None:
    """Register ``layers`` on the ``edgelab`` command."""
    parser = subparsers.add_parser(
        "layers",
        help="per-layer error of a quantized .tflite against the float one",
        description=(
            "Run the float and the quantized model on a dataset's test images with every intermediate "
            "tensor kept and report, per op in graph order, the error it adds by itself and the error "
            "it inherits (rmse/scale, SQNR, cosine, max abs error, share clipped), the per-channel ranges of its "
            "output and weights, and the op whose output scale caused its error when channel ranges differ by "
            "more than 16x. No TensorFlow needed."
        ),
    )
    parser.add_argument("float_model", metavar="FLOAT.tflite", help="the float32 model")
    parser.add_argument("quant_model", metavar="QUANT.tflite", help="the quantized model (int8, int16x8, fp16, ...)")
    parser.add_argument(
        "--data", required=True, metavar="ROOT", help="dataset folder (Intel's layout or one folder per class)"
    )
    parser.add_argument(
        "--max-images", type=types.int_range(1), default=None, metavar="N", help="analyze at most N test images (1+)"
    )
    parser.add_argument(
        "--top", type=types.int_range(1), default=5, metavar="K", help="layers listed in the summary (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:

    # deferred: pandas (the CLI starts without it)
    from ..diagnose.layers import analyze_layers

    info = inspect_model(args.float_model)
    inspect_model(args.quant_model)  # a bad second file fails before the dataset is read
    if info.inputs[0].dtype != "float32":
        raise ConfigError(
            f"Expected FLOAT.tflite first, with a float32 input. Received: {args.float_model} with a {info.inputs[0].dtype} input"
        )
    if not Path(args.data).is_dir():
        raise ConfigError(f"Expected --data to be a dataset folder. Received: {args.data!r}, which is not a folder")
    shape = info.inputs[0].shape
    data = load_dataset(args.data, image_size=(shape[1], shape[2]), progress=False if args.json else None)
    images, _ = data.arrays("test", progress=False)
    report = analyze_layers(
        args.float_model, args.quant_model, images, max_images=args.max_images, progress=False if args.json else None
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    print(report.summary(top=args.top))

    columns = ["index", "op", "rmse_scale", "sqnr_db", "cosine", "max_abs_error", "clipped", "added_error"]
    table = report.frame[[*columns, "channel_range_ratio", "levels_median_channel"]].copy()
    table["cause"] = [short_name(c) if isinstance(c, str) else "" for c in report.frame.cause]
    print(table.to_string(index=False))
    return 0
