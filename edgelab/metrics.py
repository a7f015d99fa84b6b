"""Classification metrics from true and predicted classes: accuracy, per-class precision / recall /
F1, a confusion matrix and the agreement with a reference model (numpy; pandas for the tables).

Below both training (Keras evaluation) and compare (evaluation of converted files), which share
:class:`EvalResult`; it imports no model runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EvalResult", "check_class_names", "classification_metrics"]

_DIGITS = 4


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


@dataclasses.dataclass(frozen=True, eq=False)
class EvalResult:
    """Classification metrics of one model on one labelled set.

    Attributes:
        class_names: the class names, index order.
        accuracy: fraction of images classified correctly.
        per_class: DataFrame indexed by class name with ``precision``, ``recall``, ``f1``, ``support``.
            Precision of a class nothing was predicted as is 0.0 (likewise recall for support 0).
        confusion: ``(classes, classes)`` int64 counts, rows = true class, columns = predicted class.
        y_true: true class indices.
        y_pred: predicted class indices.
        reference_pred: the reference model's predicted classes (e.g. the float model), or None.
        agreement: fraction of images where ``y_pred == reference_pred`` (None without a reference).
        flipped: DataFrame of the images whose class changed against the reference, one row each:
            ``index``, ``true``, ``from`` (reference class), ``to`` (this model's class) and the
            matching ``true_name``, ``from_name``, ``to_name`` (None without a reference).
        predictions: the model's output probabilities ``(N, classes)`` when known, else None.
    """

    class_names: tuple[str, ...]
    accuracy: float
    per_class: pd.DataFrame = dataclasses.field(repr=False)
    confusion: np.ndarray = dataclasses.field(repr=False)
    y_true: np.ndarray = dataclasses.field(repr=False)
    y_pred: np.ndarray = dataclasses.field(repr=False)
    reference_pred: np.ndarray | None = dataclasses.field(default=None, repr=False)
    agreement: float | None = None
    flipped: pd.DataFrame | None = dataclasses.field(default=None, repr=False)
    predictions: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def num_samples(self) -> int:
        """How many images were evaluated."""
        return int(self.y_true.shape[0])

    @property
    def num_correct(self) -> int:
        """How many images were classified correctly."""
        return int(np.trace(self.confusion))

    @property
    def macro_precision(self) -> float:
        """Unweighted mean of the per-class precision."""
        return float(self.per_class["precision"].mean())

    @property
    def macro_recall(self) -> float:
        """Unweighted mean of the per-class recall."""
        return float(self.per_class["recall"].mean())

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1."""
        return float(self.per_class["f1"].mean())

    @property
    def num_flipped(self) -> int | None:
        """How many images changed class against the reference (None without a reference)."""
        return None if self.flipped is None else len(self.flipped)

    @property
    def flipped_indices(self) -> np.ndarray | None:
        """Indices of the images that changed class against the reference."""
        return None if self.flipped is None else self.flipped["index"].to_numpy(np.int64)

    def most_confused(self, k: int = 3) -> list[tuple[str, str, int]]:
        """The ``k`` largest off-diagonal confusion counts as ``(true, predicted, count)``, largest first."""
        cm = np.asarray(self.confusion).copy()
        np.fill_diagonal(cm, 0)
        pairs = []
        for flat in np.argsort(-cm, axis=None, kind="stable")[:k]:
            i, j = divmod(int(flat), cm.shape[1])
            if cm[i, j] > 0:
                pairs.append((self.class_names[i], self.class_names[j], int(cm[i, j])))
        return pairs

    def confusion_frame(self, normalize: bool = False) -> pd.DataFrame:
        """The confusion matrix labelled with class names (rows true, columns predicted).

        Args:
            normalize: divide each row by its support (rows of an absent class stay 0).
        """
        import pandas as pd  # deferred: pandas, for the tables only (a runtime that only predicts skips it)

        values: np.ndarray = self.confusion
        if normalize:
            totals = values.sum(axis=1, keepdims=True)
            values = np.divide(values, totals, out=np.zeros(values.shape, np.float64), where=totals > 0)
        names = list(self.class_names)
        return pd.DataFrame(values, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))

    def to_frame(self) -> pd.DataFrame:
        """The per-class table."""
        return self.per_class.copy()

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly values, rounded (probabilities left out)."""
        return {
            "num_samples": self.num_samples,
            "accuracy": _r(self.accuracy),
            "macro_precision": _r(self.macro_precision),
            "macro_recall": _r(self.macro_recall),
            "macro_f1": _r(self.macro_f1),
            "agreement": _r(self.agreement),
            "num_flipped": self.num_flipped,
            "class_names": list(self.class_names),
            "per_class": {
                name: {
                    "precision": _r(row.precision),
                    "recall": _r(row.recall),
                    "f1": _r(row.f1),
                    "support": int(row.support),
                }
                for name, row in self.per_class.iterrows()
            },
            "confusion": self.confusion.tolist(),
            "flipped": None
            if self.flipped is None
            else [
                {"index": int(r["index"]), "true": int(r["true"]), "from": int(r["from"]), "to": int(r["to"])}
                for r in self.flipped.to_dict("records")
            ],
        }

    def __repr__(self) -> str:
        parts = [
            f"samples={self.num_samples}",
            f"classes={len(self.class_names)}",
            f"accuracy={self.accuracy:.4f}",
            f"macro_f1={self.macro_f1:.4f}",
        ]
        if self.agreement is not None:
            parts += [f"agreement={self.agreement:.4f}", f"flipped={self.num_flipped}"]
        return f"EvalResult({', '.join(parts)})"


def _as_classes(values: Any, name: str, num_classes: int, n: int | None = None) -> np.ndarray:
    """Class indices from indices ``(N,)`` or from scores ``(N, classes)`` (argmax)."""
    arr = np.asarray(values)
    if arr.ndim == 2:
        if arr.shape[1] != num_classes:
            raise ConfigError(
                f"Expected {name} as class indices (N,) or scores (N, {num_classes}). "
                f"Received: shape={tuple(arr.shape)}"
            )
        arr = arr.argmax(axis=1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ConfigError(
            f"Expected {name} to be integer class indices of shape (N,) or scores (N, {num_classes}). "
            f"Received: shape={tuple(arr.shape)}, dtype={arr.dtype}"
        )
    arr = arr.astype(np.int64)
    if n is not None and arr.shape[0] != n:
        raise ConfigError(f"Expected {name} to hold {n} entries (one per image). Received: {arr.shape[0]}")
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise ConfigError(
            f"Expected {name} in [0, {num_classes}) for {num_classes} classes. "
            f"Received: {int(arr[bad][0])} at index {int(np.flatnonzero(bad)[0])}"
        )
    return arr


def check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """Class names as a tuple of strings, refused when empty, repeated or a bare string."""
    if isinstance(class_names, str) or class_names is None:
        raise ConfigError(f"Expected class_names to be a list of strings. Received: class_names={class_names!r}")
    names = tuple(str(c) for c in class_names)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"Expected class_names to be non-empty and unique. Received: class_names={list(names)}")
    return names


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    class_names: Sequence[str],
    reference_pred: Any = None,
    *,
    predictions: np.ndarray | None = None,
) -> EvalResult:
    """Accuracy, per-class precision/recall/F1, confusion matrix and agreement with a reference.

    Args:
        y_true: true class indices ``(N,)``.
        y_pred: predicted class indices ``(N,)`` or scores ``(N, classes)``.
        class_names: the class names in index order.
        reference_pred: the reference model's classes or scores (e.g. the float Keras model), to
            measure agreement and list the images whose class flipped.
        predictions: probabilities to keep on the result (defaults to ``y_pred`` when it is 2-D).

    Returns:
        An :class:`EvalResult`.

    Raises:
        ConfigError: mismatched lengths, classes out of range, or no samples.
    """
    import pandas as pd  # deferred: pandas, as in EvalResult.confusion_frame

    names = check_class_names(class_names)
    k = len(names)
    true = _as_classes(y_true, "y_true", k)
    if true.shape[0] == 0:
        raise ConfigError("Expected at least one sample. Received: 0 labels")
    if predictions is None and np.ndim(y_pred) == 2:
        predictions = np.asarray(y_pred)
    pred = _as_classes(y_pred, "y_pred", k, true.shape[0])

    confusion = np.bincount(true * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)},
        index=pd.Index(names, name="class"),
    )

    agreement = flipped = ref = None
    if reference_pred is not None:
        ref = _as_classes(reference_pred, "reference_pred", k, true.shape[0])
        agreement = float(np.mean(ref == pred))
        idx = np.flatnonzero(ref != pred)
        flipped = pd.DataFrame(
            {
                "index": idx.astype(np.int64),
                "true": true[idx],
                "from": ref[idx],
                "to": pred[idx],
                "true_name": [names[i] for i in true[idx]],
                "from_name": [names[i] for i in ref[idx]],
                "to_name": [names[i] for i in pred[idx]],
            }
        )
    return EvalResult(
        class_names=names,
        accuracy=float(tp.sum() / true.shape[0]),
        per_class=per_class,
        confusion=confusion,
        y_true=true,
        y_pred=pred,
        reference_pred=ref,
        agreement=agreement,
        flipped=flipped,
        predictions=predictions,
    )
