"""The logic behind the notebook explorers (:mod:`edgelab.widgets`): plain functions that take data
and return numpy arrays, DataFrames, pictures or PNG bytes. No ipywidgets here, so each is unit-tested
on its own and usable without a notebook front end.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MatplotlibFigure
from PIL import Image

from ._figure import Figure
from .compare.plots import plot_op_map
from .compare.report import html_table
from .errors import ConfigError, check_int, did_you_mean

FLOAT = "float"  # the Keras model's row in the explorers (the reference every variant is compared to)
TARGETS = ("all", "edgetpu", "cpu")
#: Cost columns of a comparison table (lower is better) and quality columns (higher is better).
COST_COLUMNS = ("p50_ms", "p90_ms", "p99_ms", "latency_ratio", "size_bytes", "size_ratio", "macs")
QUALITY_COLUMNS = ("accuracy", "agreement", "delta_accuracy")


# --------------------------------------------------------------------------------------------
# Plain functions
# --------------------------------------------------------------------------------------------


def precision_name(precision: Any) -> str:
    """``"int8"`` from ``Precision.INT8`` or ``"int8"``."""
    return str(getattr(precision, "value", precision))


class ImageGrid:
    """Photographs laid out by :func:`image_grid`, shown in notebooks as a JPEG.

    Photographs (noise, texture) compress about five times better as JPEG than as PNG, which keeps
    notebooks stored with their outputs small. ``.figure`` is the matplotlib Figure itself, e.g.
    to save it with ``.figure.savefig("grid.png")``.
    """

    def __init__(self, figure: Figure, count: int, quality: int = 85) -> None:
        self.figure = figure
        self.count = count
        self.quality = quality

    def _repr_jpeg_(self) -> bytes:
        return picture_bytes(self)[0]

    def __repr__(self) -> str:
        return f"ImageGrid({self.count} images)"


def picture_bytes(
    picture: MatplotlibFigure | ImageGrid | np.ndarray, dpi: int = 80, scale: int = 3
) -> tuple[bytes, str]:
    """``(bytes, format)`` of a picture: an ImageGrid as JPEG, a Figure as PNG, a uint8 image as PNG.

    A uint8 image (H, W, 3) is enlarged ``scale`` times, pixels kept sharp.
    """
    buffer = io.BytesIO()
    if isinstance(picture, ImageGrid):
        picture.figure.savefig(buffer, format="jpeg", dpi=dpi, pil_kwargs={"quality": picture.quality})
        return buffer.getvalue(), "jpeg"
    if isinstance(picture, Figure):
        picture.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue(), "png"

    array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ConfigError(
            "Expected a Figure, an ImageGrid or a uint8 image of shape (H, W, 3). "
            f"Received: {type(picture).__name__} with dtype={getattr(array, 'dtype', None)}, shape={getattr(array, 'shape', None)}"
        )
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.NEAREST)
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, cols: int = 6, size: float = 1.4) -> ImageGrid:
    """A grid of uint8 images (N, H, W, 3) with optional titles; displays as a JPEG in notebooks."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ConfigError(f"Expected images of shape (N, H, W, 3). Received: shape={images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ConfigError(f"Expected one title per image ({len(images)}). Received: {len(titles)} titles")
    n = max(len(images), 1)
    cols = max(1, min(int(cols), n))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(size * cols, (size + 0.25) * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    return ImageGrid(fig, len(images))


def class_page(labels: np.ndarray, class_index: int, page: int = 0, per_page: int = 12) -> tuple[np.ndarray, int]:
    """Indices of the images of one class on one page, and the number of pages (at least 1).

    ``page`` is clamped to the last page, so stepping past the end shows the last images.
    """
    per_page = check_int("per_page", per_page)
    members = np.flatnonzero(np.asarray(labels) == class_index)
    pages = max(1, int(np.ceil(len(members) / per_page)))
    page = min(max(0, int(page)), pages - 1)
    return members[page * per_page : (page + 1) * per_page], pages


def ok_variants(comparison: Any) -> dict[str, Any]:
    """Variant name -> VariantResult, for the variants that were measured."""
    return {
        precision_name(p): v
        for p, v in comparison.variants.items()
        if getattr(v, "status", "ok") == "ok" and getattr(v, "evaluation", None) is not None
    }


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``, else a ConfigError with a did-you-mean hint."""
    if value not in choices:
        raise ConfigError(
            f"Expected {name} to be one of {list(choices)}. Received: {value!r}.{did_you_mean(str(value), choices)}"
        )
    return value


def variant_predictions(
    comparison: Any, index: int, predictions: Mapping[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Every variant's prediction for test image ``index``: one row per variant.

    Columns: ``precision``, ``predicted`` (class name), ``confidence`` (its probability; NaN for the
    float model; ``n/a`` when its probabilities are unknown), ``correct`` (vs the true label)
    and ``agrees`` (with the float model). With ``predictions`` ({name: (N, classes) scores}) the
    rows come from those scores instead (for images outside the test split; no float row).
    """
    names = list(comparison.class_names)
    labels = np.asarray(comparison.test_labels)
    rows = []
    if predictions is None:
        n = len(labels)
        if not 0 <= index < n:
            raise ConfigError(f"Expected index in [0, {n}). Received: index={index!r}")
        float_eval = comparison.float_evaluation
        float_class = int(float_eval.y_pred[index])
        true = int(labels[index])
        float_probs = getattr(float_eval, "predictions", None)
        rows.append((FLOAT, float_class, float(float_probs[index, float_class]) if float_probs is not None else np.nan))
        for name, variant in ok_variants(comparison).items():
            ev = variant.evaluation
            cls = int(ev.y_pred[index])
            conf = float(ev.predictions[index, cls]) if ev.predictions is not None else np.nan
            rows.append((name, cls, conf))
    else:
        true, float_class = None, None
        for name, scores in predictions.items():
            scores = np.asarray(scores)
            if not 0 <= index < len(scores):
                raise ConfigError(f"Expected index in [0, {len(scores)}). Received: index={index!r}")
            cls = int(scores[index].argmax())
            rows.append((name, cls, float(scores[index, cls])))
    frame = pd.DataFrame(
        {
            "precision": [r[0] for r in rows],
            "predicted": [names[r[1]] for r in rows],
            "confidence": [round(r[2], 3) for r in rows],
            "correct": [None if true is None else r[1] == true for r in rows],
            "agrees": [None if float_class is None else r[1] == float_class for r in rows],
        }
    )
    return frame


def flip_rows(comparison: Any, precision: str) -> pd.DataFrame:
    """The test images whose class changed between the float model and ``precision``.

    Columns ``index``, ``true_name``, ``from_name`` (float), ``to_name`` (``precision``); empty
    when nothing flipped.
    """
    variants = ok_variants(comparison)
    check_choice("precision", precision_name(precision), list(variants))
    flipped = variants[precision_name(precision)].evaluation.flipped
    columns = ["index", "true_name", "from_name", "to_name"]
    if flipped is None or len(flipped) == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "index" else "object") for c in columns})
    return flipped[columns].reset_index(drop=True)


def tradeoff_axes(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The cost columns (x, lower is better) and quality columns (y) that tell the variants apart.

    A column is offered when it has values that differ between variants: one that is the same for every
    variant (``macs``: quantization keeps the graph) would stack every point in one column.
    """
    values = {c: pd.to_numeric(table[c], errors="coerce").dropna() for c in table.columns}
    several = sum(pd.to_numeric(table[c], errors="coerce").notna().any() for c in table.columns) and len(table) > 1
    present = [c for c, v in values.items() if (v.nunique() > 1 if several else len(v))]
    return [c for c in COST_COLUMNS if c in present], [c for c in QUALITY_COLUMNS if c in present]


def op_rows(report: Any, target: str = "all") -> pd.DataFrame:
    """An Edge TPU report's ops (index, op, version, target, reason), all or those on one target."""
    check_choice("target", target, TARGETS)
    frame = report.to_frame()
    if target != "all":
        frame = frame[frame["target"] == target]
    return frame.reset_index(drop=True)


def op_map_figure(report: Any, cols: int = 5) -> Figure:
    """Every op in execution order as a coloured box: green on the Edge TPU, orange on the CPU."""
    return plot_op_map(report, cols)


def html_frame(frame: pd.DataFrame) -> str:
    """A DataFrame as HTML in JupyterLab's table style (for an explorer's ``.table``)."""
    return f'<div class="jp-RenderedHTMLCommon">{html_table(frame)}</div>'  # JupyterLab's table style
