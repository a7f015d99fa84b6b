"""``edgelab convert MODEL --precision P --out FILE.tflite``: a saved Keras model to TFLite without Python.

MODEL is a ``.keras`` or ``.h5`` file or a SavedModel folder written by Keras. Calibration for
int8/int16x8 comes from a dataset folder (``--data``) or from random images
(``--random-calibration N``: enough for ``edgelab analyze`` and the Edge TPU estimate, whose
answers depend on the graph, not on the weights; not for accuracy).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomic
from ..data.datasets import load_dataset
from ..errors import ConfigError, ModelFileError, check_int
from ..precision import CONVERTIBLE, Precision
from ..preprocess import normalize
from . import args as types


def add_commands(subparsers: Any) -> None:
    """Register ``convert`` on the ``edgelab`` command."""

    p = subparsers.add_parser(
        "convert",
        help="convert a saved Keras model (.keras, .h5, SavedModel folder) to a .tflite",
        description="Convert a saved Keras model to TFLite at one precision, e.g. "
        "`edgelab convert model.keras --precision int8 --random-calibration 8 --out model_int8.tflite` "
        "and then `edgelab analyze model_int8.tflite`.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras or .h5 file, or a SavedModel folder")
    p.add_argument("--precision", required=True, choices=[c.value for c in CONVERTIBLE], help="target precision")
    calib = p.add_mutually_exclusive_group()
    calib.add_argument("--data", metavar="ROOT", help="dataset folder (class folders or Intel layout) to calibrate on")
    calib.add_argument(
        "--random-calibration",
        type=types.int_range(1, 100_000),
        metavar="N",
        help="calibrate on N random images (graph-level answers only, not accuracy)",
    )
    p.add_argument(
        "--samples", type=types.int_range(1, 100_000), default=200, help="calibration images drawn from --data (200)"
    )
    p.add_argument(
        "--io-dtype",
        choices=("uint8", "int8"),
        default="uint8",
        help="input/output type of integer models (uint8 for the Edge TPU)",
    )
    p.add_argument(
        "--equalize",
        action="store_true",
        help="cross-layer equalization of the float model first (same float outputs, even channel ranges; int8)",
    )
    p.add_argument(
        "--bias-correction",
        action="store_true",
        help="correct the bias int8 weight rounding adds, measured on --data images (int8)",
    )
    p.add_argument("--out", required=True, metavar="FILE.tflite", help="the file to write")
    p.set_defaults(func=_run)


def load_saved_model(path: str | os.PathLike) -> Any:
    """Load a Keras model from ``.keras``, ``.h5`` or a SavedModel folder (tf_keras).

    Raises:
        ModelFileError: the path is missing or holds no loadable Keras model.
    """
    # deferred: TensorFlow (loading a SavedModel needs it; the CLI starts without it)
    from .._keras import keras

    where = Path(path)
    if not where.exists():
        raise ModelFileError(
            f"Expected a .keras or .h5 file or a SavedModel folder. Received a missing path: {str(where)!r}"
        )
    if where.is_file() and where.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelFileError(
            f"Expected a .keras or .h5 file or a SavedModel folder. Received: {str(where)!r} "
            f"({where.suffix or 'no extension'})"
        )
    try:
        return keras.models.load_model(str(where), compile=False)
    except Exception as exc:  # Keras raises many types for unreadable or foreign files
        cause = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelFileError(
            f"Cannot load {str(where)!r} as a tf_keras model: {cause}. Models with custom layers need "
            "their Python code: load them in Python and call edgelab.convert."
        ) from None


def random_calibration(shape: tuple[int, ...], n: int, seed: int = 0) -> Callable[[], Iterable[list[np.ndarray]]]:
    """A representative-dataset generator of ``n`` random uint8 images, normalized like edgelab's inputs."""

    n = check_int("--random-calibration", n, maximum=100_000)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape[1:]), dtype=np.uint8)

    def generate() -> Iterable[list[np.ndarray]]:
        for i in range(n):
            yield [normalize(images[i : i + 1])]

    return generate


def _run(args: argparse.Namespace) -> int:
    # deferred: TensorFlow (converting needs it; the CLI starts without it)
    from ..tflite.conversion import RECIPES, convert

    precision = Precision.parse(args.precision)
    out = Path(args.out)
    if out.suffix != ".tflite" or out.is_dir():
        raise ConfigError(f"Expected --out to be a .tflite file path. Received: --out={args.out!r}")
    needs = RECIPES[precision].needs_calibration
    if needs and args.data is None and args.random_calibration is None:
        raise ConfigError(
            f"Precision {precision.value!r} needs calibration data. Received neither --data ROOT nor "
            "--random-calibration N"
        )
    steps = [name for name, on in (("equalize", args.equalize), ("bias_correction", args.bias_correction)) if on]
    if steps and precision not in (Precision.INT8, Precision.INT16X8):
        raise ConfigError(
            f"Expected --precision int8 or int16x8 with --equalize/--bias-correction (they repair integer ranges). "
            f"Received: --precision {precision.value}"
        )
    if args.bias_correction and args.data is None:
        raise ConfigError(
            "Expected --data ROOT with --bias-correction: it measures the rounding bias on real images. "
            "Received: --random-calibration"
        )
    model = load_saved_model(args.model)
    shape = tuple(model.input_shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ConfigError(f"Expected a model with one static image input (N, H, W, C). Received: input_shape={shape}")
    calibration: Any = None
    if needs and args.data is not None:
        calibration = load_dataset(args.data, image_size=shape[1:3])
    elif needs:
        calibration = random_calibration((1, *shape[1:]), args.random_calibration)
    repaired = ""
    if steps:
        # deferred: TensorFlow (repairing a Keras model needs it; the CLI starts without it)
        from ..training.equalize import repair_model

        images = calibration.arrays("train")[0] if hasattr(calibration, "arrays") else None
        if images is not None and len(images) > args.samples:
            images = images[np.linspace(0, len(images) - 1, args.samples).round().astype(int)]
        fixed = repair_model(model, steps, images)
        model = fixed.model
        repaired = (
            f" ({' + '.join(steps)}: {len(fixed.equalized)} layer pairs equalized, {len(fixed.skipped)} skipped, "
            f"{len(fixed.corrected)} biases corrected; float outputs differ by at most {fixed.max_abs_difference:.3g})"
        )
    with tempfile.TemporaryDirectory(prefix="edgelab-convert-", dir=out.parent if out.parent.exists() else None) as tmp:
        done = convert(
            model,
            precision,
            out_dir=tmp,
            calibration=calibration,
            io_dtype=args.io_dtype,
            calibration_samples=check_int("--samples", args.samples),
            name=out.stem,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, Path(done.path).read_bytes())
    print(f"{out}: {precision.value}, {out.stat().st_size} bytes{repaired}")
    print(f"next: edgelab analyze {out}")
    return 0
