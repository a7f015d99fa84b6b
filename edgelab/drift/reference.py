"""Reference statistics of a model's inputs and outputs, with drift thresholds calibrated on them.

The statistics themselves are computed by the bundle's ``drift_check.py`` (one implementation for
host and device); this module adds what needs the host: running the model over the reference
images and calibrating one threshold per signal on held-out windows (scipy's gamma fit).

Calibration: the reference images are split in two halves at random. A summary is built from one
half and windows of 30, 60, 120 and 240 images are drawn from the other with replacement (a
bootstrap: each window is an iid sample, whatever the size of the half), and the other way round;
each window's PSI per signal is recorded. A gamma distribution (the shape PSI takes for a window
of the same distribution: a scaled chi-square) is fitted to the scores of each signal and size,
and the threshold is its ``1 - rate / 9`` quantile: with 9 signals, a window of the reference
distribution raises an alarm on any signal with probability at most ``rate`` (Bonferroni). The
summaries from half the images are noisier than the final one from all of them, so the real rate
on fresh windows is lower than stated, not higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._log import logger, tqdm
from ..errors import DriftError
from ..tflite.runtime import TFLiteModel
from ._device import device_module
from .check import load_window

#: the default false-alarm rate per window (any signal)
FALSE_ALARM_RATE = 0.01
#: window sizes the thresholds are calibrated for
WINDOW_SIZES = (30, 60, 120, 240)
#: calibration windows per size and half
CALIBRATION_WINDOWS = 300


def image_statistics(
    images: np.ndarray, scores: np.ndarray, image_size: Sequence[int], progress: bool | None = None
) -> dict[str, Any]:
    """Per-image statistics of uint8 ``images`` (N, H, W, 3), resized to ``image_size``, and the
    model's ``scores`` (N, classes) on them, in the form ``drift_check`` scores windows from."""
    dc = device_module()
    per_image = [
        dc.image_stats(dc.resize_pixels(img, image_size))
        for img in tqdm(images, desc="drift stats", unit="img", leave=False, progress=progress)
    ]
    return dc.stack_stats(per_image, scores)


def _threshold(values: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of a gamma fitted to window scores, never below their largest value."""
    # deferred: scipy (only calibrating the thresholds needs it)
    from scipy import stats

    values = np.asarray(values, np.float64)
    top = float(values.max())
    try:
        shape, _, scale = stats.gamma.fit(np.maximum(values, 1e-9), floc=0)
        fitted = float(stats.gamma.ppf(quantile, shape, loc=0, scale=scale))
    except (ValueError, RuntimeError, FloatingPointError):  # a degenerate sample: use the empirical tail
        fitted = top
    if not np.isfinite(fitted):
        fitted = top
    return max(fitted, top)


def build_reference(
    stats: dict[str, Any],
    labels: Sequence[str],
    image_size: Sequence[int],
    *,
    false_alarm_rate: float = FALSE_ALARM_RATE,
    windows: int = CALIBRATION_WINDOWS,
    seed: int = 0,
    model: str | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """The reference summary of ``stats`` (from :func:`image_statistics`) with calibrated thresholds.

    Raises:
        DriftError: fewer than 2 x 30 reference images, or a false-alarm rate outside (0, 0.5).
    """
    dc = device_module()
    n = len(stats["confidence"])
    if n < 2 * dc.MIN_IMAGES:
        raise DriftError(
            f"Expected at least {2 * dc.MIN_IMAGES} reference images to calibrate the drift thresholds "
            f"(two held-out halves of {dc.MIN_IMAGES}). Received: {n} images"
        )
    if not 0 < false_alarm_rate < 0.5:
        raise DriftError(f"Expected false_alarm_rate in (0, 0.5). Received: false_alarm_rate={false_alarm_rate!r}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    halves = (order[: n // 2], order[n // 2 :])
    scores: dict[int, dict[str, list[float]]] = {s: {k: [] for k in dc.SIGNALS} for s in WINDOW_SIZES}
    with tqdm(total=2 * len(WINDOW_SIZES) * windows, desc="calibrate", leave=False, progress=progress) as bar:
        for fit, held in (halves, halves[::-1]):
            ref = dc.summarize(dc.take(stats, fit), labels)
            for size in WINDOW_SIZES:
                for _ in range(windows):
                    index = rng.choice(held, size, replace=True)  # bootstrap: iid draws, as a camera's
                    for name, value in dc.raw_scores(ref, dc.take(stats, index)).items():
                        scores[size][name].append(value)
                    bar.update(1)
    quantile = 1.0 - false_alarm_rate / len(dc.SIGNALS)
    thresholds = {
        name: [round(_threshold(np.array(scores[size][name]), quantile), 6) for size in WINDOW_SIZES]
        for name in dc.SIGNALS
    }
    reference = dc.summarize(stats, labels)
    reference["image_size"] = [int(v) for v in image_size]
    reference["model"] = model
    reference["calibration"] = {
        "false_alarm_rate": false_alarm_rate,
        "method": f"PSI per signal; gamma fit to {windows} windows per size from each held-out half of the "
        f"reference images; threshold at the 1 - rate/{len(dc.SIGNALS)} quantile (Bonferroni over signals)",
        "windows": 2 * windows,
        "sizes": list(WINDOW_SIZES),
        "thresholds": thresholds,
    }
    logger.info("drift reference: %d images, thresholds calibrated for a %.3g false-alarm rate", n, false_alarm_rate)
    return reference


def _reference_pixels(data: Any, size: Sequence[int], progress: bool | None) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 pixels at ``size`` (and labels when known) of a Dataset, a folder or an array."""

    if hasattr(data, "arrays") and hasattr(data, "class_names"):  # a Dataset: its held-out splits
        parts = [data.arrays(split, progress=progress) for split in ("val", "test")]
        parts = [p for p in parts if len(p[0])] or [data.arrays("train", progress=progress)]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return load_window(images, size), labels
    if isinstance(data, tuple) and len(data) == 2:
        return load_window(np.asarray(data[0]), size), np.asarray(data[1], np.int64)
    return load_window(data, size, progress=progress), None


def model_reference(
    model_path: str | Any,
    data: Any,
    class_names: Sequence[str],
    *,
    false_alarm_rate: float = FALSE_ALARM_RATE,
    progress: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reference statistics of ``data`` and of the model's outputs on it, with calibrated thresholds.

    Args:
        model_path: the ``.tflite`` whose outputs are summarised (a CPU model, not an Edge TPU one).
        data: a :class:`edgelab.Dataset` (its validation and test images: images the model did not
            train on, since a model is more confident on its own training images than in the field),
            a folder of images, uint8 pixels (N, H, W, 3), or ``(pixels, labels)``.
        class_names: the model's labels.
        false_alarm_rate: the share of windows of the reference distribution that may raise an alarm.

    Returns:
        ``(reference, metrics)``: the JSON-ready reference and ``{"reference_images", "reference_accuracy"}``
        (accuracy only when ``data`` has labels).
    """

    model = TFLiteModel(model_path, num_threads=1)
    size = model.image_shape[:2]
    pixels, labels = _reference_pixels(data, size, progress)
    scores = model.predict(pixels, progress=False)
    stats = image_statistics(pixels, scores, size, progress=progress)
    reference = build_reference(
        stats,
        class_names,
        size,
        false_alarm_rate=false_alarm_rate,
        model=Path(model_path).name,
        progress=progress,
    )
    metrics: dict[str, Any] = {"reference_images": len(pixels)}
    if labels is not None and len(labels) == len(pixels):
        metrics["reference_accuracy"] = round(float(np.mean(scores.argmax(axis=1) == labels)), 4)
    return reference, metrics
