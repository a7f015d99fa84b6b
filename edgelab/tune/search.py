"""``tune``: an Edge TPU-aware model search on Optuna.

Each trial samples a candidate (architecture, width, input size, optionally learning rate and
epochs) with Optuna's multi-objective TPE sampler, then

1. builds it and converts the *untrained* graph to int8 with random calibration, and screens the
   file with the offline Edge TPU analyzer and latency estimate (:mod:`edgelab.tune.prescreen`):
   a candidate that breaks a constraint is recorded ``infeasible`` with the reason, in seconds,
   without training. The sampler learns the constraints through its ``constraints_func``;
2. trains a survivor with :func:`edgelab.train`, reporting the validation accuracy after every
   epoch to an Optuna pruner, which stops hopeless trials (``pruned``);
3. converts the trained model to int8 and measures the accuracy of that file on the validation
   split. The two objectives are this accuracy (up) and the estimated latency on the link (down).

Optuna's ``Trial.report`` serves single-objective studies only; here the per-epoch accuracies are
kept in each trial's user attributes (``val_accuracy_by_epoch``) and the pruner judges them through a
single-objective view of the study (accuracy, maximized), with Optuna's own pruning rule.

Everything lives in an Optuna storage (:mod:`edgelab.tune.storage`): any number of processes on
one or many machines work on one study; trial ``n``'s files are under ``run_dir/<study>/trial_<n>``,
so two workers never write the same file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._config import split_options
from .._log import logger, tqdm
from ..errors import BudgetError, ConfigError, ConversionError, EdgelabError, StudyMismatchError
from .config import TuneConfig
from .prescreen import Constraints, Screen, prescreen, screen_file
from .result import TrialRecord, TuneResult, record_from_trial, trials_sorted
from .space import SearchSpace, describe
from .storage import default_storage_url, fail_dead_trials, open_storage, redact_url, running_mark

DEFAULT_STUDY = "edgelab"
#: Study user attribute holding what the study was created for (space, link, constraints).
DEFINITION_KEY = "edgelab_definition"
#: Validation images used to calibrate a trained candidate's int8 conversion.
CALIBRATION_SAMPLES = 200


class _CandidateFailed(Exception):
    """One candidate could not be built, converted or trained: its trial fails, the search goes on."""


def _default_sizes(size: int) -> tuple[int, ...]:
    smaller = max(32, round(size * 2 / 3 / 8) * 8)
    return tuple(sorted({smaller, size}))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images resized (down) to ``size`` x ``size`` with Pillow's antialiased bilinear filter."""
    if images.shape[1:3] == (size, size):
        return images

    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return out


class _Data:
    """Train and validation arrays per input size (resized once, kept in memory)."""

    def __init__(self, data: Any) -> None:
        if not (hasattr(data, "arrays") and hasattr(data, "class_names")):
            raise ConfigError(
                f"Expected an edgelab Dataset (el.load_dataset, el.synthetic_dataset). Received: {type(data).__name__}"
            )
        self.class_names = list(data.class_names)
        self.image_size = tuple(int(x) for x in data.image_size)
        self._base = {split: data.arrays(split) for split in ("train", "val")}
        if any(len(self._base[s][0]) == 0 for s in self._base):
            raise ConfigError("Expected a dataset with train and validation images. Received: an empty split")
        self._sized: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def check_sizes(self, sizes: Sequence[int]) -> None:
        too_big = [s for s in sizes if s > min(self.image_size)]
        if too_big:
            raise ConfigError(
                f"Expected input sizes up to the dataset's {self.image_size[0]}x{self.image_size[1]} px "
                f"(images are resized down, never up). Received: input_sizes={list(sizes)}"
            )

    def get(self, size: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        if size not in self._sized:
            self._sized[size] = {s: (resize_images(x, size), y) for s, (x, y) in self._base.items()}
        return self._sized[size][split]


class _AccuracyView:
    """A single-objective view of a multi-objective study for an Optuna pruner: each trial's
    per-epoch validation accuracies as its intermediate values, maximized."""

    def __init__(self, study: Any) -> None:
        # deferred: optuna (about a second to import)
        from optuna.study import StudyDirection

        self._study = study
        self.direction = StudyDirection.MAXIMIZE
        self.directions = [StudyDirection.MAXIMIZE]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        out = []
        for t in self._study.get_trials(deepcopy=False, states=states):
            curve = t.user_attrs.get("val_accuracy_by_epoch")
            if curve and t.user_attrs.get("duplicate_of") is None:
                out.append(_with_curve(t, curve))
        return out


def _with_curve(trial: Any, curve: Mapping[str, float]) -> Any:
    # deferred: optuna (about a second to import)
    from optuna.trial import FrozenTrial

    return FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={int(k): float(v) for k, v in curve.items()},
        trial_id=trial._trial_id,
    )


def _definition(space: SearchSpace, constraints: Constraints) -> dict[str, Any]:
    return {"space": space.to_dict(), "constraints": constraints.to_dict(), "objectives": ["accuracy", "latency_ms"]}


def _check_definition(study: Any, wanted: dict[str, Any]) -> None:
    have = study.user_attrs.get(DEFINITION_KEY)
    if have is None:
        if study.get_trials(deepcopy=False):
            raise StudyMismatchError(
                f"Study {study.study_name!r} already has trials but was not created by edgelab tune: use another --study"
            )
        study.set_user_attr(DEFINITION_KEY, wanted)
        return
    have = json.loads(json.dumps(have))
    wanted = json.loads(json.dumps(wanted))
    if have != wanted:
        diffs = []
        for part in ("space", "constraints"):
            for key in sorted(set(have.get(part, {})) | set(wanted.get(part, {}))):
                old, new = have.get(part, {}).get(key), wanted.get(part, {}).get(key)
                if old != new:
                    diffs.append(f"{key} {old} (study) vs {new} (this run)")
        raise StudyMismatchError(
            f"Study {study.study_name!r} was created with another search space or constraints: "
            + "; ".join(diffs or ["objectives differ"])
            + ". Use another --study name, or the study's own settings."
        )


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def tune(
    data: Any,
    constraints: Constraints | None = None,
    *,
    config: TuneConfig | None = None,
    space: SearchSpace | None = None,
    builder: Callable[..., Any] | None = None,
    progress: bool | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    **options: Any,
) -> TuneResult:
    """Search for the most accurate int8 model that fits the Edge TPU within a latency budget.

    ``tune(data, budget_ms=1.0, link="usb3", trials=20)`` is
    ``tune(data, Constraints(budget_ms=1.0, link="usb3"), config=TuneConfig(trials=20))``.

    Args:
        data: An edgelab Dataset; trials train on its train split and are scored on its val split
            (the test split stays untouched for the final comparison).
        constraints: What a candidate must satisfy to be trained, a :class:`Constraints`:
            ``budget_ms`` (estimated Edge TPU latency per inference on ``link``, at most; None: no
            limit), ``link`` (``usb3``, ``usb2``, ``pcie`` or ``devboard``, see
            :mod:`edgelab.edgetpu.latency`), ``max_cpu_ops`` (ops allowed on the CPU; 0: all mapped to
            the Edge TPU), ``max_off_chip_bytes`` (parameter bytes allowed outside the on-chip memory),
            ``max_size_bytes`` (largest int8 file; None: no limit).
        config: How the search runs, a :class:`TuneConfig`: ``trials``, ``epochs`` per trial,
            ``batch_size``, ``seed``, the Optuna ``storage`` and ``study``, the ``run_dir`` and the
            ``pruner``.
        space: The :class:`SearchSpace` (default: edgecnn and MobileNetV2 at their default widths,
            input sizes two thirds of the dataset's and the dataset's).
        builder: Your own model builder (see :class:`SearchSpace`); replaces the architectures.
        progress: Show a tqdm bar over the trials (None: where someone watches).
        on_trial: Called with each finished trial's :class:`TrialRecord` (the CLI prints a line).
        **options: Fields of :class:`Constraints` and of :class:`TuneConfig` (``budget_ms=1.0``,
            ``trials=20``, ``run_dir="runs/tune"``, ...), replacing ``constraints``' and ``config``'s.

    Raises:
        StorageError: the storage cannot be reached. StudyMismatchError: the study was created with
        another space or constraints. BudgetError: no candidate of the space can meet the budget.
        ConfigError: an option is out of range or not one of those above.
    """
    tuning, limits = split_options(options, TuneConfig, Constraints)
    cfg = TuneConfig.resolve(config, tuning)
    constraints = Constraints.resolve(constraints, limits)
    trials, epochs, batch_size, seed, storage, pruner = (
        cfg.trials,
        cfg.epochs,
        cfg.batch_size,
        cfg.seed,
        cfg.storage,
        cfg.pruner,
    )
    # deferred: optuna (about a second to import)
    import optuna

    run_path = Path(cfg.run_dir)
    study_name = cfg.study or DEFAULT_STUDY
    url = storage if storage is not None else default_storage_url(run_path)
    store = open_storage(url, run_path)  # first: an unreachable database fails before any data is loaded
    prepared = _Data(data)
    if space is None:
        space = SearchSpace(input_sizes=_default_sizes(min(prepared.image_size)), builder=builder)
    elif builder is not None:
        raise ConfigError("Expected builder either on tune() or in the SearchSpace, not both")
    prepared.check_sizes(space.input_sizes)
    with _quiet_optuna_warnings():  # multivariate TPE is marked experimental; edgelab chose it on purpose
        # Constraints reach the sampler through Trial.set_constraint (Optuna 5; constraints_func is deprecated).
        # With a shared storage each worker's sampler seed adds its process id: workers explore differently.
        sampler_seed = None if seed is None else (seed if storage is None else seed + os.getpid())
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=4, multivariate=True, group=True)
    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # edgelab reports trials itself, without tracebacks
    try:
        with _quiet_optuna_warnings():
            the_study = optuna.create_study(
                study_name=study_name,
                storage=store,
                sampler=sampler,
                directions=["maximize", "minimize"],
                load_if_exists=True,
            )
        _check_definition(the_study, _definition(space, constraints))
        search = _Search(the_study, space, constraints, prepared, run_path, epochs, batch_size, seed, pruner, on_trial)
        fail_dead_trials(the_study, search.trial_folder)
        if trials:
            with tqdm(total=trials, desc=f"tune {study_name}", unit="trial", progress=progress) as bar:
                search.bar = bar
                with _quiet_optuna_warnings():
                    the_study.optimize(
                        search.objective,
                        n_trials=trials,
                        catch=(_CandidateFailed,),
                        callbacks=[search.after_trial],
                    )
        result = collect(the_study, run_path, constraints, redact_url(url))
    finally:
        optuna.logging.set_verbosity(verbosity)
    if search.impossible is not None:
        raise BudgetError(search.impossible)
    return result


@contextlib.contextmanager
def _quiet_optuna_warnings() -> Iterator[None]:
    """Optuna marks multivariate TPE and its heartbeat experimental; edgelab chose them on purpose."""
    # deferred: optuna (about a second to import)
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def collect(study: Any, run_dir: Path, constraints: Constraints, storage: str) -> TuneResult:
    """The :class:`TuneResult` of a study as it stands."""
    records = trials_sorted([record_from_trial(t) for t in study.get_trials(deepcopy=False)])
    feasible = {
        t.number
        for t in study.get_trials(deepcopy=False)
        if not t.user_attrs.get("infeasible") and t.user_attrs.get("duplicate_of") is None
    }
    pareto = tuple(sorted(t.number for t in study.best_trials if t.number in feasible))
    return TuneResult(
        study=study.study_name,
        storage=storage,
        run_dir=run_dir,
        constraints=constraints,
        trials=records,
        pareto_numbers=pareto,
    )


class _Search:
    """The objective and its bookkeeping for one worker."""

    def __init__(
        self,
        study: Any,
        space: SearchSpace,
        constraints: Constraints,
        data: _Data,
        run_dir: Path,
        epochs: int,
        batch_size: int,
        seed: int | None,
        pruner: Any,
        on_trial: Callable[[TrialRecord], None] | None,
    ) -> None:
        self.study = study
        self.space = space
        self.constraints = constraints
        self.data = data
        self.run_dir = run_dir
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = 0 if seed is None else seed
        self.pruner = pruner
        self.on_trial = on_trial
        self.bar: Any = None
        self.floors: dict[str, float] | None = None
        self.impossible: str | None = None

    def trial_folder(self, number: int) -> Path:
        return self.run_dir / self.study.study_name / f"trial_{number:04d}"

    # -- Optuna callbacks --------------------------------------------------------------------

    def after_trial(self, study: Any, frozen: Any) -> None:
        record = record_from_trial(frozen)
        logger.info(
            "trial %d %s: %s, accuracy %s, %s ms, %.1f s%s",
            record.number,
            record.state,
            record.label,
            record.accuracy,
            record.latency_ms,
            record.seconds or 0.0,
            f" ({record.reason})" if record.reason else "",
        )
        if self.bar is not None:
            self.bar.set_postfix_str(f"trial {record.number}: {record.state}", refresh=False)
            self.bar.update(1)
        if self.on_trial is not None:
            self.on_trial(record)
        if self.impossible is not None:
            study.stop()

    def objective(self, trial: Any) -> tuple[float, float]:
        # deferred: TensorFlow (training needs it; screening does not)
        from ..training.fit import release_models

        start = time.perf_counter()
        folder = self.trial_folder(trial.number)
        try:
            # First of all: from here on, a worker that dies leaves a mark other workers can test.
            with running_mark(folder, self.study.study_name, trial.number):
                fail_dead_trials(self.study, self.trial_folder)
                params = self.space.suggest(trial)
                trial.set_user_attr("params", params)
                duplicate = self._duplicate(trial, params)
                if duplicate is not None:
                    return self._copy(trial, duplicate, start)
                try:
                    return self._run(trial, params, folder, start)
                except OSError as exc:  # a full or read-only disk stops the search; the trial says why
                    with contextlib.suppress(Exception):  # the storage may be on the same full disk
                        trial.set_user_attr("reason", f"{exc.strerror or exc} ({exc.filename or folder})")
                    raise
        finally:
            with contextlib.suppress(OSError):
                folder.rmdir()  # a reused candidate's folder held only the mark
            release_models()

    # -- one trial -----------------------------------------------------------------------------

    def _run(self, trial: Any, params: dict[str, Any], folder: Path, start: float) -> tuple[float, float]:
        # deferred: optuna and TensorFlow (a trial trains and converts)
        import optuna

        # deferred: TensorFlow (a trial trains and converts)
        from ..tflite.conversion import convert
        from ..training.fit import train

        num_classes = len(self.data.class_names)
        cpu_start = time.process_time()
        try:
            model = self.space.build(params, num_classes, trial)
            if self.space.builder is not None:  # the builder's own suggestions belong to the candidate
                params = {**params, **{k: v for k, v in trial.params.items() if k not in ("input_size",)}}
                trial.set_user_attr("params", params)
            screen = prescreen(model, self.constraints, out_dir=folder, seed=self.seed)
        except (ConversionError, EdgelabError, ValueError, TypeError) as exc:
            self._fail(trial, f"could not be built or converted: {_one_line(exc)}", start)
        screen_seconds = time.perf_counter() - start
        self._record_screen(trial, screen)
        for key, value in sorted(screen.violations.items()):  # Optuna's constrained TPE and best_trials read these
            trial.set_constraint(key, value)
        trial.set_user_attr("prescreen_seconds", round(screen_seconds, 3))
        trial.set_user_attr("prescreen_cpu_seconds", round(time.process_time() - cpu_start, 3))
        if not screen.feasible:
            trial.set_user_attr("infeasible", True)
            trial.set_user_attr("reason", screen.reason)
            trial.set_user_attr("seconds", round(screen_seconds, 3))
            if screen.violations.get("latency_ms", 0.0) > 0:
                self._check_floor()
            return 0.0, screen.latency_ms  # its constraints make the sampler rank it below every feasible one

        x_train, y_train = self.data.get(int(params["input_size"]), "train")
        x_val, y_val = self.data.get(int(params["input_size"]), "val")
        curve: dict[str, float] = {}
        pruned_at: list[tuple[int, float]] = []
        max_epochs = int(params.get("epochs", self.epochs))

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> bool:
            accuracy = metrics.get("val_accuracy", metrics.get("accuracy", math.nan))
            curve[str(epoch)] = float(accuracy)
            trial.set_user_attr("val_accuracy_by_epoch", dict(curve))
            if epoch < max_epochs and self.pruner.prune(
                _AccuracyView(self.study), _with_curve(trial_frozen(trial), curve)
            ):
                pruned_at.append((epoch, float(accuracy)))
                return True
            return False

        try:
            trained = train(
                model,
                (x_train, y_train),
                val_data=(x_val, y_val),
                epochs=max_epochs,
                batch_size=self.batch_size,
                learning_rate=float(params.get("learning_rate", 2e-3)),
                seed=self.seed,
                run_dir=folder / "train",
                progress=False,
                sanity=False,
                on_epoch_end=on_epoch_end,
            )
        except (EdgelabError, ValueError) as exc:
            self._fail(trial, f"training failed: {_one_line(exc)}", start)
        trial.set_user_attr("epochs_run", trained.epochs_run)
        if pruned_at:
            epoch, accuracy = pruned_at[0]
            trial.set_user_attr(
                "reason", f"pruned after epoch {epoch}: validation accuracy {accuracy:.3f} below the pruner's mark"
            )
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
            raise optuna.TrialPruned()
        try:
            converted = convert(
                trained.model,
                "int8",
                out_dir=folder,
                calibration=(x_train, y_train),
                calibration_samples=min(CALIBRATION_SAMPLES, len(x_train)),
                labels=self.data.class_names,
                name="model",
                seed=self.seed,
            )
        except ConversionError as exc:
            self._fail(trial, _one_line(exc), start)
        final = screen_file(converted.path, self.constraints)
        self._record_screen(trial, final)
        accuracy = float(converted.evaluate(x_val, y_val).accuracy)
        trial.set_user_attr("accuracy", round(accuracy, 4))
        trial.set_user_attr("val_images", len(y_val))
        trial.set_user_attr("model", str(Path(converted.path).relative_to(self.run_dir)))
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        if final.reason:  # cannot happen for a graph that passed (the graph is the same); say so if it does
            trial.set_user_attr("reason", f"the trained file differs from the prescreen: {final.reason}")
        return accuracy, final.latency_ms

    def _record_screen(self, trial: Any, screen: Screen) -> None:
        trial.set_user_attr("latency_ms", screen.latency_ms)
        trial.set_user_attr("ops_edgetpu", screen.ops_edgetpu)
        trial.set_user_attr("ops_total", screen.ops_total)
        trial.set_user_attr("size_bytes", screen.size_bytes)
        trial.set_user_attr("off_chip_bytes", screen.off_chip_bytes)

    def _fail(self, trial: Any, reason: str, start: float) -> Any:
        trial.set_user_attr("reason", reason)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        logger.warning("trial %d failed: %s", trial.number, reason)
        raise _CandidateFailed(reason)

    def _duplicate(self, trial: Any, params: dict[str, Any]) -> Any:
        """A finished trial with the same candidate (the sampler may propose one again)."""
        # deferred: optuna (about a second to import)
        from optuna.trial import TrialState

        if self.space.builder is not None:
            return None  # the builder's own parameters are only known once it runs
        key = _params_key(params)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number != trial.number and _params_key(t.user_attrs.get("params") or {}) == key:
                return t
        return None

    def _copy(self, trial: Any, source: Any, start: float) -> tuple[float, float]:
        """Reuse a finished trial's result: same candidate, same seed, same outcome (no retraining)."""
        for key, value in source.user_attrs.items():
            if key not in ("seconds", "duplicate_of", "val_accuracy_by_epoch"):
                trial.set_user_attr(key, value)
        for key, value in source.constraints.items():
            trial.set_constraint(key, value)
        original = source.user_attrs.get("duplicate_of", source.number)
        trial.set_user_attr("duplicate_of", original)
        note = f"reused: same candidate as trial {original}"
        reason = source.user_attrs.get("reason")
        trial.set_user_attr("reason", f"{reason} ({note})" if reason else note)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        return float(source.values[0]), float(source.values[1])

    def _check_floor(self) -> None:
        """After a latency rejection: can the space's fastest candidates meet the budget at all?

        A fastest candidate the study already screened is not converted again: its trial holds the estimate.
        """
        if self.floors is not None or self.constraints.budget_ms is None:
            return
        smallest = self.space.smallest()
        if not smallest:
            self.floors = {}
            return
        screened = {
            _params_key(t.user_attrs.get("params") or {}): float(t.user_attrs["latency_ms"])
            for t in self.study.get_trials(deepcopy=False)
            if t.user_attrs.get("latency_ms") is not None
        }
        floors: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="edgelab-tune-floor-") as tmp:
            for params in smallest:
                known = screened.get(_params_key(params))
                if known is None:
                    model = self.space.build(params, len(self.data.class_names))
                    known = prescreen(model, self.constraints, out_dir=Path(tmp) / params["architecture"]).latency_ms
                floors[describe(params)] = known
        self.floors = floors
        if floors and all(latency > self.constraints.budget_ms for latency in floors.values()):
            name, best = min(floors.items(), key=lambda kv: kv[1])
            self.impossible = (
                f"no candidate can meet the budget of {self.constraints.budget_ms:g} ms on {self.constraints.link}: "
                f"the fastest of the space, {name}, is estimated at {best:.2f} ms. Raise --budget-ms, "
                "choose a faster link, or search smaller widths or input sizes."
            )


def trial_frozen(trial: Any) -> Any:
    """The running trial as Optuna stores it (number, id, state) for the pruner."""
    return trial.study._storage.get_trial(trial._trial_id)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:300]
