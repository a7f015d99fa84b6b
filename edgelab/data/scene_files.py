"""Writing the synthetic scenes (:mod:`edgelab.data.scenes`) to disk as JPEGs in Intel Image
Classification's Kaggle layout, atomically and replaceably (a marker file records what was written)."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._config import Options, set_field
from .._files import write_atomic
from .._log import logger, tqdm
from ..errors import ConfigError, check_int, check_number
from ..preprocess import parse_image_size
from .scenes import CLASS_NAMES, check_classes, image_rng, render_scene
from .shifts import apply_shift, check_shift

__all__ = ["MARKER_NAME", "make_scenes"]

#: Marker written into a folder by :func:`make_scenes`; it allows a later run to replace it.
MARKER_NAME = ".edgelab-scenes.json"

_TRAIN_DIR = ("seg_train", "seg_train")
_TEST_DIR = ("seg_test", "seg_test")
_PRED_DIR = ("seg_pred", "seg_pred")
_JPEG_QUALITY = 90


def _split_counts(per_class: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) images per class: at least one of each when test_fraction > 0 and per_class >= 2."""
    if test_fraction <= 0 or per_class < 2:
        return per_class, 0
    n_test = min(max(1, math.ceil(per_class * test_fraction - 1e-9)), per_class - 1)
    return per_class - n_test, n_test


def _planned_files(per_class: int, test_fraction: float, pred_count: int, classes: Sequence[str]) -> list[str]:
    n_train, n_test = _split_counts(per_class, test_fraction)
    files = []
    for name in classes:
        files += [f"{'/'.join(_TRAIN_DIR)}/{name}/{k}.jpg" for k in range(n_train)]
        files += [f"{'/'.join(_TEST_DIR)}/{name}/{k}.jpg" for k in range(n_test)]
    files += [f"{'/'.join(_PRED_DIR)}/{k}.jpg" for k in range(pred_count)]
    return files


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    """Encode a JPEG in memory, then write it atomically (never a half-written file)."""
    buffer = io.BytesIO()
    # 4:4:4 chroma keeps coloured window and lane-mark edges close to the in-memory scenes.
    Image.fromarray(image).save(buffer, format="JPEG", quality=_JPEG_QUALITY, subsampling=0)
    write_atomic(path, buffer.getvalue())


def _clear_previous(root: Path) -> None:
    """Remove what an earlier make_scenes run wrote here (and only that)."""
    marker = root / MARKER_NAME
    try:
        old = json.loads(marker.read_text(encoding="utf-8"))
        # Known class names only: a hand-edited marker must not point outside the folder.
        files = _planned_files(
            int(old["per_class"]), float(old["test_fraction"]), int(old["pred_count"]), check_classes(old["classes"])
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Expected {marker} to be a make_scenes marker; it cannot be read ({exc}). "
            "Remove the folder or choose another output folder."
        ) from exc
    for rel in files:
        for path in (root / rel, (root / rel).with_name(f".{Path(rel).name}.tmp")):
            if path.is_file():
                path.unlink()
    # Drop folders that are now empty, deepest first; anything a user added stays.
    for top in (_TRAIN_DIR[0], _TEST_DIR[0], _PRED_DIR[0]):
        if (root / top).is_dir():
            for folder in sorted((p for p in (root / top).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(folder.iterdir()):
                    folder.rmdir()
            if not any((root / top).iterdir()):
                (root / top).rmdir()
    marker.unlink()


@dataclass(frozen=True)
class SceneConfig(Options):
    """What :func:`make_scenes` draws besides the count; checked once, when made.

    Args:
        image_size: ``(height, width)`` or one int for square images (Intel's are 150).
        seed: Non-negative int; the same arguments give byte-identical files.
        test_fraction: Share of each class written to ``seg_test``, in [0, 1).
        pred_count: Unlabelled images of random classes written to ``seg_pred``.
        classes: Class names to draw, from :data:`CLASS_NAMES`.
        shift: A camera or weather condition from :data:`edgelab.data.shifts.SHIFTS` applied to
            every image (None: none).
    """

    image_size: int | tuple[int, int] = 150
    seed: int = 0
    test_fraction: float = 0.2
    pred_count: int = 0
    classes: Sequence[str] = CLASS_NAMES
    shift: str | None = None

    def __post_init__(self) -> None:
        set_field(self, "image_size", parse_image_size(self.image_size))
        set_field(self, "seed", check_int("seed", self.seed, minimum=0))
        fraction = check_number("test_fraction", self.test_fraction, minimum=0, maximum=1, max_open=True)
        set_field(self, "test_fraction", fraction)
        set_field(self, "pred_count", check_int("pred_count", self.pred_count, minimum=0))
        set_field(self, "classes", tuple(check_classes(self.classes)))
        set_field(self, "shift", check_shift(self.shift))


def make_scenes(
    out_dir: str | os.PathLike,
    per_class: int,
    *,
    config: SceneConfig | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Path:
    """Write synthetic scenes as JPEGs in Intel Image Classification's Kaggle layout.

    Layout: ``out_dir/seg_train/seg_train/<class>/<k>.jpg``, ``out_dir/seg_test/seg_test/<class>/<k>.jpg``
    and, when ``pred_count > 0``, unlabelled ``out_dir/seg_pred/seg_pred/<k>.jpg``. Each class gets
    ``per_class`` images, of which ``ceil(per_class * test_fraction)`` (at least one, and never all)
    go to the test split. Every file is written atomically. The folder must be empty, missing, or an
    earlier make_scenes output (recognised by its marker file), whose files are then replaced.

    Args:
        out_dir: Output folder.
        per_class: Labelled images per class, train and test together (>= 1).
        config: A :class:`SceneConfig`: ``image_size`` (default 150), ``seed``, ``test_fraction``
            (default 0.2), ``pred_count``, ``classes``, ``shift``.
        progress: Show a progress bar (None: on unless EDGELAB_PROGRESS=0).
        **options: Fields of :class:`SceneConfig` (``image_size=64``, ``seed=3``, ...), replacing
            ``config``'s.

    Returns:
        The output folder.

    Raises:
        ConfigError: Bad arguments, or ``out_dir`` holds files that make_scenes did not write.
    """
    per_class = check_int("per_class", per_class)
    cfg = SceneConfig.resolve(config, options)
    pred_count, seed, names, shift, test_fraction = cfg.pred_count, cfg.seed, cfg.classes, cfg.shift, cfg.test_fraction
    h, w = parse_image_size(cfg.image_size)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"Expected out_dir to be a folder. Received: out_dir={str(root)!r} (a file)")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER_NAME).is_file():
            raise ConfigError(
                f"Refusing to write scenes into {str(root)!r}: the folder is not empty and was not "
                "written by make_scenes. Choose an empty or new folder."
            )
        _clear_previous(root)
    root.mkdir(parents=True, exist_ok=True)
    params = {
        "generator": "edgelab.data.scenes.make_scenes",
        "per_class": per_class,
        "image_size": [h, w],
        "seed": seed,
        "test_fraction": float(test_fraction),
        "pred_count": pred_count,
        "classes": list(names),
        "shift": shift,
    }
    # The marker goes first, so an interrupted run leaves a folder that the next run may replace.
    write_atomic(root / MARKER_NAME, json.dumps({**params, "complete": False}, indent=2) + "\n")
    n_train, n_test = _split_counts(per_class, test_fraction)
    jobs: list[tuple[Path, str, str, int]] = []
    for name in names:
        for k in range(per_class):
            split = _TRAIN_DIR if k < n_train else _TEST_DIR
            index = k if k < n_train else k - n_train
            jobs.append((root.joinpath(*split, name, f"{index}.jpg"), name, name, k))
    for k in range(pred_count):
        jobs.append((root.joinpath(*_PRED_DIR, f"{k}.jpg"), "", "seg_pred", k))
    for folder in sorted({path.parent for path, *_ in jobs}):
        folder.mkdir(parents=True, exist_ok=True)
    for path, name, stream, k in tqdm(jobs, desc="scenes", unit="img", progress=progress):
        rng = image_rng(seed, stream, k)
        if not name:  # unlabelled: the stream also picks the class
            name = names[int(rng.integers(len(names)))]
        _write_jpeg(path, apply_shift(render_scene(name, rng, (h, w)), shift, rng))
    write_atomic(
        root / MARKER_NAME,
        json.dumps({**params, "complete": True, "train_per_class": n_train, "test_per_class": n_test}, indent=2) + "\n",
    )
    logger.info(
        "wrote %d scenes to %s (%d train + %d test per class, %d pred)", len(jobs), root, n_train, n_test, pred_count
    )
    return root
