"""Calibration diagnostics: is the calibration set big enough, balanced, and like the real inputs?

* :func:`calibration_balance`: images per class in the calibration set.
* :func:`range_check`: per layer, how often values fall outside the calibrated int8 ranges on the
  calibration images and on test images. Test values escaping much more often than calibration ones
  mean the calibration images do not look like real inputs (different preprocessing, too dark, one
  class missing); a :class:`CalibrationWarning` names the input and the first layers affected.
  No TensorFlow.
* :func:`calibration_curve`: accuracy and activation ranges as the calibration set grows (converts
  once per size, so it needs TensorFlow).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._config import Options, set_field
from .._log import tqdm, warn_user_fmt
from .._text import wrap
from ..errors import (
    CalibrationWarning,  # re-exported: every error class lives in edgelab.errors
    ConfigError,
    check_int,
    check_number,
)
from ..tflite.inspection import inspect_model
from .layers import analyze_layers, short_name

__all__ = ["CalibrationWarning", "RangeCheck", "calibration_balance", "calibration_curve", "range_check"]


def calibration_balance(labels: Any, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Images per class in a calibration set: ``class``, ``images``, ``share``, ``vs_even`` (1.0 = even).

    Logs a warning when a class is missing or has less than half its even share.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.size == 0:
        raise ConfigError("Expected the calibration set's labels. Received: none")
    n = int(max(labels.max() + 1, len(class_names or ())))
    counts = np.bincount(labels, minlength=n)
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    frame = pd.DataFrame({"class": names, "images": counts})
    frame["share"] = (frame.images / counts.sum()).round(4)
    frame["vs_even"] = (frame.share * n).round(3)
    weak = frame[frame.vs_even < 0.5]
    if len(weak):
        warn_user_fmt(CalibrationWarning, "calibration set under-represents %s", ", ".join(weak["class"]))
    return frame


@dataclass(frozen=True)
class RangeCheck:
    """Values outside the calibrated ranges, on calibration images and on test images, per layer.

    Attributes:
        frame: ``index, op, layer, tensor, calibration_clipped, test_clipped, ratio, flagged,
            calibration_sqnr_db, test_sqnr_db, degraded``.
        flagged: Layer names where test values escape the range much more often, in graph order
            (``"input"`` for the model's input quantization).
        degraded: Layers whose error on test images is far larger (SQNR ``degraded_db`` lower) than
            on the calibration images, in graph order: where the clipped values do their damage.
        message: One sentence for people; empty when nothing is flagged.
    """

    frame: pd.DataFrame = field(repr=False)
    flagged: tuple[str, ...]
    message: str
    degraded: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RangeCheck(flagged={list(self.flagged)}, degraded={list(self.degraded[:4])}{'...' if len(self.degraded) > 4 else ''})"


def _layer(row: pd.Series) -> str:
    return "input" if row["index"] == 0 and row.op == "QUANTIZE" else short_name(row.tensor)


@dataclass(frozen=True)
class RangeCheckOptions(Options):
    """When :func:`range_check` flags a layer; checked once, when made.

    Args:
        max_images: At most this many images of each set.
        factor: How many times more often test values must escape to flag a layer (> 0).
        margin: Minimum share of escaping test values to flag a layer, in [0, 1).
        degraded_db: SQNR drop (test vs calibration images) that marks a layer as degraded (>= 0).
    """

    max_images: int = 200
    factor: float = 5.0
    margin: float = 0.01
    degraded_db: float = 10.0

    def __post_init__(self) -> None:
        set_field(self, "max_images", check_int("max_images", self.max_images))
        set_field(self, "factor", check_number("factor", self.factor, minimum=0, min_open=True))
        set_field(self, "margin", check_number("margin", self.margin, minimum=0, maximum=1, max_open=True))
        set_field(self, "degraded_db", check_number("degraded_db", self.degraded_db, minimum=0))


def range_check(
    float_model: str | os.PathLike | bytes,
    quant_model: str | os.PathLike | bytes,
    calibration_images: Any,
    test_images: Any,
    *,
    config: RangeCheckOptions | None = None,
    warn: bool = True,
    **options: Any,
) -> RangeCheck:
    """Compare how often values leave the calibrated ranges on calibration and on test images.

    A layer is flagged when its test values fall outside the range more than ``factor`` times as
    often as its calibration values, and in more than ``margin`` of all values.

    Args:
        float_model: The fp32 ``.tflite``.
        quant_model: The int8 (or int16x8) ``.tflite`` calibrated on ``calibration_images``.
        calibration_images: The uint8 images the converter calibrated on (as it saw them).
        test_images: uint8 images like the ones the model will meet.
        config: A :class:`RangeCheckOptions`: ``max_images`` (of each set, default 200), ``factor``
            (default 5), ``margin`` (default 0.01), ``degraded_db`` (default 10).
        warn: Issue a :class:`CalibrationWarning` when something is flagged.
        **options: Fields of :class:`RangeCheckOptions`, replacing ``config``'s.
    """
    cfg = RangeCheckOptions.resolve(config, options)
    max_images, factor, margin, degraded_db = cfg.max_images, cfg.factor, cfg.margin, cfg.degraded_db
    calib = analyze_layers(float_model, quant_model, calibration_images, max_images=max_images, progress=False).frame
    test = analyze_layers(float_model, quant_model, test_images, max_images=max_images, progress=False).frame
    frame = pd.DataFrame(
        {
            "index": test["index"],
            "op": test.op,
            "layer": [_layer(r) for _, r in test.iterrows()],
            "tensor": test.tensor,
            "calibration_clipped": calib.clipped.values,
            "test_clipped": test.clipped.values,
        }
    )
    frame["ratio"] = (frame.test_clipped / frame.calibration_clipped.clip(lower=1e-6)).round(1)
    frame["flagged"] = (frame.test_clipped > factor * frame.calibration_clipped) & (frame.test_clipped > margin)
    frame["calibration_sqnr_db"], frame["test_sqnr_db"] = calib.sqnr_db.values, test.sqnr_db.values
    frame["degraded"] = frame.test_sqnr_db < frame.calibration_sqnr_db - degraded_db
    flagged = tuple(dict.fromkeys(frame.loc[frame.flagged, "layer"]))
    degraded = tuple(dict.fromkeys(frame.loc[frame.degraded, "layer"]))
    message = ""
    if flagged:
        first = frame[frame.flagged].iloc[0]
        named = ", ".join(flagged[:4]) + (" ..." if len(flagged) > 4 else "")
        hurt = [d for d in degraded if d not in flagged[:1]][:3]
        damage = (
            (
                f"; the layers it feeds degrade: {', '.join(hurt)} (SQNR on test images over {degraded_db:g} dB "
                "below that on calibration images)"
            )
            if hurt
            else ""
        )
        message = wrap(
            f"Test values fall outside the calibrated int8 ranges far more often than calibration values "
            f"({first.test_clipped:.1%} vs {first.calibration_clipped:.1%} at {first.layer}); flagged: {named}{damage}. "
            "The calibration images do not look like the real inputs: calibrate on training images "
            "preprocessed exactly as at inference, covering every class."
        )
        if warn:
            warnings.warn(message, CalibrationWarning, stacklevel=2)
    return RangeCheck(frame, flagged, message, degraded)


def calibration_curve(
    model: Any,
    data: Any,
    *,
    sizes: Sequence[int] = (8, 32, 128),
    test_data: Any = None,
    out_dir: str | os.PathLike,
    seed: int = 0,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Accuracy and activation ranges of the int8 model as the calibration set grows.

    Args:
        model: The float tf_keras model.
        data: An edgelab Dataset (its train split calibrates, class-balanced) or ``(images, labels)``.
        sizes: Calibration set sizes to try, ascending.
        test_data: ``(images, labels)`` to evaluate on (default: the Dataset's test split).
        out_dir: Where the int8 files go (``model_cal<size>_int8.tflite``).
        seed: Which calibration images are drawn.
        progress: Show a progress bar.

    Returns:
        One row per size: ``samples, accuracy, range_change`` (mean relative change of the
        activation ranges against the largest size: 0 once they have settled), ``max_range_change``.
    """
    # deferred: TensorFlow (converting needs it; the range checks do not)
    from ..tflite.conversion import ExportedModel, convert

    sizes = sorted(check_int("sizes", s) for s in sizes)
    if not sizes:
        raise ConfigError("Expected at least one calibration size. Received: sizes=()")
    if test_data is None:
        if not hasattr(data, "arrays"):
            raise ConfigError("Expected test_data=(images, labels) when data is not an edgelab Dataset.")
        test_data = data.arrays("test")
    images, labels = np.asarray(test_data[0]), np.asarray(test_data[1])
    ranges: dict[int, np.ndarray] = {}
    accuracy: dict[int, float] = {}
    with ExportedModel(model) as exported:
        for size in tqdm(sizes, desc="calibration sizes", unit="model", progress=progress):
            converted = convert(
                exported,
                "int8",
                out_dir=str(out_dir),
                calibration=data,
                calibration_samples=size,
                name=f"model_cal{size}",
                seed=seed,
            )
            info = inspect_model(converted.path)
            ranges[size] = np.asarray(
                [
                    float(info.tensors[op.outputs[0]].scale or 0) * 255
                    for op in info.ops
                    if op.outputs and info.tensors[op.outputs[0]].scale
                ]
            )
            pred = converted.predict(images, progress=False).argmax(axis=1)
            accuracy[size] = float((pred == labels).mean())
    ref = ranges[sizes[-1]]
    rows = []
    for size in sizes:
        change = np.abs(ranges[size] / ref - 1) if ranges[size].shape == ref.shape else np.asarray([np.nan])
        rows.append(
            {
                "samples": size,
                "accuracy": round(accuracy[size], 4),
                "range_change": round(float(change.mean()), 4),
                "max_range_change": round(float(change.max()), 4),
            }
        )
    return pd.DataFrame(rows)
