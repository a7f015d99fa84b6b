"""Conversion: one recipe per precision, one export per model, atomic files, failures that name the precision."""

from __future__ import annotations

import tempfile
from pathlib import Path

import _tiny
import numpy as np
import pytest

from edgelab import _files
from edgelab.data.datasets import Dataset
from edgelab.errors import ConfigError, ConversionError
from edgelab.precision import CONVERTIBLE, Precision
from edgelab.preprocess import denormalize, normalize
from edgelab.tflite.conversion import (
    ConversionFailure,
    ConvertedModel,
    ExportedModel,
    convert,
    convert_all,
    representative_dataset,
    write_atomic,
)
from edgelab.tflite.inspection import inspect_model


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return _tiny.pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def exported(pipe):
    """One export of the float model, shared by the tests that convert again."""
    with ExportedModel(pipe.model) as export:
        yield export


def bad_calibration():
    """A calibration source that breaks halfway (a camera unplugged, a corrupt file)."""
    yield [np.zeros((1, _tiny.SIZE, _tiny.SIZE, 3), np.float32)]
    raise RuntimeError("calibration source went away")


def wrong_size_calibration():
    """Calibration images of another size than the model's input."""
    for _ in range(3):
        yield [np.zeros((1, 5, 5, 3), np.float32)]


def tensor_dtypes(path: Path) -> set[str]:
    return {t.dtype for t in inspect_model(path).tensors}


def calibrated_input_quantization(data, samples: int, qmin: int) -> tuple[float, float]:
    """The input scale the converter derives from the calibration images it was fed (their float range
    widened to hold 0, split into 255 steps) and the zero point before rounding (``qmin - low / scale``)."""
    fed = np.concatenate([batch[0] for batch in representative_dataset(data, samples, 0)()])
    low, high = min(float(fed.min()), 0.0), max(float(fed.max()), 0.0)
    scale = (high - low) / 255
    return scale, qmin - low / scale


def steps_from_keras(converted, images, keras_probs) -> np.ndarray:
    """|quantized output - Keras probability expressed on the output grid|, in output steps (unrounded)."""
    scale, zero_point = converted.output_quantization
    raw = converted.predict(images, output="raw").astype(np.float64)
    return np.abs(raw - (keras_probs.astype(np.float64) / scale + zero_point))


#: The int8 file's budget against Keras, in output steps of 1/256: half a step for rounding the
#: output, the rest for the rounding of every quantized layer before it. 12 steps (4.7% of the
#: probability range) on average over the test images: a quantized file that keeps the model.
MEAN_STEPS_FROM_KERAS = 12


# --------------------------------------------------------------------------- every precision


def test_convert_all_builds_every_precision_from_one_export_per_model(pipe):
    assert list(pipe.converted) == list(CONVERTIBLE)
    assert all(isinstance(result, ConvertedModel) for result in pipe.converted.values()), pipe.converted
    # Six precisions, two Keras models (float and quantization-aware): two exports, not six.
    assert sorted(pipe.exported) == sorted([pipe.model.name, pipe.qat_model.name])
    for precision, result in pipe.converted.items():
        assert result.precision is precision
        assert result.path == pipe.out_dir / f"model_{precision.value}.tflite"
        assert result.size_bytes == result.path.stat().st_size > 0
        assert result.labels == tuple(pipe.data.class_names)


@pytest.mark.parametrize(
    "precision, io_dtype, quantized_io, inner_dtype",
    [
        (Precision.FP32, "float32", False, None),
        (Precision.FP16, "float32", False, "float16"),
        (Precision.DYNAMIC, "float32", False, "int8"),
        (Precision.INT8, "uint8", True, "int8"),
        (Precision.INT16X8, "float32", False, "int16"),
        (Precision.QAT_INT8, "uint8", True, "int8"),
    ],
)
def test_each_precision_has_its_io_and_tensor_types(pipe, precision, io_dtype, quantized_io, inner_dtype):
    result = pipe.converted[precision]
    info = inspect_model(result.path)
    assert (result.input_dtype, result.output_dtype) == (io_dtype, io_dtype)
    assert (info.inputs[0].dtype, info.outputs[0].dtype) == (io_dtype, io_dtype)
    assert (result.input_quantization is not None) == quantized_io
    assert (result.output_quantization is not None) == quantized_io
    assert info.inputs[0].shape == (1, _tiny.SIZE, _tiny.SIZE, 3)  # batch fixed to 1
    dtypes = tensor_dtypes(result.path)
    if inner_dtype is None:
        assert dtypes <= {"float32", "int32"}, dtypes
    else:
        assert inner_dtype in dtypes


def test_uint8_input_quantization_matches_the_normalisation(pipe):
    """normalize() maps [0, 255] to [-1, 1]: raw uint8 pixels feed the int8 model almost unchanged."""
    scale, zero_point = pipe.converted[Precision.INT8].input_quantization
    expected_scale, expected_zero = calibrated_input_quantization(pipe.data, pipe.config.calibration_samples, 0)
    # float32 arithmetic on values <= 2: a few ulps (2**-23 relative each) between both computations
    assert scale == pytest.approx(expected_scale, rel=1e-6)
    # uint8 input: [low, high] on 0..255; rounding to an integer moves it by half a step at most
    assert abs(zero_point - expected_zero) <= 0.5 + 1e-6
    assert 2 / 255 * 0.9 < scale <= 2 / 255 * (1 + 1e-6)  # [-1, 1] at most: raw pixels fed nearly unchanged


def test_smaller_precisions_give_smaller_files(pipe):
    size = {p: r.size_bytes for p, r in pipe.converted.items()}
    assert size[Precision.FP16] < 0.6 * size[Precision.FP32]
    assert size[Precision.INT8] < 0.35 * size[Precision.FP32]
    assert size[Precision.DYNAMIC] < 0.35 * size[Precision.FP32]


def test_converted_files_predict_like_the_keras_model(pipe):
    images, _ = pipe.data.arrays("test")
    keras_probs = pipe.model.predict(normalize(images), verbose=0)
    fp32 = pipe.converted[Precision.FP32].predict(images)
    np.testing.assert_allclose(fp32, keras_probs, atol=1e-4)
    int8 = pipe.converted[Precision.INT8]
    assert int8.predict(images).shape == keras_probs.shape
    assert steps_from_keras(int8, images, keras_probs).mean() <= MEAN_STEPS_FROM_KERAS


def test_labels_file_and_no_leftover_temporary_files(pipe):
    assert (pipe.out_dir / "labels.txt").read_text().splitlines() == list(pipe.data.class_names)
    names = sorted(p.name for p in pipe.out_dir.iterdir())
    assert names == sorted(["labels.txt"] + [f"model_{p.value}.tflite" for p in CONVERTIBLE])


def test_int8_io_option(exported, pipe, tmp_path):
    result = convert(
        exported,
        "int8",
        out_dir=tmp_path,
        calibration=pipe.data,
        io_dtype="int8",
        calibration_samples=12,
        labels=pipe.data.class_names,
        name="signed",
    )
    assert result.path == tmp_path / "signed_int8.tflite"
    assert (result.input_dtype, result.output_dtype) == ("int8", "int8")
    scale, zero_point = result.input_quantization
    expected_scale, expected_zero = calibrated_input_quantization(pipe.data, 12, -128)
    assert scale == pytest.approx(expected_scale, rel=1e-6)  # a few float32 ulps, as above
    assert abs(zero_point - expected_zero) <= 0.5 + 1e-6  # int8 input: [low, high] on -128..127, rounded
    images, _ = pipe.data.arrays("test")
    keras_probs = pipe.model.predict(normalize(images), verbose=0)
    assert steps_from_keras(result, images, keras_probs).mean() <= MEAN_STEPS_FROM_KERAS
    assert (tmp_path / "labels.txt").exists()


def test_converted_model_repr_is_short_and_stable(pipe):
    text = repr(pipe.converted[Precision.INT8])
    assert text.startswith("ConvertedModel(precision='int8', path='model_int8.tflite', size_kib=")
    assert text.endswith("input=uint8, output=uint8)")
    assert pipe.converted[Precision.INT8].to_dict()["precision"] == "int8"


# --------------------------------------------------------------------------- failures


def test_converter_failure_names_the_precision_and_leaves_no_file(exported, tmp_path):
    with pytest.raises(ConversionError) as info:
        convert(exported, "int16x8", out_dir=tmp_path, calibration=bad_calibration)
    assert str(info.value) == "Converting to int16x8 failed: RuntimeError: calibration source went away"
    assert list(tmp_path.iterdir()) == []


def test_calibration_images_of_another_size_are_refused(exported, tmp_path):
    """The converter would silently calibrate on them (it resizes its input): edgelab says so instead."""
    with pytest.raises(ConversionError) as info:
        convert(exported, "int8", out_dir=tmp_path, calibration=wrong_size_calibration)
    message = str(info.value)
    assert message.startswith("Converting to int8 failed: ConfigError: ")
    assert f"(1, {_tiny.SIZE}, {_tiny.SIZE}, 3)" in message and "Received: shape=(1, 5, 5, 3)" in message
    assert list(tmp_path.iterdir()) == []


def test_convert_all_keeps_the_other_precisions_when_one_fails(pipe, tmp_path):
    results = convert_all(
        pipe.model,
        out_dir=tmp_path,
        calibration=bad_calibration,
        labels=pipe.data.class_names,
        precisions=["fp32", "int8", "fp16"],
        progress=False,
    )
    assert list(results) == [Precision.FP32, Precision.INT8, Precision.FP16]
    failure = results[Precision.INT8]
    assert isinstance(failure, ConversionFailure)
    assert failure.reason == "Converting to int8 failed: RuntimeError: calibration source went away"
    assert repr(failure).startswith("ConversionFailure(precision='int8', reason=")
    assert isinstance(results[Precision.FP32], ConvertedModel) and isinstance(results[Precision.FP16], ConvertedModel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.txt", "model_fp16.tflite", "model_fp32.tflite"]


def test_write_atomic_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_files, "publish", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new model bytes")
    assert list(tmp_path.iterdir()) == []

    # An existing file stays whole: readers see the old file or the new one, never half of one.
    monkeypatch.undo()
    write_atomic(target, b"old model")
    monkeypatch.setattr(_files, "publish", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"new model bytes")
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_write_atomic_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "labels.txt"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["labels.txt"]


def test_qat_int8_needs_a_qat_model_and_is_refused_before_exporting(pipe, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where an export would land
    with pytest.raises(ConfigError, match="Expected a quantization-aware-trained model for 'qat_int8'"):
        convert(pipe.model, "qat_int8", out_dir=tmp_path / "out", calibration=pipe.data)
    assert list(tmp_path.iterdir()) == []  # no export folder left behind, no file written


def test_a_qat_model_is_refused_for_post_training_precisions(pipe, tmp_path):
    with pytest.raises(ConfigError, match="Expected a float model for 'int8'.*'qat_int8'"):
        convert(pipe.qat_model, "int8", out_dir=tmp_path, calibration=pipe.data)


def test_convert_all_without_qat_model_reports_qat_int8_as_a_failure(pipe, tmp_path):
    results = convert_all(pipe.model, out_dir=tmp_path, calibration=pipe.data, precisions=["qat_int8"], progress=False)
    assert isinstance(results[Precision.QAT_INT8], ConversionFailure)
    assert "qat_model=None" in results[Precision.QAT_INT8].reason


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"precision": "edgetpu"}, "Received: 'edgetpu'.*edgelab.edgetpu.compile"),
        ({"precision": "int4"}, "Received: precision='int4'"),
        ({"precision": "int08"}, "Did you mean 'int8'"),
        ({"precision": "int8", "io_dtype": "uint16"}, "io_dtype='uint16'"),
        ({"precision": "int8", "calibration": None}, "'int8' needs calibration data"),
    ],
)
def test_bad_arguments_raise_config_error(pipe, tmp_path, kwargs, pattern):
    kwargs.setdefault("calibration", pipe.data)
    precision = kwargs.pop("precision")
    with pytest.raises(ConfigError, match=pattern):
        convert(pipe.model, precision, out_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_keras3_model_is_refused_with_a_hint(tmp_path):
    import keras as keras3

    inputs = keras3.Input((8, 8, 3))
    model = keras3.Model(inputs, keras3.layers.Dense(3)(keras3.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ConfigError, match="Keras 3 model.*tf_keras"):
        convert(model, "fp32", out_dir=tmp_path)


# --------------------------------------------------------------------------- calibration


def indexed_images(n: int, size: int = 4) -> np.ndarray:
    """Image i is filled with the value i, so a calibration sample tells which image it came from."""
    return np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(n, size, size, 3)


def drawn(generator) -> list[int]:
    return [int(denormalize(batch[0])[0, 0, 0, 0]) for batch in generator()]


def test_representative_dataset_is_class_balanced():
    labels = np.array([0] * 50 + [1] * 6 + [2] * 6)
    images = indexed_images(len(labels))
    picks = drawn(representative_dataset((images, labels), num_samples=12, seed=3))
    assert len(picks) == len(set(picks)) == 12
    assert np.bincount(labels[picks], minlength=3).tolist() == [4, 4, 4]
    # Each sample is one normalised image with the batch dimension the converter expects.
    first = next(representative_dataset((images, labels), num_samples=12, seed=3)())
    assert first[0].shape == (1, 4, 4, 3) and first[0].dtype == np.float32


def test_representative_dataset_takes_what_a_small_class_has():
    labels = np.array([0] * 20 + [1] * 2)
    picks = drawn(representative_dataset((indexed_images(22), labels), num_samples=10))
    assert np.bincount(labels[picks]).tolist() == [8, 2]


def test_representative_dataset_from_a_dataset_uses_its_training_split():
    labels = np.array([0] * 60 + [1] * 10 + [2] * 10)
    data = Dataset.from_arrays(indexed_images(len(labels)), labels, ["a", "b", "c"], seed=0)
    train_ids = set(data.arrays("train")[0][:, 0, 0, 0].tolist())
    picks = drawn(representative_dataset(data, num_samples=9))
    assert set(picks) <= train_ids
    assert np.bincount(labels[picks], minlength=3).tolist() == [3, 3, 3]


def test_representative_dataset_is_seeded_and_passes_generators_through():
    labels = np.array([0, 1] * 20)
    images = indexed_images(40)
    assert drawn(representative_dataset((images, labels), 8, seed=1)) == drawn(
        representative_dataset((images, labels), 8, seed=1)
    )
    assert drawn(representative_dataset((images, labels), 8, seed=1)) != drawn(
        representative_dataset((images, labels), 8, seed=2)
    )
    assert representative_dataset(bad_calibration) is bad_calibration
    with pytest.raises(ConfigError, match=r"shape=\(3, 4\)"):
        representative_dataset(np.zeros((3, 4)))
