"""Single-image latency of any ``.tflite`` model (numpy + a TFLite runtime; no TensorFlow).

Like LiteRT's ``benchmark_model``, a model file is timed with random inputs of each input's dtype
and shape, so detectors, pose models, sequence models and multi-input graphs run as well as
classifiers; a :class:`~edgelab.tflite.runtime.TFLiteModel` (or an explicit ``input`` image) is
timed through its classifier input instead.

Only ``interpreter.invoke()`` is timed: the input is set once, and each timed run is a
``time.perf_counter_ns()`` pair around one ``invoke()``, stored in preallocated lists, so the
harness adds next to nothing over a bare ``invoke()`` loop. The first (cold) inference of a fresh
interpreter is reported on its own, then warm-up runs are discarded, then the run count is sized
so the timed runs last at least ``min_time_s`` (and at least ``runs``, at most ``max_runs``; see :class:`edgelab.TimingOptions`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ModelFileError
from ..records import SKIP, Record
from ..tflite import runtime
from ..tflite.inspection import EDGETPU_CUSTOM_OP, inspect_model, load_model_bytes
from ..tflite.interpreter import compiled_for_edgetpu, describe
from ..tflite.runtime import TFLiteModel
from ..tflite.trust import ensure_checked
from ..tflite.validate import validate_bytes
from .timing import TimingOptions

__all__ = ["LatencyResult", "measure_latency"]

_MS_DIGITS = 4


@dataclasses.dataclass(frozen=True, eq=False)
class LatencyResult(Record):
    """Latency of one model on this machine, in milliseconds.

    Attributes:
        model: the model's file name (``"<bytes>"`` when loaded from bytes).
        runtime: which runtime ran, e.g. ``"litert 2.3.0"``.
        xnnpack: whether XNNPACK ran part of the graph (None when the runtime cannot tell).
        num_threads: interpreter threads.
        delegate: ``"edgetpu[:device]"`` or None on the CPU.
        size_bytes: the .tflite file size.
        load_ms: building the interpreter and allocating its tensors.
        cold_ms: the first ``invoke()`` of the fresh interpreter.
        warmup: warm-up runs discarded after the cold run.
        runs: timed runs.
        p50_ms, p90_ms, p99_ms: percentiles of the timed runs (linear interpolation).
        mean_ms, std_ms, min_ms, max_ms: the other statistics of the timed runs.
        total_s: wall time of the timed runs.
        times_ms: every timed run, in order.
    """

    model: str
    runtime: str
    xnnpack: bool | None
    num_threads: int
    delegate: str | None
    size_bytes: int
    load_ms: float
    cold_ms: float
    warmup: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    total_s: float
    times_ms: np.ndarray = dataclasses.field(repr=False, metadata=SKIP)

    #: ``to_dict`` rounds times (the per-run samples are left out)
    RECORD_DIGITS: ClassVar[int | None] = _MS_DIGITS

    @property
    def throughput(self) -> float:
        """Images per second at the median latency (one image per invoke)."""
        return 1000.0 / self.p50_ms if self.p50_ms > 0 else math.inf

    def __repr__(self) -> str:
        return (
            f"LatencyResult(model={self.model!r}, p50_ms={self.p50_ms:.3f}, p90_ms={self.p90_ms:.3f}, "
            f"p99_ms={self.p99_ms:.3f}, mean_ms={self.mean_ms:.3f}, std_ms={self.std_ms:.3f}, "
            f"cold_ms={self.cold_ms:.3f}, runs={self.runs}, threads={self.num_threads}, "
            f"runtime={self.runtime!r}, xnnpack={self.xnnpack}, size_bytes={self.size_bytes})"
        )


class _AnyModel:
    """A raw interpreter with random inputs of each input's dtype and shape (``benchmark_model``'s way)."""

    delegate = None

    def __init__(self, source: str | Path | bytes, num_threads: int, use_xnnpack: bool, trusted: bool = False):

        try:
            loaded = runtime.load_interpreter_info(source, num_threads, use_xnnpack=use_xnnpack, trusted=trusted)
        except ModelFileError as exc:
            raise _custom_op_error(source, exc) from None
        self.interpreter, self.runtime, self.xnnpack = loaded.interpreter, loaded.runtime, loaded.xnnpack
        self.num_threads, self.size_bytes = num_threads, len(loaded.model_bytes)
        rng = np.random.default_rng(0)
        for detail in self.interpreter.get_input_details():
            self.interpreter.set_tensor(
                detail["index"], _random_tensor(rng, detail["shape"], np.dtype(detail["dtype"]))
            )


def _check_once(source: str | Path | bytes, use_xnnpack: bool) -> None:
    """Validate a file and, when edgelab has not seen its bytes, load it once in a child process."""

    data, path = load_model_bytes(source)
    validate_bytes(data, path)
    if os.environ.get("EDGELAB_XNNPACK") == "0":
        use_xnnpack = False
    if not compiled_for_edgetpu(data):
        ensure_checked(data, describe(source), path, use_xnnpack)


def _random_tensor(rng: np.random.Generator, shape: Any, dtype: np.dtype) -> np.ndarray:
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 255) + 1, shape).astype(dtype)
    return rng.uniform(-1.0, 1.0, shape).astype(dtype)


def _custom_op_error(source: str | Path | bytes, exc: ModelFileError) -> ModelFileError:
    """Name the custom op a runtime cannot resolve, and how such models are run."""

    try:
        custom = [op for op in inspect_model(source).custom_ops if op != EDGETPU_CUSTOM_OP]
    except ModelFileError:
        custom = []
    if not custom or "custom op" not in str(exc).lower():
        return exc
    return ModelFileError(
        f"{exc} -- the model uses the custom op {', '.join(map(repr, custom))}, which this TFLite runtime does not "
        "provide. Such models run with the library that registers the op (Coral's PosenetDecoderOp: "
        "posenet_decoder.so from google-coral/project-posenet, passed to the interpreter as a delegate via "
        "load_delegate('posenet_decoder.so')); time the graph without it, or benchmark on a build that has it."
    )


def measure_latency(
    model: TFLiteModel | str | Path | bytes,
    *,
    timing: TimingOptions | None = None,
    use_xnnpack: bool = True,
    input: np.ndarray | None = None,
    trusted: bool = False,
    **options: Any,
) -> LatencyResult:
    """Time single-image ``invoke()`` on a fresh interpreter.

    Args:
        model: a :class:`edgelab.tflite.runtime.TFLiteModel` (its bytes and delegate are reused; its own
            interpreter is not touched) or the path/bytes of a .tflite file.
        timing: a :class:`edgelab.TimingOptions`: ``warmup`` runs after the cold one that are not
            timed; timed runs until ``min_time_s`` has passed and at least ``runs`` are done, at most
            ``max_runs``; ``num_threads`` interpreter threads.
        use_xnnpack: allow LiteRT's XNNPACK delegate.
        input: one raw uint8 image ``(H, W, 3)`` to feed through the classifier input; default:
            fixed random values of each input's dtype and shape (any model).
        trusted: skip the one-time child-process load of a file edgelab has not seen before
            (:mod:`edgelab.tflite.trust`); it runs before the timed load either way.
        **options: fields of :class:`edgelab.TimingOptions` (``min_time_s=0.2``, ``runs=50``,
            ``num_threads=4``, ...), replacing ``timing``'s.

    Returns:
        A :class:`LatencyResult`.

    Raises:
        ConfigError: invalid counts or input. ModelFileError: the model cannot be loaded.
    """
    opts = TimingOptions.resolve(timing, options)
    warmup, min_runs, max_runs, min_time_s = opts.warmup, opts.runs, opts.run_cap, opts.min_time_s
    num_threads = opts.num_threads if opts.num_threads is not None else 1

    source: str | Path | bytes
    if isinstance(model, TFLiteModel):
        name = model.path.name if model.path is not None else "<bytes>"
        source, delegate = model.model_bytes, model.delegate
    elif isinstance(model, (bytes, bytearray, memoryview)):
        name, source, delegate = "<bytes>", bytes(model), None
    else:
        name, source, delegate = Path(model).name, model, None

    if not trusted and not isinstance(model, TFLiteModel):  # the one-time child check, outside the timed load
        try:
            _check_once(source, use_xnnpack)
        except ModelFileError as exc:
            raise _custom_op_error(source, exc) from None
    clock = time.perf_counter_ns
    t0 = clock()
    if input is None and not isinstance(model, TFLiteModel):
        fresh: Any = _AnyModel(source, num_threads, use_xnnpack, trusted=True)
    else:
        fresh = TFLiteModel(
            source, num_threads=num_threads, delegate=delegate, use_xnnpack=use_xnnpack, batching=False, trusted=True
        )
        image = np.random.default_rng(0).integers(0, 256, fresh.image_shape, np.uint8) if input is None else input
        fresh.set_input(np.asarray(image))
    load_ms = (clock() - t0) / 1e6
    invoke = fresh.interpreter.invoke

    t0 = clock()
    invoke()
    cold_ns = clock() - t0

    t0 = clock()
    for _ in range(warmup):
        invoke()
    per_run_ns = (clock() - t0) / warmup if warmup else cold_ns

    # Timestamps go into lists grown before each round, so the timed loop only calls the clock,
    # invoke() and stores two ints. A round is sized from the last per-run estimate; another round
    # runs only when that estimate was short of min_time_s.
    starts: list[int] = []
    ends: list[int] = []
    done = 0
    min_time_ns = min_time_s * 1e9
    began = clock()
    while True:
        remaining_ns = min_time_ns - (clock() - began)
        want = max(min_runs - done, math.ceil(remaining_ns / max(per_run_ns, 1.0)), 1)
        stop = min(done + want, max_runs)
        starts.extend([0] * (stop - done))
        ends.extend([0] * (stop - done))
        for i in range(done, stop):
            starts[i] = clock()
            invoke()
            ends[i] = clock()
        # Re-estimate from what was measured, in case the warm-up estimate was off.
        per_run_ns = (ends[stop - 1] - starts[done]) / (stop - done)
        done = stop
        if done >= max_runs or (done >= min_runs and clock() - began >= min_time_ns):
            break
    total_s = (clock() - began) / 1e9

    times_ms = (np.asarray(ends, np.int64) - np.asarray(starts, np.int64)) / 1e6
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    return LatencyResult(
        model=name,
        runtime=fresh.runtime,
        xnnpack=fresh.xnnpack,
        num_threads=fresh.num_threads,
        delegate=fresh.delegate,
        size_bytes=fresh.size_bytes,
        load_ms=float(load_ms),
        cold_ms=cold_ns / 1e6,
        warmup=warmup,
        runs=done,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(times_ms.mean()),
        std_ms=float(times_ms.std()),
        min_ms=float(times_ms.min()),
        max_ms=float(times_ms.max()),
        total_s=float(total_s),
        times_ms=times_ms,
    )
