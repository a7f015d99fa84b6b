"""The :class:`Dataset`: a labelled image dataset with seeded, stratified train/val/test splits, from
a folder on disk (:func:`load_dataset`), in-memory arrays or the built-in synthetic scenes.

Pixels follow edgelab's convention: uint8 RGB arrays (N, H, W, 3) and int64 labels; models get
``edgelab.preprocess.normalize(images)``. A folder dataset is decoded once, at its image size, into
a memory-mapped cache file (:mod:`edgelab.data.cache`), so a split is served without holding it in
memory and a rerun, or an interrupted load, reuses what was decoded. TensorFlow is imported only by
:meth:`Dataset.tf_dataset`.

The pieces live next door: :mod:`~edgelab.data.layouts` (folder layouts),
:mod:`~edgelab.data.decoding` (one image, the pixel budget), :mod:`~edgelab.data.scanning` (which
files are usable, and why not), :mod:`~edgelab.data.splits` (split arithmetic),
:mod:`~edgelab.data.pipeline` (tf.data), :mod:`~edgelab.data.calibration`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._config import Options, check_bool, set_field
from .._log import logger
from .._text import LOG_WIDTH, wrap
from ..errors import ConfigError, DatasetError, check_int, did_you_mean
from ..preprocess import parse_image_size
from .cache import ImageCache, MemoryScanDecoder, ScanDecoder
from .cache import cache_dir as cache_dir_default
from .calibration import representative_dataset

# Names that lived here before the package was split into modules (explicit re-exports).
from .decoding import load_image as load_image
from .decoding import parallel_map, try_load
from .layouts import EXPECTED_LAYOUTS, LAYOUT_HINT, Layout
from .layouts import find_layout as find_layout
from .pipeline import array_batches
from .scanning import ScanResult as ScanResult
from .scanning import scan, select_classes
from .scenes import CLASS_NAMES, generate_scenes
from .skips import DatasetWarning, SkippedFile, SkippedReport
from .skips import SkipReason as SkipReason
from .splits import SPLITS, cap_per_class, check_fractions, stratified_split
from .splits import balanced_indices as balanced_indices

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import tensorflow as tf

__all__ = ["Dataset", "Split", "load_dataset", "synthetic_dataset"]


@dataclass(frozen=True, eq=False)
class Split:
    """One split: labels, and the image files (folder datasets) or source indices (arrays)."""

    name: str
    labels: np.ndarray
    paths: tuple[Path, ...] = ()
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, images={len(self)})"


class Dataset:
    """A labelled image dataset with seeded, stratified train/val/test splits.

    Build one with :func:`load_dataset` (folders), :meth:`Dataset.from_arrays` (in memory) or
    :func:`synthetic_dataset`. Images come out as uint8 RGB at ``image_size``.

    Attributes:
        class_names: Label ``i`` is ``class_names[i]``.
        root: The dataset folder (None in memory).
        layout: The :class:`Layout`.
        image_size: ``(height, width)`` of the images served.
        train, val, test: The :class:`Split` objects.
        pred_paths: Unlabelled images (Intel's ``seg_pred``), if any.
    """

    def __init__(
        self,
        *,
        class_names: Sequence[str],
        splits: dict[str, Split],
        image_size: tuple[int, int],
        layout: Layout,
        skipped: SkippedReport | None = None,
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        pred_paths: Sequence[Path] = (),
        cache_dir: str | os.PathLike | bool | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.class_names = list(class_names)
        self.layout = layout
        self.root = layout.root
        self.image_size = tuple(image_size)
        self.train, self.val, self.test = splits["train"], splits["val"], splits["test"]
        self.pred_paths = tuple(pred_paths)
        self._scan_skipped = skipped if skipped is not None else SkippedReport()
        self._late_skipped: dict[Path, SkippedFile] = {}
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = dict(arrays or {})
        self._cache_dir = cache_dir  # None: edgelab.data.cache.cache_dir(); False: decode into memory
        self._max_pixels = max_pixels

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        class_names: Sequence[str],
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ) -> Dataset:
        """A dataset from in-memory uint8 images (N, H, W, 3) and int labels, split like a folder."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ConfigError(
                "Expected images to be a uint8 array of shape (N, H, W, 3). "
                f"Received: dtype={images.dtype}, shape={images.shape}"
            )
        names = list(class_names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"Expected class_names to be distinct strings. Received: class_names={names!r}")
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ConfigError(
                f"Expected labels to be {len(images)} ints, one per image. "
                f"Received: shape={labels.shape}, dtype={labels.dtype}"
            )
        labels = labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise ConfigError(
                f"Expected labels in [0, {len(names) - 1}] (one per class name). "
                f"Received: labels from {labels.min()} to {labels.max()}"
            )
        parts = stratified_split(labels, val_fraction, test_fraction, seed)
        splits, cache = {}, {}
        for name, idx in zip(SPLITS, parts):
            split_images = images[idx]
            split_images.flags.writeable = False
            split_labels = labels[idx]
            split_labels.flags.writeable = False
            splits[name] = Split(name, split_labels, (), idx)
            cache[name] = (split_images, split_labels)
        return cls(
            class_names=names,
            splits=splits,
            image_size=images.shape[1:3],
            layout=Layout(kind="arrays"),
            arrays=cache,
        )

    # -- access -----------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def skipped(self) -> SkippedReport:
        """Every file left out: found while scanning, plus any that failed to decode later."""
        return self._scan_skipped + tuple(self._late_skipped.values())

    def split(self, name: str) -> Split:
        """The split called ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ConfigError(
                f"Expected split to be one of {list(SPLITS)}. Received: split={name!r}.{did_you_mean(name, SPLITS)}"
            )
        return getattr(self, name)

    def _note_failures(self, failures: Iterable[SkippedFile]) -> int:
        new = [f for f in failures if f.path not in self._late_skipped]
        for f in new:
            self._late_skipped[f.path] = f
            logger.info("skipped %s: %s (%s)", f.path, f.reason, f.detail)
        if new:
            warnings.warn(
                f"{len(new)} image files failed to decode and were left out; see Dataset.skipped",
                DatasetWarning,
                stacklevel=3,
            )
        return len(new)

    def _decode(self, paths: Sequence[Path], desc: str, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        """Decode ``paths`` into memory; returns the stacked images and the indices that decoded."""
        h, w = self.image_size
        images = np.zeros((len(paths), h, w, 3), np.uint8)

        def one(i: int) -> SkippedFile | None:
            image, bad = try_load(paths[i], (h, w), self._max_pixels)
            if image is not None:
                images[i] = image
            return bad

        failures = parallel_map(one, range(len(paths)), desc, progress)
        self._note_failures(bad for bad in failures if bad is not None)
        ok = np.asarray([i for i, bad in enumerate(failures) if bad is None], dtype=np.int64)
        return (images if len(ok) == len(paths) else images[ok]), ok

    def _image_cache(self, part: Split) -> ImageCache:
        name = f"{os.path.realpath(self.root) if self.root else ''} {part.name}"
        folder = self._cache_dir if isinstance(self._cache_dir, (str, os.PathLike)) else None
        return ImageCache(part.paths, (self.image_size[0], self.image_size[1]), name, folder=folder)

    def _load(self, part: Split, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        """A folder split's pixels: from the memory-mapped cache, or decoded into memory when the
        cache folder cannot be written."""
        desc = f"loading {part.name}"
        if self._cache_dir is not False:
            cache = self._image_cache(part)
            try:
                images, ok, failures = cache.load(desc, progress, self._max_pixels)
            except OSError as exc:
                logger.warning(
                    "cannot use the image cache in %s (%s); decoding %s into memory", cache.folder, exc, part.name
                )
            else:
                self._note_failures(failures)
                return images, ok
        return self._decode(part.paths, desc, progress)

    def arrays(self, split: str, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels of one split as ``(uint8 (N, H, W, 3), int64 (N,))``.

        A folder dataset is decoded once into a memory-mapped cache file (see
        :mod:`edgelab.data.cache`) and the images come back as a read-only view of it: memory use
        stays low and a rerun starts at once. Copy before editing. A file that fails to decode
        here is left out (and added to :attr:`skipped`), so N can be smaller than
        ``len(split)`` only when files changed or broke after the scan.
        """
        part = self.split(split)
        if split not in self._cache:
            images, ok = self._load(part, progress)
            labels = part.labels[ok].astype(np.int64)
            if images.flags.writeable:
                images.flags.writeable = False
            labels.flags.writeable = False
            self._cache[split] = (images, labels)
        return self._cache[split]

    def tf_dataset(
        self, split: str, batch_size: int = 32, shuffle: bool = False, seed: int = 0, normalized: bool = True
    ) -> tf.data.Dataset:
        """A batched, prefetched ``tf.data.Dataset`` of ``(images, labels)``.

        Images are float32 in the range :func:`edgelab.preprocess.normalize` gives (or uint8 with
        ``normalized=False``), shape (batch, H, W, 3); labels are int64. Batches are read from the
        split's arrays (:meth:`arrays`: the memory-mapped cache for a folder dataset) one at a time,
        so a dataset larger than memory works. Shuffling is seeded and reshuffles each epoch.
        """

        images, labels = self.arrays(split)
        return array_batches(images, labels, batch_size, shuffle=shuffle, seed=seed, normalized=normalized)

    def representative_dataset(self, n: int = 200, seed: int = 0) -> Callable[[], Iterable[list[np.ndarray]]]:
        """A class-balanced calibration set from the training split, for TFLite int8 conversion
        (see :func:`edgelab.data.calibration.representative_dataset`).

        Returns:
            A generator function (``converter.representative_dataset = ds.representative_dataset()``)
            yielding ``[normalize(image)[None]]``: float32 arrays of shape (1, H, W, 3).
        """
        return representative_dataset(self, check_int("n", n), seed)

    # -- reporting --------------------------------------------------------------------------------

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and split (columns train, val, test)."""
        # deferred: pandas (only this table needs it)
        import pandas as pd

        data = {
            name: np.bincount(self.split(name).labels, minlength=self.num_classes).astype(np.int64) for name in SPLITS
        }
        frame = pd.DataFrame(data, index=pd.Index(self.class_names, name="class"))
        return frame

    def to_dict(self) -> dict:
        return {
            "layout": self.layout.kind,
            "root": None if self.root is None else str(self.root),
            "class_names": list(self.class_names),
            "image_size": list(self.image_size),
            "splits": {name: len(self.split(name)) for name in SPLITS},
            "skipped": len(self.skipped),
        }

    def __repr__(self) -> str:
        return (
            f"Dataset(layout={self.layout.kind!r}, classes={self.num_classes}, image_size={self.image_size}, "
            f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, skipped={len(self.skipped)})"
        )


@dataclass(frozen=True)
class DatasetConfig(Options):
    """How :func:`load_dataset` splits and reads a folder; checked once, when made.

    Args:
        val_fraction: Share of the training pool per class held out for validation, in [0, 1).
        test_fraction: Share per class held out for testing, in [0, 1).
        seed: Non-negative int for the splits and ``max_per_class`` sampling.
        classes: Class names to use, in label order (None: every class folder, sorted by name).
        max_per_class: Use at most this many images per class from each folder pool (seeded
            random choice), for quick runs on a big dataset.
        verify: Decode every image while scanning (see :func:`scan`).
        cache_dir: Where the decoded-image cache goes (None: ``EDGELAB_CACHE_DIR`` or the user's
            cache folder, see :mod:`edgelab.data.cache`); False decodes into memory instead.
        max_pixels: Decoded-pixels budget per image (width x height); larger files are skipped as
            "too large". None: ``EDGELAB_MAX_PIXELS`` or 50 megapixels; 0: no limit.
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    classes: Iterable[str] | None = None
    max_per_class: int | None = None
    verify: bool = True
    cache_dir: str | os.PathLike | bool | None = None
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        val, test = check_fractions(self.val_fraction, self.test_fraction)
        set_field(self, "val_fraction", val)
        set_field(self, "test_fraction", test)
        set_field(self, "seed", check_int("seed", self.seed, minimum=0))
        set_field(self, "max_per_class", check_int("max_per_class", self.max_per_class, allow_none=True))
        set_field(self, "verify", check_bool("verify", self.verify))
        if self.classes is not None and not isinstance(self.classes, str):
            set_field(self, "classes", tuple(self.classes))
        set_field(self, "max_pixels", check_int("max_pixels", self.max_pixels, minimum=0, allow_none=True))


def load_dataset(
    root: str | os.PathLike,
    *,
    image_size: int | Sequence[int] = 96,
    config: DatasetConfig | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Dataset:
    """Load a dataset folder: Intel's Kaggle layout or one folder per class.

    Splits are seeded and stratified. Intel's layout keeps its own test set: ``seg_test`` is the
    test split and the validation split is ``val_fraction`` of ``seg_train`` (``test_fraction`` is
    used only when ``seg_test`` is absent). Class folders are split three ways. Files that cannot be
    used are listed in ``Dataset.skipped`` and summarised in one :class:`DatasetWarning`.

    Every image is decoded as :func:`~edgelab.data.decoding.load_image` does: converted to 8-bit RGB
    (grayscale, palette, CMYK and 16-bit included), transparent pixels composited on white, EXIF
    rotation applied, and *stretched* to ``image_size`` (bilinear, no crop or padding, so non-square
    images change aspect ratio). Pixels stay uint8 in [0, 255]; models get them as
    :mod:`edgelab.preprocess` says.

    ``load_dataset(root, image_size=64, seed=3, max_per_class=50)`` is
    ``load_dataset(root, image_size=64, config=DatasetConfig(seed=3, max_per_class=50))``.

    Args:
        root: The dataset folder.
        image_size: ``(height, width)`` or one int; images are stretched to it.
        config: A :class:`DatasetConfig`: ``val_fraction``, ``test_fraction``, ``seed``, ``classes``,
            ``max_per_class``, ``verify``, ``cache_dir`` (False: decode into memory), ``max_pixels``.
        progress: Show progress bars (None: on unless EDGELAB_PROGRESS=0).
        **options: Fields of :class:`DatasetConfig` (``seed=3``, ``cache_dir=False``, ...), replacing
            ``config``'s.

    Raises:
        DatasetError: The folder is missing or holds no usable images.
        ConfigError: A wrong argument (the message echoes it).
    """
    size = parse_image_size(image_size)
    cfg = DatasetConfig.resolve(config, options)
    val_fraction, test_fraction, seed, classes = cfg.val_fraction, cfg.test_fraction, cfg.seed, cfg.classes
    max_per_class, verify, cache_dir, max_pixels = cfg.max_per_class, cfg.verify, cfg.cache_dir, cfg.max_pixels

    # With verify and a cache, the scan decodes each image once, at model size, and the split caches
    # are filled from that pass (see edgelab.data.cache.ScanDecoder): no second decode.
    decoder: ScanDecoder | MemoryScanDecoder | None = None
    if verify and cache_dir is False:  # the scan decodes each image once, into memory: the splits keep it
        decoder = MemoryScanDecoder(size, max_pixels)
    elif verify:
        folder = cache_dir if isinstance(cache_dir, (str, os.PathLike)) else cache_dir_default()
        try:
            decoder = ScanDecoder(folder, size, os.path.realpath(root), max_pixels)
        except OSError as exc:
            logger.warning("cannot use the image cache in %s (%s); decoding after the scan", folder, exc)
    result = scan(root, classes=classes, verify=verify, progress=progress, max_pixels=max_pixels, decoder=decoder)
    dataset = _split_dataset(result, size, val_fraction, test_fraction, seed, max_per_class, cache_dir, max_pixels)
    if isinstance(decoder, MemoryScanDecoder):
        parts = [dataset.split(name) for name in SPLITS]
        pixels = decoder.take([part.paths for part in parts])
        if pixels is not None:  # else each split decodes its files on first use
            for part, images in zip(parts, pixels):
                images.flags.writeable = False
                dataset._cache[part.name] = (images, part.labels)
    elif decoder is not None:
        try:
            for name in SPLITS:
                decoder.fill(dataset._image_cache(dataset.split(name)))
            decoder.finish()
        except OSError as exc:  # the splits decode on first use instead
            logger.warning("cannot write the image cache in %s (%s)", decoder.folder, exc)
    logger.info("loaded %r", dataset)
    return dataset


def _split_dataset(
    result: ScanResult,
    size: tuple[int, int],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    max_per_class: int | None,
    cache_dir: str | os.PathLike | bool | None,
    max_pixels: int | None,
) -> Dataset:
    """The :class:`Dataset` of a scan: seeded, stratified splits of its usable images."""
    if not result.usable:
        found = f" {result.skipped.summary()}." if len(result.skipped) else ""
        raise DatasetError(
            f"No usable images in {result.root} (layout: {result.layout.kind}).{found} "
            f"{LAYOUT_HINT}\n{EXPECTED_LAYOUTS}"
        )
    if result.skipped:
        for s in result.skipped:
            logger.info("skipped %s: %s (%s)", s.path, s.reason, s.detail)
        warnings.warn(
            wrap(f"{result.skipped.summary()} in {result.root}; see Dataset.skipped", LOG_WIDTH),
            DatasetWarning,
            stacklevel=3,
        )

    paths = np.asarray(result.paths, dtype=object)
    origins = np.asarray(result.origins)
    labels = result.labels

    def pool(origin: str) -> np.ndarray:
        where = np.flatnonzero(origins == origin)
        return where[cap_per_class(labels[where], max_per_class, seed)]

    if result.layout.kind == "intel" and "test" in set(result.origins):
        train_pool, test_idx = pool("train"), pool("test")
        tr, va, _ = stratified_split(labels[train_pool], val_fraction, 0.0, seed)
        parts = (train_pool[tr], train_pool[va], test_idx)
    else:
        origin = "train" if result.layout.kind == "intel" else "all"
        everything = pool(origin)
        parts = tuple(everything[p] for p in stratified_split(labels[everything], val_fraction, test_fraction, seed))

    splits = {}
    for name, idx in zip(SPLITS, parts):
        split_labels = labels[idx].astype(np.int64)
        split_labels.flags.writeable = False
        splits[name] = Split(name, split_labels, tuple(paths[idx]), idx.astype(np.int64))
    dataset = Dataset(
        class_names=result.class_names,
        splits=splits,
        image_size=size,
        layout=result.layout,
        skipped=result.skipped,
        pred_paths=result.pred_paths,
        cache_dir=cache_dir,
        max_pixels=max_pixels,
    )
    return dataset


def synthetic_dataset(
    per_class: int = 400,
    image_size: int | Sequence[int] = 96,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    classes: Sequence[str] | None = None,
    progress: bool | None = None,
    shift: str | None = None,
) -> Dataset:
    """The built-in synthetic scenes (:mod:`edgelab.data.scenes`) as an in-memory :class:`Dataset`.

    Scenes are drawn at ``image_size`` directly (nothing is resized) as RGB uint8 pixels without alpha.

    Args:
        per_class: Images per class, before splitting.
        image_size: ``(height, width)`` or one int.
        seed: Seeds both the drawing and the splits.
        val_fraction, test_fraction: Split shares per class, as in :func:`load_dataset`.
        classes: A subset of :data:`edgelab.data.scenes.CLASS_NAMES` (None: all six).
        progress: Show a progress bar (None: on unless EDGELAB_PROGRESS=0).
        shift: A camera or weather condition (:data:`edgelab.data.shifts.SHIFTS`: night, fog, blur,
            snow, channel_swap, noise, jpeg) applied to every image; None: none.
    """

    check_fractions(val_fraction, test_fraction)
    names = (
        list(CLASS_NAMES)
        if classes is None
        else select_classes(CLASS_NAMES, classes, "edgelab.data.scenes.CLASS_NAMES")
    )
    images, labels = generate_scenes(
        per_class,
        image_size=parse_image_size(image_size),
        seed=seed,
        classes=tuple(names),
        progress=progress,
        shift=shift,
    )
    return Dataset.from_arrays(images, labels, names, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
