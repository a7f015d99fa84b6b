"""The notebook explorers: each one driven from code (values set, buttons clicked) and its state checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgelab import explore, widgets
from edgelab.compare.comparison import Comparison, VariantResult
from edgelab.compare.evaluate import classification_metrics
from edgelab.data.datasets import Dataset
from edgelab.edgetpu.analyze import EdgeTPUReport, OpVerdict
from edgelab.edgetpu.analyze import analyze_edgetpu as analyze
from edgelab.errors import ConfigError
from edgelab.precision import Precision

NAMES = ("buildings", "forest", "glacier")
CORAL = Path(__file__).parent / "data" / "coral"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def one_hot(pred: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Probabilities whose argmax is ``pred``."""
    probs = np.full((len(pred), len(NAMES)), (1 - confidence) / (len(NAMES) - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


class FakeConverted:
    """Stands in for a ConvertedModel: predicts a fixed class for every image."""

    def __init__(self, cls: int):
        self.cls = cls
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        return one_hot(np.full(len(images), self.cls), 0.6)


@pytest.fixture()
def comparison() -> Comparison:
    """12 test images; float misses image 1; int8 flips images 4 and 7; fp16 failed."""
    labels = np.tile(np.arange(3), 4)
    images = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    float_pred = labels.copy()
    float_pred[1] = 2
    variants = {}
    for precision, flips, cls in ((Precision.FP32, [], 0), (Precision.INT8, [4, 7], 1)):
        pred = float_pred.copy()
        pred[flips] = (pred[flips] + 1) % 3
        probs = one_hot(pred)
        ev = classification_metrics(labels, probs, NAMES, float_pred, predictions=probs)
        variants[precision] = VariantResult(precision, "ok", model=FakeConverted(cls), evaluation=ev)
    variants[Precision.FP16] = VariantResult(Precision.FP16, "failed", "converter crashed")
    table = pd.DataFrame(
        {
            "precision": ["fp32", "int8", "fp16"],
            "status": ["ok", "ok", "failed"],
            "size_bytes": [4000, 1100, None],
            "accuracy": [
                variants[Precision.FP32].evaluation.accuracy,
                variants[Precision.INT8].evaluation.accuracy,
                None,
            ],
            "agreement": [1.0, 10 / 12, None],
            "p50_ms": [0.20, 0.15, None],
        }
    )
    float_ev = classification_metrics(labels, float_pred, NAMES)
    return Comparison(table, variants, float_ev, NAMES, images, labels)


def shown_png(explorer) -> bool:
    """The explorer shows a picture in the format its Image widget declares."""
    magic = {"png": PNG_MAGIC, "jpeg": JPEG_MAGIC}[explorer.image.format]
    return bytes(explorer.image.value).startswith(magic)


def test_widgets_import_no_tensorflow():
    """The explorers run wherever the comparison results are, TensorFlow or not."""
    code = "import sys, edgelab.widgets; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- plain functions ------------------------------------------------------------------------------


def test_class_page_pages_and_clamps():
    labels = np.array([0, 1, 0, 0, 1, 0, 0])  # class 0 at 0, 2, 3, 5, 6
    idx, pages = widgets.class_page(labels, 0, page=0, per_page=2)
    assert pages == 3 and idx.tolist() == [0, 2]
    assert widgets.class_page(labels, 0, page=2, per_page=2)[0].tolist() == [6]
    assert widgets.class_page(labels, 0, page=9, per_page=2)[0].tolist() == [6]  # past the end: last page
    idx, pages = widgets.class_page(labels, 2, per_page=2)  # a class without images: one empty page
    assert idx.size == 0 and pages == 1
    with pytest.raises(ConfigError, match="per_page"):
        widgets.class_page(labels, 0, per_page=0)


def test_most_confused_orders_off_diagonal_counts(comparison):
    ev = comparison.variants[Precision.INT8].evaluation
    pairs = ev.most_confused(k=5)
    assert all(t != p for t, p, _ in pairs)
    assert [n for *_, n in pairs] == sorted((n for *_, n in pairs), reverse=True)
    assert sum(n for *_, n in pairs) == ev.num_samples - ev.num_correct


def test_variant_predictions_rows(comparison):
    frame = widgets.variant_predictions(comparison, 4)
    assert frame["precision"].tolist() == ["float", "fp32", "int8"]  # the failed fp16 has no row
    row = frame.set_index("precision")
    assert row.loc["float", "predicted"] == "forest" and np.isnan(row.loc["float", "confidence"])
    assert row.loc["int8", "predicted"] == "glacier" and row.loc["int8", "confidence"] == pytest.approx(0.8)
    assert bool(row.loc["fp32", "correct"]) and not bool(row.loc["int8", "correct"])
    assert not bool(row.loc["int8", "agrees"]) and bool(row.loc["fp32", "agrees"])
    with pytest.raises(ConfigError, match="index"):
        widgets.variant_predictions(comparison, 12)


def test_flip_rows_and_errors(comparison):
    assert explore.flip_rows(comparison, "int8")["index"].tolist() == [4, 7]
    assert explore.flip_rows(comparison, Precision.FP32).empty
    with pytest.raises(ConfigError, match="int8"):
        explore.flip_rows(comparison, "fp16")  # failed variants are not offered
    with pytest.raises(ConfigError, match="Did you mean"):
        explore.flip_rows(comparison, "int9")


def test_tradeoff_axes_lists_columns_with_values(comparison):
    xs, ys = widgets.tradeoff_axes(comparison.table)
    assert xs == ["p50_ms", "size_bytes"] and ys == ["accuracy", "agreement"]
    # The same MACs for every variant (quantization keeps the graph): not an axis that tells them apart.
    xs, _ = widgets.tradeoff_axes(comparison.table.assign(macs=3_982_080))
    assert "macs" not in xs
    xs, _ = widgets.tradeoff_axes(comparison.table.assign(macs=[3_982_080, 2_000_000, None]))
    assert "macs" in xs


def test_picture_bytes_and_grid():
    data, fmt = widgets.picture_bytes(np.zeros((4, 5, 3), np.uint8), scale=2)
    assert fmt == "png" and data.startswith(PNG_MAGIC)
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(data)).size == (10, 8)  # enlarged, width x height
    grid = widgets.image_grid(np.zeros((7, 4, 4, 3), np.uint8), [str(i) for i in range(7)], cols=3)
    assert len([ax for ax in grid.figure.axes if ax.images]) == 7 and repr(grid) == "ImageGrid(7 images)"
    assert grid._repr_jpeg_().startswith(JPEG_MAGIC)  # photographs are stored as JPEG in notebooks
    data, fmt = widgets.picture_bytes(grid.figure)
    assert fmt == "png" and data.startswith(PNG_MAGIC)  # plots stay PNG
    with pytest.raises(ConfigError, match="uint8"):
        widgets.picture_bytes(np.zeros((4, 4), np.float32))
    with pytest.raises(ConfigError, match="one title per image"):
        widgets.image_grid(np.zeros((2, 4, 4, 3), np.uint8), ["a"])


# -- widgets --------------------------------------------------------------------------------------


def test_dataset_browser_pages_and_classes():
    images = np.random.default_rng(1).integers(0, 256, (60, 6, 6, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 20)
    data = Dataset.from_arrays(images, labels, list(NAMES), val_fraction=0.0, test_fraction=0.25)
    browser = widgets.dataset_browser(data, per_page=4)
    assert browser.dropdown.options == NAMES and browser.prev_button.disabled and shown_png(browser)
    train_labels = data.arrays("train")[1]
    assert (train_labels[browser.indices] == 0).all() and len(browser.indices) == 4
    browser.dropdown.value = "glacier"
    browser.next_button.click()
    assert browser.page == 1 and (train_labels[browser.indices] == 2).all()
    assert browser.summary() == "train split, class 'glacier': images 5-8 of 15 (page 2 of 4)"
    for _ in range(5):
        browser.next_button.click()
    assert browser.page == 3 and browser.next_button.disabled and len(browser.indices) == 3
    browser.split_dropdown.value = "test"  # a new split starts at its first page
    assert browser.page == 0 and browser.summary().startswith("test split, class 'glacier': images 1-4 of 5")
    browser.prev_button.click()
    assert browser.page == 0
    assert repr(browser) == "DatasetBrowser(test split, class 'glacier': images 1-4 of 5 (page 1 of 2))"
    assert browser.picture().count == len(browser.indices) == 4


def test_status_lines_stay_lines_with_only_the_first_in_bold():
    from edgelab.widget_base import Explorer

    class TwoLines(Explorer):
        def _render(self) -> None:
            self._show(None, "op 3: rank 1 <of 9>,\n  33 levels used\nop 3 CONV_2D: channel ranges differ")

    explorer = TwoLines([])
    explorer._render()
    first = "<b>op 3: rank 1 &lt;of 9&gt;, 33 levels used</b>"  # a wrapped line joins its paragraph
    assert explorer.label.value == first + "<br>op 3 CONV_2D: channel ranges differ"


def test_precision_picker_on_test_images(comparison):
    picker = widgets.precision_picker(comparison)
    assert picker.slider.max == 11 and shown_png(picker)
    picker.slider.value = 4
    text = picker.summary()
    assert text.splitlines()[0] == "image 4: forest (true class)"
    assert "int8" in text and "glacier" in text and "n/a" in text
    assert "<table" in picker.table.value and "glacier" in picker.table.value
    # one wording for booleans: the table says yes/no, as the summary does
    assert ">yes<" in picker.table.value and ">no<" in picker.table.value
    assert "True" not in picker.table.value and "False" not in picker.table.value
    picker.next_button.click()
    assert picker.index == 5
    picker.slider.value = 11
    picker.next_button.click()
    assert picker.index == 11  # stays on the last image
    picker.prev_button.click()
    assert picker.index == 10


def test_precision_picker_runs_variants_on_new_images(comparison):
    new = np.zeros((3, 8, 8, 3), np.uint8)
    picker = widgets.precision_picker(comparison, new, labels=np.array([1, 1, 0]))
    frame = picker.frame()
    assert frame["precision"].tolist() == ["fp32", "int8"]  # no float row: the Keras model is not kept
    assert frame.set_index("precision")["predicted"].to_dict() == {"fp32": "buildings", "int8": "forest"}
    assert frame.set_index("precision")["correct"].to_dict() == {"fp32": False, "int8": True}
    assert comparison.variants[Precision.INT8].model.calls == 1  # predicted once, not per step
    picker.slider.value = 2
    assert picker.frame().set_index("precision")["correct"].to_dict() == {"fp32": True, "int8": False}
    assert comparison.variants[Precision.INT8].model.calls == 1


def test_flip_explorer_steps_through_flips(comparison):
    explorer = widgets.flip_explorer(comparison, "int8")
    assert explorer.dropdown.options == ("fp32", "int8")
    assert explorer.current()["index"] == 4 and explorer.prev_button.disabled and shown_png(explorer)
    explorer.next_button.click()
    assert explorer.position == 1 and explorer.current()["index"] == 7 and explorer.next_button.disabled
    assert explorer.summary() == (
        "int8: 2 of 12 test images change class against the float model\n"
        "flip 2 of 2: image #7, true forest, float forest -> int8 glacier"
    )
    explorer.next_button.click()
    assert explorer.position == 1
    explorer.dropdown.value = "fp32"
    assert explorer.current() is None and explorer.position == 0
    assert explorer.summary().endswith("nothing to step through") and bytes(explorer.image.value) == b""
    assert explorer.picture() is None
    with pytest.raises(ConfigError):
        widgets.flip_explorer(comparison, "fp16")


def test_confusion_viewer_switches_variant_and_normalizes(comparison):
    viewer = widgets.confusion_viewer(comparison)
    assert viewer.dropdown.options == ("float", "fp32", "int8") and viewer.dropdown.value == "int8"
    assert viewer.frame().to_numpy().sum() == 12 and shown_png(viewer)
    viewer.normalize.value = True
    assert np.allclose(viewer.frame().to_numpy().sum(axis=1), 1.0)
    viewer.dropdown.value = "fp32"
    ev = comparison.variants[Precision.FP32].evaluation
    assert (
        viewer.summary().splitlines()[0] == f"fp32: accuracy {ev.accuracy:.1%} (float {comparison.float_accuracy:.1%})"
    )
    viewer.dropdown.value = "float"
    assert viewer.evaluation() is comparison.float_evaluation
    assert "buildings -> glacier 1" not in viewer.summary() and "forest -> glacier 1" in viewer.summary()
    assert len([ax for ax in viewer.picture().axes if ax.get_visible()]) == 1  # float alone
    viewer.dropdown.value = "int8"
    assert [ax.get_title().split(":")[0] for ax in viewer.picture().axes if ax.get_visible()] == ["float", "int8"]


def test_tradeoff_explorer_axes_and_front(comparison):
    explorer = widgets.tradeoff_explorer(comparison.table)
    assert explorer.x_dropdown.options == ("p50_ms", "size_bytes")
    assert "fp16" not in explorer.frame()["precision"].tolist()  # failed rows are left out
    explorer.x_dropdown.value = "size_bytes"
    explorer.y_dropdown.value = "agreement"
    frame = explorer.frame()
    assert frame["precision"].tolist() == ["int8", "fp32"] and frame["pareto"].tolist() == [True, True]
    assert (
        explorer.summary() == "x=size_bytes (lower is better), y=agreement (higher is better): Pareto front int8, fp32"
    )
    assert shown_png(explorer)
    assert (
        widgets.tradeoff_explorer(comparison).front == explorer.__class__(comparison.table).front
    )  # a Comparison works too
    with pytest.raises(ConfigError, match="x"):
        widgets.tradeoff_explorer(comparison.table, x="bogus")
    with pytest.raises(ConfigError, match="cost column"):
        widgets.tradeoff_explorer(pd.DataFrame({"precision": ["a"], "accuracy": [1.0]}))


def test_edgetpu_op_map_filters_by_target():
    ops = (
        OpVerdict(0, "QUANTIZE", 1, "edgetpu", "Mapped to Edge TPU"),
        OpVerdict(1, "CONV_2D", 3, "edgetpu", "Mapped to Edge TPU"),
        OpVerdict(2, "TANH", 1, "cpu", "Operation not supported"),
        OpVerdict(3, "SOFTMAX", 2, "cpu", "More than one subgraph is not supported"),
    )
    report = EdgeTPUReport("m.tflite", ops, 4, 2, 2, "partial", "2 of 4", 14, False, 1, 100, 0, 8 << 20)
    op_map = widgets.edgetpu_op_map(report)
    assert op_map.filter.options == ("all", "edgetpu", "cpu") and len(op_map.frame()) == 4 and shown_png(op_map)
    op_map.filter.value = "cpu"
    assert op_map.frame()["op"].tolist() == ["TANH", "SOFTMAX"]
    lines = op_map.summary().splitlines()
    assert lines[0] == "2 of 4 ops on the Edge TPU, 2 on the CPU (verdict: partial)"
    assert lines[1] == "showing cpu: 2 ops" and "Operation not supported" in lines[2]
    assert "TANH" in op_map.table.value and "CONV_2D" not in op_map.table.value
    op_map.filter.value = "edgetpu"
    assert op_map.frame()["index"].tolist() == [0, 1]
    with pytest.raises(ConfigError, match="target"):
        widgets.edgetpu_op_map(report, target="tpu")


def test_edgetpu_op_map_on_a_real_model():
    report = analyze(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    op_map = widgets.edgetpu_op_map(report, target="cpu")
    assert len(op_map.frame()) == report.ops_cpu > 0
    assert set(op_map.frame()["target"]) == {"cpu"}
    op_map.filter.value = "all"
    assert len(op_map.frame()) == report.ops_total
