"""Interactive explorers for notebooks: thin ipywidgets wiring over plain, testable functions.

Every explorer is an ``ipywidgets.VBox`` whose controls are attributes (``.dropdown``,
``.next_button``, ``.slider``...), whose picture is an ``ipywidgets.Image`` (``.image``, PNG or
JPEG bytes), whose status line and table are ``ipywidgets.HTML`` (``.label``, ``.table``). The state lives in widget
traits, not in an ``Output`` area, so setting ``.value`` or calling ``.click()`` from code updates
the explorer at once: the same in JupyterLab, in a headless kernel (nbval, nbclient) and in tests.
``summary()`` returns the current state as plain text for a notebook to print, and ``picture()``
the current picture (a matplotlib Figure, or an :class:`ImageGrid` of photographs) for a static copy.

    import edgelab as el
    from edgelab import widgets

    explorer = widgets.flip_explorer(comparison, "int8")
    explorer                      # shows it
    explorer.next_button.click()  # next cell: drive it
    print(explorer.summary())

The logic (which images, which rows, which pictures) is in module-level functions that take
plain data and return numpy arrays, DataFrames or Figures; the widget classes only wire them up.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .compare.plots import pareto_front, plot_confusions, plot_tradeoff
from .errors import ConfigError
from .explore import (
    COST_COLUMNS,
    FLOAT,
    QUALITY_COLUMNS,
    TARGETS,
    ImageGrid,
    check_choice,
    class_page,
    flip_rows,
    image_grid,
    ok_variants,
    op_map_figure,
    op_rows,
    picture_bytes,
    precision_name,
    tradeoff_axes,
    variant_predictions,
)
from .widget_base import Explorer, button

__all__ = [
    "ConfusionViewer",
    "DatasetBrowser",
    "EdgeTPUOpMap",
    "FlipExplorer",
    "ImageGrid",
    "PrecisionPicker",
    "TradeoffExplorer",
    "class_page",
    "confusion_viewer",
    "dataset_browser",
    "edgetpu_op_map",
    "flip_explorer",
    "image_grid",
    "op_map_figure",
    "op_rows",
    "picture_bytes",
    "precision_picker",
    "tradeoff_axes",
    "tradeoff_explorer",
    "variant_predictions",
]

# --------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------


class DatasetBrowser(Explorer):
    """Browse a dataset one class at a time: ``.dropdown`` (class), ``.split_dropdown``, ``.prev_button``, ``.next_button``."""

    def __init__(self, dataset: Any, split: str = "train", per_page: int = 12, cols: int = 6) -> None:
        self.dataset = dataset
        self.per_page, self.cols, self.page = per_page, cols, 0
        self.dropdown = w.Dropdown(options=list(dataset.class_names), description="class")
        self.split_dropdown = w.Dropdown(options=["train", "val", "test"], value=split, description="split")
        self.prev_button = button("previous", "arrow-left")
        self.next_button = button("next", "arrow-right")
        super().__init__([self.dropdown, self.split_dropdown, self.prev_button, self.next_button])
        self.dropdown.observe(self._reset, names="value")
        self.split_dropdown.observe(self._reset, names="value")
        self.prev_button.on_click(lambda _: self._step(-1))
        self.next_button.on_click(lambda _: self._step(1))
        self._render()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.dataset.arrays(self.split_dropdown.value)

    @property
    def indices(self) -> np.ndarray:
        """Indices (into the split's arrays) of the images shown."""
        _, labels = self._arrays()
        return class_page(labels, self.dropdown.index, self.page, self.per_page)[0]

    @property
    def pages(self) -> int:
        _, labels = self._arrays()
        return class_page(labels, self.dropdown.index, 0, self.per_page)[1]

    def _reset(self, _change: Any = None) -> None:
        self.page = 0
        self._render()

    def _step(self, delta: int) -> None:
        self.page = min(max(0, self.page + delta), self.pages - 1)
        self._render()

    def picture(self) -> ImageGrid:
        """The page shown, as an image grid."""
        images, _ = self._arrays()
        idx = self.indices
        return image_grid(images[idx], [f"#{i}" for i in idx], cols=self.cols)

    def _render(self) -> None:
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self._show(self.picture() if len(self.indices) else None, self.summary())

    def summary(self) -> str:
        _, labels = self._arrays()
        total = int(np.sum(labels == self.dropdown.index))
        idx = self.indices
        first = self.page * self.per_page
        shown = f"images {first + 1}-{first + len(idx)} of {total}" if len(idx) else "no images"
        return (
            f"{self.split_dropdown.value} split, class {self.dropdown.value!r}: {shown} "
            f"(page {self.page + 1} of {self.pages})"
        )


class PrecisionPicker(Explorer):
    """One image, every variant's prediction: ``.slider`` (image), ``.prev_button``, ``.next_button``."""

    def __init__(self, comparison: Any, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
        self.comparison = comparison
        if images is None:
            self.images = np.asarray(comparison.test_images)
            self.labels: np.ndarray | None = np.asarray(comparison.test_labels)
            self.predictions = None
        else:
            self.images = np.asarray(images)
            self.labels = None if labels is None else np.asarray(labels)
            # Run each converted file once over the new images.
            self.predictions = {name: v.model.predict(self.images) for name, v in ok_variants(comparison).items()}
        if len(self.images) == 0:
            raise ConfigError("Expected at least one image. Received: none.")
        self.slider = w.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image")
        self.prev_button = button("previous", "arrow-left")
        self.next_button = button("next", "arrow-right")
        super().__init__([self.slider, self.prev_button, self.next_button])
        self.slider.observe(lambda _: self._render(), names="value")
        self.prev_button.on_click(lambda _: self._step(-1))
        self.next_button.on_click(lambda _: self._step(1))
        self._render()

    @property
    def index(self) -> int:
        return int(self.slider.value)

    def _step(self, delta: int) -> None:
        self.slider.value = min(max(self.slider.min, self.index + delta), self.slider.max)

    def frame(self) -> pd.DataFrame:
        """The current image's predictions (see :func:`variant_predictions`)."""
        frame = variant_predictions(self.comparison, self.index, self.predictions)
        if self.predictions is not None and self.labels is not None:
            true = self.comparison.class_names[int(self.labels[self.index])]
            frame["correct"] = frame["predicted"] == true
        return frame

    def picture(self) -> ImageGrid:
        """The image shown."""
        return image_grid(self.images[[self.index]], [self._title()], cols=1, size=2.5)

    def _title(self) -> str:
        if self.labels is None:
            return f"image {self.index}"
        return f"image {self.index}: {self.comparison.class_names[int(self.labels[self.index])]}"

    def _shown(self) -> pd.DataFrame:
        """:meth:`frame` as shown, in the table and the summary alike: yes/no, confidences as text."""
        frame = self.frame().copy()
        for column in ("correct", "agrees"):
            frame[column] = frame[column].map(lambda v: {True: "yes", False: "no"}.get(v, ""))
        frame["confidence"] = frame["confidence"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
        return frame.drop(columns="agrees") if self.predictions is not None else frame

    def _render(self) -> None:
        self._show(self.images[self.index], self.summary().splitlines()[0], self._shown())

    def summary(self) -> str:
        head = f"{self._title()} (true class)" if self.labels is not None else self._title()
        return head + "\n" + self._shown().to_string(index=False)


class FlipExplorer(Explorer):
    """Step through the test images whose class changed between float and one precision.

    Controls: ``.dropdown`` (precision), ``.prev_button``, ``.next_button``; ``.position`` is the
    0-based position in the list of flipped images.
    """

    TABLE_ROWS = 8

    def __init__(self, comparison: Any, precision: str = "int8") -> None:
        self.comparison = comparison
        choices = [n for n in ok_variants(comparison)]
        if not choices:
            raise ConfigError("Expected a comparison with at least one measured variant. Received: none.")
        self.dropdown = w.Dropdown(
            options=choices,
            value=check_choice("precision", precision_name(precision), choices),
            description="precision",
        )
        self.prev_button = button("previous", "arrow-left")
        self.next_button = button("next", "arrow-right")
        self.position = 0
        super().__init__([self.dropdown, self.prev_button, self.next_button])
        self.dropdown.observe(self._reset, names="value")
        self.prev_button.on_click(lambda _: self._step(-1))
        self.next_button.on_click(lambda _: self._step(1))
        self._render()

    @property
    def flips(self) -> pd.DataFrame:
        return flip_rows(self.comparison, self.dropdown.value)

    def _reset(self, _change: Any = None) -> None:
        self.position = 0
        self._render()

    def _step(self, delta: int) -> None:
        self.position = min(max(0, self.position + delta), max(len(self.flips) - 1, 0))
        self._render()

    def current(self) -> dict | None:
        """The flipped image shown (a row of :func:`_flip_rows` as a dict), or None when nothing flipped."""
        flips = self.flips
        return None if flips.empty else flips.iloc[self.position].to_dict()

    def picture(self) -> ImageGrid | None:
        """The flipped image shown, titled with its classes (None when nothing flipped)."""
        row = self.current()
        if row is None:
            return None
        title = f"#{row['index']}: true {row['true_name']}\nfloat {row['from_name']} -> {self.dropdown.value} {row['to_name']}"
        return image_grid(np.asarray(self.comparison.test_images)[[int(row["index"])]], [title], cols=1, size=2.5)

    def _render(self) -> None:
        flips, row = self.flips, self.current()
        self.prev_button.disabled = self.position == 0
        self.next_button.disabled = self.position >= len(flips) - 1
        picture = None if row is None else np.asarray(self.comparison.test_images)[int(row["index"])]
        # The table lists the current flip and the next few, not all of them.
        self._show(
            picture, self.summary().splitlines()[-1], flips.iloc[self.position : self.position + self.TABLE_ROWS]
        )

    def summary(self) -> str:
        name, flips, n = self.dropdown.value, self.flips, len(self.comparison.test_labels)
        head = f"{name}: {len(flips)} of {n} test images change class against the float model"
        row = self.current()
        if row is None:
            return head + "\nnothing to step through"
        return head + (
            f"\nflip {self.position + 1} of {len(flips)}: image #{row['index']}, true {row['true_name']}, "
            f"float {row['from_name']} -> {name} {row['to_name']}"
        )


class ConfusionViewer(Explorer):
    """Confusion matrices per variant next to the float model's: ``.dropdown`` (variant), ``.normalize`` (checkbox)."""

    def __init__(self, comparison: Any, precision: str | None = None) -> None:
        self.comparison = comparison
        choices = [FLOAT] + list(ok_variants(comparison))
        value = check_choice("precision", precision_name(precision), choices) if precision is not None else choices[-1]
        self.dropdown = w.Dropdown(options=choices, value=value, description="variant")
        self.normalize = w.Checkbox(value=False, description="normalize rows", indent=False)
        super().__init__([self.dropdown, self.normalize])
        self.dropdown.observe(lambda _: self._render(), names="value")
        self.normalize.observe(lambda _: self._render(), names="value")
        self._render()

    def evaluation(self, name: str | None = None) -> Any:
        """The EvalResult of a variant (or of ``"float"``); default: the selected one."""
        name = self.dropdown.value if name is None else name
        return self.comparison.float_evaluation if name == FLOAT else ok_variants(self.comparison)[name].evaluation

    def picture(self) -> Figure:
        """The selected variant's confusion matrix beside the float model's."""

        shown = {FLOAT: self.evaluation(FLOAT)}
        shown[self.dropdown.value] = self.evaluation()
        return plot_confusions(shown, list(self.comparison.class_names), normalize=self.normalize.value)

    def frame(self) -> pd.DataFrame:
        """The selected confusion matrix (rows true, columns predicted)."""
        frame = self.evaluation().confusion_frame(normalize=self.normalize.value)
        return frame.round(3) if self.normalize.value else frame

    def _render(self) -> None:
        self._show(self.picture(), self.summary().splitlines()[0], self.frame().reset_index())

    def summary(self) -> str:
        name, ev = self.dropdown.value, self.evaluation()
        lines = [f"{name}: accuracy {ev.accuracy:.1%} (float {self.evaluation(FLOAT).accuracy:.1%})"]
        pairs = ev.most_confused()
        lines.append(
            "most confused (true -> predicted): " + ", ".join(f"{t} -> {p} {n}" for t, p, n in pairs)
            if pairs
            else "no confusions"
        )
        return "\n".join(lines)


class TradeoffExplorer(Explorer):
    """Quality against cost for every variant, with the Pareto front: ``.x_dropdown`` (cost), ``.y_dropdown`` (quality)."""

    def __init__(self, table: Any, x: str = "p50_ms", y: str = "accuracy") -> None:
        table = getattr(table, "table", table)  # a Comparison or its table
        self.data = table[table["status"] == "ok"] if "status" in table.columns else table
        xs, ys = tradeoff_axes(self.data)
        if not xs or not ys:
            raise ConfigError(
                f"Expected a comparison table with a cost column from {list(COST_COLUMNS)} and a quality column "
                f"from {list(QUALITY_COLUMNS)}. Received columns: {list(table.columns)}"
            )
        self.x_dropdown = w.Dropdown(options=xs, value=check_choice("x", x, xs), description="x (cost)")
        self.y_dropdown = w.Dropdown(options=ys, value=check_choice("y", y, ys), description="y (quality)")
        super().__init__([self.x_dropdown, self.y_dropdown])
        self.x_dropdown.observe(lambda _: self._render(), names="value")
        self.y_dropdown.observe(lambda _: self._render(), names="value")
        self._render()

    @property
    def front(self) -> list[str]:
        """The variants on the Pareto front for the chosen axes, by increasing cost."""

        return pareto_front(self.data, self.x_dropdown.value, self.y_dropdown.value)

    def picture(self) -> Figure:
        """The trade-off plot on the chosen axes."""

        return plot_tradeoff(self.data, self.x_dropdown.value, self.y_dropdown.value)

    def frame(self) -> pd.DataFrame:
        x, y = self.x_dropdown.value, self.y_dropdown.value
        frame = self.data[["precision", x, y]].sort_values([x, y], ascending=[True, False]).reset_index(drop=True)
        frame["pareto"] = frame["precision"].isin(self.front)
        return frame

    def _render(self) -> None:
        self._show(self.picture(), self.summary(), self.frame())

    def summary(self) -> str:
        return (
            f"x={self.x_dropdown.value} (lower is better), y={self.y_dropdown.value} (higher is better): "
            f"Pareto front {', '.join(self.front)}"
        )


class EdgeTPUOpMap(Explorer):
    """Which ops run on the Edge TPU and which on the CPU, and why: ``.filter`` (all, edgetpu, cpu)."""

    def __init__(self, report: Any, target: str = "all") -> None:
        self.report = report
        self.filter = w.ToggleButtons(
            options=list(TARGETS), value=check_choice("target", target, TARGETS), description="show"
        )
        super().__init__([self.filter])
        self.filter.observe(lambda _: self._render(), names="value")
        self._render()

    def frame(self) -> pd.DataFrame:
        """The ops shown (index, op, version, target, reason)."""
        return op_rows(self.report, self.filter.value)

    def picture(self) -> Figure:
        """Every op as a coloured box (see :func:`op_map_figure`)."""
        return op_map_figure(self.report)

    def _render(self) -> None:
        self._show(self.picture() if self.report.ops else None, self.summary().splitlines()[0], self.frame())

    def summary(self) -> str:
        r = self.report
        lines = [
            f"{r.ops_edgetpu} of {r.ops_total} ops on the Edge TPU, {r.ops_cpu} on the CPU (verdict: {r.verdict})",
        ]
        frame = self.frame()
        lines.append(f"showing {self.filter.value}: {len(frame)} ops")
        lines += [
            f"  #{row.index:<3} {row.op:<20} {row.target:<8} {row.reason}" for row in frame.itertuples(index=False)
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Factories (the names notebooks use)
# --------------------------------------------------------------------------------------------


def dataset_browser(dataset: Any, split: str = "train", per_page: int = 12) -> DatasetBrowser:
    """Browse a :class:`edgelab.Dataset` by class and page (class dropdown + sample grid)."""
    return DatasetBrowser(dataset, split=split, per_page=per_page)


def precision_picker(
    comparison: Any, images: np.ndarray | None = None, labels: np.ndarray | None = None
) -> PrecisionPicker:
    """Every variant's prediction for the same image (default: the comparison's test images)."""
    return PrecisionPicker(comparison, images, labels)


def flip_explorer(comparison: Any, precision: str = "int8") -> FlipExplorer:
    """Step through the images whose class differs between the float model and ``precision``."""
    return FlipExplorer(comparison, precision)


def confusion_viewer(comparison: Any, precision: str | None = None) -> ConfusionViewer:
    """Confusion matrix of each variant beside the float model's."""
    return ConfusionViewer(comparison, precision)


def tradeoff_explorer(table: Any, x: str = "p50_ms", y: str = "accuracy") -> TradeoffExplorer:
    """Accuracy / latency / size of every variant on chosen axes, with the Pareto front."""
    return TradeoffExplorer(table, x, y)


def edgetpu_op_map(report: Any, target: str = "all") -> EdgeTPUOpMap:
    """The Edge TPU mapping of every op (from :func:`edgelab.analyze_edgetpu`), filterable by target."""
    return EdgeTPUOpMap(report, target)
