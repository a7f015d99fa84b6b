"""Plots (Pareto front, sizes, confusions, training curves) and the written report."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import _tiny
from edgelab.compare.comparison import COLUMNS, VariantResult, comparison_table
from edgelab.errors import ConfigError
from edgelab.compare.evaluate import classification_metrics
from edgelab.compare.plots import pareto_front, plot_confusions, plot_history, plot_sizes, plot_tradeoff
from edgelab.precision import Precision
from edgelab.compare.report import markdown_table, package_versions, summary_frame, write_report

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


def test_plot_tradeoff_shows_ok_variants_and_the_front():
    fig = plot_tradeoff(hand_table())
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "Accuracy vs latency (point area ~ file size)"
    assert "latency" in ax.get_xlabel() and ax.get_ylabel() == "test accuracy"
    assert sorted(texts(ax)) == sorted(["fp32", "fp16", "dynamic", "int8", "int16x8"])  # not the failed one
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_xdata().tolist() == [0.5, 1.0, 2.0]
    assert front.get_ydata().tolist() == [0.80, 0.89, 0.91]


def test_plot_sizes_has_one_bar_per_ok_variant_with_its_ratio():
    fig = plot_sizes(hand_table())
    (ax,) = fig.axes
    assert ax.get_title() == "Model file size per precision (ratio to fp32)"
    assert ax.get_ylabel() == "file size (KiB)"
    assert [round(p.get_height(), 3) for p in ax.patches] == [round(b / 1024, 3) for b in (4000, 2000, 1000, 1100, 1500)]
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
    fig = plot_confusions(evaluations, names)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["keras float: 100.0%", "int8: 75.0%", "fp16: 100.0%"]
    assert [t.get_text() for t in visible[1].get_xticklabels()] == names
    # Counts are written in the cells: int8 got 2 of class a, 1 a->b, 2 of b, 2 of c, 1 c->a.
    assert sorted(texts(visible[1])) == sorted(["2", "1", "2", "1", "2"])
    with pytest.raises(ConfigError):
        plot_confusions({"x": None}, names)


def test_plot_history_loss_and_accuracy_panels():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8],
                            "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.4, 0.6, 0.7]})
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
        "| precision | reason | accuracy |", "|---|---|---|", "| int8 | a\\|b c |  |",
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
    path = write_report(out, failed, history=pipe.history, qat_history=pipe.qat_history, parameters=parameters,
                        timings={"train": 1.234567}, title="tiny report")
    return out, path, failed


def test_write_report_writes_every_file(report_dir):
    out, path, _ = report_dir
    assert path == out / "report.md"
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.csv", "manifest.json", "labels.txt", "tradeoff.png", "sizes.png",
            "confusions.png", "training.png", "qat.png"} == names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_report_csv_has_the_comparison_columns(report_dir):
    out, _, result = report_dir
    csv = pd.read_csv(out / "report.csv")
    assert list(csv.columns) == list(COLUMNS)
    assert csv["precision"].tolist() == result.table["precision"].tolist()
    assert csv.set_index("precision").loc["int16x8", "reason"] == "Converting to int16x8 failed: boom"


def test_report_md_shows_the_table_plots_and_failures(report_dir):
    out, path, result = report_dir
    text = path.read_text()
    assert text.startswith("# tiny report\n")
    assert f"test accuracy **{result.float_accuracy:.4f}**" in text
    assert "| precision | status |" in text
    assert "- int16x8 failed: Converting to int16x8 failed: boom" in text
    for png in ("tradeoff.png", "sizes.png", "confusions.png", "training.png", "qat.png"):
        assert f"]({png})" in text
    assert "- Fastest: **" in text and "- Smallest: **" in text


def test_manifest_records_versions_parameters_and_model_hashes(report_dir):
    out, _, result = report_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"]["tensorflow"] and manifest["packages"]["numpy"]
    assert manifest["parameters"] == {"per_class": _tiny.PER_CLASS, "image_size": _tiny.SIZE, "epochs": 1}
    assert manifest["timings_s"] == {"train": 1.23}
    assert manifest["float_accuracy"] == round(result.float_accuracy, 4)
    assert "manifest.json" in manifest["files"] and "report.md" in manifest["files"]
    models = manifest["models"]
    assert "int8" in models and "int16x8" not in models  # the failed variant has no file to vouch for
    for entry in models.values():
        data = open(entry["path"], "rb").read()
        assert entry["size_bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
