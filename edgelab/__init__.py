"""edgelab: take an image classifier from training to the edge.

    import edgelab as el
    data = el.synthetic_dataset(per_class=400, image_size=96)
    model = el.build_model("edgecnn", image_size=96)
    el.train(model, data)
    result = el.run_comparison(model, data, out_dir="runs/mine")
    result.table

The top level holds the names a notebook needs; everything else lives in the stage packages, one
home per idea: ``edgelab.data``, ``edgelab.training``, ``edgelab.tflite``, ``edgelab.compare``,
``edgelab.edgetpu``, ``edgelab.widgets``, ``edgelab.demo`` (and ``edgelab.errors``).

Names are imported on first use, so ``import edgelab`` stays light and the device-side parts
(``edgelab.tflite`` runtime and reader, ``edgelab.edgetpu``, evaluation and latency) never pull in
TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported; light)
from ._lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> "package.module" (or "package.module:attr") that defines it
_EXPORTS: dict[str, str] = {
    # data
    "CLASS_NAMES": "data.scenes",
    "generate_scenes": "data.scenes",
    "make_scenes": "data.scene_files",
    "SceneConfig": "data.scene_files",
    "Dataset": "data.datasets",
    "DatasetConfig": "data.datasets",
    "load_dataset": "data.datasets",
    "synthetic_dataset": "data.datasets",
    # training
    "build_model": "training.models",
    "train": "training.fit",
    "TrainResult": "training.fit",
    "TrainConfig": "training.config",
    "evaluate_keras": "training.fit",
    "seed_everything": "training.fit",
    "quantize_aware": "training.qat",
    "flatten_model": "training.flatten",
    "equalize": "training.equalize",
    "correct_bias": "training.equalize",
    # tflite
    "Precision": "precision",
    "convert": "tflite.conversion",
    "convert_all": "tflite.conversion",
    "ConversionConfig": "tflite.config",
    "ConvertedModel": "tflite.conversion",
    "TFLiteModel": "tflite.runtime",
    "inspect_model": "tflite.inspection",
    "check_model": "tflite.isolation",
    "ModelInfo": "tflite.inspection",
    # compare
    "run_comparison": "compare.comparison",
    "Comparison": "compare.comparison",
    "ComparisonOptions": "compare.comparison",
    "VariantResult": "compare.comparison",
    "evaluate_model": "compare.evaluate",
    "EvalResult": "compare.evaluate",
    "measure_latency": "compare.benchmark",
    "TimingOptions": "compare.timing",
    "LatencyResult": "compare.benchmark",
    "plot_tradeoff": "compare.plots",
    "plot_confusions": "compare.plots",
    "write_report": "compare.report",
    # edge tpu and deployment
    "analyze_edgetpu": "edgetpu.analyze",
    "EdgeTPUReport": "edgetpu.analyze",
    "compile_edgetpu": "edgetpu.compiler",
    "CompileResult": "edgetpu.compiler",
    "CompileOptions": "edgetpu.compiler",
    "export_bundle": "bundle",
    "BundleConfig": "bundle",
    # search
    "tune": "tune.search",
    "SearchSpace": "tune.space",
    "TuneConfig": "tune.config",
    "Constraints": "tune.prescreen",
    "TuneResult": "tune.result",
    # errors (the typed hierarchy lives in edgelab.errors)
    "EdgelabError": "errors",
    "EdgelabWarning": "errors",
}

#: stage packages and modules reachable as attributes (``el.data``, ``el.widgets``, ...)
_SUBMODULES = frozenset(
    {
        "data",
        "training",
        "tflite",
        "compare",
        "edgetpu",
        "widgets",
        "demo",
        "errors",
        "preprocess",
        "bundle",
        "diagnose",
        "device",
    }
)

__all__ = sorted(_EXPORTS) + ["__version__"]

_export, _dir = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    return _export(name)


def __dir__() -> list[str]:
    return sorted(set(_dir()) | _SUBMODULES | {"__version__"})
