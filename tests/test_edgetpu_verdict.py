"""The Edge TPU column of compare: the real compiler's counts when installed, else the prediction."""

from __future__ import annotations

import json
from pathlib import Path

from edgelab.edgetpu import analyze_edgetpu, edgetpu_verdict

CORAL = Path(__file__).parent / "data" / "coral"
MOBILENET = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
DEEPLAB = CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite"


def test_without_compiler_the_offline_prediction_is_used(no_compiler):
    verdict = edgetpu_verdict(DEEPLAB)
    assert verdict.source == "predicted"
    assert (verdict.ops_edgetpu, verdict.ops_total) == (64, 72)
    assert verdict.mapped == "64/72"
    assert verdict.status == analyze_edgetpu(DEEPLAB).verdict == "partial"


def test_with_compiler_its_counts_win(fake_compiler):
    fake_compiler("partial", version="16.0.384591198")
    verdict = edgetpu_verdict(MOBILENET)
    # The fake compiler reports 29 of 33 ops mapped whatever the model: proof the compiler was read.
    assert verdict.source == "compiler" and verdict.compiler_version == "16.0.384591198"
    assert verdict.mapped == "29/33"
    assert verdict.status == "partial"
    assert verdict.report.ops_total == 31  # the offline explanation is kept alongside


def test_analyzer_compiler_and_log_share_one_mapping_type(fake_compiler, tmp_path):
    from edgelab.edgetpu import EdgeTPUMapping, compile_edgetpu, read_log

    fake_compiler("partial", version="16.0.384591198")
    result = compile_edgetpu(MOBILENET, out_dir=tmp_path)
    mappings = [analyze_edgetpu(MOBILENET).mapping, result.mapping, read_log(result.log_path).mapping]
    assert all(isinstance(m, EdgeTPUMapping) for m in mappings)
    assert [m.source.value for m in mappings] == ["predicted", "compiler", "log"]
    assert [m.mapped for m in mappings] == ["31/31", "29/33", "29/33"]
    assert mappings[1].status == mappings[2].status == "partial"
    assert json.loads(json.dumps(mappings[1].to_dict()))["source"] == "compiler"


def test_compiler_failure_falls_back_to_prediction(fake_compiler):
    fake_compiler("internal_error")
    verdict = edgetpu_verdict(MOBILENET)
    assert verdict.source == "predicted"
    assert verdict.mapped == "31/31"


def test_float_models_never_reach_the_compiler(fake_compiler, tmp_path):
    argv_file = fake_compiler("success")
    float_model = tmp_path / "float.tflite"
    from edgelab._keras import keras, tf

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
    float_model.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs)).convert())
    verdict = edgetpu_verdict(float_model)
    assert verdict.source == "predicted" and verdict.status == "not_quantized"
    assert verdict.ops_edgetpu == 0
    assert not argv_file.exists()  # the compiler was never started
