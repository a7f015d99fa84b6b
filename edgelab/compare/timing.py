"""``TimingOptions``: how :func:`edgelab.measure_latency`, :func:`edgelab.run_comparison` and
:func:`edgelab.device.bench` time a model (light: no TensorFlow, no runtime)."""

from __future__ import annotations

from dataclasses import dataclass

from .._config import Options, set_field
from ..errors import check_int, check_number
from ..tflite.interpreter import MAX_THREADS

#: Timed inferences at most, unless ``max_runs`` or a larger ``runs`` says otherwise.
MAX_RUNS = 10_000

#: Longest ``min_time_s`` accepted: an hour of timed runs per model.
MAX_MIN_TIME_S = 3600.0


@dataclass(frozen=True)
class TimingOptions(Options):
    """How many inferences are timed, for how long, on how many threads; checked once, when it is made.

    A run is ``warmup`` untimed inferences, then timed ones until both ``runs`` of them are done and
    ``min_time_s`` has passed, never more than ``max_runs``.

    Args:
        warmup: Untimed inferences after the first (cold) one.
        runs: Timed inferences, at least.
        max_runs: Timed inferences, at most (ends a run that ``min_time_s`` would make longer); None:
            :data:`MAX_RUNS`, or ``runs`` when that is more (see :attr:`run_cap`).
        min_time_s: Seconds of timed inferences, at least (0 to 3600).
        num_threads: Interpreter threads (1 to 256); None: the runtime's default (on a device), 1 here.
    """

    warmup: int = 5
    runs: int = 20
    max_runs: int | None = None
    min_time_s: float = 1.0
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        set_field(self, "warmup", check_int("warmup", self.warmup, minimum=0))
        set_field(self, "runs", check_int("runs", self.runs))
        set_field(self, "max_runs", check_int("max_runs", self.max_runs, minimum=self.runs, allow_none=True))
        min_time_s = check_number("min_time_s", self.min_time_s, minimum=0, maximum=MAX_MIN_TIME_S, unit="seconds")
        set_field(self, "min_time_s", min_time_s)
        set_field(self, "num_threads", check_int("num_threads", self.num_threads, maximum=MAX_THREADS, allow_none=True))

    @property
    def run_cap(self) -> int:
        """The most timed inferences a run makes: ``max_runs``, else :data:`MAX_RUNS` or ``runs`` if more."""
        return self.max_runs if self.max_runs is not None else max(MAX_RUNS, self.runs)
