"""Deploy bundles: export, then run the standalone classify.py in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgelab
from edgelab.bundle import export_bundle, precision_from_name
from edgelab.cli import main
from edgelab.edgetpu.delegate import library_available
from edgelab.errors import ConfigError, ModelFileError
from edgelab.preprocess import INPUT_MEAN, INPUT_STD, normalize

LABELS = ["buildings", "forest", "sea"]
SIZE = 16
COMPILED = Path(__file__).parent / "data" / "coral" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
TEMPLATE = Path(edgelab.__file__).parent / "bundle_template" / "classify.py"

# Runs classify.py like `python classify.py ...`, then checks what it imported.
RUN_CLASSIFY = """
import runpy, sys
block = sys.argv[1].split(",") if sys.argv[1] else []
for name in block:
    sys.modules[name] = None  # makes `import name` fail, as if not installed
sys.argv = sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
leaked = sorted(m for m in ("edgelab", "tensorflow") if m in sys.modules and sys.modules[m] is not None)
if leaked:
    print("IMPORTED", leaked, file=sys.stderr)
    code = 99
sys.exit(code)
"""


def run_classify(
    bundle: Path, *args: str, block: tuple[str, ...] = (), xnnpack: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGELAB_XNNPACK")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if xnnpack is not None:
        env["EDGELAB_XNNPACK"] = xnnpack
    return subprocess.run(
        [sys.executable, "-c", RUN_CLASSIFY, ",".join(block), str(bundle / "classify.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=bundle.parent,
        env=env,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny untrained CNN converted to float32 and to full int8 with uint8 I/O."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    out = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    calib = normalize(rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8))

    float_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (out / "tiny_fp32.tflite").write_bytes(float_conv.convert())

    int8_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    int8_conv.optimizations = [tf.lite.Optimize.DEFAULT]
    int8_conv.representative_dataset = lambda: ([img[None]] for img in calib)
    int8_conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8_conv.inference_input_type = tf.uint8
    int8_conv.inference_output_type = tf.uint8
    (out / "tiny_int8.tflite").write_bytes(int8_conv.convert())
    return {"fp32": out / "tiny_fp32.tflite", "int8": out / "tiny_int8.tflite"}


@pytest.fixture
def image(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(path)
    return path


def parse_scores(stdout: str) -> dict[str, float]:
    rows = re.findall(r"^\s+\d+\. (\S+)\s+([0-9.]+)$", stdout, re.MULTILINE)
    return {label: float(score) for label, score in rows}


def test_bundle_contents(models, tmp_path):
    out = export_bundle(models, LABELS, out_dir=tmp_path / "bundle")
    device_side = sorted(p.name for p in TEMPLATE.parent.glob("*.py"))  # classify.py and its sibling modules
    assert {"classify.py", "device_bench.py", "model_check.py"} <= set(device_side)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "README.md",
            "bundle.json",
            "labels.txt",
            "manifest.json",
            "tiny_fp32.tflite",
            "tiny_int8.tflite",
            *device_side,
        ]
    )
    assert (out / "labels.txt").read_text().splitlines() == LABELS
    assert (out / "tiny_int8.tflite").read_bytes() == models["int8"].read_bytes()
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["edgelab_version"] == edgelab.__version__
    assert meta["input"]["size"] == [SIZE, SIZE]
    assert (meta["input"]["mean"], meta["input"]["std"]) == (INPUT_MEAN, INPUT_STD)
    assert meta["default_model"] == "fp32"
    by_name = {m["name"]: m for m in meta["models"]}
    assert by_name["fp32"]["precision"] == "fp32" and by_name["int8"]["precision"] == "int8"
    assert by_name["fp32"]["input"]["dtype"] == "float32"
    assert by_name["int8"]["input"]["dtype"] == "uint8" and by_name["int8"]["input"]["scale"] > 0
    assert not by_name["int8"]["edgetpu"]
    readme = (out / "README.md").read_text()
    assert "Raspberry Pi" in readme and "Dev Board" in readme and "3.9" in readme
    assert "`tiny_int8.tflite`" in readme


@pytest.mark.parametrize("script", ["classify.py", "model_check.py"])
def test_classify_script_is_standalone(script):
    tree = ast.parse((TEMPLATE.parent / script).read_text(), feature_version=(3, 7))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "edgelab" not in imported
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_classify_runs_and_matches_the_model(models, tmp_path, image, variant):
    out = export_bundle(models, LABELS, out_dir=tmp_path / "bundle")
    proc = run_classify(out, str(image), "--model", variant, "--top-k", "3", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"model: tiny_{variant}.tflite (runtime: ai_edge_litert)" in proc.stdout
    scores = parse_scores(proc.stdout)
    assert sorted(scores) == sorted(LABELS)

    # The same image through the model in this process, preprocessed by edgelab itself.
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(models[variant]))
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    pixels = np.asarray(Image.open(image).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    x = normalize(pixels[None])
    if inp["dtype"] == np.uint8:
        scale, zero_point = inp["quantization"]
        x = np.clip(np.round(x / scale + zero_point), 0, 255).astype(np.uint8)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(outp["index"])[0]
    if outp["dtype"] == np.uint8:
        scale, zero_point = outp["quantization"]
        y = scale * (y.astype(np.int64) - zero_point)
    expected = dict(zip(LABELS, y.tolist()))
    # Same runtime, same kernels, same input bytes: the only difference is classify.py printing 4
    # decimals (at most 5e-5 off), so 1e-4 bounds it.
    assert scores == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("xnnpack", ["1", "0"])
def test_classify_gives_the_output_bytes_of_tflitemodel_with_the_same_kernels(models, tmp_path, xnnpack):
    """EDGELAB_XNNPACK=0 switches classify.py to TFLite's built-in kernels as it switches edgelab's own
    interpreters, so both compute the same int8 program the same way: equal in integer output steps."""
    from edgelab.tflite.runtime import TFLiteModel

    out = export_bundle({"int8": models["int8"]}, LABELS, out_dir=tmp_path / "bundle")
    rng = np.random.default_rng(2)
    paths = []
    for i in range(4):  # already at the model's size: no resampling on either side
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(paths[-1])
    proc = run_classify(out, *map(str, paths), "--top-k", str(len(LABELS)), "--threads", "1", xnnpack=xnnpack)
    assert proc.returncode == 0, proc.stderr
    model = TFLiteModel(models["int8"], labels=LABELS, use_xnnpack=xnnpack == "1")
    scale, zero_point = model.output_quantization
    blocks = proc.stdout.split("\n" + str(tmp_path))[1:]
    assert len(blocks) == len(paths), proc.stdout
    for path, block in zip(paths, blocks):
        raw = model.predict(np.asarray(Image.open(path).convert("RGB")), output="raw")[0].astype(int)
        # 4 printed decimals are within 5e-5 of k * scale (scale = 1/256 here): rounding recovers k exactly.
        printed = {label: round(score / scale) + zero_point for label, score in parse_scores(block).items()}
        assert printed == dict(zip(LABELS, raw.tolist())), (path.name, block)


def test_classify_default_model_and_top_k(models, tmp_path, image):
    out = export_bundle({"int8": models["int8"], "fp32": models["fp32"]}, LABELS, out_dir=tmp_path / "b")
    proc = run_classify(out, str(image), "--top-k", "1")
    assert proc.returncode == 0, proc.stderr
    assert "tiny_int8.tflite" in proc.stdout
    assert len(parse_scores(proc.stdout)) == 1


def test_classify_without_any_runtime_says_what_to_install(models, tmp_path, image):
    out = export_bundle([models["fp32"]], LABELS, out_dir=tmp_path / "b")
    proc = run_classify(out, str(image), block=("ai_edge_litert", "tflite_runtime", "tensorflow", "pycoral"))
    assert proc.returncode == 2
    assert "no TFLite runtime found" in proc.stderr and "pip install ai-edge-litert" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(library_available(), reason="this machine has libedgetpu installed")
def test_classify_compiled_model_without_libedgetpu(tmp_path, image):
    labels = [f"class_{i}" for i in range(1001)]
    out = export_bundle([COMPILED], labels, out_dir=tmp_path / "b")
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["models"][0]["edgetpu"] and meta["models"][0]["precision"] == "edgetpu"
    assert meta["input"]["size"] == [128, 128]
    proc = run_classify(out, str(image), "--device", "usb:0")
    assert proc.returncode == 2
    assert "libedgetpu" in proc.stderr and "not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_classify_checks_the_model_before_its_runtime_loads_it(models, tmp_path, image):
    """A subnormal output scale made XNNPACK segfault (exit 139); model_check.py refuses the file."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    out = export_bundle([models["int8"]], LABELS, out_dir=tmp_path / "b")
    proc = run_classify(out, "--check")
    assert proc.returncode == 0, proc.stderr
    assert "tiny_int8.tflite loads and runs with ai_edge_litert" in proc.stdout

    model = schema.ModelT.InitFromPackedBuf(models["int8"].read_bytes(), 0)
    graph = model.subgraphs[0]
    graph.tensors[graph.outputs[0]].quantization.scale = [1.08e-42]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    bad = out / "bad.tflite"
    bad.write_bytes(bytes(builder.Output()))
    for args in ((str(image),), ("--check",)):
        proc = run_classify(out, "--model", str(bad), *args)
        assert proc.returncode == 2, proc.stderr
        # 1.08e-42 is stored as the nearest float32 subnormal, 1.0804e-42
        assert re.search(r"quantization scale 1\.08\d*e-42 is not a finite, positive, normal float32", proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_classify_bad_image_is_one_line(models, tmp_path):
    out = export_bundle([models["fp32"]], LABELS, out_dir=tmp_path / "b")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    proc = run_classify(out, str(bad))
    assert proc.returncode == 2
    # The runtime may log its own INFO line first; ours is one line, and no traceback.
    assert proc.stderr.splitlines()[-1].startswith("classify.py: error: cannot read image")
    assert "Traceback" not in proc.stderr


def test_refuses_non_empty_folder_unless_overwrite(models, tmp_path):
    target = tmp_path / "b"
    export_bundle(models, LABELS, out_dir=target)
    with pytest.raises(ConfigError, match="not empty"):
        export_bundle(models, LABELS, out_dir=target)
    (target / "notes.txt").write_text("mine")
    export_bundle([models["int8"]], LABELS, out_dir=target, overwrite=True)
    names = {p.name for p in target.iterdir()}
    assert "tiny_fp32.tflite" not in names  # the earlier bundle's model is replaced
    assert "notes.txt" in names  # files the bundle did not write stay
    assert json.loads((target / "bundle.json").read_text())["default_model"] == "tiny_int8"


def test_label_count_must_match_model_output(models, tmp_path):
    with pytest.raises(ConfigError, match="3 labels|4 labels"):
        export_bundle([models["fp32"]], LABELS + ["street"], out_dir=tmp_path / "b")
    assert not (tmp_path / "b" / "bundle.json").exists()


@pytest.mark.parametrize("size", [(0, 16), (16,), "16x16"])
def test_bad_image_size_is_echoed(models, tmp_path, size):
    with pytest.raises(ConfigError, match=re.escape(f"image_size={size!r}")):
        export_bundle([models["fp32"]], LABELS, out_dir=tmp_path / "b", image_size=size)


def test_image_size_must_match_the_model(models, tmp_path):
    with pytest.raises(ConfigError, match="image_size=\\(32, 32\\)"):
        export_bundle([models["fp32"]], LABELS, out_dir=tmp_path / "b", image_size=(32, 32))


def test_missing_or_non_tflite_model(tmp_path):
    with pytest.raises(ModelFileError, match="nope.tflite") as info:
        export_bundle([tmp_path / "nope.tflite"], LABELS, out_dir=tmp_path / "b")
    assert "for the bundle" in str(info.value)
    text = tmp_path / "x.tflite"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="TFL3") as info:
        export_bundle([text], LABELS, out_dir=tmp_path / "b")
    assert "for the bundle" in str(info.value)


def test_labels_from_file_and_empty_labels(models, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(LABELS) + "\n\n")
    out = export_bundle([models["fp32"]], labels_file, out_dir=tmp_path / "b")
    assert (out / "labels.txt").read_text().splitlines() == LABELS
    with pytest.raises(ConfigError, match="labels"):
        export_bundle([models["fp32"]], [], out_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "name, precision",
    [
        ("scenes_int8_edgetpu.tflite", "edgetpu"),
        ("scenes_qat_int8.tflite", "qat_int8"),
        ("m_int16x8.tflite", "int16x8"),
        ("m-int8.tflite", "int8"),
        ("model_fp16.tflite", "fp16"),
        ("model_dynamic.tflite", "dynamic"),
        ("model_float32.tflite", "fp32"),
        ("model.tflite", None),
        ("print8.tflite", None),
    ],
)
def test_precision_from_file_name(name, precision):
    result = precision_from_name(name)
    assert (result.value if result else None) == precision


def test_cli_export_bundle(models, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    target = tmp_path / "cli-bundle"
    argv = [
        "export-bundle",
        "--model",
        str(models["int8"]),
        "--model",
        str(models["fp32"]),
        "--labels",
        str(labels),
        "--out",
        str(target),
    ]
    assert main(argv) == 0
    assert "bundle written to" in capsys.readouterr().out
    assert [m["file"] for m in json.loads((target / "bundle.json").read_text())["models"]] == [
        "tiny_int8.tflite",
        "tiny_fp32.tflite",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgelab: error:") and err.count("\n") == 1
    assert main(argv + ["--overwrite"]) == 0
