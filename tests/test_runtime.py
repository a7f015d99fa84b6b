"""The TensorFlow-free runtime: loading, (de)quantization, batching, and every bad-file path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgelab.errors import ConfigError, DelegateError, ModelFileError, RuntimeNotFoundError
from edgelab.preprocess import normalize
from edgelab.tflite.runtime import TFLiteModel, dequantize, load_interpreter, load_interpreter_info, quantize

DATA = Path(__file__).parent / "data"
EDGETPU_MODEL = DATA / "coral" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
SIZE = 16
#: Two float32 runs of the tiny model (another summation order: XNNPACK or Eigen, another CPU's
#: vector width) differ in a probability by at most: a sum of n terms moves by n * 2**-24 of the
#: terms' absolute sum; the longest is the 14x14 = 196-term pool of conv outputs of a few units,
#: 196 * 6e-8 * 3 = 3.5e-5 of a logit, and a softmax output moves by at most half of that.
FLOAT32_RUNS = 2e-5


def build_tiny_models(out_dir: Path, variants: tuple[str, ...]) -> SimpleNamespace:
    """Conv2D(4, 3) -> GAP -> Dense(3, softmax) on 16x16x3, untrained, converted with batch fixed to 1."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    images = np.random.default_rng(0).integers(0, 256, (37, SIZE, SIZE, 3), dtype=np.uint8)
    keras_probs = model.predict(normalize(images), verbose=0)
    fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)
    )

    def representative():
        for i in range(16):
            yield [normalize(images[i : i + 1])]

    recipes = {
        "fp32": None,
        "int8_uint8_io": ([tf.lite.OpsSet.TFLITE_BUILTINS_INT8], tf.uint8),
        "int8_int8_io": ([tf.lite.OpsSet.TFLITE_BUILTINS_INT8], tf.int8),
        "int16x8": ([tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8], tf.int16),
    }
    paths = {}
    for name in variants:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
        if recipes[name] is not None:
            ops, io_type = recipes[name]
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = ops
            converter.inference_input_type = converter.inference_output_type = io_type
        paths[name] = out_dir / f"{name}.tflite"
        paths[name].write_bytes(converter.convert())
    return SimpleNamespace(paths=paths, images=images, keras_probs=keras_probs)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> SimpleNamespace:
    return build_tiny_models(
        tmp_path_factory.mktemp("runtime_models"), ("fp32", "int8_uint8_io", "int8_int8_io", "int16x8")
    )


QUANTIZED = ["int8_uint8_io", "int8_int8_io", "int16x8"]
ALL = ["fp32", *QUANTIZED]


# ----------------------------------------------------------------------------- predictions


def test_fp32_predict_matches_keras(tiny):
    model = TFLiteModel(tiny.paths["fp32"])
    probs = model.predict(tiny.images, progress=False)
    assert probs.dtype == np.float32 and probs.shape == (len(tiny.images), 3)
    # FLOAT32_RUNS: the same float32 model summed in other orders (XNNPACK, Eigen, another CPU).
    np.testing.assert_allclose(probs, tiny.keras_probs, atol=FLOAT32_RUNS)


@pytest.mark.parametrize(
    "variant, dtype, steps",
    [
        # Budgets in output steps (scale 1/256 for 8-bit outputs, 1/32768 for int16): half a step for
        # the output's own rounding, the rest for the rounding of the conv, pool and dense outputs and
        # of the int8 weights, carried through softmax. int16x8 keeps int8 weights, so its budget in
        # probability (64/32768 = 0.002) is a tenth of the 8-bit one (5/256 = 0.02), not 1/128 of it.
        ("int8_uint8_io", np.uint8, 5),
        ("int8_int8_io", np.int8, 5),
        ("int16x8", np.int16, 64),
    ],
)
def test_quantized_predict_matches_keras(tiny, variant, dtype, steps):
    model = TFLiteModel(tiny.paths[variant])
    assert model.input_dtype == dtype and model.output_dtype == dtype
    scale, zero_point = model.input_quantization
    assert scale > 0 and isinstance(zero_point, int)
    probs = model.predict(tiny.images, progress=False)
    assert probs.dtype == np.float32
    # Compared unrounded, in integer steps of the output grid.
    out_scale, out_zero = model.output_quantization
    raw = model.predict(tiny.images, progress=False, output="raw").astype(np.float64)
    off = np.abs(raw - (tiny.keras_probs.astype(np.float64) / out_scale + out_zero))
    assert off.max() <= steps, (variant, off.max())
    # The outputs are softmax probabilities after dequantization: 3 of them, each within the budget
    # of a Keras probability (which sum to 1 within float32 rounding).
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=3 * steps * out_scale + 1e-6)


@pytest.mark.parametrize("variant", ALL)
def test_batched_equals_one_at_a_time(tiny, variant):
    model = TFLiteModel(tiny.paths[variant], num_threads=2)
    assert model.input_shape == (1, SIZE, SIZE, 3)  # converted with batch 1: batching needs a resize
    one = model.predict(tiny.images, batch_size=1, progress=False)
    for batch_size in (32, 8, 5):  # 37 images: full chunks, a remainder chunk and a single leftover
        np.testing.assert_array_equal(model.predict(tiny.images, batch_size=batch_size, progress=False), one)
    assert model.batching
    unbatched = TFLiteModel(tiny.paths[variant], num_threads=2, batching=False)
    np.testing.assert_array_equal(unbatched.predict(tiny.images, progress=False), one)
    assert not unbatched.batching


def test_batching_default_follows_threads(tiny):
    assert not TFLiteModel(tiny.paths["fp32"]).batching  # one thread: one image per invoke
    assert TFLiteModel(tiny.paths["fp32"], num_threads=2).batching
    forced = TFLiteModel(tiny.paths["fp32"], batching=True)
    np.testing.assert_array_equal(
        forced.predict(tiny.images, batch_size=16, progress=False),
        forced.predict(tiny.images, batch_size=1, progress=False),
    )
    assert forced.batching


def test_batching_falls_back_when_the_model_cannot_be_resized(tiny, monkeypatch):
    model = TFLiteModel(tiny.paths["int8_uint8_io"], batching=True)
    assert model.batching
    expected = model.predict(tiny.images, batch_size=1, progress=False)

    import edgelab.tflite.runtime as runtime

    def refuse(*args, **kwargs):
        raise ModelFileError("cannot build a second interpreter")

    monkeypatch.setattr(runtime, "load_interpreter_info", refuse)
    np.testing.assert_array_equal(model.predict(tiny.images, batch_size=16, progress=False), expected)
    assert not model.batching


def test_single_image_and_classes(tiny):
    model = TFLiteModel(tiny.paths["fp32"], labels=["sea", "forest", "street"])
    one = model.predict(tiny.images[0], progress=False)
    assert one.shape == (1, 3)
    classes = model.predict(tiny.images, progress=False, output="classes")
    assert classes.dtype == np.int64
    np.testing.assert_array_equal(classes, tiny.keras_probs.argmax(axis=1))


def test_predict_output_options(tiny):
    model = TFLiteModel(tiny.paths["int8_uint8_io"])
    raw = model.predict(tiny.images, progress=False, output="raw")
    assert raw.dtype == np.uint8
    scale, zero_point = model.output_quantization
    np.testing.assert_array_equal(model.predict(tiny.images, progress=False), dequantize(raw, scale, zero_point))
    with pytest.raises(
        ConfigError,
        match=r"Expected output to be one of \['scores', 'raw', 'classes'\]. "
        r"Received: output='class'. Did you mean 'classes'\?",
    ):
        model.predict(tiny.images, output="class")


def test_classify_returns_sorted_labels(tiny, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("sea\nforest\nstreet\n")
    model = TFLiteModel(tiny.paths["int8_uint8_io"], labels=labels_file)
    assert model.labels == ("sea", "forest", "street")
    top = model.classify(tiny.images[3], top_k=2)
    assert len(top) == 2
    assert [s for _, s in top] == sorted([s for _, s in top], reverse=True)
    probs = model.predict(tiny.images[3], progress=False)[0]
    assert top[0] == (model.labels[int(probs.argmax())], pytest.approx(float(probs.max())))
    # Without labels, class indices stand in for names.
    assert TFLiteModel(tiny.paths["fp32"]).classify(tiny.images[0], top_k=1)[0][0] in {"0", "1", "2"}


def test_wrong_label_count_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match=r"Expected 3 labels.*Received: 2"):
        TFLiteModel(tiny.paths["fp32"], labels=["a", "b"])


def _input_quantization_from_the_file(path: Path) -> tuple[float, int, np.dtype]:
    """Scale, zero point and dtype of the first input, read from the flatbuffer with LiteRT's schema."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    dtypes = {schema.TensorType.UINT8: np.uint8, schema.TensorType.INT8: np.int8, schema.TensorType.INT16: np.int16}
    return float(tensor.quantization.scale[0]), int(tensor.quantization.zeroPoint[0]), np.dtype(dtypes[tensor.type])


def test_input_encoding_is_normalize_then_quantize(tiny):
    """prepare_input against numpy arithmetic on the scale and zero point written in the file:
    (pixel - 127.5) / 127.5, divided by the scale, rounded half away from zero (TFLite's rule),
    plus the zero point, clipped to the dtype. Equal everywhere except within 0.01 of a .5 tie,
    where float32 vs float64 may round either way: there, one quantization step (1) at most (with
    uint8 I/O's scale 1/127.5 and zero point 128, every pixel lands on a tie)."""
    pixels = tiny.images.astype(np.float64)
    for variant in QUANTIZED:
        scale, zero_point, dtype = _input_quantization_from_the_file(tiny.paths[variant])
        model = TFLiteModel(tiny.paths[variant])
        got = model.prepare_input(tiny.images)
        assert got.dtype == dtype and got.shape == tiny.images.shape
        scaled = (pixels - 127.5) / 127.5 / scale
        info = np.iinfo(dtype)
        reference = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point, info.min, info.max)
        diff = np.abs(got.astype(np.int64) - reference.astype(np.int64))
        near_tie = np.abs(np.abs(scaled) % 1 - 0.5) < 0.01
        assert not diff[~near_tie].any() and diff.max() <= 1, variant
    fp32 = TFLiteModel(tiny.paths["fp32"])
    got = fp32.prepare_input(tiny.images)
    # float32 of (pixel - 127.5) / 127.5: within one float32 ulp of 1.0 (6e-8) of the exact value.
    np.testing.assert_allclose(got, (pixels - 127.5) / 127.5, rtol=0, atol=1.2e-7)


def test_properties_and_repr(tiny):
    path = tiny.paths["int8_uint8_io"]
    model = TFLiteModel(path, num_threads=2, precision="int8")
    assert model.path == path and model.size_bytes == path.stat().st_size
    assert model.runtime.startswith("litert ")
    assert model.num_threads == 2 and model.precision.value == "int8"
    assert model.input_details[0]["dtype"] == np.uint8 and model.output_details[0]["shape"].tolist() == [1, 3]
    text = repr(model)
    assert text == repr(TFLiteModel(path, num_threads=2))
    assert "int8_uint8_io.tflite" in text and "uint8" in text and "threads=2" in text and "KiB" in text
    assert str(path.parent) not in text  # no absolute paths in notebook output

    from_bytes = TFLiteModel(path.read_bytes())
    assert from_bytes.path is None and from_bytes.size_bytes == model.size_bytes
    np.testing.assert_array_equal(
        from_bytes.predict(tiny.images, progress=False), model.predict(tiny.images, progress=False)
    )


# ----------------------------------------------------------------------------- XNNPACK and runtimes


def test_xnnpack_reported_and_switchable(tiny):
    on = TFLiteModel(tiny.paths["fp32"])
    off = TFLiteModel(tiny.paths["fp32"], use_xnnpack=False)
    assert on.xnnpack is True and off.xnnpack is False
    np.testing.assert_allclose(  # two float32 kernels, other summation orders
        on.predict(tiny.images, progress=False), off.predict(tiny.images, progress=False), atol=FLOAT32_RUNS
    )
    # XNNPACK has no int16x8 kernels: enabled, but it takes no part of the graph.
    assert TFLiteModel(tiny.paths["int16x8"]).xnnpack is False


def test_tensorflow_fallback_runtime_is_quiet(tiny):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interpreter, name = load_interpreter(tiny.paths["fp32"], runtime="tensorflow")
    assert name.startswith("tensorflow 2.")
    assert not [w for w in caught if "deprecated" in str(w.message)]
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, SIZE, SIZE, 3]


def test_unknown_or_missing_runtime(tiny):
    with pytest.raises(ConfigError, match="Did you mean 'litert'"):
        load_interpreter(tiny.paths["fp32"], runtime="litrt")
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except Exception:
        with pytest.raises(RuntimeNotFoundError, match="tflite_runtime"):
            load_interpreter(tiny.paths["fp32"], runtime="tflite_runtime")


def test_load_interpreter_reports_runtime_and_threads(tiny):
    interpreter, name = load_interpreter(tiny.paths["int8_uint8_io"], num_threads=2)
    assert name.startswith("litert ")
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    info = load_interpreter_info(tiny.paths["int8_uint8_io"], use_xnnpack=False)
    assert info.xnnpack is False and info.model_bytes == tiny.paths["int8_uint8_io"].read_bytes()
    with pytest.raises(ConfigError, match="num_threads=0"):
        load_interpreter(tiny.paths["fp32"], num_threads=0)


# ----------------------------------------------------------------------------- (de)quantization


def test_quantize_rounds_half_away_from_zero_and_clips():
    x = np.array([0.0, 0.25, -0.25, 0.5, 100.0, -100.0])
    np.testing.assert_array_equal(quantize(x, 0.5, 10, np.int8), [10, 11, 9, 11, 127, -128])
    np.testing.assert_array_equal(quantize(x, 0.5, 10, np.uint8), [10, 11, 9, 11, 210, 0])
    assert quantize(x, 0.5, 10, np.int16).dtype == np.int16


def test_extreme_zero_points_use_int64_arithmetic():
    # Each of these overflows if the subtraction or addition happens in the tensor's own dtype.
    assert dequantize(np.array([32767], np.int16), 1.0, -32768)[0] == 65535.0
    assert dequantize(np.array([127], np.int8), 0.5, -128)[0] == 127.5
    assert dequantize(np.array([0], np.uint8), 1.0, 255)[0] == -255.0
    np.testing.assert_array_equal(quantize(np.array([10.0, -10.0]), 1.0, 32767, np.int16), [32767, 32757])
    np.testing.assert_array_equal(quantize(np.array([-3.0, 3.0]), 1.0, -32767, np.int16), [-32768, -32764])
    np.testing.assert_array_equal(quantize(np.array([1.0]), 1.0, 255, np.uint8), [255])


def test_dequantize_inverts_quantize_within_half_a_step():
    x = np.linspace(-1, 1, 101)
    for dtype, scale, zero_point in [(np.int8, 2 / 255, -1), (np.uint8, 2 / 255, 127), (np.int16, 1 / 32767, 0)]:
        back = dequantize(quantize(x, scale, zero_point, dtype), scale, zero_point)
        assert back.dtype == np.float32
        assert np.abs(back - x).max() <= scale / 2 + 1e-6


def test_quantize_rejects_bad_parameters():
    with pytest.raises(ConfigError, match=r"scale=0\.0"):
        quantize(np.zeros(2), 0.0, 0, np.int8)
    with pytest.raises(ConfigError, match="float32"):
        quantize(np.zeros(2), 0.1, 0, np.float32)


# ----------------------------------------------------------------------------- bad inputs


def test_wrong_image_shape_echoes_both_shapes(tiny):
    model = TFLiteModel(tiny.paths["int8_uint8_io"])
    with pytest.raises(ConfigError) as err:
        model.predict(np.zeros((5, 17, SIZE, 3), np.uint8), progress=False)
    message = str(err.value)
    assert "(5, 17, 16, 3)" in message and "(N, 16, 16, 3)" in message and "resiz" in message.lower()
    with pytest.raises(ConfigError, match="dtype=float32"):
        model.predict(normalize(tiny.images), progress=False)
    with pytest.raises(ConfigError, match=r"\(16, 16\)"):
        model.predict(np.zeros((SIZE, SIZE), np.uint8), progress=False)


def _bad_files(tmp: Path, valid: bytes) -> dict[str, Path]:
    import flatbuffers

    def other_flatbuffer(identifier: bytes) -> bytes:
        builder = flatbuffers.Builder(0)
        text = builder.CreateString("a table of another schema")
        builder.StartObject(2)
        builder.PrependUint32Slot(0, 3, 0)
        builder.PrependUOffsetTRelativeSlot(1, text, 0)
        builder.Finish(builder.EndObject(), file_identifier=identifier)
        return bytes(builder.Output())

    files = {
        "zero_byte": b"",
        "truncated_half": valid[: len(valid) // 2],
        "truncated_tail": valid[:-16],
        "tiny": valid[:6],
        "random_bytes": np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text": b"this is not a model\n" * 20,
        "keras_h5": b"\x89HDF\r\n\x1a\n" + bytes(200),
        "other_schema": other_flatbuffer(b"ABCD"),
        "other_schema_tfl3_id": other_flatbuffer(b"TFL3"),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp / f"{name}.tflite"
        paths[name].write_bytes(data)
    paths["missing"] = tmp / "missing.tflite"
    paths["directory"] = tmp / "saved_model_dir"
    paths["directory"].mkdir()
    return paths


BAD = [
    "zero_byte",
    "truncated_half",
    "truncated_tail",
    "tiny",
    "random_bytes",
    "text",
    "keras_h5",
    "other_schema",
    "other_schema_tfl3_id",
    "missing",
    "directory",
]


@pytest.fixture(scope="module")
def bad_files(tiny, tmp_path_factory):
    return _bad_files(tmp_path_factory.mktemp("bad files"), tiny.paths["int8_uint8_io"].read_bytes())


@pytest.mark.parametrize("case", BAD)
def test_bad_model_files_give_model_file_error_with_path(bad_files, case):
    path = bad_files[case]
    for load in (load_interpreter, TFLiteModel):
        with pytest.raises(ModelFileError, match=re.escape(str(path))) as err:
            load(path)
        assert "Traceback" not in str(err.value)
        assert err.value.__cause__ is None  # no interpreter exception chained into the report


def test_bad_model_messages_say_what_is_wrong(bad_files):
    def message(case: str) -> str:
        with pytest.raises(ModelFileError) as err:
            load_interpreter(bad_files[case])
        return str(err.value)

    assert "not found" in message("missing")
    assert "empty (0 bytes)" in message("zero_byte")
    assert "corrupt or truncated" in message("truncated_half")
    assert "TFL3" in message("random_bytes") and "text file" in message("text")
    assert "HDF5" in message("keras_h5")
    assert "directory" in message("directory")
    with pytest.raises(ModelFileError, match=r"model bytes \(6 bytes\)"):
        load_interpreter(bad_files["tiny"].read_bytes())


def test_edgetpu_model_without_delegate_is_a_delegate_error():
    if not EDGETPU_MODEL.exists():
        pytest.skip(f"{EDGETPU_MODEL} is not in the checkout")
    for load in (load_interpreter, TFLiteModel):
        with pytest.raises(DelegateError, match="edgetpu-custom-op") as err:
            load(EDGETPU_MODEL)
        assert str(EDGETPU_MODEL) in str(err.value) and "delegate" in str(err.value)


def test_edgetpu_delegate_problems_are_reported_clearly(tiny, tmp_path):
    missing = tmp_path / "missing_edgetpu.tflite"
    with pytest.raises(ModelFileError, match=re.escape(str(missing))):
        TFLiteModel(missing, delegate="edgetpu")  # the file is checked before the delegate loads
    from edgelab.edgetpu.delegate import library_available

    if library_available():
        pytest.skip("libedgetpu is installed here")
    with pytest.raises(DelegateError, match="libedgetpu"):
        TFLiteModel(tiny.paths["int8_uint8_io"], delegate="edgetpu:usb:0")


def test_bad_delegate_name_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match="Did you mean 'edgetpu'"):
        TFLiteModel(tiny.paths["fp32"], delegate="edgtpu")


# ----------------------------------------------------------------------------- no TensorFlow


@pytest.mark.parametrize("module", ["edgelab.tflite.runtime", "edgelab.compare.evaluate", "edgelab.compare.benchmark"])
def test_module_imports_without_tensorflow(module, tiny):
    code = (
        "import sys, json, numpy as np\n"
        f"import {module}\n"
        "from edgelab.tflite.runtime import TFLiteModel\n"
        f"m = TFLiteModel({str(tiny.paths['int8_uint8_io'])!r})\n"
        "m.predict(np.zeros((2, 16, 16, 3), np.uint8), progress=False)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ----------------------------------------------------------------------------- structure of the runtime


def test_converted_model_keeps_its_interpreter(tiny):
    from edgelab.tflite.conversion import ConvertedModel

    converted = ConvertedModel.from_file(tiny.paths["int8_uint8_io"], "int8", labels=["a", "b", "c"])
    first = converted.load()
    assert converted.load() is first  # predict/evaluate reuse it
    assert converted.load(num_threads=2) is not first
    np.testing.assert_array_equal(
        converted.predict(tiny.images[:4], progress=False), first.predict(tiny.images[:4], progress=False)
    )
    assert converted == ConvertedModel.from_file(tiny.paths["int8_uint8_io"], "int8", labels=["a", "b", "c"])


def test_the_runtime_is_discovered_in_one_place(monkeypatch):
    from edgelab.edgetpu import delegate
    from edgelab.tflite import interpreter

    runtime = interpreter.get_runtime()
    load_delegate, name = delegate.load_delegate_function()
    assert name == runtime.name and load_delegate is runtime.load_delegate
    assert not hasattr(TFLiteModel, "invoke_once") and not hasattr(TFLiteModel, "predict_raw")


def test_thread_count_is_range_checked(tiny):
    with pytest.raises(
        ConfigError, match=r"Expected num_threads to be an int from 1 to 256\. Received: num_threads=60000"
    ):
        TFLiteModel(tiny.paths["fp32"], num_threads=60000)


def test_check_model_in_and_out_of_process(tiny):
    from edgelab.tflite.isolation import check_model

    inside = check_model(tiny.paths["int8_uint8_io"], isolate=False)
    isolated = check_model(tiny.paths["int8_uint8_io"].read_bytes())
    assert not inside.isolated and isolated.isolated
    assert inside.inputs == isolated.inputs == (f"uint8[1, {SIZE}, {SIZE}, 3]",)
    assert inside.outputs == ("uint8[1, 3]",) and isolated.model == "<bytes>"
    with pytest.raises(DelegateError, match="edgetpu-custom-op"):
        check_model(EDGETPU_MODEL)
