"""A model file never kills the process: structural rules on scales and zero points, then a
one-time child-process load of any file edgelab did not write, its verdict cached by content."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgelab as el
from edgelab.errors import InterpreterCrashError
from edgelab.tflite import child, trust
from edgelab.tflite.validate import ModelValidationError, validate_model

CORAL = Path(__file__).parent / "data" / "coral"
MOBILENET = CORAL / "mobilenet_v1_0.25_128_quant.tflite"  # uint8 activations, per-tensor scales

#: Below the smallest normal float32 (1.1754944e-38); XNNPACK's allocate_tensors segfaults on it.
SUBNORMAL = 1.08e-42


def mutate(src: Path, dst: Path, edit) -> Path:
    """Rewrite ``src`` with ``edit(model)`` applied to its object tree (LiteRT's flatbuffer schema)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def output_tensor(model):
    graph = model.subgraphs[0]
    return graph.tensors[graph.outputs[0]]


def weight_tensor(model):
    """The first tensor with per-channel or per-tensor scales and a constant buffer (a weight)."""
    graph = model.subgraphs[0]
    return next(
        t for t in graph.tensors if t.quantization is not None and t.quantization.scale is not None and t.buffer
    )


@pytest.mark.parametrize(
    "scale", [SUBNORMAL, 1e-40, 0.0, -0.5, math.inf, -math.inf, math.nan], ids=lambda s: f"scale={s!r}"
)
@pytest.mark.parametrize("pick", [output_tensor, weight_tensor], ids=["activation", "weight"])
def test_bad_scales_are_refused(tmp_path, scale, pick):
    def edit(model):
        quant = pick(model).quantization
        quant.scale = [scale] * len(quant.scale)

    path = mutate(MOBILENET, tmp_path / "bad.tflite", edit)
    with pytest.raises(ModelValidationError, match="scale") as info:
        validate_model(path)
    assert "normal float32" in info.value.rule


def test_smallest_normal_scale_passes(tmp_path):
    tiny = float(np.finfo(np.float32).tiny)

    def edit(model):
        output_tensor(model).quantization.scale = [tiny]

    validate_model(mutate(MOBILENET, tmp_path / "tiny.tflite", edit))


@pytest.mark.parametrize("zero_point", [-1, 256, 2**40])
def test_zero_points_are_bounded_by_the_tensor_type(tmp_path, zero_point):
    def edit(model):
        output_tensor(model).quantization.zeroPoint = [zero_point]  # a UINT8 tensor: 0..255

    path = mutate(MOBILENET, tmp_path / "zp.tflite", edit)
    with pytest.raises(ModelValidationError, match=f"zero point {zero_point}"):
        validate_model(path)


def test_float_tensor_with_a_zero_point_is_refused(tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    def edit(model):
        tensor = output_tensor(model)
        tensor.type = schema.TensorType.FLOAT32
        tensor.quantization.zeroPoint = [3]

    path = mutate(MOBILENET, tmp_path / "fzp.tflite", edit)
    with pytest.raises(ModelValidationError, match="FLOAT32: 0..0"):
        validate_model(path)


@pytest.fixture
def child_calls(monkeypatch, tmp_path):
    """A fresh verdict cache, and a list that grows by one per child-process check."""
    monkeypatch.setenv("EDGELAB_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    real = child.run_child

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(child, "run_child", counting)
    return calls


def foreign_copy(tmp_path: Path) -> Path:
    """Bytes edgelab has not seen: the Coral model with its description changed (to one of its own per
    test, so no earlier test of this process has seen them either)."""

    def edit(model):
        model.description = f"a foreign file of {tmp_path.name}".encode()

    return mutate(MOBILENET, tmp_path / "foreign.tflite", edit)


def test_first_load_of_a_foreign_file_is_checked_once_in_a_child(tmp_path, child_calls):
    path = foreign_copy(tmp_path)
    el.TFLiteModel(path)
    assert len(child_calls) == 1
    verdicts = list((tmp_path / "cache" / trust.FOLDER).glob("*.json"))
    assert [json.loads(v.read_text())["verdict"] for v in verdicts] == ["ok"]
    el.TFLiteModel(path)
    assert len(child_calls) == 1
    # A new process loads the bytes without a child of its own: the verdict comes from disk.
    code = (
        "import sys\nfrom pathlib import Path\nimport edgelab as el\nfrom edgelab.tflite import child\n"
        "def again(*args, **kwargs):\n    sys.exit('checked again in a child')\n"
        f"child.run_child = again\nel.TFLiteModel(Path({str(path)!r}).read_bytes())\nprint('loaded')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "loaded", run.stderr


def test_trusted_skips_the_child(tmp_path, child_calls):
    el.TFLiteModel(foreign_copy(tmp_path), trusted=True)
    el.tflite.load_interpreter(foreign_copy(tmp_path), trusted=True)
    assert child_calls == []


def test_check_model_records_its_verdict(tmp_path, child_calls):
    path = foreign_copy(tmp_path)
    el.check_model(path, isolate=True)
    el.TFLiteModel(path)
    assert len(child_calls) == 1


def test_converted_files_skip_the_child(tmp_path, child_calls):
    from _tiny import small_cnn

    converted = el.convert(small_cnn(), "fp32", out_dir=tmp_path / "models")
    el.TFLiteModel(converted.path).predict(np.zeros((1, 8, 8, 3), np.uint8))
    assert child_calls == []


def test_a_crash_in_the_child_is_an_error_here_and_is_remembered(tmp_path, child_calls, monkeypatch):
    """A file the structural rules miss (simulated by switching them off) ends the child, not us.

    The file: a converted int8 classifier whose uint8 output scale is subnormal; with the pinned
    LiteRT, XNNPACK's allocate_tensors dies with SIGSEGV on it (issue 20).
    """
    from _tiny import colour_task, small_cnn

    from edgelab.tflite import interpreter, runtime

    images, _ = colour_task(8)
    converted = el.convert(small_cnn(), "int8", out_dir=tmp_path / "models", calibration=images)

    def edit(model):
        output_tensor(model).quantization.scale = [SUBNORMAL]

    path = mutate(converted.path, tmp_path / "subnormal.tflite", edit)
    for module in (interpreter, runtime):
        monkeypatch.setattr(module, "validate_bytes", lambda data, path: None)
    with pytest.raises(InterpreterCrashError, match=r"crashed .*signal"):
        el.TFLiteModel(path)
    assert len(child_calls) == 1
    with pytest.raises(InterpreterCrashError):  # the verdict is cached: no second child
        el.TFLiteModel(path)
    assert len(child_calls) == 1
