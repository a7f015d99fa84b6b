"""``edgelab bundle diff``: two deploy bundles on the same labelled images, and which to ship.

Both bundles' default CPU models classify the same images. The comparison reports accuracy, top-1
agreement, the images that changed answer, model size, host latency and the Edge TPU estimate, and
decides with McNemar's exact test on the images where exactly one of the two is right: ship NEW
only when it fixes significantly more images than it breaks (two-sided p < 0.05); otherwise keep
OLD, because a difference within chance is not worth an update.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._log import warn_user_fmt
from ._text import wrap
from .compare.benchmark import measure_latency
from .data.scanning import scan
from .drift.check import load_window, read_bundle
from .edgetpu.latency import estimate_latency
from .errors import ConfigError, DatasetError, PartialResultWarning
from .records import Record
from .tflite.runtime import TFLiteModel

#: significance level of the update decision (McNemar's exact test, two-sided)
ALPHA = 0.05


@dataclass(frozen=True)
class BundleSide(Record):
    """One bundle's numbers in a :class:`BundleDiff`."""

    bundle: str
    version: str
    model: str
    accuracy: float
    correct: int
    size_bytes: int
    host_p50_ms: float | None
    edgetpu_usb3_ms: float | None


@dataclass(frozen=True)
class BundleDiff(Record):
    """The result of :func:`diff_bundles`.

    Attributes:
        old, new: each bundle's numbers.
        images: how many labelled images both classified.
        agreement: share of images with the same top-1 answer.
        fixed: images NEW gets right and OLD wrong; ``broken``: the other way round.
        p_value: McNemar's exact two-sided p-value of ``fixed`` vs ``broken``.
        ship: ``"new"`` or ``"old"``; ``reason``: why, in words that hold for the numbers above.
        changed: the images that changed answer, ``(path, truth, old answer, new answer)``.
    """

    RECORD_KEYS = (
        "old",
        "new",
        "images",
        "agreement",
        "fixed",
        "broken",
        "p_value",
        "ship",
        "reason",
        ("changed", lambda d: [{"path": p, "truth": t, "old": o, "new": n} for p, t, o, n in d.changed]),
    )

    old: BundleSide
    new: BundleSide
    images: int
    agreement: float
    fixed: int
    broken: int
    p_value: float
    ship: str
    reason: str
    changed: tuple[tuple[str, str, str, str], ...]

    def to_frame(self) -> pd.DataFrame:
        rows = [
            ("accuracy", self.old.accuracy, self.new.accuracy),
            ("correct images", self.old.correct, self.new.correct),
            ("model size (bytes)", self.old.size_bytes, self.new.size_bytes),
            ("host latency p50 (ms)", self.old.host_p50_ms, self.new.host_p50_ms),
            ("Edge TPU estimate, USB 3 (ms)", self.old.edgetpu_usb3_ms, self.new.edgetpu_usb3_ms),
        ]
        return pd.DataFrame(rows, columns=["metric", "old", "new"]).set_index("metric")

    def summary(self, max_changed: int = 10) -> str:
        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3f} ms"

        lines = [
            f"OLD {self.old.version} ({self.old.model})  vs  NEW {self.new.version} ({self.new.model}) "
            f"on {self.images} images",
            f"  accuracy          {self.old.accuracy:.4f}  ->  {self.new.accuracy:.4f}",
            f"  top-1 agreement   {self.agreement:.4f} ({len(self.changed)} images changed answer: "
            f"{self.fixed} fixed, {self.broken} broken)",
            f"  model size        {self.old.size_bytes / 1024:.1f} KiB  ->  {self.new.size_bytes / 1024:.1f} KiB",
            f"  host latency p50  {ms(self.old.host_p50_ms)}  ->  {ms(self.new.host_p50_ms)} (this CPU, 1 thread)",
            f"  Edge TPU (USB 3)  {ms(self.old.edgetpu_usb3_ms)}  ->  {ms(self.new.edgetpu_usb3_ms)} (estimate)",
        ]
        if self.changed:
            lines.append("  changed answers (truth: old -> new):")
            lines += [f"    {p}  {t}: {o} -> {n}" for p, t, o, n in self.changed[:max_changed]]
            if len(self.changed) > max_changed:
                lines.append(f"    ... and {len(self.changed) - max_changed} more")
        lines.append(wrap(f"ship {self.ship.upper()}: {self.reason}"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"BundleDiff(images={self.images}, accuracy {self.old.accuracy:.4f} -> {self.new.accuracy:.4f}, "
            f"fixed={self.fixed}, broken={self.broken}, ship={self.ship!r})"
        )


def mcnemar_p(fixed: int, broken: int) -> float:
    """McNemar's exact two-sided p-value: a binomial test of ``fixed`` out of ``fixed + broken`` at 1/2."""
    if fixed + broken == 0:
        return 1.0
    # deferred: scipy (only the significance test needs it)
    from scipy.stats import binomtest

    return float(binomtest(fixed, fixed + broken, 0.5).pvalue)


def decide(old_correct: int, new_correct: int, fixed: int, broken: int, images: int) -> tuple[str, str, float]:
    """``(ship, reason, p)``: NEW only when it fixes significantly more images than it breaks."""
    p = mcnemar_p(fixed, broken)
    counts = f"NEW fixes {fixed} images OLD got wrong and breaks {broken} OLD got right"
    accuracy = f"{old_correct}/{images} -> {new_correct}/{images} correct"
    if fixed > broken and p < ALPHA:
        return "new", f"{counts} ({accuracy}; McNemar exact p={p:.2g} < {ALPHA})", p
    if broken > fixed and p < ALPHA:
        return "old", f"{counts} ({accuracy}; McNemar exact p={p:.2g} < {ALPHA}): NEW is worse", p
    return (
        "old",
        f"{counts} ({accuracy}); McNemar exact p={p:.2g} >= {ALPHA}: the difference is within chance on "
        f"{images} images, not worth an update",
        p,
    )


def _labelled_images(data: Any) -> tuple[list[str], np.ndarray, list[str], Any]:
    """(names, labels, class names, source) of a class-folder dataset or a Dataset's test split."""
    if hasattr(data, "arrays") and hasattr(data, "class_names"):
        images, labels = data.arrays("test")
        return [f"test[{i}]" for i in range(len(labels))], labels, list(data.class_names), images

    root = Path(data).expanduser()
    result = scan(root, verify=False, progress=False)
    if not result.usable:
        raise DatasetError(f"Expected labelled images (one folder per class) in {str(root)!r}. Received: none usable")
    names = []
    for p in result.paths:
        try:
            names.append(p.relative_to(root).as_posix())
        except ValueError:
            names.append(str(p))
    return names, np.asarray(result.labels, np.int64), list(result.class_names), list(result.paths)


def _side(bundle: str | os.PathLike, source: Any, num_threads: int, latency: bool) -> tuple[BundleSide, np.ndarray]:

    root, meta, labels = read_bundle(bundle)
    cpu = [m for m in meta.get("models", []) if not m.get("edgetpu")]
    default = [m for m in cpu if m.get("name") == meta.get("default_model")] or cpu
    if not default:
        raise ConfigError(f"Expected a CPU model in the bundle {str(root)!r}. Received: only Edge TPU models")
    path = root / default[0]["file"]
    model = TFLiteModel(path, num_threads=num_threads)
    pixels = load_window(source, model.image_shape[:2])
    predicted = model.predict(pixels, progress=False).argmax(axis=1)
    p50 = measure_latency(model, num_threads=num_threads, min_time_s=0.2).p50_ms if latency else None
    try:
        tpu = estimate_latency(path).ms.get("usb3")
    except Exception as exc:  # an estimate is advisory: never lose the comparison for it
        warn_user_fmt(PartialResultWarning, "Edge TPU estimate of %s failed: %s", path.name, exc)
        tpu = None
    side = BundleSide(
        bundle=str(root),
        version=str(meta.get("version", "?")),
        model=path.name,
        accuracy=0.0,
        correct=0,
        size_bytes=path.stat().st_size,
        host_p50_ms=None if p50 is None else round(float(p50), 4),
        edgetpu_usb3_ms=None if tpu is None else round(float(tpu), 4),
    )
    return side, np.asarray([labels[i] for i in predicted])


def diff_bundles(
    old: str | os.PathLike,
    new: str | os.PathLike,
    data: Any,
    *,
    num_threads: int = 1,
    latency: bool = True,
) -> BundleDiff:
    """Compare two bundles on the same labelled images and say which to ship.

    Args:
        old, new: bundle folders (the running one and the candidate).
        data: a folder with one sub-folder per class (or Intel's layout), or a :class:`edgelab.Dataset`
            (its test split). Class names are matched to the bundles' labels by name.
        num_threads: interpreter threads for the predictions and the latency.
        latency: measure the host latency (off: None in the table).

    Returns:
        A :class:`BundleDiff`.

    Raises:
        ConfigError: a bundle without a CPU model, or data classes the bundles do not know.
        DatasetError: no usable labelled images.
    """

    names, labels, classes, source = _labelled_images(data)
    for bundle in (old, new):
        unknown = sorted(set(classes) - set(read_bundle(bundle)[2]))
        if unknown:
            raise ConfigError(
                f"Expected the data's classes among the labels of bundle {str(bundle)!r}. Received classes {unknown}"
            )
    old_side, old_pred = _side(old, source, num_threads, latency)
    new_side, new_pred = _side(new, source, num_threads, latency)
    truth = np.asarray([classes[i] for i in labels])
    old_ok, new_ok = old_pred == truth, new_pred == truth
    n = len(truth)
    fixed, broken = int(np.sum(new_ok & ~old_ok)), int(np.sum(old_ok & ~new_ok))
    ship, reason, p = decide(int(old_ok.sum()), int(new_ok.sum()), fixed, broken, n)
    changed = tuple(
        (names[i], str(truth[i]), str(old_pred[i]), str(new_pred[i])) for i in np.flatnonzero(old_pred != new_pred)
    )
    return BundleDiff(
        old=_with_accuracy(old_side, old_ok),
        new=_with_accuracy(new_side, new_ok),
        images=n,
        agreement=round(float(np.mean(old_pred == new_pred)), 4),
        fixed=fixed,
        broken=broken,
        p_value=p,
        ship=ship,
        reason=reason,
        changed=changed,
    )


def _with_accuracy(side: BundleSide, ok: np.ndarray) -> BundleSide:
    values = side.to_dict()
    values.update(accuracy=round(float(ok.mean()), 4), correct=int(ok.sum()))
    return BundleSide(**values)
