"""The offline Edge TPU analyzer: real compiler results, each mapping rule, compiled files, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgelab.edgetpu import ops as table
from edgelab.edgetpu.analyze import EdgeTPUReport, analyze_edgetpu
from edgelab.errors import ConfigError, ModelFileError
from edgelab.tflite.inspection import inspect_model

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")

CORAL = Path(__file__).parent / "data" / "coral"
#: A folder with all Coral pairs (input and compiled); defaults to the copies in the repository.
CORAL_FULL = Path(os.environ.get("EDGELAB_CORAL_DATA", CORAL))

#: What the real edgetpu_compiler did to each Coral model (tests/data/coral/README.md):
#: ops in the input model, and the ops it left on the CPU beside the custom op.
REAL_COMPILER = {
    "mobilenet_v1_0.25_128_quant": (31, {}),
    "split_concat": (3, {}),
    "deeplabv3_mnv2_dm05_pascal_quant": (
        72,
        {"RESIZE_BILINEAR": 3, "QUANTIZE": 1, "CONCATENATION": 1, "CONV_2D": 2, "ARG_MAX": 1},
    ),
    "posenet_mobilenet_v1_075_353_481_16_quant_decoder": (38, {"PosenetDecoderOp": 1}),
}


def _coral(name: str, compiled: bool = False) -> Path:
    filename = f"{name}_edgetpu.tflite" if compiled else f"{name}.tflite"
    for folder in (CORAL_FULL, CORAL):
        if (folder / filename).exists():
            return folder / filename
    pytest.skip(f"{filename} is not in {CORAL} (set EDGELAB_CORAL_DATA to a folder that has it)")


# --- ground truth: the real compiler's output ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_COMPILER))
def test_predicts_exactly_what_the_real_compiler_mapped(name):
    ops_in, left_on_cpu = REAL_COMPILER[name]
    report = analyze_edgetpu(_coral(name))
    assert report.ops_total == ops_in
    assert report.ops_edgetpu == ops_in - sum(left_on_cpu.values())
    assert report.ops_cpu == sum(left_on_cpu.values())
    assert Counter(v.op for v in report.ops if v.target == "cpu") == Counter(left_on_cpu)
    assert report.verdict == ("ok" if not left_on_cpu else "partial")
    assert report.subgraphs == 1
    assert not report.compiled


@pytest.mark.parametrize("name", sorted(REAL_COMPILER))
def test_prediction_matches_the_compiled_file(name):
    source, compiled = _coral(name), _coral(name, compiled=True)
    predicted = analyze_edgetpu(source)
    real = analyze_edgetpu(compiled)
    assert real.compiled and real.ops_edgetpu == 1
    real_cpu = Counter(v.op for v in real.ops if v.target == "cpu")
    assert predicted.ops_edgetpu == predicted.ops_total - sum(real_cpu.values())
    assert Counter(v.op for v in predicted.ops if v.target == "cpu") == real_cpu
    # The table in the README agrees with the file too.
    assert real_cpu == Counter(REAL_COMPILER[name][1])


def test_deeplab_cut_and_reasons():
    report = analyze_edgetpu(_coral("deeplabv3_mnv2_dm05_pascal_quant"))
    cpu = report.cpu_ops
    # The image-pooling branch upsamples a single pixel (align_corners): the first CPU op.
    assert cpu[0].op == "RESIZE_BILINEAR" and cpu[0].reason == table.STATUS_LIMITATION
    # Supported ops that depend on it stay on the CPU because of the single partition.
    assert {v.op for v in cpu if v.reason == table.STATUS_SUBGRAPH} == {
        "QUANTIZE",
        "CONCATENATION",
        "CONV_2D",
        "RESIZE_BILINEAR",
    }
    # Everything before the cut, including the parallel conv that feeds it, is mapped.
    assert all(v.target == "edgetpu" for v in report.ops[: cpu[0].index])
    assert any("RESIZE_BILINEAR (#64)" in h for h in report.hints)


def test_compiled_file_reports_custom_op_and_cpu_ops():
    report = analyze_edgetpu(_coral("mobilenet_v1_0.25_128_quant", compiled=True))
    assert report.compiled
    assert [v.op for v in report.ops] == ["edgetpu-custom-op"]
    assert report.ops[0].target == "edgetpu"
    assert (report.ops_total, report.ops_edgetpu, report.ops_cpu) == (1, 1, 0)
    assert report.verdict == "ok"
    assert report.runtime_version is None and report.on_chip_bytes is None


def test_memory_estimate_counts_mapped_parameters():
    path = _coral("mobilenet_v1_0.25_128_quant")
    info = inspect_model(path)
    report = analyze_edgetpu(info)
    assert report.on_chip_bytes == info.param_bytes  # all mapped, well under the cache
    assert report.off_chip_bytes == 0
    assert report.on_chip_capacity_bytes == table.ON_CHIP_USABLE_BYTES
    deeplab = analyze_edgetpu(_coral("deeplabv3_mnv2_dm05_pascal_quant"))
    deeplab_info = inspect_model(_coral("deeplabv3_mnv2_dm05_pascal_quant"))
    # Only the parameters of mapped ops count: the CPU convs' weights are left out.
    assert 0 < deeplab.on_chip_bytes < deeplab_info.param_bytes


def test_analyze_accepts_path_bytes_and_model_info():
    path = _coral("split_concat")
    by_path = analyze_edgetpu(path)
    assert analyze_edgetpu(path.read_bytes()).ops == by_path.ops
    assert analyze_edgetpu(inspect_model(path)).ops == by_path.ops
    assert analyze_edgetpu(str(path)).path == str(path)


def test_report_dict_frame_summary_and_repr():
    report = analyze_edgetpu(_coral("split_concat"))
    d = report.to_dict()
    json.dumps(d)
    assert (d["ops_total"], d["ops_edgetpu"], d["ops_cpu"]) == (3, 3, 0)
    assert d["ops"][1] == {"index": 1, "op": "SPLIT", "version": 1, "target": "edgetpu", "reason": "Mapped to Edge TPU"}
    frame = report.to_frame()
    assert list(frame.columns) == ["index", "op", "version", "target", "reason"]
    assert len(frame) == 3
    table_ = report.operator_table()
    assert table_.to_dict("records") == [
        {"op": "CONCATENATION", "count": 2, "status": "Mapped to Edge TPU"},
        {"op": "SPLIT", "count": 1, "status": "Mapped to Edge TPU"},
    ]
    text = report.summary()
    assert "split_concat.tflite" in text and "Verdict: ok" in text
    assert "CONCATENATION                  2          Mapped to Edge TPU" in text
    assert repr(report) == repr(analyze_edgetpu(_coral("split_concat")))
    assert report.mapping.status is report.verdict and report.mapping.source == "predicted"


def test_bad_runtime_version_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="runtime_version=15"):
        analyze_edgetpu(_coral("split_concat"), runtime_version=15)
    bad = tmp_path / "notes.tflite"
    bad.write_text("not a model")
    with pytest.raises(ModelFileError):
        analyze_edgetpu(bad)


def test_analyzer_does_not_import_tensorflow():
    code = "import sys, edgelab.edgetpu.analyze; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- each rule, on small hand-built models -------------------------------------------------------


def build_tflite(tensors: list[dict], ops: list[tuple], inputs: list[int], outputs: list[int]) -> bytes:
    """Write a .tflite flatbuffer from tensor and op descriptions.

    tensors: dicts with ``shape``, ``dtype`` (``"int8"``, ``"uint8"``, ``"int32"``, ``"float32"``),
    optional ``quant`` (scale, zero_point), ``data`` (constant values) and ``signature``.
    ops: ``(name, version, inputs, outputs[, options_type, options])``; a name that is not a builtin
    becomes a custom op.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    types = {
        "int8": s.TensorType.INT8,
        "uint8": s.TensorType.UINT8,
        "int32": s.TensorType.INT32,
        "float32": s.TensorType.FLOAT32,
        "int16": s.TensorType.INT16,
    }
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    graph = s.SubGraphT()
    graph.tensors = []
    for spec in tensors:
        t = s.TensorT()
        t.shape = list(spec["shape"])
        if "signature" in spec:
            t.shapeSignature = list(spec["signature"])
        t.type = types[spec["dtype"]]
        t.name = f"t{len(graph.tensors)}".encode()
        t.buffer = 0
        t.isVariable = bool(spec.get("variable", False))
        if spec.get("data") is not None:
            buf = s.BufferT()
            buf.data = np.asarray(spec["data"], dtype=spec["dtype"]).tobytes()
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        if spec.get("quant"):
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [spec["quant"][0]], [spec["quant"][1]]
            t.quantization = q
        graph.tensors.append(t)
    model.operatorCodes, graph.operators = [], []
    codes: dict[str, int] = {}
    for name, version, ins, outs, *opts in ops:
        if (name, version) not in codes:
            code = s.OperatorCodeT()
            builtin = getattr(s.BuiltinOperator, name, None)
            if builtin is None:
                code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
                code.customCode = name.encode()
            else:
                code.builtinCode = builtin
                code.deprecatedBuiltinCode = min(builtin, 127)
            code.version = version
            model.operatorCodes.append(code)
            codes[(name, version)] = len(model.operatorCodes) - 1
        op = s.OperatorT()
        op.opcodeIndex = codes[(name, version)]
        op.inputs, op.outputs = list(ins), list(outs)
        if opts:
            op.builtinOptionsType, op.builtinOptions = opts
        graph.operators.append(op)
    graph.inputs, graph.outputs = list(inputs), list(outputs)
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


Q = (0.05, 0)


def act(shape=(1, 8, 8, 4), dtype="int8", **kw) -> dict:
    """A quantized activation tensor."""
    return {"shape": shape, "dtype": dtype, "quant": Q if dtype in ("int8", "uint8") else None, **kw}


def const(values, dtype="int32") -> dict:
    values = np.asarray(values)
    return {"shape": values.shape, "dtype": dtype, "data": values}


def reasons(report: EdgeTPUReport) -> list[tuple[str, str]]:
    return [(v.op, v.reason) for v in report.ops]


def test_single_partition_keeps_ops_that_do_not_depend_on_the_cut():
    # t0 -> ADD -> t1 ; t1 -> FLOOR_MOD-like custom op -> t2 -> ADD -> t3
    #                   t1 -> ADD -> t4   (a parallel branch, after the cut in execution order)
    tensors = [act(), act(), act(), act(), act()]
    ops = [
        ("ADD", 1, [0, 0], [1]),
        ("MyCustomOp", 1, [1], [2]),
        ("ADD", 1, [2, 2], [3]),
        ("ADD", 1, [1, 1], [4]),
    ]
    report = analyze_edgetpu(build_tflite(tensors, ops, [0], [3, 4]))
    assert reasons(report) == [
        ("ADD", table.STATUS_MAPPED),
        ("MyCustomOp", table.STATUS_NOT_SUPPORTED),
        ("ADD", table.STATUS_SUBGRAPH),
        ("ADD", table.STATUS_MAPPED),
    ]
    assert (report.ops_edgetpu, report.ops_cpu, report.verdict) == (2, 2, "partial")


def test_unsupported_op_before_anything_mapped_does_not_cut():
    # An op that runs first on the CPU leaves the rest of the graph free to map as one subgraph.
    tensors = [act(), act(), act(), act()]
    ops = [("MyCustomOp", 1, [0], [1]), ("ADD", 1, [1, 1], [2]), ("ADD", 1, [2, 2], [3])]
    report = analyze_edgetpu(build_tflite(tensors, ops, [0], [3]))
    assert [v.target for v in report.ops] == ["cpu", "edgetpu", "edgetpu"]


def test_float_io_boundary_ops_stay_on_cpu():
    tensors = [
        {"shape": (1, 8, 8, 4), "dtype": "float32"},
        act(),
        act(),
        {"shape": (1, 8, 8, 4), "dtype": "float32"},
    ]
    ops = [("QUANTIZE", 1, [0], [1]), ("ADD", 1, [1, 1], [2]), ("DEQUANTIZE", 1, [2], [3])]
    report = analyze_edgetpu(build_tflite(tensors, ops, [0], [3]))
    assert reasons(report) == [
        ("QUANTIZE", table.STATUS_LIMITATION),
        ("ADD", table.STATUS_MAPPED),
        ("DEQUANTIZE", table.STATUS_DATA_TYPE),
    ]
    assert any("tf.uint8" in h for h in report.hints)


def test_float_op_in_a_quantized_model_is_an_unsupported_data_type():
    tensors = [act(), act(), {"shape": (1, 8, 8, 4), "dtype": "float32"}]
    ops = [("ADD", 1, [0, 0], [1]), ("DEQUANTIZE", 1, [1], [2])]
    report = analyze_edgetpu(build_tflite(tensors, ops, [0], [2]))
    assert report.ops[1].reason == table.STATUS_DATA_TYPE


def test_rank_rule_needs_batch_one():
    tensors = [act((2, 8, 8, 4)), act((2, 8, 8, 4))]
    report = analyze_edgetpu(build_tflite(tensors, [("ADD", 1, [0, 0], [1])], [0], [1]))
    assert report.ops[0].reason == table.STATUS_RANK
    assert report.verdict == "none_mapped" and report.subgraphs == 0
    # Same op, batch 1: mapped; a 5-D tensor with only 3 dims > 1 is fine too.
    ok = analyze_edgetpu(
        build_tflite([act((1, 1, 8, 8, 4)), act((1, 1, 8, 8, 4))], [("ADD", 1, [0, 0], [1])], [0], [1])
    )
    assert ok.ops[0].reason == table.STATUS_MAPPED


def test_min_runtime_version():
    from ai_edge_litert import schema_py_generated as s

    tensors = [act((1, 4, 6, 8)), const([0, 2, 1, 3]), act((1, 6, 4, 8))]
    ops = [("TRANSPOSE", 1, [0, 1], [2], s.BuiltinOptions.TransposeOptions, s.TransposeOptionsT())]
    model = build_tflite(tensors, ops, [0], [2])
    assert analyze_edgetpu(model, runtime_version=14).ops[0].reason == table.STATUS_MAPPED
    at13 = analyze_edgetpu(model, runtime_version=13)
    assert at13.ops[0].reason == table.STATUS_NOT_SUPPORTED
    assert at13.runtime_version == 13
    assert any("-m 14" in h for h in at13.hints)


def test_op_version_the_compiler_cannot_parse():
    tensors = [
        act(),
        {"shape": (4, 1, 1, 4), "dtype": "int8", "quant": Q, "data": np.ones((4, 1, 1, 4))},
        const(np.zeros(4)),
        act(),
    ]
    too_new = table.MAX_PARSE_VERSION["CONV_2D"] + 1
    report = analyze_edgetpu(build_tflite(tensors, [("CONV_2D", too_new, [0, 1, 2], [3])], [0], [3]))
    assert report.verdict == "unsupported_op_version"
    assert report.message == f"Didn't find op for builtin opcode 'CONV_2D' version '{too_new}'"
    assert report.ops_edgetpu == 0 and report.ops_cpu == 1
    parseable = analyze_edgetpu(build_tflite(tensors, [("CONV_2D", too_new - 1, [0, 1, 2], [3])], [0], [3]))
    assert parseable.verdict == "ok"


def test_resize_maps_only_at_exact_scales():
    from ai_edge_litert import schema_py_generated as s

    def resize(src, dst, align):
        opts = s.ResizeBilinearOptionsT()
        opts.alignCorners = align
        tensors = [act((1, src, src, 4)), const([dst, dst]), act((1, dst, dst, 4))]
        ops = [("RESIZE_BILINEAR", 1, [0, 1], [2], s.BuiltinOptions.ResizeBilinearOptions, opts)]
        return analyze_edgetpu(build_tflite(tensors, ops, [0], [2])).ops[0].reason

    assert resize(4, 8, align=False) == table.STATUS_MAPPED
    assert resize(5, 9, align=True) == table.STATUS_MAPPED  # (9-1)/(5-1) = 2
    assert resize(3, 8, align=False) == table.STATUS_LIMITATION
    assert resize(1, 33, align=True) == table.STATUS_LIMITATION  # one pixel: no exact grid


def test_concat_constant_input_only_as_zero_padding():
    zeros = {"shape": (1, 8, 8, 4), "dtype": "int8", "quant": Q, "data": np.zeros((1, 8, 8, 4))}
    ones = {**zeros, "data": np.ones((1, 8, 8, 4))}
    for constant, expected in ((zeros, table.STATUS_MAPPED), (ones, table.STATUS_LIMITATION)):
        tensors = [act(), constant, act((1, 8, 8, 8))]
        report = analyze_edgetpu(build_tflite(tensors, [("CONCATENATION", 1, [0, 1], [2])], [0], [2]))
        assert report.ops[0].reason == expected


def test_not_quantized_models():
    # A float model: nothing works in 8 bits.
    tensors = [{"shape": (1, 8, 8, 4), "dtype": "float32"}] * 2
    report = analyze_edgetpu(build_tflite(tensors, [("ADD", 1, [0, 0], [1])], [0], [1]))
    assert report.verdict == "not_quantized" and report.message == "Model not quantized"
    assert report.ops[0].target == "cpu"
    # int16 activations (int16x8) are not 8-bit either.
    tensors16 = [act(dtype="int16"), act(dtype="int16")]
    assert analyze_edgetpu(build_tflite(tensors16, [("ADD", 1, [0, 0], [1])], [0], [1])).verdict == "not_quantized"


def test_dynamic_batch_is_refused():
    tensors = [act(signature=(-1, 8, 8, 4)), act(signature=(-1, 8, 8, 4))]
    report = analyze_edgetpu(build_tflite(tensors, [("ADD", 1, [0, 0], [1])], [0], [1]))
    assert report.verdict == "not_quantized"
    assert any("dynamic shape" in h and "batch 1" in h for h in report.hints)


def test_empty_model_is_invalid():
    report = analyze_edgetpu(build_tflite([act()], [], [0], [0]))
    assert report.verdict == "invalid" and report.ops_total == 0


# --- models from TensorFlow's converter ---------------------------------------------------------


@pytest.fixture(scope="module")
def converted():
    """A small edge-friendly CNN converted three ways: full int8 (batch 1), float, dynamic batch."""
    from edgelab._keras import keras, tf

    def build(batch):
        keras.utils.set_random_seed(0)
        inp = keras.Input(shape=(16, 16, 3), batch_size=batch)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
        x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
        x = keras.layers.Conv2D(16, 1, activation="relu6")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(6, activation="softmax")(x)
        return keras.Model(inp, out)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32")]

    def int8(model):
        c = tf.lite.TFLiteConverter.from_keras_model(model)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = representative
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.uint8
        return c.convert()

    static = build(1)
    return {
        "int8": int8(static),
        "float": tf.lite.TFLiteConverter.from_keras_model(static).convert(),
        "dynamic": int8(build(None)),
    }


def test_converted_int8_model_maps_fully(converted):
    report = analyze_edgetpu(converted["int8"])
    assert report.verdict == "ok", report.summary()
    assert report.ops_edgetpu == report.ops_total == len(inspect_model(converted["int8"]).ops)
    assert report.on_chip_bytes == inspect_model(converted["int8"]).param_bytes


def test_converted_float_model_is_not_quantized(converted):
    report = analyze_edgetpu(converted["float"])
    assert report.verdict == "not_quantized"
    assert report.ops_edgetpu == 0 and report.ops_cpu == report.ops_total > 0
    assert any("full-integer quantization" in h for h in report.hints)


def test_converted_dynamic_batch_model_is_refused(converted):
    info = inspect_model(converted["dynamic"])
    assert info.inputs[0].shape_signature[0] == -1
    report = analyze_edgetpu(info)
    assert report.verdict == "not_quantized"
    assert any("dynamic shape" in h for h in report.hints)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_prints_a_table(capsys):
    from edgelab.cli import main

    assert main(["analyze", str(_coral("split_concat"))]) == 0
    out = capsys.readouterr().out
    assert "Verdict: ok" in out
    assert "SPLIT                          1          Mapped to Edge TPU" in out


def test_cli_json(capsys):
    from edgelab.cli import main

    path = _coral("deeplabv3_mnv2_dm05_pascal_quant")
    assert main(["analyze", str(path), "--json", "--runtime-version", "13"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["ops_total"], payload["ops_edgetpu"], payload["ops_cpu"]) == (72, 64, 8)
    assert payload["runtime_version"] == 13
    assert set(payload["ops"][0]) == {"index", "op", "version", "target", "reason"}
    assert {op["target"] for op in payload["ops"]} == {"edgetpu", "cpu"}


@pytest.mark.parametrize("content", [b"", b"hello, this is not a model", None], ids=["empty", "text", "missing"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, content):
    from edgelab.cli import main

    path = tmp_path / "model.tflite"
    if content is not None:
        path.write_bytes(content)
    assert main(["analyze", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgelab: error:") and str(path) in lines[0]
