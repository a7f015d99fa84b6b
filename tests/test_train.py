"""Training: learning, early stopping with best-weights restore, history, checkpoints and resume, seeds."""

from __future__ import annotations

import json

import _tiny
import numpy as np
import pandas as pd
import pytest

from edgelab.data.datasets import Dataset
from edgelab.errors import ConfigError
from edgelab.preprocess import normalize
from edgelab.training.fit import evaluate_keras, seed_everything, train

SIZE = 8


def fresh_model(seed: int = 0, num_classes: int = 3):
    seed_everything(seed)
    return _tiny.small_cnn(SIZE, num_classes)


def val_loss_and_accuracy(model, images, labels, batch_size: int) -> tuple[float, float]:
    loss, accuracy = model.evaluate(normalize(images), labels, batch_size=batch_size, verbose=0)
    return loss, accuracy


#: The same weights evaluated in other batch groupings (training's batches vs 8 here): the float32 mean
#: of 16 per-image losses and each image's sums (at most 27 terms in the conv) round in another order,
#: (16 + 27) * 2**-24 = 2.6e-6 relative; 1e-4 relative and 1e-5 absolute bound it with room.
LOSS = {"rel": 1e-4, "abs": 1e-5}


def same_accuracy(model, images, labels, accuracy: float, reference: float) -> bool:
    """Two evaluations of one model agree, but for images at a float32 near tie (see _tiny.near_ties)."""
    probs = model.predict(normalize(images), verbose=0)
    return abs(round((accuracy - reference) * len(labels))) <= _tiny.near_ties(probs)


@pytest.fixture(scope="module")
def flipped():
    """Two colours; validation labels are swapped, so the validation loss only rises as the model learns."""
    x, y = _tiny.colour_task(16, SIZE, num_classes=2, seed=1)
    xv, yv = _tiny.colour_task(8, SIZE, num_classes=2, seed=2)
    return (x, y), (xv, 1 - yv)


def test_tiny_run_learns_an_easy_task_well_above_chance():
    images, labels = _tiny.colour_task(30, SIZE, num_classes=3, seed=0)
    data = Dataset.from_arrays(images, labels, ["red", "green", "blue"], seed=0)
    model = fresh_model()
    result = train(model, data, epochs=12, batch_size=16, learning_rate=0.03, patience=0, progress=False)

    # A Dataset's own val split drives early stopping and shows up in the history.
    assert list(result.history.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert result.history["epoch"].tolist() == list(range(1, 13))
    assert result.epochs_run == 12 and not result.stopped_early
    # The best epoch is the one with the lowest validation loss; its accuracy is reported.
    best = result.history.loc[result.history["val_loss"].idxmin()]
    assert result.best_epoch == best["epoch"]
    assert result.best_val_accuracy == pytest.approx(best["val_accuracy"])
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]

    test_images, test_labels = data.arrays("test")
    evaluation = evaluate_keras(result.model, test_images, test_labels, data.class_names)
    assert evaluation.accuracy >= 0.9  # chance is 1/3; the colours (noise +-40) are separable: 10% wrong at most
    assert evaluation.confusion.shape == (3, 3)
    assert evaluation.confusion.sum() == len(test_labels)


def test_early_stopping_restores_the_best_weights(flipped):
    train_data, val_data = flipped
    model = fresh_model()
    result = train(model, train_data, val_data, epochs=30, batch_size=8, learning_rate=0.02, patience=2, progress=False)

    history = result.history
    assert result.stopped_early
    assert result.epochs_run == len(history) < 30
    assert result.best_epoch == result.epochs_run - 2  # stopped `patience` epochs after the best one
    best = history.iloc[result.best_epoch - 1]
    assert best["val_loss"] == history["val_loss"].min()
    assert result.best_val_accuracy == best["val_accuracy"]

    # The returned model is the best epoch's, not the last one's.
    last = history.iloc[-1]
    assert abs(last["val_loss"] - best["val_loss"]) > 1e-3, "weights did not change after the best epoch"
    loss, accuracy = val_loss_and_accuracy(result.model, *val_data, batch_size=8)
    assert loss == pytest.approx(best["val_loss"], **LOSS)
    assert same_accuracy(result.model, *val_data, accuracy, best["val_accuracy"])


def test_resume_after_interruption_continues_from_the_checkpoint(flipped, tmp_path):
    train_data, val_data = flipped
    run_dir = tmp_path / "run"
    steps = int(np.ceil(len(train_data[1]) / 8))
    kwargs = dict(batch_size=8, learning_rate=0.02, patience=0, run_dir=run_dir, progress=False)

    first = train(fresh_model(0), train_data, val_data, epochs=2, **kwargs)
    assert first.resumed_from_epoch == 0
    assert (run_dir / "state.json").exists() and (run_dir / "history.csv").exists()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 2

    # A new process would build a new model object (here with other initial weights) and call again.
    model = fresh_model(7)
    second = train(model, train_data, val_data, epochs=4, **kwargs)
    assert second.resumed_from_epoch == 2
    assert second.epochs_run == 4
    assert second.history["epoch"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(second.history.iloc[:2], first.history)
    assert len(pd.read_csv(run_dir / "history.csv")) == 4
    # The optimizer state came back too: its step counter continued from the checkpoint.
    assert int(model.optimizer.iterations.numpy()) == 4 * steps

    # The validation loss only rises here, so the best epoch is the first one, from before the
    # interruption: the resumed run must hand back those weights, not the checkpoint's last ones.
    assert second.best_epoch == 1
    best = second.history.iloc[0]
    loss, _ = val_loss_and_accuracy(second.model, *val_data, batch_size=8)
    assert abs(second.history.iloc[1]["val_loss"] - best["val_loss"]) > 1e-3
    assert loss == pytest.approx(best["val_loss"], **LOSS)

    # Calling again once finished trains nothing and still returns the best weights.
    third = train(fresh_model(9), train_data, val_data, epochs=4, **kwargs)
    assert third.resumed_from_epoch == 4 and third.epochs_run == 4
    loss, _ = val_loss_and_accuracy(third.model, *val_data, batch_size=8)
    assert loss == pytest.approx(best["val_loss"], **LOSS)

    # resume=False starts over in the same folder.
    again = train(fresh_model(), train_data, val_data, epochs=1, resume=False, **kwargs)
    assert again.resumed_from_epoch == 0
    assert again.history["epoch"].tolist() == [1]
    assert len(pd.read_csv(run_dir / "history.csv")) == 1


def test_identical_seeded_calls_give_identical_results():
    data = _tiny.colour_task(12, SIZE, num_classes=3, seed=3)
    runs = [train(fresh_model(5), data, epochs=2, batch_size=8, seed=5, progress=False) for _ in range(2)]

    # Without validation data the history has the training metrics only.
    assert list(runs[0].history.columns) == ["epoch", "loss", "accuracy"]
    pd.testing.assert_frame_equal(runs[0].history, runs[1].history)
    for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(a, b)

    other = train(fresh_model(5), data, epochs=2, batch_size=8, seed=6, progress=False)
    assert not np.allclose(other.history["loss"], runs[0].history["loss"])

    # The result prints rounded and the same way every time (notebook outputs stay stable).
    assert repr(runs[0]) == repr(runs[1])
    assert repr(runs[0]).startswith("TrainResult(epochs_run=2, best_epoch=")
    assert runs[0].to_dict()["run_dir"] is None
    assert runs[0].to_dict()["best_val_accuracy"] == round(runs[0].best_val_accuracy, 4)


@pytest.mark.parametrize(
    "kwargs, echoed",
    [
        ({"epochs": 0}, "epochs=0"),
        ({"epochs": 2.5}, "epochs=2.5"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"data": (np.zeros((4, 8, 8), np.uint8), np.zeros(4))}, "images.shape=(4, 8, 8)"),
        ({"data": (np.zeros((4, 8, 8, 3), np.uint8), np.zeros(3))}, "len(labels)=3"),
        ({"data": "images/"}, "Received: str"),
    ],
)
def test_bad_arguments_raise_config_error_echoing_the_value(kwargs, echoed):
    data = kwargs.pop("data", _tiny.colour_task(2, SIZE))
    with pytest.raises(ConfigError) as info:
        train(_tiny.small_cnn(SIZE), data, progress=False, **kwargs)
    assert "Expected" in str(info.value)
    assert echoed in str(info.value)
