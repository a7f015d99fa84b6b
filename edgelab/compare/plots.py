"""Pictures of a comparison: trade-off with the Pareto front, sizes, confusion matrices, training,
and the Edge TPU op map.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing leaks into
global state; notebooks display the returned figure and reports save it with ``fig.savefig``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from .._figure import Figure
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
    """Accuracy against latency, one point per precision (area ~ file size), Pareto front ringed.

    Labels are placed where they overlap no other label and no point, joined to their point by a
    thin line when they had to move away from it. Front points are ringed in red (and joined when
    there are several), so a one-point front is visible too.
    """
    rows = _ok_rows(table).dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    fig = Figure(figsize=(6.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    sizes = (
        pd.to_numeric(rows.get("size_bytes", pd.Series(1, index=rows.index)), errors="coerce").fillna(1).astype(float)
    )
    area = 40 + 260 * sizes / max(float(sizes.max()), 1.0) if len(sizes) else sizes
    ax.scatter(rows[x], rows[y], s=area, alpha=0.6, color="tab:blue", edgecolor="black", zorder=3)
    values = pd.to_numeric(rows[x], errors="coerce")
    if len(values) and values.min() > 0 and values.max() / values.min() > 8:
        ax.set_xscale("log")  # e.g. int16x8 on reference kernels is ~50x slower than the rest
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15, y=0.2)
    if y in SHARE_COLUMNS:
        share_axis(ax, rows[y].to_numpy(float))
    on_front = rows["precision"].isin(pareto_front(rows, x, y)).to_numpy()
    front = rows[on_front]
    if len(front) > 1:
        ax.plot(front[x], front[y], "--", color="tab:red", zorder=2)
    if len(front):
        ring = (np.sqrt(area[on_front]) + 7) ** 2
        ax.scatter(front[x], front[y], s=ring, facecolors="none", edgecolors="tab:red", linewidths=1.5, zorder=4)
        # One legend entry that looks like what is drawn: rings, joined when there are several.
        key = Line2D(
            [],
            [],
            color="tab:red",
            linestyle="--" if len(front) > 1 else "none",
            marker="o",
            markersize=9,
            markerfacecolor="none",
            markeredgewidth=1.5,
        )
        ax.legend([key], ["Pareto front"], loc="best")
    scale = " (log scale)" if ax.get_xscale() == "log" else ""
    ax.set_xlabel(("p50 latency per image, ms, lower is better" if x == "p50_ms" else x) + scale)
    ax.set_ylabel("test accuracy" if y == "accuracy" else y)
    names = {"p50_ms": "latency", "accuracy": "accuracy", "size_bytes": "size"}
    ax.set_title(f"{names.get(y, y).capitalize()} vs {names.get(x, x)} (point area ~ file size)")
    ax.grid(alpha=0.3)
    radii = np.sqrt(np.where(on_front, (np.sqrt(area) + 7) ** 2, area)) / 2  # marker radius, points
    place_labels(ax, rows[x].to_numpy(float), rows[y].to_numpy(float), list(rows["precision"]), radii)
    return fig


#: Quality columns that are shares of the test images (accuracy 0..1, a change of it -1..1).
SHARE_COLUMNS = ("accuracy", "agreement", "delta_accuracy")
#: Smallest span of a share axis: 0.05 (5 points), so a difference of one test image (0.6 points of the
#: series' 180) looks small.
MIN_SHARE_SPAN = 0.05


def share_axis(ax: Any, values: np.ndarray, min_span: float = MIN_SHARE_SPAN) -> None:
    """A y axis of shares that spans at least ``min_span`` around ``values`` and has no tick above 1.

    A share axis fitted to its points (0.883-0.890) makes one test image look like a cliff; a
    share above 1 does not exist, so no tick says 1.002.
    """
    values = values[np.isfinite(values)]
    if not len(values):
        return
    low, high = ax.get_ylim()
    if high - low < min_span:
        centre = (float(values.min()) + float(values.max())) / 2
        low, high = centre - min_span / 2, centre + min_span / 2
        room = 1 + min_span * 0.12  # the top stays near 1, with room for the largest marker
        if high > room and values.max() <= 1:
            low, high = low - (high - room), room
        ax.set_ylim(low, high)
    ax.set_yticks([t for t in ax.get_yticks() if low <= t <= min(high, 1.0) + 1e-9])


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Overlapping area of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _gap(box: tuple[float, float, float, float], point: np.ndarray) -> float:
    """Distance from a point to the nearest edge of a box (0 inside)."""
    dx = max(box[0] - point[0], 0.0, point[0] - box[2])
    dy = max(box[1] - point[1], 0.0, point[1] - box[3])
    return math.hypot(dx, dy)


def _with_point(box: tuple[float, float, float, float], point: np.ndarray) -> tuple[float, float, float, float]:
    """The smallest box holding ``box`` and ``point``: a label and its leader line to the point."""
    x, y = float(point[0]), float(point[1])
    return (min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y))


def _clusters(centres: np.ndarray, radii: np.ndarray) -> list[list[int]]:
    """Groups of points drawn (nearly) on top of each other: closer than the larger radius."""
    parent = list(range(len(centres)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            if np.hypot(*(centres[i] - centres[j])) < max(radii[i], radii[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(centres)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def place_labels(
    ax: Any, xs: np.ndarray, ys: np.ndarray, labels: Sequence[str], radii_pt: Sequence[float], fontsize: float = 9
) -> list:
    """Label points so that no label overlaps another label or a point, and each sits nearest its own point.

    Points drawn on top of each other share one label (``"dynamic, int8"``, in the given order).
    Candidate spots ring each point (right, left, above, below, then the diagonals) at growing
    distances; the first spot that is free, inside the axes and closer to its own point than to
    any other wins, else the least bad one. A label that had to move away gets a leader line.
    Deterministic: the same data always gives the same picture.

    Returns:
        The annotations, one per label or group of labels.
    """
    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)  # a canvas that can measure text (pyplot-free figures have none)
    fig.draw_without_rendering()  # final layout and limits, so positions in pixels hold
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    centres = ax.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.zeros((0, 2))
    radii = np.asarray(radii_pt, float) * px
    markers = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), r in zip(centres, radii)]
    frame = ax.get_window_extent(renderer)
    frame_box = (frame.x0, frame.y0, frame.x1, frame.y1)
    placed: list[tuple[float, float, float, float]] = []
    annotations = []
    for members in _clusters(centres, radii):
        text = ", ".join(labels[i] for i in members)
        centre = centres[members].mean(axis=0)
        reach = max(np.hypot(*(centres[i] - centre)) + radii[i] for i in members)
        others = [i for i in range(len(centres)) if i not in members]
        probe = ax.text(0, 0, text, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = extent.width, extent.height
        best: tuple[tuple[float, float, float, float], int] = ((0.0, 0.0, w, h), 0)
        best_cost = math.inf
        for level in range(8):
            gap = reach + (3 + 10 * level) * px
            for dx, dy in _DIRECTIONS:
                # the box's nearest side or corner sits ``gap`` away from the centre
                x0 = centre[0] + dx * gap - (w if dx < 0 else w / 2 if dx == 0 else 0)
                y0 = centre[1] + dy * gap - (h if dy < 0 else h / 2 if dy == 0 else 0)
                if dx == 0:  # above or below: slide along the edge to stay inside the axes
                    x0 = min(max(x0, frame.x0 + 2), max(frame.x1 - 2 - w, frame.x0 + 2))
                if dy == 0:
                    y0 = min(max(y0, frame.y0 + 2), max(frame.y1 - 2 - h, frame.y0 + 2))
                box = (x0, y0, x0 + w, y0 + h)
                cost = sum(_overlap(box, other) for other in placed + markers)
                if level:  # the leader line (its whole bounding box) must not cover labels or points
                    span = _with_point(box, centre)
                    others_boxes = placed + [m for i, m in enumerate(markers) if i not in members]
                    cost += sum(_overlap(span, other) for other in others_boxes)
                cost += 4 * (w * h - _overlap(box, frame_box))
                own = min(_gap(box, centres[i]) - radii[i] for i in members)
                if any(_gap(box, centres[i]) - radii[i] < own for i in others):
                    cost += w * h / 2  # a reader would take it for another point's label
                if cost < best_cost:  # ties: the nearer spot, then the earlier direction
                    best, best_cost = (box, level), cost
            if best_cost == 0:
                break
        box, level = best
        if level:  # later labels keep clear of this leader line too
            placed.append(
                (min(box[0], centre[0]), min(box[1], centre[1]), max(box[2], centre[0]), max(box[3], centre[1]))
            )
        else:
            placed.append(box)
        offset = ((box[0] - centre[0]) / px, (box[1] - centre[1]) / px)
        arrow = {"arrowstyle": "-", "color": "0.3", "lw": 0.8, "shrinkA": 1, "shrinkB": reach / px} if level else None
        xy = tuple(ax.transData.inverted().transform(centre))
        note = ax.annotate(
            text,
            xy,
            textcoords="offset points",
            xytext=offset,
            ha="left",
            va="bottom",
            fontsize=fontsize,
            arrowprops=arrow,
            zorder=5,
        )
        note.set_in_layout(False)  # placed against the final layout: must not change it
        annotations.append(note)
    return annotations


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


#: Smallest font of the confusion matrices, in points: 10 pt is at least 11 px at the 80 dpi the explorers
#: draw at, and stays above 10 px when a notebook scales a three-panel figure down to its width.
CONFUSION_FONTSIZE = 10.0


def plot_confusions(evaluations: Mapping[str, Any], class_names: Sequence[str], normalize: bool = True) -> Figure:
    """Confusion matrices side by side, one per variant (rows: true class, columns: predicted).

    With ``normalize`` each row is divided by its class's image count: colours *and* the numbers in
    the cells are shares of the true class (.93), else raw image counts.
    """
    items = [(name, ev) for name, ev in evaluations.items() if ev is not None]
    if not items:
        raise ConfigError("Expected at least one evaluation to plot. Received: none.")
    cols = min(3, len(items))
    rows = int(np.ceil(len(items) / cols))
    fig = Figure(figsize=(3.9 * cols, 3.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, ev) in zip(axes.flat, items):
        cm = np.asarray(ev.confusion, dtype=float)
        shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
        image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(float(shown.max()), 1.0))
        for (i, j), value in np.ndenumerate(cm):
            if value:
                cell = image.cmap(image.norm(shown[i, j]))  # the colour actually drawn under the number
                text = f"{shown[i, j]:.2f}".lstrip("0") if normalize and shown[i, j] < 1 else f"{shown[i, j]:g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=CONFUSION_FONTSIZE - 1, color=text_colour(cell))
        title = f"{name}: {ev.accuracy:.1%}" + (", rows sum to 1" if normalize else "")
        ax.set_title(title, fontsize=CONFUSION_FONTSIZE + 1)
        ax.set_xticks(range(len(class_names)), class_names, rotation=60, fontsize=CONFUSION_FONTSIZE)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=CONFUSION_FONTSIZE)
        ax.set_xlabel("predicted", fontsize=CONFUSION_FONTSIZE)
        ax.set_ylabel("true", fontsize=CONFUSION_FONTSIZE)
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    return fig


def _luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour with channels in [0, 1]."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """WCAG contrast ratio of two sRGB colours (1 = none, 21 = black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: Sequence[float]) -> str:
    """``"black"`` or ``"white"``, whichever contrasts more with ``background`` (RGB(A) in [0, 1])."""
    return "black" if contrast_ratio(background, (0, 0, 0)) >= contrast_ratio(background, (1, 1, 1)) else "white"


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


#: Box colours of the op map, by where an op runs.
OP_COLOURS = {"edgetpu": "#4caf50", "cpu": "#ff9800"}
#: Smallest op-map font, in points: 11 pt is 12 px at the 80 dpi notebook widgets use, i.e. 9 pt on screen.
OP_MAP_FONTSIZE = 11.0


def _wrap_op(name: str, width: int = 13) -> str:
    """An op name on lines of at most ``width`` characters, broken after underscores when it is long."""
    lines, line = [], ""
    for part in name.replace("_", "_\0").split("\0"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def plot_op_map(report: Any, cols: int = 5) -> Figure:
    """Every op of an Edge TPU report in execution order, as a box: green on the Edge TPU, orange on the CPU.

    Op names are at least :data:`OP_MAP_FONTSIZE` points, long ones wrapped after an underscore.
    """

    ops = list(report.ops)
    n = max(len(ops), 1)
    cols = max(1, min(int(cols), n))
    rows = int(np.ceil(n / cols))
    names = [_wrap_op(op.op) for op in ops]
    lines = max([name.count("\n") + 2 for name in names] or [2])  # "#index" + the name's lines
    box_h = lines * OP_MAP_FONTSIZE * 1.3 / 72 + 0.2  # inches
    fig = Figure(figsize=(1.75 * cols, box_h * rows + 0.45), layout="constrained")
    ax = fig.add_subplot()
    for k, (op, name) in enumerate(zip(ops, names)):
        r, c = divmod(k, cols)
        y = rows - 1 - r
        ax.add_patch(
            FancyBboxPatch(
                (c + 0.04, y + 0.06),
                0.92,
                0.88,
                boxstyle="round,pad=0.02",
                facecolor=OP_COLOURS.get(op.target, "#9e9e9e"),
                edgecolor="black",
                linewidth=0.6,
            )
        )
        ax.text(
            c + 0.5,
            y + 0.5,
            f"#{op.index}\n{name}",
            ha="center",
            va="center",
            fontsize=OP_MAP_FONTSIZE,
            linespacing=1.15,
        )
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows)
    ax.set_axis_off()
    ax.set_title(
        f"{report.ops_edgetpu} of {report.ops_total} ops on the Edge TPU (green), {report.ops_cpu} on the CPU (orange)",
        fontsize=OP_MAP_FONTSIZE + 1,
    )
    return fig
