"""Build every precision of one model and measure each converted file: one table to decide from.

``compare`` converts a trained Keras model (and its quantization-aware twin) to every precision,
evaluates each .tflite file on the same test images, benchmarks it, predicts what the Edge TPU
compiler would map, and returns a pandas DataFrame. A variant that fails at any step is a row with
``status="failed"`` and a ``reason``; it never loses the other rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._config import Options, set_field, split_options
from .._keras import check_keras2_model
from .._log import logger, progress_scope, tqdm, warn_user_fmt
from ..edgetpu.energy import estimate_energy
from ..edgetpu.latency import estimate_latency
from ..edgetpu.verdict import edgetpu_verdict
from ..enums import StrEnum
from ..errors import ConfigError, PartialResultWarning, did_you_mean
from ..metrics import classification_metrics
from ..precision import REPAIRED, Precision
from ..preprocess import as_input_range, set_input_range
from ..tflite.config import ConversionConfig
from ..tflite.inspection import inspect_model
from ..tflite.runtime import TFLiteModel
from ..training.range_probe import probe_input_range
from ..training.sanity import check_float_model
from ..training.shapes import check_model_fits
from .benchmark import LatencyResult, measure_latency
from .evaluate import EvalResult, evaluate_model
from .timing import TimingOptions

if TYPE_CHECKING:
    from .._keras import keras
    from ..edgetpu.mapping import EdgeTPUMapping
    from ..tflite.conversion import ConvertedModel


class VariantStatus(StrEnum):
    """Whether a variant was measured. A ``str`` enum: tables, CSV and JSON keep the text."""

    OK = "ok"
    FAILED = "failed"


#: Columns of the comparison table, in order.
COLUMNS = (
    "precision",
    "status",
    "reason",
    "size_bytes",
    "size_ratio",
    "accuracy",
    "delta_accuracy",
    "agreement",
    "flipped",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "latency_ratio",
    "macs",
    "edgetpu_ops",
    "edgetpu_source",
    "edgetpu_usb3_ms",
    "edgetpu_usb3_mj",
    "runtime",
    "xnnpack",
    "path",
)
#: How :func:`run_comparison` times each file unless told otherwise.
DEFAULT_TIMING = TimingOptions(min_time_s=0.5)

#: Columns ``run_comparison(..., device=...)`` adds: the same files measured on a device (edgelab.device).
DEVICE_COLUMNS = ("device_p50_ms", "device_accuracy", "device_agreement")


@dataclass(frozen=True)
class VariantResult:
    """Everything measured for one precision (fields are None where a step failed)."""

    precision: Precision
    status: VariantStatus
    reason: str | None = None
    model: ConvertedModel | None = field(default=None, repr=False)
    evaluation: EvalResult | None = field(default=None, repr=False)
    latency: LatencyResult | None = field(default=None, repr=False)
    macs: int | None = None
    edgetpu: EdgeTPUMapping | None = field(default=None, repr=False)  # its .report explains each op

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", VariantStatus(self.status))

    def __repr__(self) -> str:
        acc = "None" if self.evaluation is None else f"{self.evaluation.accuracy:.4f}"
        return f"VariantResult(precision={self.precision.value!r}, status={self.status.value!r}, accuracy={acc})"


@dataclass(frozen=True)
class Comparison:
    """The comparison table plus the per-variant details behind it (for plots and explorers)."""

    table: pd.DataFrame = field(repr=False)
    variants: dict = field(repr=False)
    float_evaluation: Any = field(repr=False)
    class_names: tuple[str, ...]
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    #: Sanity warnings about the float model (chance-level accuracy, one class predicted), with causes.
    sanity: tuple[str, ...] = ()
    #: For ``repair=[...]`` rows: the :class:`edgelab.training.equalize.Repair` behind each (pairs, float difference).
    repairs: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        ok = [p.value for p, v in self.variants.items() if v.status is VariantStatus.OK]
        failed = [p.value for p, v in self.variants.items() if v.status is not VariantStatus.OK]
        flagged = f", sanity_warnings={len(self.sanity)}" if self.sanity else ""
        return (
            f"Comparison(float_accuracy={self.float_evaluation.accuracy:.4f}, ok={ok}, failed={failed}, "
            f"test_images={len(self.test_labels)}{flagged})"
        )

    @property
    def float_accuracy(self) -> float:
        return float(self.float_evaluation.accuracy)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def evaluation(self, precision: Precision | str):
        """The :class:`edgelab.compare.evaluate.EvalResult` of one precision (None if it failed)."""
        return self.variants[Precision.parse(precision)].evaluation


def _split_arrays(data: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "arrays"):
        return data.arrays(split)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1]).astype(np.int64)
    raise ConfigError(f"Expected an edgelab Dataset or an (images, labels) pair. Received: {type(data).__name__}")


def _edgetpu_verdict(path: Path):
    """The real compiler's op counts when it is installed, else the offline prediction."""
    return edgetpu_verdict(path)


def _edgetpu_estimates(path: Path) -> tuple[float | None, float | None]:
    """Estimated Edge TPU time (ms) and energy (mJ, see edgelab.edgetpu.energy) per inference over USB 3."""
    try:
        latency = estimate_latency(path)
        return latency.ms["usb3"], estimate_energy(latency).mj["usb3"]
    except Exception as exc:  # advisory columns: never lose the row for them
        warn_user_fmt(PartialResultWarning, "Edge TPU latency estimate of %s failed: %s", Path(path).name, exc)
        return None, None


def _measure(variant_model, precision, test_images, test_labels, class_names, reference, timing, progress, scores=None):
    runtime_model = variant_model.load(num_threads=timing.num_threads or 1)
    if scores is None:
        evaluation = _evaluate(runtime_model, test_images, test_labels, class_names, reference, progress)
    else:  # computed already (see _all_scores): the same interpreter settings, the same scores
        evaluation = classification_metrics(test_labels, scores, class_names, reference, predictions=scores)
    latency = measure_latency(runtime_model, timing=timing)
    macs = inspect_model(variant_model.path).macs
    try:
        verdict = _edgetpu_verdict(variant_model.path)
    except Exception as exc:  # the Edge TPU column is advisory: never lose the row for it
        warn_user_fmt(PartialResultWarning, "Edge TPU analysis of %s failed: %s", variant_model.path.name, exc)
        verdict = None
    return VariantResult(precision, VariantStatus.OK, None, variant_model, evaluation, latency, macs, verdict)


def _eval_workers() -> int:
    """Interpreters that evaluate at the same time: one per CPU this process may use (at most 4)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _all_scores(converted: dict, images: np.ndarray, num_threads: int, workers: int) -> dict:
    """``{precision: scores}`` of every converted file on ``images``, several interpreters at once.

    Each file's images are cut into ``workers`` runs of whole batches (multiples of the runner's 32),
    each run on its own interpreter with the same settings, on a thread of its own: LiteRT releases
    the GIL inside ``invoke()``, so the runs use as many cores. An image's scores do not depend on
    which interpreter ran it (the same file, threads and batches), so the table is the one a single
    interpreter gives; the latency is still timed alone, after this. A file that fails here is left
    out and evaluated (and reported) the ordinary way.
    """
    step = 32 * max(1, math.ceil(len(images) / (32 * workers)))
    cuts = [(start, min(start + step, len(images))) for start in range(0, len(images), step)]
    jobs = []
    for precision, model in converted.items():
        try:
            first = model.load(num_threads=num_threads)  # kept for the latency; checks the file once
            runners = [first] + [
                TFLiteModel(model.path, labels=list(model.labels), num_threads=num_threads, trusted=True)
                for _ in cuts[1:]
            ]
        except Exception as exc:
            logger.debug("%s: evaluated on its own (%s)", precision.value, exc)
            continue
        jobs += [(precision, i, runner) for i, runner in enumerate(runners)]

    def run(job):
        _, i, runner = job
        start, stop = cuts[i]
        return runner.predict(images[start:stop], progress=False)

    parts: dict = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [(job[0], pool.submit(run, job)) for job in jobs]
        failed = set()
        for precision, future in futures:
            try:
                parts.setdefault(precision, []).append(future.result())
            except Exception as exc:
                logger.debug("%s: evaluated on its own (%s)", precision.value, exc)
                failed.add(precision)
    return {p: np.concatenate(chunks) for p, chunks in parts.items() if p not in failed}


def _evaluate(runtime_model, images, labels, class_names, reference, progress):
    return evaluate_model(
        runtime_model, images, labels, class_names=class_names, reference_pred=reference, progress=progress
    )


def _data_summary(value: Any) -> str:
    """A short stand-in for data in a repr: ``(images (N, H, W, 3), labels (N,))`` or the type's name."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"(images {np.shape(value[0])}, labels {np.shape(value[1])})"
    if isinstance(value, np.ndarray):
        return f"images {value.shape}"
    return type(value).__name__


@dataclass(frozen=True, repr=False)
class ComparisonOptions(Options):
    """What :func:`run_comparison` measures on and adds beside the conversion; checked once, when made.

    ``run_comparison`` takes these as keyword arguments (``repair=["equalize"]``, ``test_data=(x, y)``).

    Args:
        test_data: ``(images, labels)`` or a Dataset to evaluate on (default: the Dataset's test split).
        calibration: Representative data (default: the Dataset).
        class_names: Class names (default: the Dataset's).
        input_range: The pixels the model takes, e.g. ``(0, 255)``; default: detected (see
            :mod:`edgelab.preprocess`).
        repair: Repairs of the float model (``"equalize"``, ``"bias_correction"``; see
            :mod:`edgelab.training.equalize`), each adding an int8 row of the repaired model, cumulatively.
        device: An :class:`edgelab.device.Device`: every converted file also runs there.
    """

    test_data: Any = None
    calibration: Any = None
    class_names: Sequence[str] | None = None
    input_range: Any = None
    repair: Sequence[str] = ()
    device: Any = None

    def __post_init__(self) -> None:
        if self.class_names is not None:
            names = list(self.class_names)  # a string is its characters, as labels are elsewhere
            if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
                raise ConfigError(f"Expected class_names to be distinct strings. Received: class_names={names!r}")
            set_field(self, "class_names", tuple(names))
        if self.input_range is not None:
            set_field(self, "input_range", as_input_range(self.input_range))
        steps = [self.repair] if isinstance(self.repair, str) else list(self.repair)
        if not all(isinstance(r, str) and r for r in steps):
            raise ConfigError(f"Expected repair to be repair names, e.g. ['equalize']. Received: repair={steps!r}")
        set_field(self, "repair", tuple(steps))
        if self.device is not None and not hasattr(self.device, "bench_variants"):
            raise ConfigError(
                "Expected device to be an edgelab.device.Device (el.device.Device('user@host')). "
                f"Received: device={self.device!r}"
            )

    def __repr__(self) -> str:
        shown = [
            f"{f}={_data_summary(getattr(self, f))}"
            if f in ("test_data", "calibration")
            else f"{f}={getattr(self, f)!r}"
            for f in ("test_data", "calibration", "class_names", "input_range", "repair", "device")
            if getattr(self, f) not in (None, ())
        ]
        return f"ComparisonOptions({', '.join(shown)})"


def run_comparison(
    model: keras.Model,
    data: Any,
    *,
    out_dir: str | Path,
    qat_model: keras.Model | None = None,
    config: ConversionConfig | None = None,
    timing: TimingOptions | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Comparison:
    """Convert, evaluate and benchmark every precision of ``model``; keep the details.

    Args:
        model: The trained float tf_keras model.
        data: An edgelab Dataset (train split calibrates, test split evaluates) or, with
            ``test_data`` and ``calibration`` given, anything else.
        out_dir: Where the .tflite files and ``labels.txt`` go.
        qat_model: The quantization-aware model, adding the ``qat_int8`` row.
        config: A :class:`edgelab.tflite.ConversionConfig`: which precisions (default: all convertible
            ones), I/O type of integer models, calibration samples, ``keep_float`` (layers kept in float,
            adding the ``mixed_int8`` row, see :mod:`edgelab.diagnose`), reuse of the .tflite files in
            ``out_dir`` (an interrupted run resumes).
        timing: A :class:`edgelab.TimingOptions` for the latency of each file (default: at least 0.5 s
            and 20 runs); its ``num_threads`` (default 1) also runs the evaluation, on as many
            interpreters at once as the CPUs hold (up to 4; each file's latency is timed alone).
        progress: Show progress bars.
        **options: Fields of :class:`edgelab.tflite.ConversionConfig` (``precisions=["int8"]``,
            ``reuse=True``, ...) and of :class:`edgelab.TimingOptions` (``num_threads=2``,
            ``min_time_s=0.2``, ...), replacing ``config``'s and ``timing``'s, and of
            :class:`ComparisonOptions` (below).

    Keyword options of :class:`ComparisonOptions`:
        test_data: ``(images, labels)`` to evaluate on (default: the Dataset's test split).
        calibration: Representative data (default: the Dataset).
        class_names: Class names (default: the Dataset's).
        input_range: The pixels ``model`` takes, e.g. ``(0, 255)``; default: detected (see :mod:`edgelab.preprocess`).
        repair: Repairs of the float model (``"equalize"``, ``"bias_correction"``; see
            :mod:`edgelab.training.equalize`), each adding an int8 row of the repaired model, cumulatively
            (``["equalize", "bias_correction"]`` adds ``int8+eq`` and ``int8+eq+bc``), measured like any
            other row, Edge TPU mapping included. ``Comparison.repairs`` keeps what each repair did.
        device: An :class:`edgelab.device.Device` (``el.device.Device("pi@raspberrypi")``): every converted
            file also runs there on the same test images, adding the :data:`DEVICE_COLUMNS` (latency p50 on
            the device, accuracy there, top-1 agreement with this machine's run of the same file).

    The float model is checked first (:mod:`edgelab.training.sanity`): chance-level accuracy or one
    dominant class is warned about, with likely causes, and kept in ``Comparison.sanity``.
    """
    # deferred: TensorFlow (converting and the float model's predictions need it; the rest of this module does not)
    from ..tflite.conversion import ConversionFailure, convert_all
    from ..training.fit import predict_keras

    conversion_options, timing_options, comparison_options = split_options(
        options, ConversionConfig, TimingOptions, ComparisonOptions
    )
    cfg = ConversionConfig.resolve(config, conversion_options)
    timed = TimingOptions.resolve(timing, timing_options, default=DEFAULT_TIMING)
    more = ComparisonOptions.resolve(None, comparison_options)
    test_data, calibration, class_names = more.test_data, more.calibration, more.class_names
    input_range, repair, device = more.input_range, more.repair, more.device
    names = tuple(class_names if class_names is not None else getattr(data, "class_names", ()))
    if not names:
        raise ConfigError("Expected class_names (or a Dataset that has them). Received: none.")
    if input_range is not None:
        set_input_range(model, input_range)  # conversion feeds the same range
    check_keras2_model(model)  # one clear error, not one failed row per precision
    with progress_scope(progress):  # the dataset's "loading" bars follow progress=
        test_images, test_labels = _split_arrays(test_data if test_data is not None else data, "test")
    check_model_fits(model, np.shape(test_images), num_classes=len(names))
    if input_range is None:
        probe_input_range(model, test_images, test_labels)
    float_probs = predict_keras(model, test_images, input_range=input_range)
    float_pred = float_probs.argmax(axis=1)
    float_eval = classification_metrics(test_labels, float_pred, names, predictions=float_probs)
    sanity = tuple(f.message for f in check_float_model(model, test_images, test_labels, float_probs, input_range))

    with progress_scope(progress):  # the converter's bars follow progress= too
        converted = convert_all(
            model,
            out_dir=out_dir,
            calibration=calibration if calibration is not None else data,
            labels=names,
            qat_model=qat_model,
            config=cfg,
            progress=progress,
        )
    repairs: dict[Precision, Any] = {}
    if repair:
        with progress_scope(progress):
            extra, repairs = _repaired(
                model,
                repair,
                calibration if calibration is not None else data,
                out_dir=out_dir,
                labels=names,
                config=cfg,
            )
        converted = {**converted, **extra}
    variants: dict[Precision, VariantResult] = {}
    workers = max(1, _eval_workers() // (timed.num_threads or 1))  # interpreters x their threads <= CPUs
    scores: dict = {}
    if workers > 1 and len(test_images) > 32:
        ready = {p: r for p, r in converted.items() if not isinstance(r, ConversionFailure)}
        scores = _all_scores(ready, test_images, timed.num_threads or 1, workers)
    for precision, result in tqdm(list(converted.items()), desc="measure", unit="model", progress=progress):
        if isinstance(result, ConversionFailure):
            variants[precision] = VariantResult(precision, VariantStatus.FAILED, result.reason)
            continue
        try:
            variants[precision] = _measure(
                result, precision, test_images, test_labels, names, float_pred, timed, False, scores.get(precision)
            )
        except Exception as exc:  # one broken variant becomes a row, the others go on
            logger.warning("%s: %s", precision.value, exc)
            variants[precision] = VariantResult(
                precision, VariantStatus.FAILED, f"{type(exc).__name__}: {exc}", model=result
            )
    table = comparison_table(variants, float_eval.accuracy)
    if device is not None:
        table = _add_device_columns(table, variants, device, names, test_images, test_labels, progress)
    table.attrs["sanity"] = list(sanity)  # the float model's warnings travel with the table (and the report)
    return Comparison(table, variants, float_eval, names, test_images, test_labels, sanity, repairs)


def repair_steps(repair: Sequence[str]) -> list[tuple[str, ...]]:
    """The cumulative step lists of ``repair`` (equalization first): one comparison row each."""
    # deferred: TensorFlow (the repairs change a Keras model)
    from ..training.equalize import REPAIRS

    if isinstance(repair, str):
        repair = [repair]
    wanted = []
    for step in repair:
        name = str(step).replace("-", "_").lower()
        if name not in REPAIRS:
            raise ConfigError(
                f"Expected repairs from {list(REPAIRS)}. Received: {step!r}.{did_you_mean(name, list(REPAIRS))}"
            )
        if name not in wanted:
            wanted.append(name)
    ordered = [s for s in REPAIRS if s in wanted]
    return [tuple(ordered[: k + 1]) for k in range(len(ordered))]


def _calibration_images(calibration: Any, count: int) -> np.ndarray:
    """uint8 images to repair with: ``count`` evenly spaced images of the calibration data."""
    if callable(calibration) and not hasattr(calibration, "arrays"):
        raise ConfigError(
            "Expected calibration images (a Dataset or (images, labels)) for repair=[...]. Received: a generator "
            "function, whose images the repairs cannot read."
        )
    images = _split_arrays(calibration, "train")[0] if not isinstance(calibration, np.ndarray) else calibration
    if len(images) > count:
        images = images[np.linspace(0, len(images) - 1, count).round().astype(int)]
    return images


def _repaired(
    model: Any,
    repair: Sequence[str],
    calibration: Any,
    *,
    out_dir: str | Path,
    labels: Sequence[str],
    config: ConversionConfig,
) -> tuple[dict, dict]:
    """``({row: ConvertedModel or ConversionFailure}, {row: Repair})`` for each cumulative repair."""
    # deferred: TensorFlow (converting and repairing need it)
    from ..tflite.conversion import ConversionFailure, ConvertedModel, convert
    from ..training.equalize import REPAIRS, repair_model

    images = _calibration_images(calibration, config.calibration_samples)
    converted: dict[Precision, Any] = {}
    done: dict[Precision, Any] = {}
    for steps in repair_steps(repair):
        row = REPAIRED[steps]
        name = "model_" + "_".join(REPAIRS[s] for s in steps)
        try:
            fixed = repair_model(model, steps, images)
            done[row] = fixed
            logger.info("%s: %s", row.value, fixed.summary())
            path = Path(out_dir) / f"{name}_int8.tflite"
            if config.reuse and path.exists():
                converted[row] = ConvertedModel.from_file(path, Precision.INT8, labels)
                continue
            converted[row] = convert(
                fixed.model,
                Precision.INT8,
                out_dir=out_dir,
                calibration=calibration,  # the same images the int8 row calibrates on
                labels=labels,
                config=config.replace(name=name, precisions=None, keep_float=(), reuse=False),
            )
        except Exception as exc:  # one failed repair is a row, the others go on
            logger.warning("%s: %s", row.value, exc)
            converted[row] = ConversionFailure(row, f"{type(exc).__name__}: {exc}")
    return converted, done


def _add_device_columns(table, variants, device, names, images, labels, progress) -> pd.DataFrame:
    """The device's p50, accuracy and agreement per variant (Edge TPU-compiled files are left out)."""
    files = {
        p.value: v.model.path
        for p, v in variants.items()
        if v.status is VariantStatus.OK and v.model is not None and p is not Precision.EDGETPU
    }
    measured = device.bench_variants(files, names, images, labels, progress=progress)
    per_model = measured.get("models", {})
    table = table.copy()
    for column in DEVICE_COLUMNS:
        table[column] = [per_model.get(p, {}).get(column) for p in table.precision]
        table[column] = pd.to_numeric(table[column], errors="coerce").round(4)
    table.attrs["device"] = dict(measured.get("device", {}))  # the device report travels with the table
    return table


def comparison_table(variants: dict, float_accuracy: float) -> pd.DataFrame:
    """One row per variant with the :data:`COLUMNS`; ratios are against the fp32 row."""
    rows = []
    for precision, v in variants.items():
        ev, lat, m = v.evaluation, v.latency, v.model
        tpu = v.edgetpu
        tpu_ms, tpu_mj = _edgetpu_estimates(m.path) if m is not None else (None, None)
        rows.append(
            {
                "precision": precision.value,
                "status": v.status.value,
                "reason": v.reason,
                "size_bytes": m.size_bytes if m is not None else None,
                "accuracy": ev.accuracy if ev is not None else None,
                "delta_accuracy": ev.accuracy - float_accuracy if ev is not None else None,
                "agreement": ev.agreement if ev is not None else None,
                "flipped": ev.num_flipped if ev is not None else None,
                "p50_ms": lat.p50_ms if lat is not None else None,
                "p90_ms": lat.p90_ms if lat is not None else None,
                "p99_ms": lat.p99_ms if lat is not None else None,
                "macs": v.macs,
                "edgetpu_ops": tpu.mapped if tpu is not None else None,
                "edgetpu_source": str(tpu.source) if tpu is not None else None,
                "edgetpu_usb3_ms": tpu_ms,
                "edgetpu_usb3_mj": tpu_mj,
                "runtime": lat.runtime if lat is not None else None,
                "xnnpack": lat.xnnpack if lat is not None else None,
                "path": str(m.path) if m is not None else None,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    base = frame.loc[(frame.precision == "fp32") & (frame.status == VariantStatus.OK.value)]
    size0 = float(base.size_bytes.iloc[0]) if len(base) else np.nan
    p50 = float(base.p50_ms.iloc[0]) if len(base) else np.nan
    frame["size_ratio"] = pd.to_numeric(frame.size_bytes, errors="coerce") / size0
    frame["latency_ratio"] = pd.to_numeric(frame.p50_ms, errors="coerce") / p50
    frame = frame[list(COLUMNS)]
    for column, digits in (
        ("accuracy", 4),
        ("delta_accuracy", 4),
        ("agreement", 4),
        ("size_ratio", 3),
        ("latency_ratio", 3),
        ("p50_ms", 4),
        ("p90_ms", 4),
        ("p99_ms", 4),
    ):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round(digits)
    for column in ("size_bytes", "macs", "flipped"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame
