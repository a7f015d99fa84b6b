"""Pictures of a comparison: trade-off with the Pareto front, sizes, confusion matrices, training.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing leaks into
global state; notebooks display the returned figure and reports save it with ``fig.savefig``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from ..errors import ConfigError


def pareto_front(table: pd.DataFrame, x: str = "p50_ms", y: str = "accuracy") -> list[str]:
    """Precisions no other variant beats on both ``x`` (lower is better) and ``y`` (higher is better).

    Returns them ordered by ``x``. Rows without both values (failed variants) are ignored.
    """
    missing = [c for c in ("precision", x, y) if c not in table.columns]
    if missing:
        raise ConfigError(f"Expected a comparison table with columns {['precision', x, y]}. Missing: {missing}")
    rows = table.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    front, best = [], -np.inf
    for _, row in rows.iterrows():
        if row[y] > best:
            front.append(row["precision"])
            best = row[y]
    return front


def _ok_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "ok"] if "status" in table.columns else table


def plot_tradeoff(table: pd.DataFrame, x: str = "p50_ms", y: str = "accuracy") -> Figure:
    """Accuracy against latency, one point per precision (area ~ file size), Pareto front joined."""
    rows = _ok_rows(table).dropna(subset=[x, y])
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    sizes = pd.to_numeric(rows.get("size_bytes", pd.Series(1, index=rows.index)), errors="coerce").fillna(1).astype(float)
    area = 40 + 260 * sizes / max(float(sizes.max()), 1.0)
    ax.scatter(rows[x], rows[y], s=area, alpha=0.6, color="tab:blue", edgecolor="black", zorder=3)
    # Nearby points get their labels on alternating sides so they stay readable.
    for i, (_, row) in enumerate(rows.sort_values(x).iterrows()):
        offset = (8, 8) if i % 2 == 0 else (8, -14)
        ax.annotate(row["precision"], (row[x], row[y]), textcoords="offset points", xytext=offset, fontsize=9)
    values = pd.to_numeric(rows[x], errors="coerce")
    if len(values) and values.min() > 0 and values.max() / values.min() > 8:
        ax.set_xscale("log")  # e.g. int16x8 on reference kernels is ~50x slower than the rest
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.12, y=0.15)
    front = rows.set_index("precision").loc[pareto_front(rows, x, y)]
    ax.plot(front[x], front[y], "--", color="tab:red", label="Pareto front", zorder=2)
    scale = " (log scale)" if ax.get_xscale() == "log" else ""
    ax.set_xlabel(("p50 latency per image, ms, lower is better" if x == "p50_ms" else x) + scale)
    ax.set_ylabel("test accuracy" if y == "accuracy" else y)
    names = {"p50_ms": "latency", "accuracy": "accuracy", "size_bytes": "size"}
    ax.set_title(f"{names.get(y, y).capitalize()} vs {names.get(x, x)} (point area ~ file size)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def plot_sizes(table: pd.DataFrame) -> Figure:
    """File size per precision, in KiB, with the ratio to fp32 on each bar."""
    rows = _ok_rows(table).dropna(subset=["size_bytes"])
    fig = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    kib = rows["size_bytes"].astype(float) / 1024
    bars = ax.bar(rows["precision"], kib, color="tab:green", alpha=0.8)
    ratios = rows["size_ratio"] if "size_ratio" in rows.columns else pd.Series([np.nan] * len(rows))
    for bar, ratio in zip(bars, ratios):
        label = f"{ratio:.2f}x" if pd.notna(ratio) else ""
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("file size (KiB)")
    ax.set_title("Model file size per precision (ratio to fp32)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_confusions(evaluations: Mapping[str, object], class_names: Sequence[str], normalize: bool = True) -> Figure:
    """Confusion matrices side by side, one per variant (rows: true class, columns: predicted)."""
    items = [(name, ev) for name, ev in evaluations.items() if ev is not None]
    if not items:
        raise ConfigError("Expected at least one evaluation to plot. Received: none.")
    cols = min(3, len(items))
    rows = int(np.ceil(len(items) / cols))
    fig = Figure(figsize=(3.6 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, ev) in zip(axes.flat, items):
        cm = np.asarray(ev.confusion, dtype=float)
        shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
        ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        for (i, j), value in np.ndenumerate(cm):
            if value:
                ax.text(j, i, int(value), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.6 else "black")
        ax.set_title(f"{name}: {ev.accuracy:.1%}", fontsize=10)
        ax.set_xticks(range(len(class_names)), class_names, rotation=60, fontsize=7)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    return fig


def plot_history(history: pd.DataFrame, title: str = "Training") -> Figure:
    """Loss and accuracy per epoch, training and validation."""
    if history is None or len(history) == 0:
        raise ConfigError("Expected a training history with at least one epoch. Received: an empty history.")
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = history["epoch"] if "epoch" in history.columns else np.arange(1, len(history) + 1)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            column = prefix + metric
            if column in history.columns:
                ax.plot(epochs, history[column], style, markersize=3, label="validation" if prefix else "training")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig
