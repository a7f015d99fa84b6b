"""Reading .tflite files without TensorFlow: ops, tensors, quantization, MACs, bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelab.errors import ModelFileError
from edgelab.tflite.inspection import ModelInfo, has_edgetpu_custom_op, inspect_model, load_model_bytes

CORAL = Path(__file__).parent / "data" / "coral"
MOBILENET = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
MOBILENET_TPU = CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
SPLIT_CONCAT = CORAL / "split_concat.tflite"

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")


def test_importing_inspection_does_not_import_tensorflow():
    code = "import sys, edgelab.tflite.inspection; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_mobilenet_ops_and_versions():
    info = inspect_model(MOBILENET)
    assert isinstance(info, ModelInfo)
    assert info.path == str(MOBILENET)
    assert info.size_bytes == MOBILENET.stat().st_size
    assert len(info.ops) == 31
    assert info.op_counts() == {
        "CONV_2D": 15,
        "DEPTHWISE_CONV_2D": 13,
        "AVERAGE_POOL_2D": 1,
        "RESHAPE": 1,
        "SOFTMAX": 1,
    }
    assert [op.index for op in info.ops] == list(range(31))
    assert all(op.version == 1 for op in info.ops)
    assert info.subgraphs == 1
    assert info.custom_ops == ()
    assert not info.is_edgetpu_compiled


def test_mobilenet_io_quantization_and_dtypes():
    info = inspect_model(MOBILENET)
    (inp,) = info.inputs
    (out,) = info.outputs
    assert inp.shape == (1, 128, 128, 3) and inp.shape_signature == inp.shape
    assert inp.dtype == "uint8" and out.dtype == "uint8"
    assert inp.quantized and inp.zero_point == 128
    assert inp.scale == pytest.approx(1 / 128, rel=1e-3)
    assert out.shape == (1, 1001)
    assert out.scale == pytest.approx(1 / 256, rel=1e-3) and out.zero_point == 0
    # Weights are uint8 constants, biases int32 constants; activations carry no buffer.
    conv = info.ops[0]
    weights, bias = (info.tensors[i] for i in conv.inputs[1:])
    assert weights.has_buffer and weights.dtype == "uint8" and weights.bytes == 8 * 3 * 3 * 3
    assert bias.has_buffer and bias.dtype == "int32" and bias.bytes == 8 * 4
    assert not inp.has_buffer and inp.bytes == 128 * 128 * 3
    assert conv.options["strideW"] == 2


def test_param_bytes_are_the_constant_tensors():
    info = inspect_model(MOBILENET)
    # Each stored buffer counts once, even when several tensors share it.
    by_buffer = {t.buffer: t.bytes for t in info.tensors if t.has_buffer}
    assert info.param_bytes == sum(by_buffer.values())
    # Every conv and depthwise weight and bias is in there.
    weights = sum(info.tensors[op.inputs[1]].bytes for op in info.ops if "CONV" in op.op)
    assert weights < info.param_bytes < info.size_bytes


def test_macs_follow_the_layer_shapes():
    info = inspect_model(MOBILENET)
    for op in info.ops:
        out = info.tensors[op.outputs[0]].shape
        if op.op == "CONV_2D":
            _, kh, kw, cin = info.tensors[op.inputs[1]].shape
            assert op.macs == int(np.prod(out)) * kh * kw * cin
        elif op.op == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = info.tensors[op.inputs[1]].shape
            assert op.macs == int(np.prod(out)) * kh * kw
        else:
            assert op.macs == 0
    assert info.macs == sum(op.macs for op in info.ops)
    # MobileNet v1 0.25 at 128 px is published as ~14 million MACs.
    assert 12e6 < info.macs < 16e6


def test_constant_values_are_typed_and_shaped():
    info = inspect_model(MOBILENET)
    reshape = next(op for op in info.ops if op.op == "RESHAPE")
    new_shape = info.constant(reshape.inputs[1])
    assert new_shape.dtype == np.int32
    assert new_shape.tolist() == [1, 1001]
    assert info.constant(info.inputs[0].index) is None


def test_compiled_model_shows_the_custom_op():
    info = inspect_model(MOBILENET_TPU)
    assert info.is_edgetpu_compiled
    assert [op.op for op in info.ops] == ["edgetpu-custom-op"]
    assert info.ops[0].is_custom
    assert info.custom_ops == ("edgetpu-custom-op",)
    assert info.inputs[0].shape == (1, 128, 128, 3)


def test_bytes_and_path_give_the_same_model():
    from_path = inspect_model(SPLIT_CONCAT)
    from_bytes = inspect_model(SPLIT_CONCAT.read_bytes())
    assert from_bytes.path is None
    assert from_bytes.ops == from_path.ops
    assert from_bytes.tensors == from_path.tensors
    assert [t.shape for t in from_bytes.inputs] == [(1, 8, 8, 3), (1, 8, 8, 1), (1, 8, 8, 2)]
    assert len(from_bytes.outputs) == 5


def test_frame_has_one_row_per_op():
    info = inspect_model(SPLIT_CONCAT)
    frame = info.to_frame()
    assert list(frame.columns) == ["index", "op", "version", "input_shapes", "output_shapes", "dtype", "macs"]
    assert frame["op"].tolist() == ["CONCATENATION", "SPLIT", "CONCATENATION"]
    assert frame.loc[0, "output_shapes"] == ((1, 8, 8, 6),)
    assert set(frame["dtype"]) == {"uint8"}


def test_repr_and_dict_are_stable():
    info = inspect_model(SPLIT_CONCAT)
    assert repr(info) == repr(inspect_model(SPLIT_CONCAT.read_bytes())).replace("'<bytes>'", "'split_concat.tflite'")
    assert "split_concat.tflite" in repr(info) and "uint8[1,8,8,3]" in repr(info)
    d = info.to_dict()
    assert d["ops_total"] == 3 and d["op_counts"] == {"CONCATENATION": 2, "SPLIT": 1}
    assert d["inputs"][0]["shape"] == [1, 8, 8, 3]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"TFL3", "too small"),
        (b"this is a text file, not a model\n" * 4, "not a TFLite model"),
        (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a TFLite model"),
        # Random bytes behind a valid identifier: the flatbuffer itself is garbage.
        (b"\xff\xff\xff\x7fTFL3" + np.random.default_rng(1).bytes(4096), "corrupt"),
    ],
    ids=["zero-byte", "tiny", "text", "random", "random-with-identifier"],
)
def test_bad_content_raises_model_file_error(tmp_path, content, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as info:
        inspect_model(path)
    assert str(path) in str(info.value)
    with pytest.raises(ModelFileError, match=message):
        inspect_model(content)


def test_truncated_model_raises_model_file_error(tmp_path):
    data = MOBILENET.read_bytes()
    for cut in (16, 1000, len(data) // 2):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="corrupt or truncated") as info:
            inspect_model(path)
        assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        inspect_model(tmp_path / "nope.tflite")
    with pytest.raises(ModelFileError, match="directory"):
        inspect_model(tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "nope.tflite", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.tflite", b""), r"empty \(0 bytes\)"),
        (lambda d: _write(d / "notes.tflite", b"just some notes\n"), "not a TFLite model"),
        (lambda d: _write(d / "model.h5", b"\x89HDF\r\n\x1a\n" + bytes(64)), "HDF5"),
    ],
    ids=["missing", "directory", "empty", "text", "h5"],
)
def test_load_model_bytes_names_file_problem_and_purpose(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model_bytes(path, purpose="to compile")
    text = str(info.value)
    assert f"'{path}'" in text and "Expected a TFLite model (.tflite) to compile." in text
    assert "TFL3" in text or not path.is_file()


def test_load_model_bytes_returns_bytes_and_path():
    data, path = load_model_bytes(MOBILENET)
    assert data == MOBILENET.read_bytes() and path == str(MOBILENET)
    assert load_model_bytes(bytearray(data)) == (data, None)


def test_edgetpu_custom_op_detection_matches_the_full_reader():
    for path in sorted(CORAL.glob("*.tflite")):
        compiled = has_edgetpu_custom_op(path)
        assert compiled == path.stem.endswith("_edgetpu")
        assert compiled == inspect_model(path).is_edgetpu_compiled == has_edgetpu_custom_op(path.read_bytes())


def test_edgetpu_custom_op_detection_reports_corrupt_files(tmp_path):
    path = _write(tmp_path / "cut.tflite", MOBILENET_TPU.read_bytes()[:16])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as info:
        has_edgetpu_custom_op(path)
    assert str(path) in str(info.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_wrong_argument_type_is_a_config_error():
    from edgelab.errors import ConfigError

    with pytest.raises(ConfigError, match="Received: source of type int"):
        inspect_model(42)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_int8_model():
    """A small Keras CNN (stride-2 conv, depthwise, dense) converted to full int8, batch 1."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(12, 12, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="valid", activation="relu", name="dw")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5, name="dense")(x)
    model = keras.Model(inp, out)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.uniform(-1, 1, (1, 12, 12, 3)).astype("float32")]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return model, converter.convert()


def test_macs_of_a_converted_keras_model(tiny_int8_model):
    model, tflite = tiny_int8_model
    info = inspect_model(tflite)
    by_op = {op.op: op for op in info.ops}
    conv, dw, dense = (model.get_layer(n) for n in ("conv", "dw", "dense"))
    _, h, w, c = conv.output_shape
    kh, kw = conv.kernel_size
    assert by_op["CONV_2D"].macs == h * w * c * kh * kw * 3
    _, h, w, c = dw.output_shape
    kh, kw = dw.kernel_size
    assert by_op["DEPTHWISE_CONV_2D"].macs == h * w * c * kh * kw
    assert by_op["FULLY_CONNECTED"].macs == dense.input_shape[-1] * dense.units
    assert info.macs == sum(op.macs for op in info.ops)


def test_converted_keras_model_io_and_weights(tiny_int8_model):
    model, tflite = tiny_int8_model
    info = inspect_model(tflite)
    assert [t.dtype for t in info.inputs] == ["uint8"] and [t.dtype for t in info.outputs] == ["uint8"]
    assert info.inputs[0].shape == (1, 12, 12, 3)
    conv = next(op for op in info.ops if op.op == "CONV_2D")
    weights = info.tensors[conv.inputs[1]]
    # TF2's converter quantizes conv weights per output channel, as int8.
    assert weights.dtype == "int8" and weights.per_channel
    assert info.constant(weights.index).shape == (8, 3, 3, 3)
    keras_params = sum(int(np.prod(v.shape)) for v in model.weights)
    # int8 weights (1 byte) plus int32 biases (4 bytes), plus a few shape operands.
    assert keras_params <= info.param_bytes <= 4 * keras_params + 64


def test_inspect_applies_the_same_rules_as_a_load(tmp_path):
    """inspect (and analyze, which reads through it) refuses what a load refuses, with the same message."""
    from edgelab.tflite.runtime import load_interpreter
    from edgelab.tflite.validate import ModelValidationError

    data = bytearray((Path(__file__).parent / "data" / "coral" / "split_concat.tflite").read_bytes())
    data[240] = 0xFF  # SPLIT's num_splits: 255 for 6 outputs
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelValidationError) as from_inspect:
        inspect_model(bad)
    with pytest.raises(ModelValidationError) as from_load:
        load_interpreter(bad)
    assert str(from_inspect.value) == str(from_load.value)
    assert from_inspect.value.subgraph == 0 and from_inspect.value.where == "op 1 (SPLIT)"
