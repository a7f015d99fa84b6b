"""The main job: synthetic scenes -> train -> QAT -> every precision -> compare -> report.

Each step leaves its result in the output folder (checkpoints, saved models, .tflite files) and a
rerun reuses what is finished, so an interrupted demo picks up where it stopped.
:class:`Workspace` is that folder with its parameters, for notebooks and scripts: the data, the
float model and the QAT model, each made once and reused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._files import atomic_path, run_lock, sha256_file, write_atomic
from ._log import logger, warn_user_fmt
from .bundle import export_bundle
from .data.datasets import load_dataset, synthetic_dataset
from .errors import ConfigError, DriftError, ResumeWarning, check_int, did_you_mean
from .precision import Precision
from .records import Record

if TYPE_CHECKING:  # Keras is imported only when a model is trained or loaded
    import pandas as pd

    from ._keras import keras
    from .data.datasets import Dataset

__all__ = ["DemoConfig", "DemoResult", "Workspace", "prepare_out_dir", "run_demo"]


@dataclass(frozen=True)
class DemoConfig(Record):
    """Parameters of the demo. The defaults run in a few minutes on a 2-core CPU."""

    out_dir: str = "runs/demo"
    data: str | None = None  # a dataset folder (e.g. Intel's download); None: synthetic scenes
    per_class: int = 400
    image_size: int = 96
    architecture: str = "edgecnn"
    # The fewest epochs that keep the float test accuracy of 15 on the default data (0.9389 on its 360
    # test images, seed 0; the learning rate is cosine-decayed over the epochs given): 5 epochs gave
    # 0.9111, 7 gave 0.9250, 8 gave 0.9361, 9 gave 0.9389. After those 9, QAT (learning rate 2e-5) gave
    # qat_int8 0.9333, 0.9306 and 0.9361 after 1, 2 and 3 epochs: within a test image or two, so one.
    epochs: int = 9
    qat_epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    num_threads: int = 1
    calibration_samples: int = 200
    min_time_s: float = 0.5
    max_per_class: int | None = None

    def __post_init__(self) -> None:
        minimums = {
            "per_class": 1,
            "image_size": 1,
            "epochs": 1,
            "qat_epochs": 0,
            "batch_size": 1,
            "num_threads": 1,
            "calibration_samples": 1,
        }
        for name, minimum in minimums.items():
            # Stored back as a plain int: a numpy int would not survive params.json.
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum))
        if not self.min_time_s > 0:
            raise ConfigError(f"Expected min_time_s to be > 0. Received: min_time_s={self.min_time_s!r}")


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    comparison: Any = field(repr=False)
    report: Path
    timings: dict = field(repr=False)
    float_accuracy: float
    reused: tuple[str, ...] = ()
    bundle: Path | None = None

    def __repr__(self) -> str:
        return f"DemoResult(float_accuracy={self.float_accuracy:.4f}, report={str(self.report)!r}, reused={list(self.reused)})"


def prepare_out_dir(config: DemoConfig, fresh: bool = False) -> Path:
    """Create the output folder; refuse to mix runs made with other parameters."""
    out = Path(config.out_dir)
    params_file = out / "params.json"
    wanted = {k: v for k, v in config.to_dict().items() if k not in ("out_dir", "min_time_s", "num_threads")}
    if fresh and out.exists():
        if params_file.exists() or not any(out.iterdir()):
            shutil.rmtree(out)
        else:
            raise ConfigError(f"Refusing to delete {out}: it is not an edgelab demo folder (no params.json).")
    if params_file.exists():
        previous = _read_json(params_file)  # None: torn by an interrupted older run, rewritten below
        if previous is not None and previous != wanted:
            changed = sorted(k for k in wanted if previous.get(k) != wanted[k])
            raise ConfigError(
                f"{out} holds a demo run with other parameters ({', '.join(changed)} differ). "
                "Start over there with --fresh (run_demo(..., fresh=True)), or choose another folder: --out / DemoConfig(out_dir=...)."
            )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(params_file, json.dumps(wanted, indent=2))
    return out


class Workspace:
    """An output folder and the parameters of one run: its data, float model and QAT model.

    Each model is trained once, with :func:`edgelab.build_model`, :func:`edgelab.train` and
    :func:`edgelab.quantize_aware`, saved in the folder (``float_model.h5``, ``qat_model.h5``, with
    resumable checkpoints in ``train/`` and ``qat/``) and reused by every later call, notebook or
    ``edgelab demo`` run that opens the same folder with the same parameters. A folder made with
    other parameters is refused (:class:`~edgelab.errors.ConfigError`), never mixed.

        ws = el.demo.Workspace.from_json("params.json")   # or Workspace(DemoConfig(...))
        data = ws.data()
        model = ws.float_model()      # trains, or loads the saved model
        ws.history                    # its training history (a DataFrame), when known

    Attributes:
        params: The parameters (a :class:`DemoConfig`).
        out_dir: The output folder.
        history: The float model's training history once :meth:`float_model` ran (None when unknown).
        qat_history: The same for :meth:`qat_model`.
        reused: Which steps (``"train"``, ``"qat"``) reused a saved model.
    """

    def __init__(self, params: DemoConfig | None = None, *, progress: bool | None = None) -> None:
        self.params = params if params is not None else DemoConfig()
        if not isinstance(self.params, DemoConfig):
            raise ConfigError(f"Expected params to be a DemoConfig. Received: {type(self.params).__name__}")
        self.out_dir = Path(self.params.out_dir)
        self.progress = progress
        self.history: pd.DataFrame | None = None
        self.qat_history: pd.DataFrame | None = None
        self.reused: list[str] = []
        self._data: Any = None
        self._float: Any = None
        self._qat: Any = None

    @classmethod
    def from_json(cls, path: str | Path, *, progress: bool | None = None) -> Workspace:
        """The workspace whose parameters are in the JSON file ``path`` (the :class:`DemoConfig` fields).

        ``EDGELAB_PARAMS`` (a JSON object, e.g. ``{"num_threads": 2}``) changes some of them
        without editing the file, e.g. in CI.
        """
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            changes = json.loads(os.environ.get("EDGELAB_PARAMS") or "{}")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Expected a JSON parameters file. Received: {str(path)!r} ({exc})") from None
        known = {f.name for f in fields(DemoConfig)}
        unknown = sorted((set(values) | set(changes)) - known)
        if unknown:
            raise ConfigError(
                f"Expected parameters among {sorted(known)}. Received: {unknown} in {path}."
                f"{did_you_mean(unknown[0], sorted(known))}"
            )
        return cls(DemoConfig(**{**values, **changes}), progress=progress)

    def __repr__(self) -> str:
        p = self.params
        source = "synthetic scenes" if not p.data else repr(p.data)
        return (
            f"Workspace({str(self.out_dir)!r}: {source}, {p.image_size}x{p.image_size} px, {p.architecture}, "
            f"{p.epochs} epochs + {p.qat_epochs} QAT)"
        )

    def path(self, *parts: str) -> Path:
        """A path inside the output folder (created, and checked against the parameters, on first use)."""
        return prepare_out_dir(self.params).joinpath(*parts)

    def data(self) -> Dataset:
        """The dataset: synthetic scenes, or the folder in ``params.data`` (loaded once)."""

        if self._data is None:
            p = self.params
            if p.data:
                self._data = load_dataset(
                    p.data, image_size=p.image_size, seed=p.seed, max_per_class=p.max_per_class, progress=self.progress
                )
            else:
                self._data = synthetic_dataset(
                    per_class=p.per_class, image_size=p.image_size, seed=p.seed, progress=self.progress
                )
        return self._data

    def float_model(self) -> keras.Model:
        """The trained float tf_keras model: loaded from ``float_model.h5``, or built and trained (resumably)."""
        if self._float is not None:
            return self._float
        # deferred: TensorFlow (the CLI imports this module to build its parser)
        from ._keras import keras
        from .training.fit import seed_everything, train
        from .training.models import build_model

        path = prepare_out_dir(self.params) / "float_model.h5"
        if path.exists():
            reused = _reuse(path, lambda p: keras.models.load_model(p, compile=False))
            if reused is not None:
                self._float, self.history = reused, _read_history(self.path("train"))
                self.reused.append("train")
                return self._float
        p, data = self.params, self.data()
        seed_everything(p.seed)
        model = build_model(p.architecture, num_classes=len(data.class_names), image_size=p.image_size)
        trained = train(
            model,
            data,
            epochs=p.epochs,
            batch_size=p.batch_size,
            seed=p.seed,
            run_dir=self.path("train"),
            progress=self.progress,
        )
        self.save_float_model(trained.model, trained.history)
        return self._float

    def save_float_model(self, model: keras.Model, history: pd.DataFrame | None = None) -> Path:
        """Keep ``model`` (trained, e.g. by :func:`edgelab.train`) as this workspace's float model."""
        path = prepare_out_dir(self.params) / "float_model.h5"
        _save_h5(model, path)
        self._float, self.history = model, history
        return path

    def qat_model(self) -> keras.Model:
        """The quantization-aware model: loaded from ``qat_model.h5``, or fine-tuned from :meth:`float_model`."""
        if self._qat is not None:
            return self._qat
        # deferred: TensorFlow (the CLI imports this module to build its parser)
        from .training.qat import load_qat_model, quantize_aware

        path = prepare_out_dir(self.params) / "qat_model.h5"
        if path.exists():
            reused = _reuse(path, load_qat_model)
            if reused is not None:
                self._qat, self.qat_history = reused, _read_history(self.path("qat"))
                self.reused.append("qat")
                return self._qat
        p = self.params
        result = quantize_aware(
            self.float_model(),
            self.data(),
            epochs=p.qat_epochs,
            batch_size=p.batch_size,
            seed=p.seed,
            run_dir=self.path("qat"),
            progress=self.progress,
        )
        _save_h5(result.model, path)
        self._qat, self.qat_history = result.model, result.history
        return self._qat


def run_demo(
    config: DemoConfig = DemoConfig(), *, fresh: bool = False, progress: bool | None = None, device: Any = None
) -> DemoResult:
    """Run (or resume) the whole workflow and write ``report.md`` into ``config.out_dir``.

    With ``device`` (an :class:`edgelab.device.Device`), every converted file also runs on that device and
    the report gets a ``device`` section (see ``run_comparison(..., device=...)``).

    The output folder is locked while the run writes it: a second run into it stops with an error
    that names the first one.
    """
    with run_lock(Path(config.out_dir), f"run_demo(out_dir={config.out_dir!r})"):
        return _run_demo(config, fresh=fresh, progress=progress, device=device)


def _run_demo(config: DemoConfig, *, fresh: bool, progress: bool | None, device: Any = None) -> DemoResult:
    # deferred: pandas (the CLI imports this module to build its parser)
    from .compare.comparison import run_comparison
    from .compare.report import write_report

    out = Path(config.out_dir)
    prepare_out_dir(config, fresh)
    timings: dict[str, float] = {}

    ws = Workspace(config, progress=progress)
    start = time.perf_counter()
    dataset = ws.data()
    for split in ("train", "val", "test"):
        dataset.arrays(split)
    timings["data"] = time.perf_counter() - start

    start = time.perf_counter()
    model = ws.float_model()
    timings["train"] = time.perf_counter() - start

    start = time.perf_counter()
    qat_model = ws.qat_model() if config.qat_epochs else None
    timings["qat"] = time.perf_counter() - start

    start = time.perf_counter()
    comparison = run_comparison(
        model,
        dataset,
        out_dir=out / "models",
        qat_model=qat_model,
        num_threads=config.num_threads,
        min_time_s=config.min_time_s,
        calibration_samples=config.calibration_samples,
        reuse=True,
        progress=progress,
        device=device,
    )
    timings["convert_and_measure"] = time.perf_counter() - start

    start = time.perf_counter()
    bundle = _export_demo_bundle(out, comparison, dataset, progress)
    timings["bundle"] = time.perf_counter() - start

    report = write_report(
        comparison,
        out_dir=out,
        history=ws.history,
        qat_history=ws.qat_history,
        parameters=config.to_dict(),
        timings=timings,
        title="edgelab demo: scene classifier",
    )
    logger.info("report written to %s", report)
    return DemoResult(comparison, report, timings, comparison.float_accuracy, tuple(ws.reused), bundle)


def _export_demo_bundle(out: Path, comparison: Any, dataset: Dataset, progress: bool | None) -> Path | None:
    """``out/bundle``: the int8 model with its drift reference (the validation and test images)."""

    variant = comparison.variants.get(Precision.INT8)
    if variant is None or variant.model is None or variant.evaluation is None:
        logger.warning("no int8 model to bundle: %s", getattr(variant, "reason", "not converted"))
        return None
    target = out / "bundle"
    if _bundle_is_current(target, variant.model.path):
        logger.info("reusing the bundle in %s (same int8 model)", target)
        return target
    metrics = {
        "test_accuracy": round(float(variant.evaluation.accuracy), 4),
        "float_test_accuracy": round(float(comparison.float_accuracy), 4),
        "test_images": len(comparison.test_labels),
    }
    args: dict[str, Any] = {"overwrite": True, "metrics": metrics, "progress": progress}
    try:
        return export_bundle(
            {"int8": variant.model.path}, dataset.class_names, out_dir=target, reference=dataset, **args
        )
    except DriftError as exc:  # a tiny run: too few held-out images to calibrate the drift check
        logger.warning("bundle written without drift reference: %s", exc)
        return export_bundle({"int8": variant.model.path}, dataset.class_names, out_dir=target, **args)


def _bundle_is_current(bundle: Path, model: Path) -> bool:
    """A complete bundle from an earlier run of the same int8 model and the same device scripts
    (its manifest lists every file's hash)."""

    template = resources.files("edgelab") / "bundle_template"
    try:
        for item in template.iterdir():
            if item.is_file() and item.name.endswith(".py") and (bundle / item.name).read_bytes() != item.read_bytes():
                return False
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        files = manifest["files"]
        return files[model.name]["sha256"] == sha256_file(model) and all(
            (bundle / name).is_file() and sha256_file(bundle / name) == entry["sha256"] for name, entry in files.items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _save_h5(model: keras.Model, path: Path) -> None:
    """Save atomically: a half-written model file would be 'reused' by the next run."""

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")  # .h5 is what tfmot's loader reads
        model.save(tmp, include_optimizer=False)


def _read_history(run_dir: Path) -> pd.DataFrame | None:
    # deferred: pandas (only this table needs it)
    import pandas as pd

    path = run_dir / "history.csv"
    try:
        return pd.read_csv(path) if path.exists() else None
    except (OSError, ValueError) as exc:  # a torn file from an older run: the history is only shown
        warn_user_fmt(ResumeWarning, "%s is unreadable (%s); no history shown", path, exc)
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        warn_user_fmt(ResumeWarning, "%s is unreadable (%s); it is written again", path, exc)
        return None


def _reuse(path: Path, load: Any) -> Any:
    """A finished model from an earlier run, or None (and the file removed) when it is torn."""
    try:
        return load(path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        warn_user_fmt(
            ResumeWarning, "%s is unreadable (%s); this step runs again", path, " ".join(str(exc).split())[:200]
        )
        path.unlink(missing_ok=True)
        return None
