"""Image datasets: folders on disk (Intel's Kaggle layout or one folder per class) and in-memory arrays.

Two folder layouts are recognised::

    Intel Image Classification (Kaggle)         One folder per class
    root/                                       root/
      seg_train/seg_train/<class>/*.jpg           buildings/*.jpg
      seg_test/seg_test/<class>/*.jpg             forest/*.jpg   (sub-folders are walked)
      seg_pred/seg_pred/*.jpg   (optional)        ...

The single-level variant ``root/seg_train/<class>/`` is accepted too. Every file that is not used is
reported with a reason (:class:`SkippedReport`), never dropped silently: hidden files, other
extensions, zero-byte, unreadable, truncated, corrupt and non-image files, empty folders. Each
image is decoded once with Pillow while scanning, so a broken file is found before the splits are
drawn rather than in the middle of training.

Pixels follow edgelab's convention: uint8 RGB arrays (N, H, W, 3) and int64 labels; models get
``edgelab.preprocess.normalize(images)``. TensorFlow is imported only by :meth:`Dataset.tf_dataset`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._log import logger, tqdm
from ..errors import ConfigError, DatasetError, check_int, did_you_mean
from ..preprocess import normalize, parse_image_size

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import tensorflow as tf

__all__ = [
    "IMAGE_EXTENSIONS",
    "SkipReason",
    "SkippedFile",
    "SkippedReport",
    "Layout",
    "ScanResult",
    "Split",
    "Dataset",
    "DatasetWarning",
    "find_layout",
    "scan",
    "load_image",
    "load_dataset",
    "stratified_split",
    "synthetic_dataset",
]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

SPLITS = ("train", "val", "test")

# Folder names of Intel's Kaggle download; each usually holds a folder of the same name.
_INTEL_TRAIN, _INTEL_TEST, _INTEL_PRED = "seg_train", "seg_test", "seg_pred"

# Folders that archive tools leave behind; never a class.
_METADATA_DIRS = frozenset({"__MACOSX"})

_EXPECTED_LAYOUTS = """Expected one of these layouts:
  Intel Image Classification (Kaggle download):
    root/seg_train/seg_train/<class>/*.jpg
    root/seg_test/seg_test/<class>/*.jpg
    root/seg_pred/seg_pred/*.jpg            (optional, unlabelled)
  One folder per class:
    root/<class>/*.jpg                      (sub-folders inside a class folder are walked)"""

_LAYOUT_HINT = "Expected Intel's layout (root/seg_train/seg_train/<class>/) or one folder per class (root/<class>/)."

# Decoding threads: Pillow releases the GIL while decoding, so a few threads give a real speed-up.
_WORKERS = max(1, min(4, os.cpu_count() or 1))


class DatasetWarning(UserWarning):
    """Files were skipped while loading a dataset (details in ``Dataset.skipped``)."""


class SkipReason:
    """Why a file or folder was not used. The values are stable strings (shown in reports and JSON)."""

    HIDDEN = "hidden"
    UNSUPPORTED = "unsupported extension"
    ZERO_BYTE = "zero-byte file"
    UNREADABLE = "unreadable"
    NOT_IMAGE = "not an image"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    EMPTY_FOLDER = "empty folder"
    OUTSIDE_CLASSES = "outside class folders"
    UNKNOWN_CLASS = "unknown class"

    ALL = (
        HIDDEN, UNSUPPORTED, ZERO_BYTE, UNREADABLE, NOT_IMAGE, TRUNCATED, CORRUPT,
        EMPTY_FOLDER, OUTSIDE_CLASSES, UNKNOWN_CLASS,
    )


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedFile:
    """One file or folder that was not used, with a reason from :class:`SkipReason` and a detail."""

    path: Path
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class SkippedReport:
    """Every file or folder left out of a dataset, in path order. Behaves like a read-only list."""

    files: tuple[SkippedFile, ...] = ()

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SkippedFile]:
        return iter(self.files)

    def __getitem__(self, index: int) -> SkippedFile:
        return self.files[index]

    def __add__(self, other: "SkippedReport | Iterable[SkippedFile]") -> "SkippedReport":
        return SkippedReport(self.files + tuple(other))

    def by_reason(self) -> dict[str, int]:
        """Number of entries per reason, in :attr:`SkipReason.ALL` order."""
        counts = Counter(f.reason for f in self.files)
        return {r: counts[r] for r in SkipReason.ALL if counts[r]}

    def paths(self, reason: str | None = None) -> list[Path]:
        """Paths skipped (for one reason, or all)."""
        return [f.path for f in self.files if reason is None or f.reason == reason]

    def summary(self) -> str:
        """``"3 files skipped (truncated: 2, not an image: 1)"``."""
        parts = ", ".join(f"{r}: {n}" for r, n in self.by_reason().items())
        noun = "file" if len(self) == 1 else "files"
        return f"{len(self)} {noun} skipped" + (f" ({parts})" if parts else "")

    def to_list(self) -> list[dict[str, str]]:
        return [f.to_dict() for f in self.files]

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame(self.to_list(), columns=["path", "reason", "detail"])

    def __repr__(self) -> str:
        return f"SkippedReport({self.summary()})"


# --------------------------------------------------------------------------------------------
# Layout detection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a dataset's images are.

    Attributes:
        kind: ``"intel"``, ``"class_folders"`` or ``"arrays"`` (in memory, no folder).
        root: The dataset folder (None for arrays).
        train_dir: The folder holding the class folders of the training pool (``root`` for class
            folders, which are split three ways).
        test_dir: Intel's ``seg_test`` class-folder parent, when present.
        pred_dir: Intel's unlabelled ``seg_pred`` folder, when present.
    """

    kind: str
    root: Path | None = None
    train_dir: Path | None = None
    test_dir: Path | None = None
    pred_dir: Path | None = None

    def _rel(self, path: Path | None) -> str | None:
        if path is None or self.root is None:
            return None
        rel = path.relative_to(self.root).as_posix()
        return rel if rel != "." else "."

    def to_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "root": None if self.root is None else str(self.root),
            "train_dir": self._rel(self.train_dir),
            "test_dir": self._rel(self.test_dir),
            "pred_dir": self._rel(self.pred_dir),
        }

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"Layout(kind={d['kind']!r}, train_dir={d['train_dir']!r}, test_dir={d['test_dir']!r}, "
            f"pred_dir={d['pred_dir']!r})"
        )


def _is_hidden(name: str) -> bool:
    # ".DS_Store", "._photo.jpg" (macOS AppleDouble), ".ipynb_checkpoints", editors' temp files.
    return name.startswith(".")


def _intel_dir(root: Path, name: str) -> Path | None:
    """``root/name/name`` (Kaggle's double nesting) or ``root/name``, when it exists."""
    outer = root / name
    if not outer.is_dir():
        return None
    inner = outer / name
    return inner if inner.is_dir() else outer


def _unwrap(root: Path) -> Path:
    """Step into ``root/<root.name>`` when that is all root holds (``seg_train/seg_train`` given as root)."""
    inner = root / root.name
    if inner.is_dir():
        others = [p for p in root.iterdir() if p.name != root.name and not _is_hidden(p.name)]
        if not others:
            return inner
    return root


def find_layout(root: str | os.PathLike) -> Layout:
    """Detect the layout of a dataset folder.

    Args:
        root: The dataset folder: the one holding ``seg_train`` for Intel's layout, or the one
            holding the class folders.

    Returns:
        A :class:`Layout` (kind ``"intel"`` or ``"class_folders"``).

    Raises:
        DatasetError: ``root`` is missing or is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"Dataset folder not found: {root}. {_LAYOUT_HINT}\n{_EXPECTED_LAYOUTS}")
    if not root.is_dir():
        raise DatasetError(f"Expected a dataset folder, not a file: {root}. {_LAYOUT_HINT}\n{_EXPECTED_LAYOUTS}")
    root = _unwrap(root)
    train = _intel_dir(root, _INTEL_TRAIN)
    if train is not None:
        return Layout(
            kind="intel",
            root=root,
            train_dir=train,
            test_dir=_intel_dir(root, _INTEL_TEST),
            pred_dir=_intel_dir(root, _INTEL_PRED),
        )
    return Layout(kind="class_folders", root=root, train_dir=root)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB.

    Transparent pixels are composited on white (what an image viewer shows), not left as the
    arbitrary colour stored under alpha 0. 16-bit (and 32-bit integer) grayscale is scaled from
    [0, 65535] to [0, 255]; Pillow's own conversion would clip everything above 255 to white.
    """
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(im, dtype=np.float64), 0, 65535) / 257.0
        return Image.fromarray(np.rint(values).astype(np.uint8), mode="L").convert("RGB")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).round().astype(np.uint8), mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _apply_exif_orientation(im: Image.Image) -> Image.Image:
    # Phone photos store rotation in EXIF; ignoring it trains on sideways pictures.
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is not worth losing the image over
        return im
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        from PIL import ImageOps

        return ImageOps.exif_transpose(im)
    return im


def load_image(path: str | os.PathLike, image_size: int | Sequence[int] | None = None) -> np.ndarray:
    """Decode one image file to an RGB uint8 array (H, W, 3).

    Handles JPEG, PNG, BMP, GIF (first frame), WebP and TIFF. Colour: grayscale, palette, CMYK and
    16-bit images become 8-bit RGB (16-bit values scaled from [0, 65535], not clipped). Alpha:
    transparent pixels are composited on white. EXIF rotation is applied.

    Args:
        path: The image file.
        image_size: ``(height, width)`` or one int to resize to. The image is *stretched* to that
            size (no crop, no padding: a non-square image changes its aspect ratio), with Pillow's
            bilinear filter, which antialiases when shrinking. None keeps the file's size.

    Raises:
        OSError: (including ``PIL.UnidentifiedImageError``) when the file cannot be read or decoded.
    """
    size = None if image_size is None else parse_image_size(image_size)
    with Image.open(path) as im:
        if size is not None and im.format == "JPEG":
            # DCT-domain downscaling: a large JPEG decodes several times faster, never below size.
            side = max(size)
            im.draft(im.mode, (side, side))
        im.load()
        im = _apply_exif_orientation(im)
        rgb = _to_rgb(im)
        if size is not None and rgb.size != (size[1], size[0]):
            rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).copy()


def _classify_error(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for an exception raised while reading an image."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        return SkipReason.NOT_IMAGE, "Pillow cannot identify the file format"
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return SkipReason.UNREADABLE, detail
    lowered = detail.lower()
    if "truncat" in lowered or "broken data stream" in lowered:
        return SkipReason.TRUNCATED, detail
    return SkipReason.CORRUPT, detail


def _check_file(path: Path, verify: bool) -> SkippedFile | None:
    """None when ``path`` reads as an image, else why not. ``verify`` decodes every pixel."""
    try:
        if path.stat().st_size == 0:
            return SkippedFile(path, SkipReason.ZERO_BYTE, "0 bytes")
        if verify:
            with Image.open(path) as im:
                im.load()
                _to_rgb(im)
        else:
            with Image.open(path):
                pass  # the header only: format and size
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        reason, detail = _classify_error(exc)
        return SkippedFile(path, reason, detail)
    return None


def _try_load(path: Path, size: tuple[int, int]) -> tuple[np.ndarray | None, SkippedFile | None]:
    try:
        return load_image(path, size), None
    except Exception as exc:
        reason, detail = _classify_error(exc)
        return None, SkippedFile(path, reason, detail)


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScanResult:
    """The usable images of a dataset folder and everything that was left out.

    Attributes:
        layout: The detected :class:`Layout`.
        class_names: Class names; label ``i`` is ``class_names[i]``.
        paths: Image files, sorted by folder then path.
        labels: int64 label of each path.
        origins: Per path, the folder pool it came from: ``"train"`` / ``"test"`` (Intel's
            ``seg_train`` / ``seg_test``) or ``"all"`` (class folders).
        skipped: The :class:`SkippedReport`.
        pred_paths: Unlabelled images in Intel's ``seg_pred`` (not decoded while scanning).
    """

    layout: Layout
    class_names: list[str]
    paths: tuple[Path, ...]
    labels: np.ndarray
    origins: tuple[str, ...]
    skipped: SkippedReport
    pred_paths: tuple[Path, ...] = ()

    @property
    def root(self) -> Path:
        return self.layout.root  # type: ignore[return-value]

    @property
    def usable(self) -> bool:
        """True when at least one class has at least one readable image."""
        return len(self.paths) > 0

    def counts(self) -> dict[str, int]:
        """Usable images per class (all folders together)."""
        per = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per)}

    def to_frame(self) -> "pd.DataFrame":
        """Usable images per class (rows) and folder pool (columns)."""
        import pandas as pd

        return pd.DataFrame(self.counts_by_origin(), index=pd.Index(self.class_names, name="class"), dtype="int64")

    def counts_by_origin(self) -> dict[str, dict[str, int]]:
        """Usable images per folder pool, then per class."""
        out: dict[str, dict[str, int]] = {}
        origins = np.asarray(self.origins)
        for origin in dict.fromkeys(self.origins):
            per = np.bincount(self.labels[origins == origin], minlength=len(self.class_names))
            out[origin] = {name: int(n) for name, n in zip(self.class_names, per)}
        return out

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout.kind,
            "classes": self.counts(),
            "splits": self.counts_by_origin(),
            "pred_images": len(self.pred_paths),
            "skipped": self.skipped.to_list(),
            "usable": self.usable,
        }

    def __repr__(self) -> str:
        return (
            f"ScanResult(layout={self.layout.kind!r}, classes={len(self.class_names)}, "
            f"images={len(self.paths)}, skipped={len(self.skipped)})"
        )


def _class_dirs(parent: Path, skipped: list[SkippedFile]) -> dict[str, Path]:
    """Class folders directly under ``parent``; anything else there is reported."""
    dirs: dict[str, Path] = {}
    for entry in sorted(parent.iterdir(), key=lambda p: p.name):
        if _is_hidden(entry.name):
            kind = "folder" if entry.is_dir() else "file"
            skipped.append(SkippedFile(entry, SkipReason.HIDDEN, f"hidden {kind}"))
        elif entry.is_dir() and entry.name in _METADATA_DIRS:
            skipped.append(SkippedFile(entry, SkipReason.HIDDEN, "archive metadata folder"))
        elif entry.is_dir():
            dirs[entry.name] = entry
        else:
            skipped.append(SkippedFile(entry, SkipReason.OUTSIDE_CLASSES, "files must be inside a class folder"))
    return dirs


def _walk_images(folder: Path, skipped: list[SkippedFile], report_empty: bool = True) -> list[Path]:
    """Image-extension files under ``folder`` (recursively); other entries are reported."""
    found: list[Path] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        skipped.append(SkippedFile(folder, SkipReason.UNREADABLE, str(exc)))
        return found
    for entry in entries:
        if _is_hidden(entry.name):
            kind = "folder" if entry.is_dir() else "file"
            skipped.append(SkippedFile(entry, SkipReason.HIDDEN, f"hidden {kind}"))
        elif entry.is_dir():
            found += _walk_images(entry, skipped)
        elif entry.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(entry)
        else:
            detail = f"extension {entry.suffix!r}" if entry.suffix else "no extension"
            skipped.append(SkippedFile(entry, SkipReason.UNSUPPORTED, detail))
    if not found and report_empty:
        skipped.append(SkippedFile(folder, SkipReason.EMPTY_FOLDER, "no image files"))
    return found


def _select_classes(available: Sequence[str], classes: Iterable[str] | None, source: str) -> list[str]:
    if classes is None:
        return list(available)
    if isinstance(classes, str):
        classes = [classes]
    names = list(classes)
    if not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"Expected classes to be a non-empty list of class names. Received: classes={names!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"Expected distinct class names. Received: classes={names!r}")
    for name in names:
        if name not in available:
            raise ConfigError(
                f"Expected class names from {list(available)} ({source}). "
                f"Received: {name!r}.{did_you_mean(name, available)}"
            )
    return names


def _parallel(fn: Callable, items: Sequence, desc: str, progress: bool | None) -> list:
    """``[fn(x) for x in items]`` on a few threads, in order, with a progress bar."""
    out: list = []
    if not items:
        return out
    with tqdm(total=len(items), desc=desc, unit="img", progress=progress) as bar, ThreadPoolExecutor(_WORKERS) as pool:
        for result in pool.map(fn, items, chunksize=8):
            out.append(result)
            bar.update()
    return out


def scan(
    root: str | os.PathLike,
    classes: Iterable[str] | None = None,
    verify: bool = True,
    progress: bool | None = None,
) -> ScanResult:
    """Find a dataset's images and report every file that cannot be used.

    Does not raise for a dataset without usable images (check :attr:`ScanResult.usable`), so that
    the report of what was skipped can still be shown.

    Args:
        root: The dataset folder (see :func:`find_layout`).
        classes: Class names to keep, in label order; None keeps every class folder, sorted by name.
        verify: Decode every image fully (finds truncated and corrupt files; ~0.4 ms per 150x150
            JPEG, spread over a few threads). False reads only the headers; files that then fail
            to decode are skipped and reported when they are loaded.
        progress: Show a progress bar (None: on unless EDGELAB_PROGRESS=0).

    Raises:
        DatasetError: ``root`` is missing or not a folder.
        ConfigError: ``classes`` names a class that has no folder.
    """
    layout = find_layout(root)
    skipped: list[SkippedFile] = []
    train_dirs = _class_dirs(layout.train_dir, skipped)  # type: ignore[arg-type]
    names = _select_classes(sorted(train_dirs), classes, f"the class folders in {layout.train_dir}")
    explicit = classes is not None

    pools: list[tuple[str, dict[str, Path]]] = []
    if layout.kind == "intel":
        pools.append(("train", train_dirs))
        if layout.test_dir is not None:
            test_dirs = _class_dirs(layout.test_dir, skipped)
            for name, folder in test_dirs.items():
                if name not in train_dirs:
                    skipped.append(SkippedFile(folder, SkipReason.UNKNOWN_CLASS, f"no {_INTEL_TRAIN} folder for class {name!r}"))
            pools.append(("test", test_dirs))
    else:
        pools.append(("all", train_dirs))

    candidates: list[tuple[Path, int, str]] = []
    for origin, dirs in pools:
        for label, name in enumerate(names):
            if name not in dirs:
                logger.warning("class %r has no folder in %s", name, layout.test_dir)
                continue
            for path in _walk_images(dirs[name], skipped):
                candidates.append((path, label, origin))
    # Classes that are not selected are left out on purpose: they are not "skipped".
    problems = _parallel(lambda p: _check_file(p, verify), [c[0] for c in candidates], "checking images", progress)
    skipped += [p for p in problems if p is not None]
    kept = [c for c, p in zip(candidates, problems) if p is None]

    # A class left with no usable training image cannot be learnt: drop it (or refuse, if asked for).
    train_origin = "train" if layout.kind == "intel" else "all"
    have = {label for _, label, origin in kept if origin == train_origin}
    missing = [i for i in range(len(names)) if i not in have]
    if missing and explicit:
        raise DatasetError(
            f"Class {names[missing[0]]!r} has no usable images in {train_dirs[names[missing[0]]]}; "
            "see scan(...).skipped for the files that were left out."
        )
    if missing:
        for i in missing:
            folder = train_dirs[names[i]]
            if not any(s.path == folder and s.reason == SkipReason.EMPTY_FOLDER for s in skipped):
                skipped.append(SkippedFile(folder, SkipReason.EMPTY_FOLDER, "no usable images"))
            for origin, dirs in pools:  # its seg_test images go too, and say why
                if origin != train_origin and names[i] in dirs and any(l == i and o == origin for _, l, o in kept):
                    detail = f"class {names[i]!r} has no usable images in {_INTEL_TRAIN}"
                    skipped.append(SkippedFile(dirs[names[i]], SkipReason.UNKNOWN_CLASS, detail))
        logger.warning("dropped classes without usable images: %s", [names[i] for i in missing])
        remap = {old: new for new, old in enumerate(i for i in range(len(names)) if i not in missing)}
        names = [n for i, n in enumerate(names) if i not in missing]
        kept = [(p, remap[label], origin) for p, label, origin in kept if label in remap]

    pred_paths: list[Path] = []
    if layout.pred_dir is not None:
        pred_paths = _walk_images(layout.pred_dir, skipped, report_empty=False)

    skipped.sort(key=lambda s: str(s.path))
    return ScanResult(
        layout=layout,
        class_names=names,
        paths=tuple(p for p, _, _ in kept),
        labels=np.asarray([label for _, label, _ in kept], dtype=np.int64),
        origins=tuple(origin for _, _, origin in kept),
        skipped=SkippedReport(tuple(skipped)),
        pred_paths=tuple(pred_paths),
    )


# --------------------------------------------------------------------------------------------
# Argument checks and splitting
# --------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_fractions(val_fraction: object, test_fraction: object) -> tuple[float, float]:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not _is_number(value) or not 0 <= float(value) < 1:  # type: ignore[arg-type]
            raise ConfigError(f"Expected {name} to be a number in [0, 1). Received: {name}={value!r}")
    if float(val_fraction) + float(test_fraction) >= 1:  # type: ignore[arg-type]
        raise ConfigError(
            "Expected val_fraction + test_fraction < 1 (something must be left to train on). "
            f"Received: val_fraction={val_fraction!r}, test_fraction={test_fraction!r}"
        )
    return float(val_fraction), float(test_fraction)  # type: ignore[arg-type]


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def balanced_indices(labels: Sequence[int] | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices in which the classes take turns (seeded random order within each class).

    Every class is equally represented unless it has fewer images than its share; used for
    calibration sets, where a class the converter never sees gets poor quantization ranges.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(int(q.pop(0)))
    return np.asarray(picked, dtype=np.int64)


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, stratified train/val/test split of sample indices.

    Each class is shuffled with its own random stream (from ``seed`` and the label), so a class's
    split does not change when other classes are added. Per class, ``round(n * fraction)`` samples
    (at least one when the fraction is above 0) go to test and to val, but at least one sample
    always stays in train: a class of two gives one to train and one to test.

    Returns:
        ``(train, val, test)``: sorted int64 index arrays, disjoint, covering every sample.
    """
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    seed = check_int("seed", seed, minimum=0)
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ConfigError(f"Expected labels to be a 1-D array of ints. Received: shape={labels.shape}, dtype={labels.dtype}")
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = np.random.default_rng([seed, int(c) & 0xFFFFFFFF]).permutation(idx)
        n = len(idx)
        # A split that was asked for gets at least one sample, while one is left to train on
        # (test before val when a class is too small for both).
        n_test = max(_round_half_up(n * test_fraction), int(test_fraction > 0))
        n_val = max(_round_half_up(n * val_fraction), int(val_fraction > 0))
        while n_test + n_val >= n and (n_test or n_val):
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(  # type: ignore[return-value]
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts
    )


def _cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset with at most ``max_per_class`` per class (sorted)."""
    if max_per_class is None:
        return np.arange(len(labels), dtype=np.int64)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > max_per_class:
            idx = np.random.default_rng([seed, int(c), 1]).choice(idx, max_per_class, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)).astype(np.int64) if keep else np.zeros(0, np.int64)


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


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
        skipped: SkippedReport = SkippedReport(),
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        pred_paths: Sequence[Path] = (),
    ) -> None:
        self.class_names = list(class_names)
        self.layout = layout
        self.root = layout.root
        self.image_size = tuple(image_size)
        self.train, self.val, self.test = splits["train"], splits["val"], splits["test"]
        self.pred_paths = tuple(pred_paths)
        self._scan_skipped = skipped
        self._late_skipped: dict[Path, SkippedFile] = {}
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = dict(arrays or {})

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
    ) -> "Dataset":
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
            raise ConfigError(f"Expected split to be one of {list(SPLITS)}. Received: split={name!r}.{did_you_mean(name, SPLITS)}")
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
        """Decode ``paths``; returns the stacked images and the indices that decoded."""
        h, w = self.image_size
        results = _parallel(lambda p: _try_load(p, (h, w)), list(paths), desc, progress)
        self._note_failures(bad for _, bad in results if bad is not None)
        ok = np.asarray([i for i, (img, _) in enumerate(results) if img is not None], dtype=np.int64)
        images = np.zeros((len(ok), h, w, 3), np.uint8)
        for row, i in enumerate(ok):
            images[row] = results[i][0]
        return images, ok

    def arrays(self, split: str, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels of one split as ``(uint8 (N, H, W, 3), int64 (N,))``.

        Decoded once and cached in memory; the arrays are read-only (copy before editing). A file
        that fails to decode here is left out (and added to :attr:`skipped`), so N can be smaller
        than ``len(split)`` only when files changed or broke after the scan.
        """
        part = self.split(split)
        if split not in self._cache:
            images, ok = self._decode(part.paths, f"loading {split}", progress)
            labels = part.labels[ok].astype(np.int64)
            images.flags.writeable = False
            labels.flags.writeable = False
            self._cache[split] = (images, labels)
        return self._cache[split]

    def tf_dataset(self, split: str, batch_size: int = 32, shuffle: bool = False, seed: int = 0) -> "tf.data.Dataset":
        """A batched, prefetched ``tf.data.Dataset`` of ``(normalize(images), labels)``.

        Images are float32 in the range :func:`edgelab.preprocess.normalize` gives, shape
        (batch, H, W, 3); labels are int64. Served from memory when the split's arrays are loaded
        (or the dataset is in memory), else decoded from the files batch by batch, in parallel, so
        a large dataset never has to fit in memory. Shuffling is seeded and reshuffles each epoch.
        A file that fails to decode is left out of its batch and added to :attr:`skipped`.
        """
        from .._keras import tf  # TensorFlow only when a pipeline is asked for

        part = self.split(split)
        batch_size = check_int("batch_size", batch_size)
        seed = check_int("seed", seed, minimum=0)
        h, w = self.image_size
        if split in self._cache:
            images, labels = self._cache[split]
            source = tf.data.Dataset.from_tensor_slices((images, labels))

            def convert(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return normalize(batch), np.ones(len(batch), bool)

        else:
            paths = tf.constant([os.fsencode(p) for p in part.paths], dtype=tf.string, shape=(len(part),))
            source = tf.data.Dataset.from_tensor_slices((paths, tf.constant(part.labels, dtype=tf.int64)))

            def convert(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                # One Python call per batch (not per image) keeps tf.numpy_function's overhead small.
                decoded, ok = self._decode([Path(os.fsdecode(p)) for p in batch], "", progress=False)
                mask = np.zeros(len(batch), bool)
                mask[ok] = True
                return normalize(decoded), mask

        if shuffle:
            source = source.shuffle(max(1, len(part)), seed=seed, reshuffle_each_iteration=True)

        @tf.autograph.experimental.do_not_convert  # plain tensor code: nothing to convert
        def load(batch, labels):
            x, ok = tf.numpy_function(convert, [batch], (tf.float32, tf.bool), stateful=False)
            ok = tf.ensure_shape(ok, (None,))
            return tf.ensure_shape(x, (None, h, w, 3)), tf.boolean_mask(labels, ok)

        ds = source.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def representative_dataset(self, n: int = 200, seed: int = 0) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A class-balanced calibration set from the training split, for TFLite int8 conversion.

        Classes take turns (round robin, in seeded random order within each class) until ``n``
        images are picked or the split runs out, so every class is equally represented unless it
        has fewer images than its share. The images are decoded once, now.

        Returns:
            A generator function (``converter.representative_dataset = ds.representative_dataset()``)
            yielding ``[normalize(image)[None]]``: float32 arrays of shape (1, H, W, 3).
        """
        n = check_int("n", n)
        labels = self.train.labels
        idx = balanced_indices(labels, n, seed)
        if len(idx) < n:
            logger.info("representative dataset: %d images requested, the training split has %d", n, len(idx))
        if "train" in self._cache and len(self._cache["train"][1]) == len(labels):
            images = self._cache["train"][0][idx]
        else:
            images, _ = self._decode([self.train.paths[i] for i in idx], "calibration images", progress=False)
        samples = [normalize(image[None]) for image in images]

        def generator() -> Iterator[list[np.ndarray]]:
            for x in samples:
                yield [x]

        return generator

    # -- reporting --------------------------------------------------------------------------------

    def counts(self) -> "pd.DataFrame":
        """Images per class (rows) and split (columns train, val, test)."""
        import pandas as pd

        data = {
            name: np.bincount(self.split(name).labels, minlength=self.num_classes).astype(np.int64)
            for name in SPLITS
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


def load_dataset(
    root: str | os.PathLike,
    image_size: int | Sequence[int] = 96,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    classes: Iterable[str] | None = None,
    max_per_class: int | None = None,
    verify: bool = True,
    progress: bool | None = None,
) -> Dataset:
    """Load a dataset folder: Intel's Kaggle layout or one folder per class.

    Splits are seeded and stratified. Intel's layout keeps its own test set: ``seg_test`` is the
    test split and the validation split is ``val_fraction`` of ``seg_train`` (``test_fraction`` is
    used only when ``seg_test`` is absent). Class folders are split three ways. Files that cannot be
    used are listed in ``Dataset.skipped`` and summarised in one :class:`DatasetWarning`.

    Every image is decoded as :func:`load_image` does: converted to 8-bit RGB (grayscale, palette,
    CMYK and 16-bit included), transparent pixels composited on white, EXIF rotation applied, and
    *stretched* to ``image_size`` (bilinear, no crop or padding, so non-square images change aspect
    ratio). Pixels stay uint8 in [0, 255]; models get them as :mod:`edgelab.preprocess` says.

    Args:
        root: The dataset folder.
        image_size: ``(height, width)`` or one int; images are stretched to it.
        val_fraction: Share of the training pool per class held out for validation, in [0, 1).
        test_fraction: Share per class held out for testing, in [0, 1).
        seed: Non-negative int for the splits and ``max_per_class`` sampling.
        classes: Class names to use, in label order (None: every class folder, sorted by name).
        max_per_class: Use at most this many images per class from each folder pool (seeded
            random choice), for quick runs on a big dataset.
        verify: Decode every image while scanning (see :func:`scan`).
        progress: Show progress bars (None: on unless EDGELAB_PROGRESS=0).

    Raises:
        DatasetError: The folder is missing or holds no usable images.
        ConfigError: A wrong argument (the message echoes it).
    """
    size = parse_image_size(image_size)
    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    seed = check_int("seed", seed, minimum=0)
    max_per_class = check_int("max_per_class", max_per_class, allow_none=True)

    result = scan(root, classes=classes, verify=verify, progress=progress)
    if not result.usable:
        found = f" {result.skipped.summary()}." if len(result.skipped) else ""
        raise DatasetError(
            f"No usable images in {result.root} (layout: {result.layout.kind}).{found} "
            f"{_LAYOUT_HINT}\n{_EXPECTED_LAYOUTS}"
        )
    if result.skipped:
        for s in result.skipped:
            logger.info("skipped %s: %s (%s)", s.path, s.reason, s.detail)
        warnings.warn(
            f"{result.skipped.summary()} in {result.root}; see Dataset.skipped", DatasetWarning, stacklevel=2
        )

    paths = np.asarray(result.paths, dtype=object)
    origins = np.asarray(result.origins)
    labels = result.labels

    def pool(origin: str) -> np.ndarray:
        where = np.flatnonzero(origins == origin)
        return where[_cap_per_class(labels[where], max_per_class, seed)]

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
    )
    logger.info("loaded %r", dataset)
    return dataset


def synthetic_dataset(
    per_class: int = 400,
    image_size: int | Sequence[int] = 96,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    classes: Sequence[str] | None = None,
    progress: bool | None = None,
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
    """
    from .scenes import CLASS_NAMES, generate_scenes

    _check_fractions(val_fraction, test_fraction)
    names = list(CLASS_NAMES) if classes is None else _select_classes(CLASS_NAMES, classes, "edgelab.data.scenes.CLASS_NAMES")
    images, labels = generate_scenes(
        per_class, image_size=parse_image_size(image_size), seed=seed, classes=tuple(names), progress=progress
    )
    return Dataset.from_arrays(images, labels, names, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
