#!/usr/bin/env python
"""Refit edgelab's Edge TPU latency constants on Coral's published measurements.

For every row of ``edgelab/edgetpu/benchmarks.json`` that names a ``tf_keras.applications``
architecture, build it with ``weights=None``, convert it to full int8 with random calibration
data (the latency depends on the graph's shape, not on its weights) and read its features from the
``.tflite`` (MACs, parameter bytes cached on chip vs streamed, input/output bytes). Converted files
are cached under ``runs/edgetpu-fit/`` so reruns take seconds. Then fit, per link, the constants of
:mod:`edgelab.edgetpu.latency` and print the leave-one-out error of every fitted row.

    python tools/fit_edgetpu_latency.py            # fit and print
    python tools/fit_edgetpu_latency.py --write    # also write the constants into benchmarks.json
    python tools/fit_edgetpu_latency.py --sram-mib 7.5   # how the fit moves with the SRAM size
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgelab.edgetpu import latency  # noqa: E402

CACHE = ROOT / "runs" / "edgetpu-fit"


def convert_row(row: dict, samples: int) -> Path:
    """The row's architecture as an int8 .tflite (built and converted once, then cached)."""
    path = CACHE / f"{row['name']}_int8.tflite"
    if path.exists():
        return path
    from edgelab._keras import keras
    from edgelab.tflite.conversion import convert

    size = row["input"]
    build = getattr(keras.applications, row["arch"])
    model = build(weights=None, input_shape=(size, size, 3), **row.get("kwargs", {}))
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(samples):
            yield [rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")]

    print(f"converting {row['name']} ({row['arch']}, {size}x{size}) ...", flush=True)
    done = convert(model, "int8", out_dir=CACHE, calibration=calibration, name=row["name"])
    return Path(done.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4, help="random calibration samples per model")
    parser.add_argument("--write", action="store_true", help="store the fitted constants in benchmarks.json")
    parser.add_argument("--only-convert", action="store_true", help="build and cache the .tflite files, no fit")
    parser.add_argument(
        "--sram-mib", type=float, default=latency.SRAM_BYTES / 2**20, help="on-chip SRAM (MiB) for the spill test"
    )
    args = parser.parse_args()
    sram = round(args.sram_mib * 2**20)
    if args.write and sram != latency.SRAM_BYTES:
        parser.error(
            f"--write stores constants for the estimate's SRAM size ({latency.SRAM_BYTES} bytes); drop --sram-mib"
        )
    data = latency.load_benchmarks()
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = [r for r in data["rows"] if r.get("arch")]
    features = {}
    for row in rows:
        path = convert_row(row, args.samples)
        if not args.only_convert:
            features[row["name"]] = latency.features(path, sram_bytes=sram)
    if args.only_convert:
        return 0
    fit = latency.fit_constants(data["rows"], features)
    print(latency.format_fit_report(fit))
    if args.write:
        data["constants"] = fit["constants"]
        path = latency.BENCHMARKS_PATH
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote constants to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
