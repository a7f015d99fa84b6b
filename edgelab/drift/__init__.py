"""Drift: reference statistics of a model's inputs and outputs, and the check of a window of images.

The statistics and the verdict come from the bundle's own ``drift_check.py`` (numpy + Pillow), so
``edgelab drift`` on the host and ``classify.py --drift`` on the device agree; the host adds the
calibration of the thresholds (:mod:`edgelab.drift.reference`).
"""

from __future__ import annotations

from .check import DriftResult, SignalResult, check_drift, image_files, load_window
from .reference import FALSE_ALARM_RATE, WINDOW_SIZES, build_reference, image_statistics

__all__ = [
    "FALSE_ALARM_RATE",
    "WINDOW_SIZES",
    "DriftResult",
    "SignalResult",
    "build_reference",
    "check_drift",
    "image_files",
    "image_statistics",
    "load_window",
]
