"""A layer explorer for notebooks: per-layer error in graph order, and one layer's values up close.

The logic is in plain functions (:func:`error_figure`, :func:`layer_figure`, :func:`range_use`);
:class:`LayerExplorer` wires them to a dropdown, like the explorers in :mod:`edgelab.widgets`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from .._figure import Figure
from ..errors import ConfigError
from ..widget_base import Explorer
from .layers import short_name

__all__ = ["LayerExplorer", "error_figure", "keras_layer", "layer_explorer", "layer_figure", "range_use"]


#: Smallest font of the layer explorer's pictures, in points (11 px at the 80 dpi explorers draw at).
FONTSIZE = 10.0


def keras_layer(tensor: str) -> str:
    """The Keras layer an op's output tensor belongs to, as the user named it.

    The converter names a tensor after the layers fused into it (``edgecnn/conv2_relu/Relu6;...`` ->
    ``conv2_relu``). Tensors it renamed carry no layer: the quantization of the input
    (``serving_default_...``, ``tfl.quantize``) is ``(model input)`` and the signature's outputs
    (``StatefulPartitionedCall:0``, or ``PartitionedCall:0`` from a frozen export) are ``(model output)``.
    """
    for part in tensor.split(";"):
        if len([p for p in part.split("/") if p]) >= 3:
            return short_name(part)
    if tensor.startswith(("serving_default", "tfl.quantize")):
        return "(model input)"
    if tensor.startswith(("StatefulPartitionedCall", "PartitionedCall")):
        return "(model output)"
    return short_name(tensor)


def _label(row: pd.Series) -> str:
    return f"{row['index']}: {keras_layer(row.tensor)} ({row.op})"


def range_use(report: Any, index: int) -> dict[str, float]:
    """How one op's float values sit in its quantized range.

    Returns:
        ``low``/``high`` (the range the integer output can hold), ``used`` (share of that range the
        float values span, 1.0 = all of it), ``clipped`` (share of values outside it), ``levels``
        (distinct integer levels the values use). NaN for float outputs.
    """
    if index not in report.samples:
        raise ConfigError(
            f"Expected an op index of the layer report, one of {sorted(report.samples)}. Received: {index!r}"
        )
    ref, quant = report.samples[index]
    row = report.row(int(index))
    if index not in report.ranges:
        return {"low": np.nan, "high": np.nan, "used": np.nan, "clipped": float(row.clipped), "levels": np.nan}
    low, high = report.ranges[index]
    used = (float(ref.max()) - float(ref.min())) / (high - low) if high > low else np.nan
    levels = len(np.unique(np.round(quant / float(row.scale)))) if row.scale else np.nan
    return {"low": low, "high": high, "used": round(min(used, 1.0), 4), "clipped": float(row.clipped), "levels": levels}


def error_figure(report: Any, column: str = "added_error", highlight: int | None = None, ax: Any = None) -> Figure:
    """Bar chart of one column per op, in graph order (the highlighted op in red)."""
    frame = report.frame
    fig = Figure(figsize=(8.5, 3.6), layout="constrained") if ax is None else ax.figure
    ax = fig.add_subplot() if ax is None else ax
    colours = ["#e53935" if i == highlight else "#5c6bc0" for i in frame["index"]]
    ax.bar(range(len(frame)), frame[column].astype(float), color=colours)
    ticks = [f"{r['index']}: {keras_layer(r.tensor)}" for _, r in frame.iterrows()]
    ax.set_xticks(range(len(frame)), ticks, rotation=35, ha="right", fontsize=FONTSIZE)
    ax.tick_params(axis="y", labelsize=FONTSIZE)
    ax.set_ylabel(column.replace("_", " "), fontsize=FONTSIZE)
    ax.set_title(f"{column.replace('_', ' ')} per op (Keras layer), in graph order", fontsize=FONTSIZE + 1)
    return fig


def layer_figure(report: Any, index: int, bins: int = 60, ax: Any = None) -> Figure:
    """Histograms of one op's float and quantized values, with the quantized range marked."""
    ref, quant = report.samples[index]
    row = report.row(int(index))
    fig = Figure(figsize=(8.5, 3.0), layout="constrained") if ax is None else ax.figure
    ax = fig.add_subplot() if ax is None else ax
    edges = np.histogram_bin_edges(np.concatenate([ref, quant]), bins=bins)
    ax.hist(ref, bins=edges, alpha=0.6, label="float model", color="#5c6bc0")
    ax.hist(quant, bins=edges, alpha=0.6, label=f"quantized ({report.activations})", color="#ff9800")
    if index in report.ranges:
        for x in report.ranges[index]:
            ax.axvline(x, color="#e53935", lw=1, ls="--")
    ax.set_yscale("log")
    ax.tick_params(labelsize=FONTSIZE)
    ax.set_title(f"op {_label(row)}: values (dashed: quantized range)", fontsize=FONTSIZE + 1)
    ax.legend(fontsize=FONTSIZE)
    return fig


class LayerExplorer(Explorer):
    """Per-layer error of a :class:`~edgelab.diagnose.layers.LayerReport`; ``.dropdown`` picks a layer.

    ``.image`` shows the error bars with the picked layer in red over its value histograms.
    """

    def __init__(self, report: Any, column: str = "added_error") -> None:
        self.report, self.column = report, column
        options = [(_label(r), int(r["index"])) for _, r in report.frame.iterrows()]
        worst = int(report.ranked().iloc[0]["index"])
        self.dropdown = w.Dropdown(
            options=options, value=worst, description="layer", layout=w.Layout(width="32em")
        )  # wide enough for "8: (model output) (QUANTIZE)"
        super().__init__([self.dropdown])
        self.dropdown.observe(lambda _change: self._render(), "value")
        self._render()

    def picture(self) -> Figure:
        """The error bars (picked layer in red) above the picked layer's value histograms."""
        fig = Figure(figsize=(8.5, 7.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.2, 1]})
        error_figure(self.report, self.column, highlight=self.dropdown.value, ax=top)
        layer_figure(self.report, self.dropdown.value, ax=bottom)
        return fig

    def frame(self) -> pd.DataFrame:
        """The picked op: its Keras layer, the TFLite op and output tensor, and its error."""
        row = self.report.row(int(self.dropdown.value))
        return pd.DataFrame(
            {
                "index": [int(row["index"])],
                "Keras layer": [keras_layer(row.tensor)],
                "TFLite op": [row.op],
                "TFLite tensor": [row.tensor.split(";")[0]],
                "added error": [round(float(row.added_error), 4)],
            }
        )

    def summary(self) -> str:
        row = self.report.row(int(self.dropdown.value))
        use = range_use(self.report, int(self.dropdown.value))
        rank = list(self.report.ranked()["index"]).index(row["index"]) + 1
        text = (
            f"op {_label(row)}: rank {rank} of {len(self.report.frame)} by added error "
            f"({row.added_error:.4f}, SQNR {row.added_sqnr_db:.1f} dB)"
        )
        if np.isfinite(use["used"]):
            text += f"; values span {use['used']:.0%} of the int range, {use['levels']} levels used, {use['clipped']:.2%} clipped"
        if "cause" in self.report.frame.columns:  # per-channel ranges and the op whose scale did the damage
            text += "\n" + self.report.explain(int(row["index"]))
        return text

    def _render(self) -> None:
        self._show(self.picture(), self.summary(), self.frame())


def layer_explorer(report: Any, column: str = "added_error") -> LayerExplorer:
    """A :class:`LayerExplorer` opened on the layer that adds the most error."""
    return LayerExplorer(report, column)
