"""What the one-time child-process check costs on the first in-process load of a foreign .tflite file.

    python benchmarks/bench_model_check.py [--model PATH ...] [--big-mb 24] [--repeats 3]

For each model (default: a ~24 MB float32 model written with tf.lite directly, so edgelab has not
seen it; add e.g. the demo's runs/demo/models/model_int8.tflite with --model), in a fresh verdict
cache, prints the median of ``--repeats`` runs of:
  trusted_ms   el.TFLiteModel(path, trusted=True): validation and load, no child
  first_ms     el.TFLiteModel(path) with no verdict cached: validation, child load + invoke, load
  cached_ms    el.TFLiteModel(path) with the verdict on disk (memory cache cleared): as a new process
and the ratios first/trusted and cached/trusted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")


def big_model(folder: Path, megabytes: float) -> Path:
    """A float32 classifier of about ``megabytes`` MB (two wide dense layers), converted without edgelab."""
    from edgelab._keras import keras, tf

    width = int((megabytes * 1e6 / 4) ** 0.5)  # the second dense layer holds width**2 float32 weights
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(width, activation="relu")(x)
    x = keras.layers.Dense(width, activation="relu")(x)
    outputs = keras.layers.Dense(6, activation="softmax")(x)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    path = folder / f"foreign_{megabytes:g}mb.tflite"
    path.write_bytes(converter.convert())
    return path


def measure(path: Path, repeats: int) -> dict[str, float]:
    import edgelab as el
    from edgelab.tflite import trust

    times: dict[str, list[float]] = {"trusted_ms": [], "first_ms": [], "cached_ms": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["EDGELAB_CACHE_DIR"] = cache
            for key, trusted in (("trusted_ms", True), ("first_ms", False), ("cached_ms", False)):
                trust._MEMO.clear()
                from edgelab.tflite import validate

                validate._VALID.clear()  # every row pays for validation, as a new process would
                t0 = time.perf_counter()
                el.TFLiteModel(path, trusted=trusted)
                times[key].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="a .tflite file (repeatable)")
    parser.add_argument("--big-mb", type=float, default=24.0, help="size of the generated float32 model (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        models = [Path(m) for m in args.model]
        if args.big_mb > 0:
            models.append(big_model(Path(tmp), args.big_mb))
        for path in models:
            m = measure(path, args.repeats)
            size = path.stat().st_size / 1e6
            print(
                f"{path.name} ({size:.1f} MB): trusted {m['trusted_ms']:.0f} ms, first (child check) "
                f"{m['first_ms']:.0f} ms, cached {m['cached_ms']:.0f} ms; first/trusted "
                f"{m['first_ms'] / m['trusted_ms']:.1f}x, cached/trusted {m['cached_ms'] / m['trusted_ms']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
