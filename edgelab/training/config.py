"""``TrainConfig``: how :func:`edgelab.train` and :func:`edgelab.quantize_aware` fit a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._config import Options, check_bool, set_field
from ..errors import check_int, check_number
from ..preprocess import as_input_range


@dataclass(frozen=True)
class TrainConfig(Options):
    """How a model is fitted; checked once, when it is made.

    Args:
        epochs: Maximum number of epochs.
        batch_size: Batch size.
        learning_rate: Adam learning rate (cosine-decayed over ``epochs``).
        patience: Epochs without validation-loss improvement before stopping; 0 disables early stopping.
            The weights of the epoch with the lowest validation loss are restored.
        seed: Seed for weights init order, shuffling and dropout.
        augment: Flip training images left-right at random (scenes look alike mirrored); done in the
            input pipeline, so the model itself stays free of augmentation layers.
        resume: Continue from the checkpoint in ``run_dir`` when one exists.
        compile_model: Compile with Adam + sparse categorical cross-entropy (off to keep your own compile).
        sanity: After training, warn when the model looks broken (chance-level validation accuracy,
            one class predicted, validation loss stuck at chance) and name the likely causes.
        input_range: The pixels the model takes, e.g. ``(0, 255)``; default: detected (see
            :mod:`edgelab.preprocess`). Remembered on the model for evaluation and conversion.

    Example::

        config = TrainConfig(epochs=30, learning_rate=1e-3)
        el.train(model, ds, config=config, seed=1)   # keyword arguments replace the config's fields
    """

    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 2e-3
    patience: int = 4
    seed: int = 0
    augment: bool = True
    resume: bool = True
    compile_model: bool = True
    sanity: bool = True
    input_range: Any = None

    def __post_init__(self) -> None:
        set_field(self, "epochs", check_int("epochs", self.epochs))
        set_field(self, "batch_size", check_int("batch_size", self.batch_size))
        set_field(self, "learning_rate", check_number("learning_rate", self.learning_rate, minimum=0, min_open=True))
        set_field(self, "patience", check_int("patience", self.patience, minimum=0))
        set_field(self, "seed", check_int("seed", self.seed, minimum=0))
        for name in ("augment", "resume", "compile_model", "sanity"):
            set_field(self, name, check_bool(name, getattr(self, name)))
        if self.input_range is not None:
            set_field(self, "input_range", as_input_range(self.input_range))


#: :func:`edgelab.quantize_aware`'s defaults: a few epochs at a small learning rate (the weights start trained).
QAT_CONFIG = TrainConfig(epochs=3, learning_rate=2e-5, patience=2)
