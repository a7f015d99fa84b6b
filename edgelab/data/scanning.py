"""Scanning a dataset folder: which images are usable, by class and folder pool, and a report of
every file or folder left out (hidden, other extensions, zero-byte, unreadable, truncated, corrupt,
too large, symlink loops and duplicates, empty folders). Each image is decoded once with Pillow
while scanning, so a broken file is found before the splits are drawn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._log import warn_user_fmt
from ..errors import ConfigError, DatasetError, DatasetWarning, did_you_mean
from ..records import Record
from .cache import MemoryScanDecoder, ScanDecoder
from .decoding import check_file, parallel_map
from .decoding import max_pixels as max_pixels_budget
from .layouts import IMAGE_EXTENSIONS, INTEL_TRAIN, METADATA_DIRS, Layout, find_layout, is_hidden
from .skips import SkippedFile, SkippedReport, SkipReason

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ScanResult", "scan"]


@dataclass(frozen=True, eq=False)
class ScanResult(Record):
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

    #: ``to_dict``: the ``edgelab data scan --json`` document (counts, not the file lists).
    RECORD_KEYS = (
        "root",
        ("layout", lambda scan: scan.layout.kind),
        ("classes", "counts"),
        ("splits", "counts_by_origin"),
        ("pred_images", lambda scan: len(scan.pred_paths)),
        ("skipped", lambda scan: scan.skipped.to_list()),
        "usable",
    )

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

    def to_frame(self) -> pd.DataFrame:
        """Usable images per class (rows) and folder pool (columns)."""
        # deferred: pandas (only this table needs it)
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

    def __repr__(self) -> str:
        return (
            f"ScanResult(layout={self.layout.kind!r}, classes={len(self.class_names)}, "
            f"images={len(self.paths)}, skipped={len(self.skipped)})"
        )


def _class_dirs(parent: Path, skipped: list[SkippedFile]) -> dict[str, Path]:
    """Class folders directly under ``parent``; anything else there is reported."""
    dirs: dict[str, Path] = {}
    for entry in sorted(parent.iterdir(), key=lambda p: p.name):
        if is_hidden(entry.name):
            kind = "folder" if entry.is_dir() else "file"
            skipped.append(SkippedFile(entry, SkipReason.HIDDEN, f"hidden {kind}"))
        elif entry.is_dir() and entry.name in METADATA_DIRS:
            skipped.append(SkippedFile(entry, SkipReason.HIDDEN, "archive metadata folder"))
        elif entry.is_dir():
            _check_class_name(entry)
            dirs[entry.name] = entry
        else:
            skipped.append(SkippedFile(entry, SkipReason.OUTSIDE_CLASSES, "files must be inside a class folder"))
    return dirs


#: Characters a class name cannot hold: labels.txt has one name per line.
_LINE_BREAKS = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL character"}


def _check_class_name(folder: Path) -> None:
    """Refuse a class folder whose name cannot be written as one line of labels.txt (before any work)."""
    for char, what in _LINE_BREAKS.items():
        if char in folder.name:
            raise DatasetError(
                f"Class folder {str(folder)!r} has {what} in its name, so its class cannot be written as one "
                "line of labels.txt; rename the folder (e.g. replace the character with '_')."
            )


class _Walker:
    """Walks class folders so that every real folder and file counts once.

    Folder links are followed, but a folder whose real path was already walked, or that contains
    the folder being walked (``up -> ..``, ``loop -> .``), is reported instead of entered; a file
    reached twice through links counts where it was found first.
    """

    def __init__(self, skipped: list[SkippedFile], claimed: Iterable[Path]) -> None:
        self.skipped = skipped
        self.dirs: dict[str, Path] = {}
        self.files: dict[str, Path] = {}
        for folder in claimed:  # dataset folders and class folders: never entered through a link
            self.dirs.setdefault(os.path.realpath(folder), folder)

    def _loop(self, entry: Path, real: str, parent_real: str) -> bool:
        if real == parent_real or parent_real.startswith(real.rstrip(os.sep) + os.sep):
            self.skipped.append(SkippedFile(entry, SkipReason.LINK_LOOP, f"link to an enclosing folder ({real})"))
            return True
        if real in self.dirs:
            self.skipped.append(SkippedFile(entry, SkipReason.LINK_LOOP, f"same folder as {self.dirs[real]}"))
            return True
        return False

    def walk(self, folder: Path, report_empty: bool = True) -> list[Path]:
        """Image-extension files under ``folder`` (recursively); other entries are reported."""
        real = os.path.realpath(folder)
        self.dirs.setdefault(real, folder)
        return self._walk(folder, real, report_empty)

    def _walk(self, folder: Path, real: str, report_empty: bool = True) -> list[Path]:
        found: list[Path] = []
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.skipped.append(SkippedFile(folder, SkipReason.UNREADABLE, str(exc)))
            return found
        for entry in entries:
            path = folder / entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_hidden(entry.name):
                kind = "folder" if is_dir else "file"
                self.skipped.append(SkippedFile(path, SkipReason.HIDDEN, f"hidden {kind}"))
            elif is_dir:
                sub = os.path.realpath(path) if entry.is_symlink() else os.path.join(real, entry.name)
                if entry.is_symlink() and self._loop(path, sub, real):
                    continue
                if sub in self.dirs:
                    self.skipped.append(SkippedFile(path, SkipReason.LINK_LOOP, f"same folder as {self.dirs[sub]}"))
                    continue
                self.dirs[sub] = path
                found += self._walk(path, sub)
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                file_real = os.path.realpath(path) if entry.is_symlink() else os.path.join(real, entry.name)
                first = self.files.setdefault(file_real, path)
                if first is path:
                    found.append(path)
                else:
                    self.skipped.append(SkippedFile(path, SkipReason.DUPLICATE, f"same file as {first}"))
            else:
                suffix = os.path.splitext(entry.name)[1]
                detail = f"extension {suffix!r}" if suffix else "no extension"
                self.skipped.append(SkippedFile(path, SkipReason.UNSUPPORTED, detail))
        if not found and report_empty:
            self.skipped.append(SkippedFile(folder, SkipReason.EMPTY_FOLDER, "no image files"))
        return found


def _own_class_dirs(dirs: dict[str, Path], seen: dict[str, Path], skipped: list[SkippedFile]) -> dict[str, Path]:
    """Class folders whose real folder is no other class's and no dataset folder (``up -> ..``)."""
    kept: dict[str, Path] = {}
    for name, folder in dirs.items():
        real = os.path.realpath(folder)
        enclosing = [p for r, p in seen.items() if r == real or r.startswith(real.rstrip(os.sep) + os.sep)]
        if enclosing:
            skipped.append(
                SkippedFile(folder, SkipReason.LINK_LOOP, f"same folder as, or a folder around, {enclosing[0]}")
            )
            continue
        seen[real] = folder
        kept[name] = folder
    return kept


def select_classes(available: Sequence[str], classes: Iterable[str] | None, source: str) -> list[str]:
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


def scan(
    root: str | os.PathLike,
    classes: Iterable[str] | None = None,
    verify: bool = True,
    progress: bool | None = None,
    max_pixels: int | None = None,
    decoder: ScanDecoder | MemoryScanDecoder | None = None,
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
        max_pixels: Decoded-pixels budget per image (width x height), checked from each file's
            header; larger images are skipped as "too large". None: ``EDGELAB_MAX_PIXELS`` or
            50 megapixels (see :func:`edgelab.data.decoding.max_pixels`); 0: no limit.
        decoder: With ``verify``, decode each image at model size into this
            :class:`~edgelab.data.cache.ScanDecoder` (or, in memory, a
            :class:`~edgelab.data.cache.MemoryScanDecoder`) instead of only checking it (its own
            ``max_pixels`` applies), so that :func:`~edgelab.data.datasets.load_dataset` decodes
            every image once.

    Raises:
        DatasetError: ``root`` is missing or not a folder.
        ConfigError: ``classes`` names a class that has no folder.
    """
    layout = find_layout(root)
    skipped: list[SkippedFile] = []
    seen = {os.path.realpath(d): d for d in (layout.train_dir, layout.test_dir, layout.pred_dir) if d is not None}
    train_dirs = _own_class_dirs(_class_dirs(layout.train_dir, skipped), seen, skipped)  # type: ignore[arg-type]
    names = select_classes(sorted(train_dirs), classes, f"the class folders in {layout.train_dir}")
    explicit = classes is not None

    pools: list[tuple[str, dict[str, Path]]] = []
    if layout.kind == "intel":
        pools.append(("train", train_dirs))
        if layout.test_dir is not None:
            test_dirs = _own_class_dirs(_class_dirs(layout.test_dir, skipped), seen, skipped)
            for name, folder in test_dirs.items():
                if name not in train_dirs:
                    skipped.append(
                        SkippedFile(folder, SkipReason.UNKNOWN_CLASS, f"no {INTEL_TRAIN} folder for class {name!r}")
                    )
            pools.append(("test", test_dirs))
    else:
        pools.append(("all", train_dirs))

    walker = _Walker(skipped, [*seen.values()])
    candidates: list[tuple[Path, int, str]] = []
    for origin, dirs in pools:
        for label, name in enumerate(names):
            if name not in dirs:
                warn_user_fmt(DatasetWarning, "class %r has no folder in %s", name, layout.test_dir)
                continue
            for path in walker.walk(dirs[name]):
                candidates.append((path, label, origin))
    # Classes that are not selected are left out on purpose: they are not "skipped".
    limit = max_pixels_budget(max_pixels)
    if verify and decoder is not None:
        problems = decoder.decode_all([c[0] for c in candidates], progress)
    else:
        problems = parallel_map(
            lambda p: check_file(p, verify, limit), [c[0] for c in candidates], "checking images", progress
        )
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
                if origin != train_origin and names[i] in dirs and any(lab == i and o == origin for _, lab, o in kept):
                    detail = f"class {names[i]!r} has no usable images in {INTEL_TRAIN}"
                    skipped.append(SkippedFile(dirs[names[i]], SkipReason.UNKNOWN_CLASS, detail))
        warn_user_fmt(DatasetWarning, "dropped classes without usable images: %s", [names[i] for i in missing])
        remap = {old: new for new, old in enumerate(i for i in range(len(names)) if i not in missing)}
        names = [n for i, n in enumerate(names) if i not in missing]
        kept = [(p, remap[label], origin) for p, label, origin in kept if label in remap]

    pred_paths: list[Path] = []
    if layout.pred_dir is not None:
        pred_paths = walker.walk(layout.pred_dir, report_empty=False)

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
