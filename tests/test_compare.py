"""compare: every precision measured on its converted file, one table; a failing variant is a row."""

from __future__ import annotations

import _tiny
import numpy as np
import pandas as pd
import pytest

from edgelab.compare import comparison as comparison_module
from edgelab.compare.comparison import COLUMNS, VariantResult, comparison_table, run_comparison
from edgelab.errors import ConfigError
from edgelab.precision import CONVERTIBLE, Precision
from edgelab.preprocess import normalize

REQUIRED = (
    "precision",
    "status",
    "reason",
    "size_bytes",
    "size_ratio",
    "accuracy",
    "delta_accuracy",
    "agreement",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "latency_ratio",
    "macs",
)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return _tiny.pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _tiny.comparison(tmp_path_factory)


@pytest.fixture(scope="module")
def table(result):
    return result.table.set_index("precision", drop=False)


def test_table_has_the_documented_columns_and_one_row_per_precision(result):
    assert set(REQUIRED) <= set(result.table.columns)
    assert list(result.table.columns) == list(COLUMNS)
    assert result.table["precision"].tolist() == [p.value for p in CONVERTIBLE]
    assert (result.table["status"] == "ok").all(), result.table[["precision", "reason"]]
    assert result.table["reason"].isna().all()


def test_ratios_are_against_fp32(table):
    assert table.loc["fp32", "size_ratio"] == 1.0
    assert table.loc["fp32", "latency_ratio"] == 1.0
    for precision in table.index:
        size = table.loc[precision, "size_bytes"] / table.loc["fp32", "size_bytes"]
        latency = table.loc[precision, "p50_ms"] / table.loc["fp32", "p50_ms"]
        assert table.loc[precision, "size_ratio"] == pytest.approx(size, abs=5e-4 + 1e-12)  # rounded to 0.001
        # The ratio is taken before rounding (to 0.001); the table's p50_ms are rounded to 1 us
        # (+-0.0005 ms each), which moves a/b by at most 0.0005 * (1 + a/b) / (b - 0.0005).
        fp32_ms = table.loc["fp32", "p50_ms"]
        bound = 0.0005 * (1 + latency) / (fp32_ms - 0.0005) + 0.0005
        assert table.loc[precision, "latency_ratio"] == pytest.approx(latency, rel=0, abs=bound)
    assert table.loc["int8", "size_ratio"] < 0.35


def test_sizes_are_the_files_sizes(table, pipe):
    for precision, converted in pipe.converted.items():
        assert table.loc[precision.value, "size_bytes"] == converted.path.stat().st_size
        assert table.loc[precision.value, "path"] == str(converted.path)


def test_accuracy_is_measured_on_the_files_against_the_float_model(result, table, pipe):
    images, labels = pipe.data.arrays("test")
    float_pred = pipe.model.predict(normalize(images), verbose=0).argmax(axis=1)
    assert result.float_accuracy == pytest.approx(np.mean(float_pred == labels))
    for precision, converted in pipe.converted.items():
        pred = converted.predict(images).argmax(axis=1)
        row = table.loc[precision.value]
        # The table rounds to 4 decimals (+-5e-5); a difference of two rounded values, +-1e-4.
        assert row["accuracy"] == pytest.approx(np.mean(pred == labels), abs=1e-4)
        assert row["agreement"] == pytest.approx(np.mean(pred == float_pred), abs=1e-4)
        assert row["flipped"] == int(np.sum(pred != float_pred))
        assert row["delta_accuracy"] == pytest.approx(row["accuracy"] - result.float_accuracy, abs=2e-4)
    assert table.loc["fp32", "agreement"] >= 0.9


def test_latency_and_macs(table):
    assert (table["p50_ms"] > 0).all()
    assert (table["p50_ms"] <= table["p90_ms"]).all() and (table["p90_ms"] <= table["p99_ms"]).all()
    assert (table["macs"] > 0).all()
    # Precision changes the number format, not the amount of arithmetic.
    assert table["macs"].nunique() == 1
    assert table.loc["int8", "edgetpu_ops"].split("/")[0] == table.loc["int8", "edgetpu_ops"].split("/")[1]
    assert set(table["edgetpu_source"]) == {"predicted"}


def test_comparison_keeps_the_details(result):
    evaluation = result.evaluation("int8")
    assert evaluation.confusion.shape == (6, 6)
    assert evaluation.num_samples == len(result.test_labels)
    assert result.variants[Precision.INT8].latency.runs >= 1
    text = repr(result)
    assert text.startswith("Comparison(float_accuracy=")
    assert "failed=[]" in text and "test_images=12" in text
    pd.testing.assert_frame_equal(result.to_frame(), result.table)


def test_a_variant_failing_during_measurement_becomes_a_row(pipe, monkeypatch):
    original = comparison_module.measure_latency

    def flaky(model, **kwargs):  # the latency run of the int8 file crashes; its evaluation went fine
        if str(model.path).endswith("_int8.tflite"):
            raise RuntimeError("interpreter crashed")
        return original(model, **kwargs)

    monkeypatch.setattr(comparison_module, "measure_latency", flaky)
    table = run_comparison(
        pipe.model,
        pipe.data,
        out_dir=pipe.out_dir,
        precisions=["fp32", "int8", "dynamic"],
        min_time_s=0.01,
        reuse=True,
        progress=False,
    ).table.set_index("precision", drop=False)
    assert table["status"].to_dict() == {"fp32": "ok", "int8": "failed", "dynamic": "ok"}
    assert table.loc["int8", "reason"] == "RuntimeError: interpreter crashed"
    assert pd.isna(table.loc["int8", "accuracy"]) and pd.isna(table.loc["int8", "p50_ms"])
    assert table.loc["int8", "size_bytes"] > 0  # the file exists, only its measurement failed
    assert table.loc["dynamic", "accuracy"] >= 0 and table.loc["fp32", "latency_ratio"] == 1.0


def test_conversion_failures_are_rows_and_ratios_survive_without_fp32():
    failed = {
        Precision.FP32: VariantResult(Precision.FP32, "failed", "Converting to fp32 failed: boom"),
        Precision.INT8: VariantResult(Precision.INT8, "failed", "no calibration"),
    }
    table = comparison_table(failed, float_accuracy=0.9)
    assert list(table.columns) == list(COLUMNS)
    assert table["status"].tolist() == ["failed", "failed"]
    assert table["reason"].tolist() == ["Converting to fp32 failed: boom", "no calibration"]
    assert table["size_ratio"].isna().all() and table["latency_ratio"].isna().all()
    assert list(comparison_table({}, 0.9).columns) == list(COLUMNS)


def test_class_names_are_required(pipe, tmp_path):
    images, labels = pipe.data.arrays("test")
    with pytest.raises(ConfigError, match="class_names"):
        run_comparison(pipe.model, (images, labels), out_dir=tmp_path, calibration=(images, labels), progress=False)


def test_every_test_image_is_scored_as_one_interpreter_scores_it(pipe):
    """More test images than one batch: the files are evaluated by several interpreters at once (one per
    CPU), each on a run of whole batches; every image's scores are the ones a single interpreter gives."""
    images, labels = pipe.data.arrays("test")
    reps = -(-100 // len(images))  # ~100 images: four batches of 32, so two or more runs
    many = np.concatenate([images, images[:, :, ::-1]] * reps)[:100]
    many_labels = np.concatenate([labels, labels] * reps)[:100]
    precisions = ["fp32", "int8", "int16x8"]
    result = run_comparison(
        pipe.model,
        pipe.data,
        out_dir=pipe.out_dir,
        test_data=(many, many_labels),
        precisions=precisions,
        min_time_s=0.01,
        reuse=True,
        progress=False,
    )
    for precision in precisions:
        alone = pipe.converted[Precision(precision)].predict(many)
        evaluation = result.evaluation(precision)
        np.testing.assert_array_equal(evaluation.predictions, alone)
        assert evaluation.accuracy == np.mean(alone.argmax(axis=1) == many_labels)
