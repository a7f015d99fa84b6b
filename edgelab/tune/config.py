"""``TuneConfig``: how :func:`edgelab.tune` runs its search (light: no Optuna)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._config import Options, set_field
from ..errors import ConfigError, check_int


@dataclass(frozen=True)
class TuneConfig(Options):
    """How many trials run, how each is trained, and where the study lives; checked once, when it is made.

    Args:
        trials: Trials one call runs (0: only report the study). With a shared storage each worker
            runs its own ``trials``.
        epochs: Maximum training epochs per trial (unless the space searches epochs).
        batch_size: Training batch size.
        seed: Seeds the sampler and training (None: a fresh random seed per worker).
        storage: ``None`` (a journal file in ``run_dir``), ``journal:PATH``, ``sqlite:///PATH``,
            ``postgresql://...`` or ``mysql://...`` (see :mod:`edgelab.tune.storage`).
        study: The study name (default ``edgelab``); an existing study is continued.
        run_dir: The run folder: the default storage and every trial's files.
        pruner: An Optuna pruner that reads intermediate values (default
            ``MedianPruner(n_startup_trials=2, n_warmup_steps=2)``); ``optuna.pruners.NopPruner()``
            disables pruning.
    """

    trials: int = 20
    epochs: int = 6
    batch_size: int = 32
    seed: int | None = 0
    storage: str | None = None
    study: str | None = None
    run_dir: str | os.PathLike = "runs/tune"
    pruner: Any = None

    def __post_init__(self) -> None:
        set_field(self, "trials", check_int("trials", self.trials, minimum=0))
        set_field(self, "epochs", check_int("epochs", self.epochs))
        set_field(self, "batch_size", check_int("batch_size", self.batch_size))
        set_field(self, "seed", check_int("seed", self.seed, minimum=0, allow_none=True))
        for name in ("storage", "study"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ConfigError(f"Expected {name} to be a non-empty string or None. Received: {name}={value!r}")
        if not isinstance(self.run_dir, (str, os.PathLike)) or not str(self.run_dir):
            raise ConfigError(f"Expected run_dir to be a folder path. Received: run_dir={self.run_dir!r}")
        if self.pruner is not None and not callable(getattr(self.pruner, "prune", None)):
            raise ConfigError(f"Expected pruner to be an Optuna pruner. Received: pruner={self.pruner!r}")
