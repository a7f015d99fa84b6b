"""Data: the synthetic scene generator, dataset folders (Intel layout or one folder per class),
decoding with a report of every skipped file, stratified splits and calibration samples.

Nothing here imports TensorFlow except :meth:`Dataset.tf_dataset`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "CLASS_NAMES": "scenes", "render_scene": "scenes", "generate_scenes": "scenes", "make_scenes": "scenes",
    "Dataset": "datasets", "DatasetWarning": "datasets", "Layout": "datasets", "ScanResult": "datasets",
    "SkipReason": "datasets", "SkippedFile": "datasets", "SkippedReport": "datasets", "Split": "datasets",
    "find_layout": "datasets", "load_dataset": "datasets", "load_image": "datasets", "scan": "datasets",
    "stratified_split": "datasets", "synthetic_dataset": "datasets", "balanced_indices": "datasets",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
