"""The main job: synthetic scenes -> train -> QAT -> every precision -> compare -> report.

Each step leaves its result in the output folder (checkpoints, saved models, .tflite files) and a
rerun reuses what is finished, so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._files import run_lock, write_atomic
from ._log import logger
from .errors import ConfigError, check_int


@dataclass(frozen=True)
class DemoConfig:
    """Parameters of the demo. The defaults run in a few minutes on a 2-core CPU."""

    out_dir: str = "runs/demo"
    data: str | None = None  # a dataset folder (e.g. Intel's download); None: synthetic scenes
    per_class: int = 400
    image_size: int = 96
    architecture: str = "edgecnn"
    epochs: int = 15
    qat_epochs: int = 3
    batch_size: int = 32
    seed: int = 0
    num_threads: int = 1
    calibration_samples: int = 200
    min_time_s: float = 0.5
    max_per_class: int | None = None

    def __post_init__(self) -> None:
        minimums = {"per_class": 1, "image_size": 1, "epochs": 1, "qat_epochs": 0, "batch_size": 1, "num_threads": 1,
                    "calibration_samples": 1}
        for name, minimum in minimums.items():
            # Stored back as a plain int: a numpy int would not survive params.json.
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum))
        if not self.min_time_s > 0:
            raise ConfigError(f"Expected min_time_s to be > 0. Received: min_time_s={self.min_time_s!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    comparison: Any = field(repr=False)
    report: Path
    timings: dict = field(repr=False)
    float_accuracy: float
    reused: tuple[str, ...] = ()

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


def load_demo_data(config: DemoConfig, progress: bool | None = None):
    """The demo's dataset: synthetic scenes, or the folder given in ``config.data``."""
    from .data.datasets import load_dataset, synthetic_dataset

    if config.data:
        return load_dataset(config.data, image_size=config.image_size, seed=config.seed,
                            max_per_class=config.max_per_class, progress=progress)
    return synthetic_dataset(per_class=config.per_class, image_size=config.image_size, seed=config.seed, progress=progress)


def demo_float_model(config: DemoConfig, dataset=None, progress: bool | None = None):
    """The demo's trained float model: loaded from ``out_dir/float_model.h5`` or trained (resumably).

    Returns:
        ``(model, history, reused)``: the tf_keras model, its training history (a DataFrame, or
        None when unknown) and whether a finished model was reused.
    """
    from ._keras import keras
    from .training.models import build_model
    from .training.fit import seed_everything, train

    out = prepare_out_dir(config)
    float_path = out / "float_model.h5"
    if float_path.exists():
        reused = _reuse(float_path, lambda p: keras.models.load_model(p, compile=False))
        if reused is not None:
            return reused, _read_history(out / "train"), True
    dataset = dataset if dataset is not None else load_demo_data(config, progress)
    seed_everything(config.seed)
    model = build_model(config.architecture, num_classes=len(dataset.class_names), image_size=config.image_size)
    trained = train(model, dataset, epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
                    run_dir=out / "train", progress=progress)
    _save_h5(trained.model, float_path)
    return trained.model, trained.history, False


def demo_qat_model(config: DemoConfig, model, dataset=None, progress: bool | None = None):
    """The demo's quantization-aware model: loaded from ``out_dir/qat_model.h5`` or fine-tuned from ``model``.

    Returns:
        ``(qat_model, history, reused)``.
    """
    from .training.qat import load_qat_model, quantize_aware

    out = prepare_out_dir(config)
    qat_path = out / "qat_model.h5"
    if qat_path.exists():
        reused = _reuse(qat_path, load_qat_model)
        if reused is not None:
            return reused, _read_history(out / "qat"), True
    dataset = dataset if dataset is not None else load_demo_data(config, progress)
    result = quantize_aware(model, dataset, epochs=config.qat_epochs, batch_size=config.batch_size,
                            seed=config.seed, run_dir=out / "qat", progress=progress)
    _save_h5(result.model, qat_path)
    return result.model, result.history, False


def run_demo(config: DemoConfig = DemoConfig(), *, fresh: bool = False, progress: bool | None = None) -> DemoResult:
    """Run (or resume) the whole workflow and write ``report.md`` into ``config.out_dir``.

    The output folder is locked while the run writes it: a second run into it stops with an error
    that names the first one.
    """
    with run_lock(Path(config.out_dir), f"run_demo(out_dir={config.out_dir!r})"):
        return _run_demo(config, fresh=fresh, progress=progress)


def _run_demo(config: DemoConfig, *, fresh: bool, progress: bool | None) -> DemoResult:
    from .compare.comparison import run_comparison
    from .compare.report import write_report

    out = Path(config.out_dir)
    prepare_out_dir(config, fresh)
    timings: dict[str, float] = {}
    reused: list[str] = []

    start = time.perf_counter()
    dataset = load_demo_data(config, progress)
    for split in ("train", "val", "test"):
        dataset.arrays(split)
    timings["data"] = time.perf_counter() - start

    start = time.perf_counter()
    model, history, was_reused = demo_float_model(config, dataset, progress)
    reused += ["train"] if was_reused else []
    timings["train"] = time.perf_counter() - start

    start = time.perf_counter()
    qat_model, qat_history = None, None
    if config.qat_epochs:
        qat_model, qat_history, was_reused = demo_qat_model(config, model, dataset, progress)
        reused += ["qat"] if was_reused else []
    timings["qat"] = time.perf_counter() - start

    start = time.perf_counter()
    comparison = run_comparison(
        model, dataset, out_dir=out / "models", qat_model=qat_model, num_threads=config.num_threads,
        min_time_s=config.min_time_s, calibration_samples=config.calibration_samples, reuse=True, progress=progress,
    )
    timings["convert_and_measure"] = time.perf_counter() - start

    report = write_report(out, comparison, history=history, qat_history=qat_history,
                          parameters=config.to_dict(), timings=timings, title="edgelab demo: scene classifier")
    logger.info("report written to %s", report)
    return DemoResult(comparison, report, timings, comparison.float_accuracy, tuple(reused))


def _save_h5(model, path: Path) -> None:
    """Save atomically: a half-written model file would be 'reused' by the next run."""
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.h5")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")  # .h5 is what tfmot's loader reads
        model.save(tmp, include_optimizer=False)
    tmp.replace(path)


def _read_history(run_dir: Path):
    import pandas as pd

    path = run_dir / "history.csv"
    try:
        return pd.read_csv(path) if path.exists() else None
    except (OSError, ValueError) as exc:  # a torn file from an older run: the history is only shown
        logger.warning("%s is unreadable (%s); no history shown", path, exc)
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s is unreadable (%s); it is written again", path, exc)
        return None


def _reuse(path: Path, load: Any) -> Any:
    """A finished model from an earlier run, or None (and the file removed) when it is torn."""
    try:
        return load(path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        logger.warning("%s is unreadable (%s); this step runs again", path, " ".join(str(exc).split())[:200])
        path.unlink(missing_ok=True)
        return None
