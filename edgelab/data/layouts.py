"""Dataset folder layouts: Intel Image Classification's Kaggle download or one folder per class.

Two folder layouts are recognised::

    Intel Image Classification (Kaggle)         One folder per class
    root/                                       root/
      seg_train/seg_train/<class>/*.jpg           buildings/*.jpg
      seg_test/seg_test/<class>/*.jpg             forest/*.jpg   (sub-folders are walked)
      seg_pred/seg_pred/*.jpg   (optional)        ...

The single-level variant ``root/seg_train/<class>/`` is accepted too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._files import not_a_regular_file
from ..errors import DatasetError
from ..records import Record

__all__ = ["IMAGE_EXTENSIONS", "Layout", "find_layout"]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# Folder names of Intel's Kaggle download; each usually holds a folder of the same name.
INTEL_TRAIN, _INTEL_TEST, _INTEL_PRED = "seg_train", "seg_test", "seg_pred"

# Folders that archive tools leave behind; never a class.
METADATA_DIRS = frozenset({"__MACOSX"})

EXPECTED_LAYOUTS = """Expected one of these layouts:
  Intel Image Classification (Kaggle download):
    root/seg_train/seg_train/<class>/*.jpg
    root/seg_test/seg_test/<class>/*.jpg
    root/seg_pred/seg_pred/*.jpg            (optional, unlabelled)
  One folder per class:
    root/<class>/*.jpg                      (sub-folders inside a class folder are walked)"""

LAYOUT_HINT = "Expected Intel's layout (root/seg_train/seg_train/<class>/) or one folder per class (root/<class>/)."


@dataclass(frozen=True)
class Layout(Record):
    """Where a dataset's images are.

    Attributes:
        kind: ``"intel"``, ``"class_folders"`` or ``"arrays"`` (in memory, no folder).
        root: The dataset folder (None for arrays).
        train_dir: The folder holding the class folders of the training pool (``root`` for class
            folders, which are split three ways).
        test_dir: Intel's ``seg_test`` class-folder parent, when present.
        pred_dir: Intel's unlabelled ``seg_pred`` folder, when present.
    """

    #: ``to_dict``: the folders relative to ``root`` (``"."`` for ``root`` itself).
    RECORD_KEYS = (
        "kind",
        "root",
        ("train_dir", lambda layout: layout._rel(layout.train_dir)),
        ("test_dir", lambda layout: layout._rel(layout.test_dir)),
        ("pred_dir", lambda layout: layout._rel(layout.pred_dir)),
    )

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

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"Layout(kind={d['kind']!r}, train_dir={d['train_dir']!r}, test_dir={d['test_dir']!r}, "
            f"pred_dir={d['pred_dir']!r})"
        )


def is_hidden(name: str) -> bool:
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
        others = [p for p in root.iterdir() if p.name != root.name and not is_hidden(p.name)]
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
    if not root.exists() and not_a_regular_file(root) is None:
        raise DatasetError(f"Dataset folder not found: {root}. {LAYOUT_HINT}\n{EXPECTED_LAYOUTS}")
    if not root.is_dir():
        kind = not_a_regular_file(root) or "a file"
        raise DatasetError(f"Expected a dataset folder, not {kind}: {root}. {LAYOUT_HINT}\n{EXPECTED_LAYOUTS}")
    root = _unwrap(root)
    train = _intel_dir(root, INTEL_TRAIN)
    if train is not None:
        return Layout(
            kind="intel",
            root=root,
            train_dir=train,
            test_dir=_intel_dir(root, _INTEL_TEST),
            pred_dir=_intel_dir(root, _INTEL_PRED),
        )
    return Layout(kind="class_folders", root=root, train_dir=root)
