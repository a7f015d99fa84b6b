"""Data: the synthetic scene generator, dataset folders (Intel layout or one folder per class),
decoding with a report of every skipped file, stratified splits, a memory-mapped cache of decoded
images, tf.data pipelines and calibration samples.

Modules: ``layouts`` (folder layouts), ``decoding`` (one image, the pixel budget), ``skips``
(reports of what was left out), ``scanning`` (usable files), ``splits`` (split arithmetic),
``cache`` (decoded-image cache), ``workers`` (decoding in worker processes), ``datasets`` (the
Dataset class), ``pipeline`` (tf.data), ``calibration``, ``scenes`` (painting the scenes) and
``scene_files`` (writing them to disk).
Nothing here imports TensorFlow except :mod:`~edgelab.data.pipeline`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "CLASS_NAMES": "scenes",
    "render_scene": "scenes",
    "generate_scenes": "scenes",
    "make_scenes": "scene_files",
    "SceneConfig": "scene_files",
    "Dataset": "datasets",
    "DatasetConfig": "datasets",
    "DatasetWarning": "skips",
    "Layout": "layouts",
    "ScanResult": "scanning",
    "SkipReason": "skips",
    "SkippedFile": "skips",
    "SkippedReport": "skips",
    "Split": "datasets",
    "find_layout": "layouts",
    "load_dataset": "datasets",
    "load_image": "decoding",
    "scan": "scanning",
    "stratified_split": "splits",
    "synthetic_dataset": "datasets",
    "balanced_indices": "splits",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
