"""Find the model that fits: an Edge TPU-aware search on Optuna.

``tune(data, budget_ms=..., link="usb3")`` (or ``tune(data, Constraints(...), config=TuneConfig(...))``) samples candidates (architecture, width, input size,
optionally learning rate and epochs, or your own builder), rejects before training those that
cannot fit the Edge TPU (every op mapped or at most K on the CPU, parameters on chip, file size,
latency budget: :mod:`edgelab.tune.prescreen`), trains the rest with pruning, and scores the int8
file's validation accuracy against the estimated Edge TPU latency. Studies live in Optuna
storages (:mod:`edgelab.tune.storage`), so workers on several processes or machines share one.
"""

import sys
import types
from typing import Any

from .config import TuneConfig
from .prescreen import Constraints, Screen, prescreen, screen_file
from .result import TrialRecord, TuneResult
from .search import collect, resize_images, tune
from .space import SearchSpace, describe
from .storage import open_storage

__all__ = [
    "Constraints",
    "Screen",
    "SearchSpace",
    "TrialRecord",
    "TuneConfig",
    "TuneResult",
    "collect",
    "describe",
    "open_storage",
    "prescreen",
    "resize_images",
    "screen_file",
    "tune",
]


class _CallableModule(types.ModuleType):
    """``el.tune(...)`` runs the search whether ``el.tune`` resolves to this package or to the function
    (importing ``edgelab.tune`` first binds the package to that name)."""

    def __call__(self, *args: Any, **kwargs: Any) -> TuneResult:
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
