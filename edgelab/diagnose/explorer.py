"""Overlays for Google's Model Explorer: per-layer error and Edge TPU / CPU placement on the graph.

Model Explorer (``pip install 'edgelab[explorer]'``, package ``ai-edge-model-explorer``) draws a
``.tflite`` graph and colours its nodes by "node data": JSON keyed by a node's output tensor name,
``{"results": {tensor: {"value": v, "bgColor": c}}, "gradient": [...]}``. edgelab writes those files
from a :class:`~edgelab.diagnose.layers.LayerReport` and the offline Edge TPU analysis; writing them
needs nothing beyond edgelab, opening the viewer needs the optional package.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..edgetpu.analyze import analyze_edgetpu as analyze
from ..errors import ConfigError
from ..tflite.inspection import inspect_model

__all__ = ["open_model_explorer", "write_node_data"]

#: Edge TPU / CPU colours of the placement overlay.
PLACEMENT_COLOURS = {"edgetpu": "#4caf50", "cpu": "#e53935"}
_GRADIENT = [{"stop": 0, "bgColor": "#e8f5e9"}, {"stop": 0.5, "bgColor": "#ffeb3b"}, {"stop": 1, "bgColor": "#e53935"}]


def error_node_data(report: Any, column: str = "added_error") -> dict[str, Any]:
    """Model Explorer node data colouring each op by one column of a LayerReport (default: added error)."""
    if column not in report.frame.columns:
        raise ConfigError(
            f"Expected a column of the layer report, one of {list(report.frame.columns)}. Received: {column!r}"
        )
    results = {}
    for _, row in report.frame.iterrows():
        value = float(row[column])
        if math.isfinite(value):
            results[str(row.tensor)] = {"value": round(value, 6)}
    return {"name": f"edgelab {column}", "results": results, "gradient": _GRADIENT}


def placement_node_data(model: str | os.PathLike, runtime_version: int = 14) -> dict[str, Any]:
    """Model Explorer node data marking each op Edge TPU (1, green) or CPU (0, red), predicted offline."""

    info = inspect_model(model)
    report = analyze(info, runtime_version=runtime_version)
    results = {}
    for verdict in report.ops:
        op = info.ops[verdict.index]
        if not op.outputs:
            continue
        tensor = info.tensors[op.outputs[0]].name
        on_tpu = verdict.target == "edgetpu"
        results[tensor] = {"value": 1 if on_tpu else 0, "bgColor": PLACEMENT_COLOURS["edgetpu" if on_tpu else "cpu"]}
    return {"name": "edgelab Edge TPU placement", "results": results}


def write_node_data(report: Any, *, out_dir: str | os.PathLike, placement: bool = True) -> dict[str, Path]:
    """Write ``<model>.added_error.json`` (and ``<model>.placement.json``) for Model Explorer.

    Args:
        report: A :class:`~edgelab.diagnose.layers.LayerReport` (its quantized model is the graph shown).
        out_dir: Folder for the JSON files.
        placement: Also write the Edge TPU / CPU placement of each op (offline prediction).

    Returns:
        ``{"added_error": path, "placement": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(report.quant_model).stem if report.quant_model != "<bytes>" else "model"
    files = {"added_error": out / f"{stem}.added_error.json"}
    write_atomic(files["added_error"], json.dumps(error_node_data(report), indent=1).encode())
    if placement and report.quant_model != "<bytes>":
        files["placement"] = out / f"{stem}.placement.json"
        write_atomic(files["placement"], json.dumps(placement_node_data(report.quant_model), indent=1).encode())
    return files


def explorer_available() -> bool:
    """True when the optional ``ai-edge-model-explorer`` package is installed."""

    return importlib.util.find_spec("model_explorer") is not None


def open_model_explorer(model: str | os.PathLike, node_data: dict[str, Path], **kwargs: Any) -> Any:
    """Open ``model`` in Model Explorer with the node-data files from :func:`write_node_data`.

    Raises:
        ConfigError: Model Explorer is not installed (``pip install 'edgelab[explorer]'``).
    """
    if not explorer_available():
        raise ConfigError(
            "Expected the optional Model Explorer package. Received: it is not installed; "
            "run `pip install 'edgelab[explorer]'` (ai-edge-model-explorer)."
        )
    # deferred: ai-edge-model-explorer is optional (pip install edgelab[explorer])
    import model_explorer

    infos = [{"name": name, "node_data_path": str(path)} for name, path in node_data.items()]
    return model_explorer.visualize(str(model), node_data=infos, **kwargs)
