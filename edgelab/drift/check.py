"""``edgelab drift``: compare a window of images with the reference statistics in a bundle."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._log import tqdm
from ..errors import ConfigError, DatasetError, DriftError
from ..records import SKIP, Record
from ..tflite.runtime import TFLiteModel
from ._device import device_module

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class SignalResult(Record):
    """One signal of a drift check: its score (PSI over its calibrated threshold) and whether it moved."""

    name: str
    score: float
    drift: bool


@dataclass(frozen=True)
class DriftResult(Record):
    """The verdict of :func:`check_drift` on one window of images.

    Attributes:
        drift: any signal crossed its threshold.
        score: the largest signal score; ``threshold`` is 1.0 (scores are in units of their threshold).
        images: the window's size.
        signals: every signal, in a fixed order.
        messages: what moved, in words ("brightness far below training", ...), for the signals that drifted.
    """

    drift: bool
    score: float
    threshold: float
    images: int
    signals: tuple[SignalResult, ...]
    messages: tuple[str, ...] = field(metadata=SKIP)  # to_dict: the JSON of ``edgelab drift --json``

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd  # deferred: pandas, only for this table (edgelab drift starts without it)

        return pd.DataFrame([{"signal": s.name, "score": s.score, "drift": s.drift} for s in self.signals])

    def summary(self) -> str:
        """The verdict as text, as ``classify.py --drift`` prints it."""
        return device_module().report(self.to_dict(), list(self.messages))

    def __repr__(self) -> str:
        moved = ", ".join(s.name for s in self.signals if s.drift) or "none"
        return f"DriftResult(drift={self.drift}, score={self.score:.2f}, images={self.images}, moved=[{moved}])"

    @classmethod
    def from_verdict(cls, verdict: dict[str, Any], messages: Sequence[str]) -> DriftResult:
        return cls(
            drift=bool(verdict["drift"]),
            score=float(verdict["score"]),
            threshold=float(verdict["threshold"]),
            images=int(verdict["images"]),
            signals=tuple(SignalResult(s["name"], float(s["score"]), bool(s["drift"])) for s in verdict["signals"]),
            messages=tuple(messages),
        )


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursively, sorted by path).

    Raises:
        DatasetError: the folder does not exist or holds no image files.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"Expected a folder of images. Received: {str(root)!r}, which is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"Expected image files ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}. Received: none")
    return files


def read_bundle(bundle: str | os.PathLike) -> tuple[Path, dict[str, Any], list[str]]:
    """(folder, bundle.json, labels) of a deploy bundle.

    Raises:
        ConfigError: no bundle.json or labels in the folder.
    """
    root = Path(bundle).expanduser()
    try:
        meta = json.loads((root / "bundle.json").read_text(encoding="utf-8"))
        text = (root / str(meta.get("labels", "labels.txt"))).read_text(encoding="utf-8")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"Expected a deploy bundle (bundle.json, labels.txt) in {str(root)!r}. Received: {exc}"
        ) from None
    return root, meta, [line.strip() for line in text.splitlines() if line.strip()]


def bundle_reference(bundle: str | os.PathLike) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(folder, bundle.json, reference) of a bundle exported with reference statistics.

    Raises:
        DriftError: the bundle has no (readable) reference.
    """
    root, meta, _ = read_bundle(bundle)
    try:
        return root, meta, device_module().load_reference(str(root), meta)
    except device_module().DriftError as exc:
        raise DriftError(str(exc)) from None


def reference_model_path(root: Path, meta: dict[str, Any], reference: dict[str, Any]) -> Path:
    """The model file the reference's output statistics came from (else the bundle's default)."""
    models = meta.get("models", [])
    wanted = reference.get("model") or meta.get("default_model")
    for entry in models:
        if wanted in (entry.get("name"), entry.get("file")):
            return root / entry["file"]
    if not models:
        raise ConfigError(f"Expected bundle.json in {str(root)!r} to list a model. Received: none")
    return root / models[0]["file"]


def check_drift(
    bundle: str | os.PathLike,
    images: str | os.PathLike | Sequence[str | os.PathLike] | np.ndarray,
    *,
    progress: bool | None = None,
) -> DriftResult:
    """Compare a window of images with the bundle's reference statistics.

    Args:
        bundle: a bundle folder exported with ``reference=`` (see :func:`edgelab.export_bundle`).
        images: a folder of image files, a list of image files, or uint8 pixels (N, H, W, 3).
        progress: show a progress bar (None: on unless EDGELAB_PROGRESS=0).

    Returns:
        A :class:`DriftResult`; the same verdict ``classify.py --drift`` gives on the device.

    Raises:
        DriftError: no reference in the bundle, or fewer than 30 images.
        DatasetError: a missing folder, no images, or an unreadable image.
    """

    dc = device_module()
    root, meta, reference = bundle_reference(bundle)
    size = reference["image_size"]
    pixels = load_window(images, size, progress=progress)
    if len(pixels) < dc.MIN_IMAGES:
        raise DriftError(
            f"{len(pixels)} images are too few to tell drift from chance: give at least {dc.MIN_IMAGES} "
            f"(the thresholds are calibrated for windows of {WINDOW_RANGE})"
        )
    model = TFLiteModel(reference_model_path(root, meta, reference), num_threads=1)
    scores = model.predict(pixels, progress=False)
    per_image = [dc.image_stats(p) for p in pixels]
    try:
        verdict, messages = dc.check(reference, dc.stack_stats(per_image, scores))
    except dc.DriftError as exc:
        raise DriftError(str(exc)) from None
    return DriftResult.from_verdict(verdict, messages)


WINDOW_RANGE = "30 to 240 images"


def load_window(
    images: str | os.PathLike | Sequence[str | os.PathLike] | np.ndarray,
    size: Sequence[int],
    progress: bool | None = None,
) -> np.ndarray:
    """uint8 (N, size[0], size[1], 3) pixels of a folder, a list of files or an array, as the model sees them."""
    dc = device_module()
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ConfigError(
                f"Expected uint8 images of shape (N, H, W, 3). Received: dtype={images.dtype}, shape={images.shape}"
            )
        return np.stack([dc.resize_pixels(img, size) for img in images]) if len(images) else images
    paths = image_files(images) if isinstance(images, (str, os.PathLike)) else [Path(p) for p in images]
    out = np.empty((len(paths), int(size[0]), int(size[1]), 3), np.uint8)
    for i, path in enumerate(tqdm(paths, desc="images", unit="img", leave=False, progress=progress)):
        try:
            out[i] = dc.load_pixels(str(path), size)
        except dc.DriftError as exc:
            raise DatasetError(str(exc)) from None
    return out
