"""For a model with no declared input range: try the usual ranges on a few labelled images.

edgelab assumes [-1, 1] for a Keras model without preprocessing layers and without a declared range
(:mod:`edgelab.preprocess`). A model trained on [0, 1] or [0, 255] then scores far below what it can,
and every converted file is built for the wrong range too. :func:`probe_input_range` scores the same
images fed as [-1, 1], [0, 1] and [0, 255]; when another range is *clearly* better it warns
(:class:`edgelab.errors.InputRangeWarning`) naming that range and how to declare it.

"Clearly better", on the same ``n`` images (at most :data:`PROBE_IMAGES`): at least
:data:`MIN_MORE_CORRECT` more images right *and* an accuracy higher by at least
:data:`MIN_ACCURACY_GAIN`, *and* at least :data:`MIN_MORE_CORRECT` more images right than always
answering the most common label (an untrained model that predicts one class in one range and
another class in another gains nothing but the labels' imbalance). A range that only matches the
assumed one by chance differs from it on a few images either way; 5 images and 0.15 of the images is
more than a handful of coin flips on any ``n``, while the undeclared [0, 1] model of the report this
answers (0.2222 vs 0.5278 on 36 images, 11 images) clears all three.

The probe runs once per model (``evaluate_keras`` and ``run_comparison`` call it, and ``train`` for a
model Keras fitted before, not for fresh random weights, which can "prefer" a range by chance; the
first answer is kept on the model), so a warning is shown once, not once per call.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .._log import user_stacklevel, warn_user
from ..errors import InputRangeWarning
from ..preprocess import EDGELAB_RANGE, InputRange, range_is_assumed

__all__ = ["MIN_ACCURACY_GAIN", "MIN_MORE_CORRECT", "PROBE_IMAGES", "PROBE_RANGES", "probe_input_range"]

#: The ranges tried: edgelab's [-1, 1], pixels / 255, raw pixels.
PROBE_RANGES = (EDGELAB_RANGE, InputRange(0.0, 1.0), InputRange(0.0, 255.0))
#: At most this many images (evenly spaced over the given ones), a few validation batches.
PROBE_IMAGES = 256
MIN_MORE_CORRECT = 5
MIN_ACCURACY_GAIN = 0.15
#: Where a model keeps the probe's answer (a :class:`_Probed`).
PROBED_ATTRIBUTE = "_edgelab_range_probed"


class _Probed:
    """The probe's answer kept on a model: the better range, or None."""

    __slots__ = ("best",)

    def __init__(self, best: InputRange | None) -> None:
        self.best = best


def probe_input_range(model: Any, images: np.ndarray, labels: np.ndarray, *, warn: bool = True) -> InputRange | None:
    """The range that scores clearly better than the assumed [-1, 1], or None.

    Does nothing (returns None) when the model's range is known: declared, remembered, given by its
    own preprocessing layers or by edgelab's builders.
    """
    images, labels = np.asarray(images), np.asarray(labels).astype(np.int64).reshape(-1)
    if not range_is_assumed(model) or len(images) == 0:
        return None
    done = getattr(model, PROBED_ATTRIBUTE, None)
    if isinstance(done, _Probed):  # probed before: the same answer, no second warning
        return done.best
    best = _probe(model, images, labels, warn)
    with contextlib.suppress(AttributeError, TypeError):  # an object without attributes: probed again next time
        setattr(model, PROBED_ATTRIBUTE, _Probed(best))
    return best


def _probe(model: Any, images: np.ndarray, labels: np.ndarray, warn: bool) -> InputRange | None:
    pick = np.unique(np.linspace(0, len(images) - 1, min(len(images), PROBE_IMAGES)).round().astype(int))
    x, y = images[pick], labels[pick]
    correct = {}
    for candidate in PROBE_RANGES:
        probs = model.predict(candidate(x), batch_size=64, verbose=0)
        correct[candidate] = int((np.asarray(probs).argmax(axis=1) == y).sum())
    best = max(PROBE_RANGES, key=lambda r: correct[r])
    gain = correct[best] - correct[EDGELAB_RANGE]
    majority = int(np.bincount(y[y >= 0]).max()) if (y >= 0).any() else 0
    if (
        best == EDGELAB_RANGE
        or gain < MIN_MORE_CORRECT
        or gain / len(y) < MIN_ACCURACY_GAIN
        or correct[best] - majority < MIN_MORE_CORRECT
    ):
        return None
    if warn:
        low, high = (f"{v:g}" for v in (best.low, best.high))
        warn_user(
            f"Model {getattr(model, 'name', '?')!r} scores {correct[best] / len(y):.4f} on {len(y)} labelled images "
            f"fed pixels in {best}, but {correct[EDGELAB_RANGE] / len(y):.4f} in [-1, 1], which edgelab assumed "
            f"(no preprocessing layer, no declared range). If it was trained on {best}, declare it: "
            f"input_range=({low}, {high}) on train/evaluate_keras/run_comparison, or once with "
            f"edgelab.preprocess.set_input_range(model, ({low}, {high})).",
            InputRangeWarning,
            stacklevel=user_stacklevel(),  # the user's call of train/evaluate_keras/run_comparison
        )
    return best
