"""Sanity checks on a float model, with the likely causes edgelab can check.

A table of identical chance-level accuracies looks like lossless quantization of a working model.
These checks run after ``train`` and at the start of ``run_comparison`` and warn when

* accuracy is within a few points of chance (the larger of 1/classes and the majority class share),
* one class takes almost all predictions,
* validation loss stays at chance (ln(classes)) while training accuracy rises,

and then test the usual causes: the input range (the model is tried on other ranges), BatchNormalization
whose moving statistics have not converged (high momentum, few steps; inference vs batch statistics is
compared), and the labels (classes missing, out of range, or one class only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._log import logger, warn_user
from ..errors import SanityWarning
from ..preprocess import EDGELAB_RANGE, RANGE_ATTRIBUTE, RAW_RANGE, InputRange, leading_preprocessing, model_input_range

if TYPE_CHECKING:
    import pandas as pd

    from .._keras import keras

__all__ = ["SanityFinding", "check_float_model", "check_predictions", "check_training"]

#: Accuracy this close to chance (in accuracy points) is flagged.
CHANCE_MARGIN = 0.05
#: One class taking at least this share of predictions is flagged.
DOMINANT_SHARE = 0.9
#: How many images the cause checks run the model on.
PROBE_IMAGES = 256


@dataclass(frozen=True)
class SanityFinding:
    """One problem and the causes that were checked and found likely."""

    problem: str
    causes: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if not self.causes:
            return self.problem
        return self.problem + " Likely causes: " + " ".join(f"({i}) {c}" for i, c in enumerate(self.causes, 1))

    def __str__(self) -> str:
        return self.message


def chance_level(labels: np.ndarray, num_classes: int) -> float:
    """The accuracy of guessing: the larger of 1/classes and the most common class's share."""
    labels = np.asarray(labels).astype(np.int64)
    majority = (
        np.bincount(labels[labels >= 0], minlength=num_classes).max() / max(1, len(labels)) if len(labels) else 0.0
    )
    return float(max(1.0 / num_classes, majority))


def check_predictions(
    labels: np.ndarray, predictions: np.ndarray, num_classes: int, what: str = "the float model"
) -> list[str]:
    """The problems visible in predictions alone: chance-level accuracy, one dominant class."""
    labels, predictions = np.asarray(labels).astype(np.int64), np.asarray(predictions).astype(np.int64)
    if not len(labels):
        return []
    problems = []
    accuracy = float(np.mean(labels == predictions))
    chance = chance_level(labels, num_classes)
    if accuracy < chance + CHANCE_MARGIN:
        problems.append(
            f"The accuracy of {what} is {accuracy:.3f}, within {CHANCE_MARGIN * 100:.0f} points of chance ({chance:.3f} "
            f"for {num_classes} classes): it has not learned, or it is fed inputs it was not trained on."
        )
    counts = np.bincount(predictions, minlength=num_classes)
    top = int(counts.argmax())
    share = counts[top] / len(predictions)
    true_share = float(np.mean(labels == top))
    if share >= DOMINANT_SHARE and true_share < DOMINANT_SHARE - 0.2:
        problems.append(
            f"{what[0].upper() + what[1:]} predicts class {top} for {share:.0%} of the images (it is {true_share:.0%} of the labels)."
        )
    return problems


def _accuracy(model, x: np.ndarray, labels: np.ndarray, training: bool = False) -> float:
    probs = np.asarray(model(x, training=training))
    return float(np.mean(probs.argmax(axis=1) == labels))


def _input_range_cause(model, images: np.ndarray, labels: np.ndarray, fed: InputRange) -> str | None:
    """Try the model on the other usual ranges; a much better one is the cause."""
    how = (
        "declared"
        if isinstance(getattr(model, RANGE_ATTRIBUTE, None), InputRange)
        else ("detected from its own preprocessing layers" if leading_preprocessing(model) else "assumed")
    )
    base = _accuracy(model, fed(images), labels)
    best, best_range = base, fed
    for candidate in (EDGELAB_RANGE, RAW_RANGE, InputRange(0.0, 1.0)):
        if candidate == fed:
            continue
        accuracy = _accuracy(model, candidate(images), labels)
        if accuracy > best + 0.1:
            best, best_range = accuracy, candidate
    if best_range != fed:
        return (
            f"input range: edgelab fed pixels scaled to {fed} ({how}); fed {best_range} the model scores "
            f"{best:.3f} instead of {base:.3f}. Pass input_range=({best_range.low:g}, {best_range.high:g}) "
            "(or edgelab.preprocess.set_input_range) if that is what it was trained on."
        )
    if how == "assumed":
        return (
            f"input range: edgelab assumed {fed} (the model has no preprocessing layer and no declared range); "
            "pass input_range=... if it was trained on other values."
        )
    return None


def _batchnorm_layers(model) -> list:
    # deferred: TensorFlow (the checks of a table need no Keras)
    from .._keras import keras

    found = []
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layer", layer)  # tfmot wrappers
        if isinstance(inner, keras.Model):
            found += _batchnorm_layers(inner)
        elif isinstance(inner, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def _batchnorm_cause(model, images: np.ndarray, labels: np.ndarray, steps: int | None) -> str | None:
    """Inference-mode vs batch-statistics accuracy: a big gap means the moving statistics are wrong."""
    layers = _batchnorm_layers(model)
    if not layers:
        return None
    momenta = sorted({round(float(getattr(getattr(bn, "layer", bn), "momentum", 0.0)), 4) for bn in layers})
    saved = [bn.get_weights() for bn in layers]
    try:
        inference = _accuracy(model, images, labels, training=False)
        batch_stats = _accuracy(model, images[:128], labels[:128], training=True)
    finally:  # training=True updates the moving statistics: put them back
        for layer, weights in zip(layers, saved):
            layer.set_weights(weights)
    slow = max(momenta) >= 0.98
    steps_note = f" after only {steps} training steps" if steps is not None else ""
    if batch_stats > inference + 0.15 or (slow and steps is not None and steps < 3 / (1 - max(momenta))):
        # Lowering the momentum is advice only for layers above 0.9 (edgelab's models use 0.9).
        fixes = ["use momentum=0.9 (edgelab's models do)"] if max(momenta) > 0.9 else []
        fixes += ["train for more steps", "freeze BatchNormalization of a pretrained backbone"]
        return (
            f"BatchNormalization: {len(layers)} layer(s) with momentum {momenta}{steps_note}; with batch statistics "
            f"the model scores {batch_stats:.3f}, with its moving statistics (used at inference and by every "
            f"converted file) {inference:.3f}. The moving averages have not caught up: "
            f"{', '.join(fixes[:-1])} or {fixes[-1]}."
        )
    return None


def _frozen_cause(model) -> str | None:
    """Most of the weights frozen: the layers that learn read features they cannot change."""
    frozen, trainable = (
        sum(int(np.prod(w.shape)) for w in ws) for ws in (model.non_trainable_weights, model.trainable_weights)
    )
    if frozen <= trainable:  # BatchNormalization's moving statistics alone stay far below this
        return None
    return (
        f"frozen layers: {frozen:,} of {frozen + trainable:,} weights have trainable=False, so only the rest learn, "
        "from the features the frozen layers compute; those separate the classes only when they are pretrained: "
        "load pretrained weights for them, or make them trainable (fine-tune)."
    )


def _label_cause(y_train: np.ndarray | None, labels: np.ndarray, num_classes: int) -> str | None:
    problems = []
    for name, y in (("training", y_train), ("evaluation", labels)):
        if y is None:
            continue
        y = np.asarray(y).astype(np.int64)
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            problems.append(f"{name} labels outside 0..{num_classes - 1} (min {y.min()}, max {y.max()})")
        present = np.unique(y)
        if len(y) and len(present) == 1:
            problems.append(f"the {name} labels are all class {present[0]}")
    if y_train is not None and len(y_train):
        missing = sorted(set(np.unique(labels).tolist()) - set(np.unique(y_train).tolist()))
        if missing:
            problems.append(f"classes {missing} are evaluated but never trained on")
    return ("labels: " + "; ".join(problems) + ".") if problems else None


def _causes(model, images, labels, num_classes, fed, steps=None, y_train=None) -> tuple[str, ...]:
    pick = np.random.default_rng(0).permutation(len(labels))[:PROBE_IMAGES]
    images, labels = np.asarray(images)[pick], np.asarray(labels).astype(np.int64)[pick]
    causes = []
    for check in (
        lambda: _input_range_cause(model, images, labels, fed),
        lambda: _batchnorm_cause(model, fed(images), labels, steps),
        lambda: _label_cause(y_train, labels, num_classes),
        lambda: _frozen_cause(model),
    ):
        try:
            cause = check()
        except Exception as exc:  # a cause check must never hide the finding itself
            logger.debug("sanity cause check failed: %s", exc)
            cause = None
        if cause:
            causes.append(cause)
    return tuple(causes)


def _report(findings: list[SanityFinding]) -> list[SanityFinding]:

    for finding in findings:
        warn_user(finding.message, SanityWarning, stacklevel=3)
    return findings


def check_float_model(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    input_range: Any = None,
    warn: bool = True,
) -> list[SanityFinding]:
    """Check a float model's predictions on test images; each finding names its likely causes."""
    num_classes = int(np.asarray(probabilities).shape[-1])
    problems = check_predictions(labels, np.asarray(probabilities).argmax(axis=1), num_classes)
    if not problems:
        return []
    fed = model_input_range(model, input_range)
    causes = _causes(model, images, labels, num_classes, fed)
    findings = [SanityFinding(" ".join(problems), causes)]
    return _report(findings) if warn else findings


def check_training(
    model: keras.Model,
    history: pd.DataFrame,
    x_train: np.ndarray,
    y_train: np.ndarray,
    validation: tuple | None,
    batch_size: int = 32,
    warn: bool = True,
) -> list[SanityFinding]:
    """After ``train``: check the history and the validation predictions (``validation``: uint8 images, labels)."""
    num_classes = int(model.output_shape[-1])
    problems = []
    chance_loss = math.log(num_classes)
    if "val_loss" in history and "accuracy" in history and len(history) >= 2:
        val_loss, train_acc = history["val_loss"].to_numpy(), history["accuracy"].to_numpy()
        if np.min(val_loss) >= 0.9 * chance_loss and train_acc[-1] - train_acc[0] >= 0.15:
            problems.append(
                f"Validation loss stayed at chance (min {np.min(val_loss):.3f}, ln {num_classes} = {chance_loss:.3f}) "
                f"while training accuracy rose from {train_acc[0]:.3f} to {train_acc[-1]:.3f}."
            )
    fed = model_input_range(model)
    if validation is not None:
        x_val, y_val = validation
        chunks = [model.predict(fed(x_val[i : i + 512]), batch_size=64, verbose=0) for i in range(0, len(x_val), 512)]
        probs = np.concatenate(chunks) if chunks else np.zeros((0, num_classes), np.float32)
        problems += check_predictions(
            y_val, probs.argmax(axis=1), num_classes, "the trained model on validation images"
        )
    if not problems:
        return []
    steps = len(history) * math.ceil(len(x_train) / batch_size)
    if validation is not None:
        images, labels = validation
    else:
        images, labels = x_train, y_train
    causes = _causes(model, images, labels, num_classes, fed, steps=steps, y_train=y_train)
    findings = [SanityFinding(" ".join(problems), causes)]
    return _report(findings) if warn else findings


def findings_text(findings: Sequence[SanityFinding]) -> str:
    """All findings as one paragraph (for tables and reports)."""
    return " ".join(f.message for f in findings)
