"""Training and Keras-side evaluation.

``train`` fits a model with early stopping (best weights restored), a tqdm progress bar, seeded
randomness and per-epoch checkpoints in a run directory, so an interrupted run resumes where it
stopped. History comes back as a pandas DataFrame.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._files import atomic_folder, atomic_path, write_atomic
from .._keras import check_keras2_model, keras, tf
from .._log import logger, progress_scope, tqdm, warn_user_fmt
from ..data.pipeline import array_batches
from ..errors import ConfigError, ResumeWarning, SetupWarning
from ..metrics import EvalResult, classification_metrics
from ..preprocess import RANGE_ATTRIBUTE, InputRange, model_input_range
from ..records import SKIP, Record, rounded
from .config import TrainConfig
from .range_probe import probe_input_range
from .sanity import check_training
from .shapes import check_model_fits

Arrays = tuple[np.ndarray, np.ndarray]


def seed_everything(seed: int = 0, threads: int | None = None) -> None:
    """Seed Python, numpy and TensorFlow; optionally pin TensorFlow's thread pools for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process: keep what is set
            warn_user_fmt(
                SetupWarning,
                "TensorFlow is already running in this process: its thread pools keep their size "
                "(call seed_everything(threads=%d) before any TensorFlow work to pin them)",
                threads,
            )


def release_models() -> None:
    """Free the Keras graph state of models built so far (a search builds many, one after another)."""
    keras.backend.clear_session()


@dataclass(frozen=True)
class TrainResult(Record):
    """What ``train`` returns: the trained model (best weights), its history and where it was saved."""

    model: Any = field(repr=False, metadata=SKIP)
    history: pd.DataFrame = field(repr=False, metadata=SKIP)
    best_epoch: int
    best_val_accuracy: float | None = field(metadata=rounded(4))
    epochs_run: int
    stopped_early: bool
    resumed_from_epoch: int
    run_dir: Path | None

    def __repr__(self) -> str:
        acc = "None" if self.best_val_accuracy is None else f"{self.best_val_accuracy:.4f}"
        return (
            f"TrainResult(epochs_run={self.epochs_run}, best_epoch={self.best_epoch}, "
            f"best_val_accuracy={acc}, stopped_early={self.stopped_early})"
        )


class _Progress(keras.callbacks.Callback):
    """One tqdm bar over epochs with the latest metrics as postfix."""

    def __init__(self, epochs: int, initial: int, progress: bool | None, desc: str):
        super().__init__()
        self.bar = tqdm(total=epochs, initial=initial, desc=desc, unit="epoch", progress=progress)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix(
            {k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        )
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


class _EpochHook(keras.callbacks.Callback):
    """Calls ``hook(epoch, metrics)`` after each epoch; a true return value stops training there."""

    def __init__(self, hook: Callable[[int, dict[str, float]], bool | None]):
        super().__init__()
        self.hook = hook

    def on_epoch_end(self, epoch, logs=None):
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        if self.hook(epoch + 1, metrics):
            self.model.stop_training = True


class _Checkpointer(keras.callbacks.Callback):
    """Keeps the best weights (early stopping) and writes a resumable checkpoint after every epoch."""

    def __init__(
        self,
        run_dir: Path | None,
        history: list[dict],
        monitor: str,
        patience: int,
        best: float | None,
        best_epoch: int,
        wait: int,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.history = history
        self.monitor = monitor
        self.patience = patience
        self.best = best
        self.best_epoch = best_epoch
        self.wait = wait
        self.best_weights = None
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        if self.best is None:
            return
        # Resuming: the restored checkpoint holds the *last* epoch's weights; the best ones are on disk.
        best_file = self.run_dir / "best.weights.h5" if self.run_dir else None
        if best_file is None or not best_file.exists():
            self.best_weights = self.model.get_weights()
            return
        # load_weights also restores the optimizer state saved with the best epoch: keep the last one.
        optimizer_vars = getattr(self.model.optimizer, "variables", None) or []
        optimizer_vars = list(optimizer_vars() if callable(optimizer_vars) else optimizer_vars)  # legacy optimizers
        optimizer_state = [v.numpy() for v in optimizer_vars]
        last = self.model.get_weights()
        if not _load_weights(self.model, best_file):
            self.best_weights = last
            return
        self.best_weights = self.model.get_weights()
        self.model.set_weights(last)
        for var, value in zip(optimizer_vars, optimizer_state):
            var.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        value = logs.get(self.monitor)
        lower_is_better = self.monitor.endswith("loss")
        improved = value is not None and (
            self.best is None or (value < self.best if lower_is_better else value > self.best)
        )
        if improved:
            self.best, self.best_epoch, self.wait = float(value), epoch + 1, 0
            self.best_weights = self.model.get_weights()
            if self.run_dir:
                with atomic_path(self.run_dir / "best.weights.h5") as tmp:
                    self.model.save_weights(str(tmp))
        else:
            self.wait += 1
        if self.run_dir:
            with atomic_folder(self.run_dir / "last") as tmp:
                _checkpoint(self.model).write(str(tmp / "ckpt"))
            state = {
                "epoch": epoch + 1,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "wait": self.wait,
                "history": self.history,
            }
            write_atomic(self.run_dir / "state.json", json.dumps(state, indent=2))
        if self.patience and value is not None and self.wait >= self.patience:
            self.stopped_early = True
            self.model.stop_training = True


def _load_weights(model, path: Path) -> bool:
    """Load saved weights; a torn file (from an interrupted older run) is noted and skipped."""
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        warn_user_fmt(ResumeWarning, "%s is unreadable (%s); it is not used", path, " ".join(str(exc).split())[:200])
        return False
    return True


def _trained_before(model: Any) -> bool:
    """The model went through Keras' ``fit`` already (its optimizer took steps)."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    try:
        return iterations is not None and int(iterations) > 0
    except (TypeError, ValueError):
        return False


def _checkpoint(model) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def _check_fits(model: Any, data: Any, images: np.ndarray, labels: np.ndarray) -> None:
    """Model/data mismatches as one ConfigError before Keras runs (see :mod:`edgelab.training.shapes`)."""
    classes = getattr(data, "num_classes", None)
    check_model_fits(
        model,
        np.shape(images),
        num_classes=classes,
        max_label=int(np.max(labels)) if classes is None and len(labels) else None,
    )


def _as_arrays(data: Any, split: str) -> Arrays:
    """Accept an edgelab Dataset (uses the named split) or an (images, labels) pair."""
    if hasattr(data, "arrays"):
        return data.arrays(split)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = np.asarray(data[0]), np.asarray(data[1])
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
            raise ConfigError(
                "Expected (images, labels) with images of shape (N, H, W, 3) and N labels. "
                f"Received: images.shape={images.shape}, len(labels)={len(labels)}"
            )
        return images, labels.astype(np.int64)
    raise ConfigError(f"Expected an edgelab Dataset or an (images, labels) pair. Received: {type(data).__name__}")


def train(
    model: keras.Model,
    data: Any,
    val_data: Any | None = None,
    *,
    config: TrainConfig | None = None,
    run_dir: str | Path | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], bool | None] | None = None,
    **options: Any,
) -> TrainResult:
    """Fit ``model`` on uint8 images, fed in the range the model takes (see :mod:`edgelab.preprocess`).

    Args:
        model: A tf_keras classifier with a softmax output.
        data: An edgelab Dataset (its train split is used, and its val split unless ``val_data`` is
            given) or an ``(images, labels)`` pair.
        val_data: ``(images, labels)`` for early stopping; ``None`` uses the Dataset's val split.
        config: A :class:`TrainConfig` (epochs, batch size, learning rate, patience, seed, augmentation,
            resume, compile, sanity check, input range); default: ``TrainConfig()``.
        run_dir: Where checkpoints, ``state.json`` and ``history.csv`` go; ``None`` keeps nothing on disk.
        progress: Show progress bars, including the dataset's loading bars (``None``: ``EDGELAB_PROGRESS``,
            else only in a terminal or an interactive Jupyter front end).
        on_epoch_end: Called as ``on_epoch_end(epoch, metrics)`` after each epoch (1-based; ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``); returning True stops training after that
            epoch (how :func:`edgelab.tune.tune` prunes hopeless trials).
        **options: Fields of :class:`TrainConfig` (``epochs=5``, ``seed=1``, ...), replacing the config's.

    Raises:
        ConfigError: an option is unknown or out of range, or the model does not fit the data.
    """
    cfg = TrainConfig.resolve(config, options)
    return run_training(model, data, val_data, cfg, run_dir=run_dir, progress=progress, on_epoch_end=on_epoch_end)


def run_training(
    model: keras.Model,
    data: Any,
    val_data: Any | None,
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], bool | None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """:func:`train` with a checked ``config``, and ``desc`` as the progress bar's label."""
    epochs, batch_size, learning_rate = config.epochs, config.batch_size, config.learning_rate
    patience, seed, resume, augment = config.patience, config.seed, config.resume, config.augment
    input_range = config.input_range
    check_keras2_model(model)
    contract = model_input_range(model, input_range)
    with progress_scope(progress):  # the dataset's "loading" bars follow this call's progress=
        x_train, y_train = _as_arrays(data, "train")
        _check_fits(model, data, x_train, y_train)
        if val_data is None and hasattr(data, "arrays"):
            val_data = data.arrays("val")
        validation, val_arrays = None, None
        if val_data is not None:
            val_arrays = _as_arrays(val_data, "val")
            # uint8 images scaled to the model's range batch by batch: no float copy of the split
            validation = array_batches(*val_arrays, batch_size, input_range=contract)
    if input_range is None and _trained_before(model):
        # Before the weights move and before the range is remembered: a model the user trained on
        # [0, 1] or [0, 255] shows it on a few labelled images (validation, else training). A model
        # never fitted is not probed: random weights can "prefer" a range by chance.
        probe_input_range(model, *(val_arrays if val_arrays is not None else (x_train, y_train)))
    setattr(model, RANGE_ATTRIBUTE, contract)
    seed_everything(seed)
    if config.compile_model:
        steps = epochs * math.ceil(len(x_train) / batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    run_path = Path(run_dir) if run_dir is not None else None
    history: list[dict] = []
    start_epoch, best, best_epoch, wait = 0, None, 0, 0
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
        state_file = run_path / "state.json"
        if resume and state_file.exists():
            try:
                state = json.loads(state_file.read_text())
                # Build the optimizer's slots before restoring them.
                model.optimizer.build(model.trainable_variables)
                _checkpoint(model).read(str(run_path / "last" / "ckpt")).expect_partial()
                start_epoch, best, best_epoch, wait = state["epoch"], state["best"], state["best_epoch"], state["wait"]
                history = state["history"]
            except (ValueError, KeyError, TypeError, OSError, tf.errors.OpError) as exc:  # torn by an older run
                warn_user_fmt(
                    ResumeWarning,
                    "%s holds an unreadable training state (%s); training starts over",
                    run_path,
                    " ".join(str(exc).split())[:200] or type(exc).__name__,
                )
                start_epoch, best, best_epoch, wait, history = 0, None, 0, 0, []
            logger.info(
                "resuming %s from epoch %d (best %s %s)",
                run_path,
                start_epoch,
                "val_loss" if validation is not None else "loss",
                best,
            )

    # Validation loss, not accuracy: on a few hundred images accuracy moves in steps and its noise
    # stops training early; the loss is smooth and picks a better-trained epoch.
    monitor = "val_loss" if validation is not None else "loss"
    keeper = _Checkpointer(run_path, history, monitor, patience, best, best_epoch, wait)
    finished = start_epoch >= epochs or (patience and wait >= patience)
    if not finished:
        model.fit(
            _training_pipeline(x_train, y_train, batch_size, seed, augment, contract),
            validation_data=validation,
            epochs=epochs,
            initial_epoch=start_epoch,
            verbose=0,
            callbacks=[keeper, _Progress(epochs, start_epoch, progress, desc)]
            + ([_EpochHook(on_epoch_end)] if on_epoch_end is not None else []),
        )
    if keeper.best_weights is not None:
        model.set_weights(keeper.best_weights)
    elif run_path is not None and (run_path / "best.weights.h5").exists():
        _load_weights(model, run_path / "best.weights.h5")
    frame = pd.DataFrame(history)
    if run_path is not None and not frame.empty:
        with atomic_path(run_path / "history.csv") as tmp:
            frame.to_csv(tmp, index=False)
    accuracy_column = "val_accuracy" if validation is not None else "accuracy"
    best_rows = frame[frame["epoch"] == keeper.best_epoch] if not frame.empty else frame
    best_accuracy = (
        float(best_rows[accuracy_column].iloc[0]) if len(best_rows) and accuracy_column in best_rows else None
    )
    if config.sanity and not frame.empty:
        check_training(model, frame, x_train, y_train, val_arrays, batch_size=batch_size)
    return TrainResult(
        model=model,
        history=frame,
        best_epoch=keeper.best_epoch,
        best_val_accuracy=best_accuracy,
        epochs_run=len(history),
        stopped_early=keeper.stopped_early or bool(patience and wait >= patience),
        resumed_from_epoch=start_epoch,
        run_dir=run_path,
    )


def _training_pipeline(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, augment: bool, input_range: InputRange
) -> tf.data.Dataset:
    """Shuffled (reshuffled each epoch, seeded), model-ready, optionally flipped batches, read from the
    uint8 images (a memory-mapped cache for a folder dataset) a batch at a time."""
    pipeline = array_batches(
        images, labels, batch_size, shuffle=True, seed=seed, prefetch=False, input_range=input_range
    )
    if augment:
        flip = tf.random.Generator.from_seed(seed)

        def random_flip(x, y):
            mirror = flip.uniform([tf.shape(x)[0], 1, 1, 1]) < 0.5
            return tf.where(mirror, tf.reverse(x, axis=[2]), x), y

        pipeline = pipeline.map(random_flip)
    return pipeline.prefetch(tf.data.AUTOTUNE)


def predict_keras(model: keras.Model, images: np.ndarray, batch_size: int = 64, input_range: Any = None) -> np.ndarray:
    """Class probabilities of a Keras model for uint8 images, fed in the range the model takes a chunk at a time."""
    check_keras2_model(model)
    contract = model_input_range(model, input_range)
    chunk = max(batch_size, 512)
    parts = [
        model.predict(contract(images[i : i + chunk]), batch_size=batch_size, verbose=0)
        for i in range(0, len(images), chunk)
    ]
    return np.concatenate(parts) if parts else model.predict(contract(images), verbose=0)


def evaluate_keras(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    batch_size: int = 64,
    input_range: Any = None,
) -> EvalResult:
    """Accuracy, per-class precision/recall and confusion matrix of a Keras model (an ``EvalResult``).

    ``images`` are uint8 pixels; the model gets them in the range it takes (``input_range`` or
    detected, see :mod:`edgelab.preprocess`).
    """
    check_keras2_model(model)
    check_model_fits(model, np.shape(images), num_classes=len(class_names))
    if input_range is None:
        probe_input_range(model, images, labels)
    probs = predict_keras(model, images, batch_size=batch_size, input_range=input_range)
    result = classification_metrics(labels, probs.argmax(axis=1), class_names)
    return result
