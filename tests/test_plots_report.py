"""Plots (Pareto front, sizes, confusions, training curves) and the written report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import _tiny
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from edgelab.compare.comparison import COLUMNS, VariantResult, comparison_table
from edgelab.compare.evaluate import classification_metrics
from edgelab.compare.plots import (
    OP_MAP_FONTSIZE,
    contrast_ratio,
    pareto_front,
    plot_confusions,
    plot_history,
    plot_op_map,
    plot_sizes,
    plot_tradeoff,
)
from edgelab.compare.report import html_table, markdown_table, package_versions, summary_frame, write_report
from edgelab.edgetpu.analyze import EdgeTPUReport, OpVerdict
from edgelab.errors import ConfigError
from edgelab.precision import Precision

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hand_table() -> pd.DataFrame:
    """Five variants (one failed) with known trade-offs: front is dynamic -> int8 -> fp16."""
    return pd.DataFrame(
        {
            "precision": ["fp32", "fp16", "dynamic", "int8", "int16x8", "qat_int8"],
            "status": ["ok", "ok", "ok", "ok", "ok", "failed"],
            "size_bytes": [4000, 2000, 1000, 1100, 1500, None],
            "size_ratio": [1.0, 0.5, 0.25, 0.275, 0.375, None],
            "p50_ms": [2.0, 2.0, 0.5, 1.0, 5.0, None],
            "accuracy": [0.90, 0.91, 0.80, 0.89, 0.90, None],
        }
    )


# --------------------------------------------------------------------------- pareto_front


def test_pareto_front_keeps_variants_nothing_beats_on_both_axes():
    # fp32 (2.0 ms, 0.90) loses to fp16 (2.0 ms, 0.91); int16x8 is slower and no better.
    assert pareto_front(hand_table()) == ["dynamic", "int8", "fp16"]


def test_pareto_front_on_other_axes_and_ties():
    table = hand_table()
    assert pareto_front(table, x="size_bytes") == ["dynamic", "int8", "int16x8", "fp16"]
    tied = pd.DataFrame({"precision": ["a", "b", "c"], "p50_ms": [1.0, 1.0, 1.0], "accuracy": [0.5, 0.7, 0.7]})
    assert pareto_front(tied) == ["b"]
    assert pareto_front(tied.iloc[:0]) == []


def test_pareto_front_needs_its_columns():
    with pytest.raises(ConfigError, match=r"Missing: \['p50_ms'\]"):
        pareto_front(pd.DataFrame({"precision": ["a"], "accuracy": [1.0]}))


# --------------------------------------------------------------------------- plots


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def label_names(ax) -> list[str]:
    """Every precision named by a label (points drawn on top of each other share one label)."""
    return [name for t in ax.texts for name in t.get_text().split(", ")]


def test_plot_tradeoff_shows_ok_variants_and_the_front():
    fig = plot_tradeoff(hand_table())
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "Accuracy vs latency (point area ~ file size)"
    assert "latency" in ax.get_xlabel() and ax.get_ylabel() == "test accuracy"
    assert sorted(label_names(ax)) == sorted(["fp32", "fp16", "dynamic", "int8", "int16x8"])  # not the failed one
    (front,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert front.get_xdata().tolist() == [0.5, 1.0, 2.0]
    assert front.get_ydata().tolist() == [0.80, 0.89, 0.91]
    rings = ax.collections[1]  # the front's points, ringed
    assert rings.get_offsets().tolist() == [[0.5, 0.80], [1.0, 0.89], [2.0, 0.91]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Pareto front"]


def notebook_table() -> pd.DataFrame:
    """The series' comparison (05_compare): four variants within 4 KiB and 0.01 ms of each other."""
    return pd.DataFrame(
        {
            "precision": ["fp32", "fp16", "dynamic", "int8", "int16x8", "qat_int8"],
            "status": ["ok"] * 6,
            "size_bytes": [396252, 201396, 108736, 109112, 112288, 109904],
            "accuracy": [0.8889, 0.8889, 0.8889, 0.8889, 0.8889, 0.8833],
            "agreement": [1.0, 1.0, 1.0, 1.0, 1.0, 0.9889],
            "p50_ms": [0.1261, 0.1112, 0.1021, 0.1861, 4.4648, 0.1490],
        }
    )


def _boxes(fig, ax):
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    labels = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
    points, rings = ax.collections[:2]
    centres = ax.transData.transform(points.get_offsets())
    sizes = points.get_sizes().copy()
    for ring, size in zip(rings.get_offsets().tolist(), rings.get_sizes()):  # a ringed point is as big as its ring
        sizes[points.get_offsets().tolist().index(ring)] = size
    radii = np.sqrt(sizes) / 2 * fig.dpi / 72
    return labels, centres, radii, ax.get_window_extent(renderer)


@pytest.mark.parametrize(("x", "y"), [("p50_ms", "accuracy"), ("size_bytes", "accuracy"), ("size_bytes", "agreement")])
@pytest.mark.parametrize("dpi", [80, 110])
def test_tradeoff_labels_never_overlap_labels_or_other_points(x, y, dpi):
    table = notebook_table()
    fig = plot_tradeoff(table, x=x, y=y)
    fig.set_dpi(dpi)  # as saved by widgets (80) and reports (110)
    (ax,) = fig.axes
    labels, centres, radii, frame = _boxes(fig, ax)
    order = table.sort_values([x, y], ascending=[True, False])["precision"].tolist()
    assert sorted(label_names(ax)) == sorted(order)  # each precision named exactly once
    for k, (text, box) in enumerate(labels):
        for other_text, other in labels[k + 1 :]:
            assert not box.overlaps(other), (text, other_text)
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), text
        own = [order.index(name) for name in text.split(", ")]
        for i, (centre, radius) in enumerate(zip(centres, radii)):
            if i in own:
                continue
            # no other point under the label, and the label is nearer its own point than any other
            dx = max(box.x0 - centre[0], 0, centre[0] - box.x1)
            dy = max(box.y0 - centre[1], 0, centre[1] - box.y1)
            gap_other = np.hypot(dx, dy) - radius
            assert gap_other > 0, (text, order[i])
            gap_own = min(
                np.hypot(
                    max(box.x0 - centres[j][0], 0, centres[j][0] - box.x1),
                    max(box.y0 - centres[j][1], 0, centres[j][1] - box.y1),
                )
                - radii[j]
                for j in own
            )
            assert gap_own <= gap_other + 1, (text, order[i])


@pytest.mark.parametrize("y", ["accuracy", "agreement"])
def test_tradeoff_share_axis_does_not_make_one_image_a_cliff(y):
    table = notebook_table()  # 180 test images: qat_int8 is one image below the rest
    (ax,) = plot_tradeoff(table, x="size_bytes", y=y).axes
    low, high = ax.get_ylim()
    assert high - low >= 0.05 - 1e-9  # one image (0.0056) is at most a ninth of the axis
    assert low <= table[y].min() and table[y].max() <= high
    assert max(ax.get_yticks()) <= 1.0  # no share above 1 on the axis


def test_tradeoff_one_point_front_is_drawn_and_named_once():
    table = notebook_table()
    fig = plot_tradeoff(table, x="size_bytes")
    (ax,) = fig.axes
    assert pareto_front(table, x="size_bytes") == ["dynamic"]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]  # no line through one point
    rings = ax.collections[1]
    assert rings.get_offsets().tolist() == [[108736.0, 0.8889]]
    assert rings.get_visible() and rings.get_linewidths()[0] > 1
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Pareto front"]
    (key,) = legend.legend_handles
    assert key.get_marker() == "o" and key.get_linestyle() == "None"  # drawn as the ring the plot shows


def test_plot_sizes_has_one_bar_per_ok_variant_with_its_ratio():
    fig = plot_sizes(hand_table())
    (ax,) = fig.axes
    assert ax.get_title() == "Model file size per precision (ratio to fp32)"
    assert ax.get_ylabel() == "file size (KiB)"
    assert [round(p.get_height(), 3) for p in ax.patches] == [
        round(b / 1024, 3) for b in (4000, 2000, 1000, 1100, 1500)
    ]
    assert texts(ax) == ["1.00x", "0.50x", "0.25x", "0.28x", "0.38x"]


def test_plot_confusions_one_panel_per_variant():
    names = ["a", "b", "c"]
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    evaluations = {
        "keras float": classification_metrics(y_true, y_true, names),
        "int8": classification_metrics(y_true, np.array([0, 1, 1, 1, 2, 2, 0, 0]), names),
        "fp16": classification_metrics(y_true, y_true, names),
        "broken": None,  # a failed variant has no evaluation
    }
    fig = plot_confusions(evaluations, names, normalize=False)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["keras float: 100.0%", "int8: 75.0%", "fp16: 100.0%"]
    assert [t.get_text() for t in visible[1].get_xticklabels()] == names
    assert (visible[1].get_xlabel(), visible[1].get_ylabel()) == ("predicted", "true")
    # Counts are written in the cells: int8 got 2 of class a, 1 a->b, 2 of b, 2 of c, 1 c->a.
    assert sorted(texts(visible[1])) == sorted(["2", "1", "2", "1", "2"])
    # Normalized, the numbers are what the colours show: shares of each true class (a: 2 of 3, 1 of 3).
    normalized = [ax for ax in plot_confusions(evaluations, names).axes if ax.get_visible()][1]
    assert sorted(texts(normalized)) == sorted([".67", ".33", "1", ".67", ".33"])
    assert normalized.get_title() == "int8: 75.0%, rows sum to 1"
    with pytest.raises(ConfigError):
        plot_confusions({"x": None}, names)


def test_confusion_labels_are_at_least_10_px_where_notebooks_show_them():
    names = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    y = np.repeat(np.arange(6), 5)
    evaluations = {p: classification_metrics(y, y, names) for p in ("fp32", "fp16", "dynamic", "int8", "qat_int8")}
    fig = plot_confusions(evaluations, names)
    # The widgets draw at 80 dpi; a notebook shows a figure at 100 dpi scaled to a ~1000 px wide output.
    for dpi, width_px in ((80, None), (100, 1000)):
        scale = min(1.0, width_px / (fig.get_figwidth() * dpi)) if width_px else 1.0
        for ax in fig.axes:
            for label in ax.get_xticklabels() + ax.get_yticklabels():
                assert label.get_fontsize() * dpi / 72 * scale >= 10, (dpi, label.get_text(), label.get_fontsize())


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_counts_contrast_with_their_cells(normalize):
    names = ["a", "b", "c", "d"]
    y_true = np.repeat(np.arange(4), 25)
    y_pred = y_true.copy()
    y_pred[[0, 1, 2, 25, 26, 50, 75, 76, 77, 78]] = [1, 2, 3, 0, 3, 1, 0, 1, 2, 2]  # small off-diagonal counts
    fig = plot_confusions({"int8": classification_metrics(y_true, y_pred, names)}, names, normalize=normalize)
    (ax,) = fig.axes
    image = ax.get_images()[0]
    shown = image.get_array()
    from matplotlib.colors import to_rgb

    assert len(ax.texts) == 4 + 9  # diagonal + distinct confusions
    for text in ax.texts:
        j, i = (round(v) for v in text.get_position())
        cell = image.cmap(image.norm(shown[i, j]))
        assert contrast_ratio(to_rgb(text.get_color()), cell) >= 4.5, (text.get_text(), text.get_color(), cell)
    off_diagonal = [t for t in ax.texts if round(t.get_position()[0]) != round(t.get_position()[1])]
    assert {t.get_color() for t in off_diagonal} == {"black"}  # small counts sit on pale cells


def report_with(ops: list[OpVerdict]) -> EdgeTPUReport:
    on_tpu = sum(op.target == "edgetpu" for op in ops)
    return EdgeTPUReport(
        "m.tflite", tuple(ops), len(ops), on_tpu, len(ops) - on_tpu, "partial", "", 14, False, 1, 0, 0, 8 << 20
    )


def test_op_map_names_are_readable_and_fit_their_boxes():
    names = [
        "QUANTIZE",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "SQUARED_DIFFERENCE",
        "RESIZE_NEAREST_NEIGHBOR",
        "FULLY_CONNECTED",
        "MEAN",
        "SOFTMAX",
        "edgetpu-custom-op",
    ]
    ops = [
        OpVerdict(
            i, name, 1, "edgetpu" if i < 3 else "cpu", "Mapped to Edge TPU" if i < 3 else "Operation not supported"
        )
        for i, name in enumerate(names)
    ]
    fig = plot_op_map(report_with(ops))
    FigureCanvasAgg(fig)
    fig.set_dpi(80)  # the resolution the notebook widget shows it at
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    assert len(ax.texts) == len(ops) and len(ax.patches) == len(ops)
    for text, box, op in zip(ax.texts, ax.patches, ops):
        assert text.get_text().replace("\n", "").startswith(f"#{op.index}{op.op}")
        assert text.get_fontsize() * 80 / 72 >= 12  # >= 9 pt on a 96 dpi screen
        inner, outer = text.get_window_extent(renderer), box.get_window_extent(renderer)
        assert outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0 and inner.y1 <= outer.y1, op.op
    colours = {op.target: box.get_facecolor() for op, box in zip(ops, ax.patches)}
    assert colours["edgetpu"] != colours["cpu"]
    assert ax.title.get_fontsize() >= OP_MAP_FONTSIZE


def test_html_table_left_aligns_text_and_says_yes_no():
    frame = pd.DataFrame(
        {
            "index": [0, 1],
            "op": ["MEAN", "ADD"],
            "p50_ms": [0.12345, float("nan")],
            "pareto": [True, False],
            "reason": ["Operation is otherwise supported", "More than one <subgraph>"],
        }
    )
    page = html_table(frame)
    assert '<th style="text-align: left">reason</th>' in page
    assert '<td style="text-align: left">Operation is otherwise supported</td>' in page
    assert '<td style="text-align: left">More than one &lt;subgraph&gt;</td>' in page
    assert '<td style="text-align: right">0.123</td>' in page and '<td style="text-align: right"></td>' in page
    assert '<td style="text-align: left">yes</td>' in page and '<td style="text-align: left">no</td>' in page
    assert "True" not in page and "False" not in page


def test_op_map_widget_table_left_aligns_the_reason():
    from edgelab import widgets

    ops = [
        OpVerdict(0, "QUANTIZE", 1, "edgetpu", "Mapped to Edge TPU"),
        OpVerdict(1, "TANH", 1, "cpu", "Operation not supported"),
    ]
    table = widgets.edgetpu_op_map(report_with(ops)).table.value
    assert '<td style="text-align: left">Operation not supported</td>' in table
    assert '<td style="text-align: right">1</td>' in table  # the index stays a right-aligned number


def test_plot_history_loss_and_accuracy_panels():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [1.0, 0.6, 0.4],
            "accuracy": [0.5, 0.7, 0.8],
            "val_loss": [1.1, 0.8, 0.7],
            "val_accuracy": [0.4, 0.6, 0.7],
        }
    )
    fig = plot_history(history, "Float training")
    assert fig.get_suptitle() == "Float training"
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_ylabel(), acc_ax.get_ylabel()) == ("loss", "accuracy")
    assert [line.get_label() for line in acc_ax.get_lines()] == ["training", "validation"]
    assert acc_ax.get_lines()[1].get_ydata().tolist() == [0.4, 0.6, 0.7]
    with pytest.raises(ConfigError, match="empty history"):
        plot_history(history.iloc[:0])


# --------------------------------------------------------------------------- report


def test_markdown_table_escapes_and_blanks_missing_values():
    frame = pd.DataFrame({"precision": ["int8"], "reason": ["a|b\nc"], "accuracy": [float("nan")]})
    assert markdown_table(frame).splitlines() == [
        "| precision | reason | accuracy |",
        "|:---|:---|:---|",
        "| int8 | a\\|b c |  |",
    ]
    frame = pd.DataFrame({"precision": ["fp32", "int8"], "accuracy": [0.9, 0.8], "xnnpack": [True, False]})
    assert markdown_table(frame).splitlines() == [
        "| precision | accuracy | xnnpack |",
        "|:---|---:|:---|",
        "| fp32 | 0.9 | yes |",
        "| int8 | 0.8 | no |",
    ]


def test_summary_frame_keeps_reasons_only_when_something_failed():
    table = hand_table().assign(reason=[None] * 5 + ["boom"])
    assert summary_frame(table)["reason"].tolist()[-1] == "boom"
    assert "reason" not in summary_frame(table.assign(reason=None)).columns


def test_package_versions_name_the_stack():
    versions = package_versions()
    for name in ("python", "tensorflow", "tf_keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy"):
        assert versions[name], name


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    pipe = _tiny.pipeline(tmp_path_factory)
    result = _tiny.comparison(tmp_path_factory)
    # One variant failed: its reason must reach the report.
    variants = dict(result.variants)
    variants[Precision.INT16X8] = VariantResult(Precision.INT16X8, "failed", "Converting to int16x8 failed: boom")
    failed = dataclasses.replace(result, variants=variants, table=comparison_table(variants, result.float_accuracy))
    out = tmp_path_factory.mktemp("report")
    parameters = {"per_class": _tiny.PER_CLASS, "image_size": _tiny.SIZE, "epochs": 1}
    path = write_report(
        failed,
        out_dir=out,
        history=pipe.history,
        qat_history=pipe.qat_history,
        parameters=parameters,
        timings={"train": 1.234567},
        title="tiny report",
    )
    return out, path, failed


def test_write_report_writes_every_file(report_dir):
    out, path, _ = report_dir
    assert path == out / "report.md"
    names = {p.name for p in out.iterdir()}
    assert {
        "report.md",
        "report.csv",
        "manifest.json",
        "labels.txt",
        "tradeoff.png",
        "sizes.png",
        "confusions.png",
        "training.png",
        "qat.png",
    } == names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_report_csv_has_the_comparison_columns(report_dir):
    out, _, result = report_dir
    csv = pd.read_csv(out / "report.csv")
    assert list(csv.columns) == list(COLUMNS)
    assert csv["precision"].tolist() == result.table["precision"].tolist()
    assert csv.set_index("precision").loc["int16x8", "reason"] == "Converting to int16x8 failed: boom"


def test_report_md_shows_the_table_plots_and_failures(report_dir):
    _, path, result = report_dir
    text = path.read_text()
    assert text.startswith("# tiny report\n")
    assert f"test accuracy **{result.float_accuracy:.4f}**" in text
    assert "| precision | status |" in text
    assert "- int16x8 failed: Converting to int16x8 failed: boom" in text
    for png in ("tradeoff.png", "sizes.png", "confusions.png", "training.png", "qat.png"):
        assert f"]({png})" in text
    assert "- Fastest: **" in text and "- Smallest: **" in text
    from edgelab._machine import int8_measured
    from edgelab.compare.report import int8_latency_ratio

    # Latency depends on the CPU: name it, and say what this table's int8 ratio is, not a prediction.
    line = int8_measured(int8_latency_ratio(result.table))
    assert f"\n{line}\n" in text
    assert "expected" not in line


def test_manifest_records_versions_parameters_and_model_hashes(report_dir):
    out, _, result = report_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"]["tensorflow"] and manifest["packages"]["numpy"]
    from edgelab._machine import machine_info

    assert manifest["machine"] == machine_info()  # cpu_model, isa (e.g. avx512_vnni), cores, platform
    assert manifest["parameters"] == {"per_class": _tiny.PER_CLASS, "image_size": _tiny.SIZE, "epochs": 1}
    assert manifest["timings_s"] == {"train": 1.23}
    assert manifest["float_accuracy"] == round(result.float_accuracy, 4)
    assert "manifest.json" in manifest["files"] and "report.md" in manifest["files"]
    models = manifest["models"]
    assert "int8" in models and "int16x8" not in models  # the failed variant has no file to vouch for
    for entry in models.values():
        data = Path(entry["path"]).read_bytes()
        assert entry["size_bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
