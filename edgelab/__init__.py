"""edgelab: take an image classifier from training to the edge.

    import edgelab as el
    data = el.synthetic_dataset(per_class=400, image_size=96)
    model = el.build_model("edgecnn", image_size=96)
    el.train(model, data)
    table = el.compare(model, data, out_dir="runs/mine")

Names are imported on first use, so ``import edgelab`` stays light and the device-side parts
(runtime, inspection, edgetpu, evaluate, benchmark) never pull in TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data
    "CLASS_NAMES": "scenes", "generate_scenes": "scenes", "make_scenes": "scenes", "render_scene": "scenes",
    "Dataset": "datasets", "load_dataset": "datasets", "synthetic_dataset": "datasets", "scan": "datasets",
    "find_layout": "datasets", "stratified_split": "datasets",
    "normalize": "preprocess", "denormalize": "preprocess",
    # models and training
    "build_model": "models", "build_edgecnn": "models", "build_mobilenetv2": "models", "ARCHITECTURES": "models",
    "train": "training", "TrainResult": "training", "evaluate_keras": "training", "predict_keras": "training",
    "seed_everything": "training",
    "prepare_qat": "qat", "quantize_aware": "qat", "load_qat_model": "qat", "is_qat_model": "qat",
    # conversion and measurement
    "Precision": "precision", "RECIPES": "conversion", "convert": "conversion", "convert_all": "conversion",
    "ConvertedModel": "conversion", "convert_for_edgetpu": "conversion", "ExportedModel": "conversion", "ConversionFailure": "conversion",
    "TFLiteModel": "runtime", "load_interpreter": "runtime",
    "inspect_model": "inspection", "ModelInfo": "inspection",
    "classification_metrics": "evaluate", "evaluate_model": "evaluate", "EvalResult": "evaluate",
    "measure_latency": "benchmark", "LatencyResult": "benchmark",
    "compare": "comparison", "run_comparison": "comparison", "Comparison": "comparison",
    "plot_tradeoff": "plots", "plot_sizes": "plots", "plot_confusions": "plots", "plot_history": "plots",
    "pareto_front": "plots",
    "write_report": "report",
    # edge tpu and deployment
    "analyze_edgetpu": "edgetpu.analyze:analyze", "compile_edgetpu": "edgetpu.compiler:compile",
    "read_compiler_log": "edgetpu.logs:read_log", "export_bundle": "bundle",
    "DemoConfig": "demo", "run_demo": "demo", "demo_float_model": "demo", "demo_qat_model": "demo",
    "load_demo_data": "demo",
    # errors
    "EdgelabError": "errors", "ConfigError": "errors", "DatasetError": "errors", "ModelFileError": "errors",
    "ConversionError": "errors", "QATError": "errors", "EdgeTPUError": "errors", "DelegateError": "errors",
    "CompilerNotFoundError": "errors", "EdgeTPUWarning": "errors", "RuntimeNotFoundError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if name == "widgets":  # the notebook widgets, a submodule (ipywidgets is imported on first use)
        return importlib.import_module(".widgets", __name__)
    if target is None:
        raise AttributeError(f"module 'edgelab' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(f".{module_name}", __name__), attr or name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
