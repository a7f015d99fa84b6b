"""Drift: reference statistics in the bundle, the check on host and device, shifts, bundle diff."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgelab
from edgelab.bundle import export_bundle
from edgelab.bundle_diff import decide, diff_bundles
from edgelab.cli import main
from edgelab.data.scenes import CLASS_NAMES, generate_scenes
from edgelab.data.shifts import SHIFTS, apply_shift
from edgelab.drift import build_reference, check_drift
from edgelab.drift._device import device_module
from edgelab.errors import ConfigError, DriftError
from edgelab.preprocess import normalize

SIZE = 24
TEMPLATE = Path(edgelab.__file__).parent / "bundle_template"

# Runs a bundle script like `python classify.py ...` with edgelab and TensorFlow made unimportable.
RUN_SCRIPT = """
import runpy, sys
for name in ("edgelab", "tensorflow", "scipy"):
    sys.modules[name] = None
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
sys.exit(code)
"""


def _model(tmp: Path, name: str, seed: int) -> Path:
    """A tiny untrained CNN on SIZE x SIZE scenes, full int8 with uint8 I/O."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    calib = normalize(generate_scenes(2, SIZE, seed=9, progress=False)[0])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([img[None]] for img in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    path = tmp / f"{name}_int8.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two tiny int8 models, a bundle with a reference of 240 scenes (seed 0), a bundle without."""
    tmp = tmp_path_factory.mktemp("drift")
    model = _model(tmp, "scenes", 0)
    other = _model(tmp, "other", 1)
    images, labels = generate_scenes(40, SIZE, seed=0, progress=False)
    bundle = export_bundle(
        [model], CLASS_NAMES, out_dir=tmp / "bundle", reference=(images, labels), metrics={"note": 1}
    )
    plain = export_bundle([other], CLASS_NAMES, out_dir=tmp / "plain")
    return {"tmp": tmp, "model": model, "other": other, "bundle": bundle, "plain": plain}


def _write_window(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


def _run_script(python: str | Path, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [str(python), "-c", RUN_SCRIPT, str(bundle / "classify.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=bundle.parent,
        env=env,
    )


# ------------------------------------------------------------------------------------------ the bundle


def test_reference_is_small_and_the_manifest_hashes_every_file(setup):
    bundle = setup["bundle"]
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["reference"] == "reference.json" and meta["manifest"] == "manifest.json"
    assert (bundle / "reference.json").stat().st_size < 50 * 1024
    reference = json.loads((bundle / "reference.json").read_text())
    assert reference["images"] == 240 and reference["image_size"] == [SIZE, SIZE]
    assert reference["model"] == "scenes_int8.tflite"
    assert set(reference["features"]) == {"brightness", "contrast", "sharpness", "noise", "saturation"}
    assert len(reference["channels"]["probs"]) == 3 and len(reference["colour"]["probs"]) == 12
    assert reference["class_mix"]["labels"] == list(CLASS_NAMES)
    assert reference["calibration"]["false_alarm_rate"] == 0.01
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["version"] == meta["version"]
    on_disk = {p.name for p in bundle.iterdir() if p.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    assert manifest["metrics"]["note"] == 1 and manifest["metrics"]["reference_images"] == 240
    assert 0 <= manifest["metrics"]["reference_accuracy"] <= 1
    assert "reference.json" not in {p.name for p in setup["plain"].iterdir()}


def test_version_follows_the_content(setup, tmp_path):
    a = export_bundle([setup["model"]], CLASS_NAMES, out_dir=tmp_path / "a")
    b = export_bundle([setup["model"]], CLASS_NAMES, out_dir=tmp_path / "b")
    c = export_bundle([setup["other"]], CLASS_NAMES, out_dir=tmp_path / "c", version="2.1")
    versions = [json.loads((p / "bundle.json").read_text())["version"] for p in (a, b, c)]
    assert versions[0] == versions[1] and versions[2] == "2.1"
    with pytest.raises(ConfigError, match="version"):
        export_bundle([setup["model"]], CLASS_NAMES, out_dir=tmp_path / "d", version="../x")


def test_drift_check_is_numpy_only_and_python_37():
    source = (TEMPLATE / "drift_check.py").read_text()
    tree = ast.parse(source, feature_version=(3, 7))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"json", "math", "os", "sys", "numpy", "PIL"}
    ast.parse((TEMPLATE / "classify.py").read_text(), feature_version=(3, 7))


# ------------------------------------------------------------------------------------------ verdicts


def test_in_distribution_window_passes_and_shifted_windows_are_named(setup):
    fresh, _ = generate_scenes(20, SIZE, seed=3, progress=False)  # 120 images the reference never saw
    result = check_drift(setup["bundle"], fresh)
    assert not result.drift and result.score < 1.0 and result.images == 120
    assert [s.name for s in result.signals] == list(device_module().SIGNALS)
    assert "within its calibrated range" in result.summary()

    night, _ = generate_scenes(10, SIZE, seed=3, progress=False, shift="night")
    result = check_drift(setup["bundle"], night)
    assert result.drift and "brightness far below training" in result.messages
    assert "drift: YES" in result.summary() and "brightness far below training" in result.summary()

    swapped = check_drift(setup["bundle"], fresh[..., ::-1].copy())
    assert swapped.drift and "colour channels swapped?" in swapped.messages
    assert {s.name for s in swapped.signals if s.drift} <= {"channels", "colour", "confidence", "class_mix"}


def test_json_has_exactly_the_documented_keys(setup, tmp_path, capsys):
    night, _ = generate_scenes(5, SIZE, seed=4, progress=False, shift="night")
    folder = _write_window(tmp_path / "night", night)
    assert main(["drift", str(setup["bundle"]), str(folder), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == ["drift", "score", "threshold", "images", "signals"]
    assert payload["drift"] is True and payload["images"] == 30 and payload["threshold"] == 1.0
    assert all(list(s) == ["name", "score", "drift"] for s in payload["signals"])
    assert payload["score"] == max(s["score"] for s in payload["signals"])


def test_the_drift_command_starts_without_tensorflow_pandas_scipy_or_ipython(setup, tmp_path):
    """`edgelab drift` imports only its own area: its start-up is most of its time on 120 images."""
    night, _ = generate_scenes(5, SIZE, seed=4, progress=False, shift="night")
    folder = _write_window(tmp_path / "night", night)
    code = (
        "import sys; from edgelab.cli import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in ('tensorflow', 'tf_keras', 'pandas', 'scipy', 'IPython') if m in sys.modules)); sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(edgelab.__file__).parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-c", code, "drift", str(setup["bundle"]), str(folder), "--json", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    *payload, heavy = proc.stdout.strip().splitlines()
    assert json.loads("\n".join(payload))["drift"] is True
    assert heavy == "[]", heavy


def test_too_few_images_say_so(setup, tmp_path, capsys):
    images, _ = generate_scenes(5, SIZE, seed=4, progress=False)
    with pytest.raises(DriftError, match="29 images are too few"):
        check_drift(setup["bundle"], images[:29])
    folder = _write_window(tmp_path / "few", images[:12])
    assert main(["drift", str(setup["bundle"]), str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgelab: error: 12 images are too few")
    proc = _run_script(sys.executable, setup["bundle"], "--drift", *sorted(map(str, folder.iterdir())))
    assert proc.returncode == 2 and "12 images are too few" in proc.stderr and "Traceback" not in proc.stderr


def test_bundle_without_reference_says_how_to_make_one(setup, tmp_path):
    images, _ = generate_scenes(5, SIZE, seed=4, progress=False)
    with pytest.raises(DriftError, match="--reference"):
        check_drift(setup["plain"], images)
    folder = _write_window(tmp_path / "w", images)
    proc = _run_script(sys.executable, setup["plain"], "--drift", *sorted(map(str, folder.iterdir())))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no reference statistics" in proc.stderr


def _windows(tmp: Path) -> dict[str, Path]:
    fresh, _ = generate_scenes(6, SIZE, seed=5, progress=False)
    fog, _ = generate_scenes(6, SIZE, seed=5, progress=False, shift="fog")
    swap, _ = generate_scenes(6, SIZE, seed=5, progress=False, shift="channel_swap")
    return {name: _write_window(tmp / name, imgs) for name, imgs in (("fresh", fresh), ("fog", fog), ("swap", swap))}


def _same_verdicts(python: str | Path, setup, tmp: Path) -> None:
    for name, folder in _windows(tmp).items():
        files = sorted(map(str, folder.iterdir()))
        proc = _run_script(python, setup["bundle"], "--drift", "--json", *files)
        assert proc.returncode == 0, proc.stderr
        device = json.loads(proc.stdout.strip().splitlines()[-1])
        host = check_drift(setup["bundle"], files).to_dict()
        assert device["drift"] == host["drift"], name
        assert [(s["name"], s["drift"]) for s in device["signals"]] == [
            (s["name"], s["drift"]) for s in host["signals"]
        ], name
        assert device["images"] == host["images"] == 36


def test_classify_drift_gives_the_host_verdicts(setup, tmp_path):
    _same_verdicts(sys.executable, setup, tmp_path)


@pytest.fixture
def device_stack(request) -> Path:
    """The device stack's interpreter (tflite-runtime 2.14 + numpy 1.26, no edgelab)."""
    try:
        return request.getfixturevalue("device_python")
    except pytest.FixtureLookupError:
        override = os.environ.get("EDGELAB_DEVICE_PYTHON")
        if not override:
            pytest.skip("device stack: set EDGELAB_DEVICE_PYTHON")
        return Path(override)


def test_classify_drift_on_the_device_stack_gives_the_host_verdicts(setup, tmp_path, device_stack):
    _same_verdicts(device_stack, setup, tmp_path)


# ------------------------------------------------------------------------------------------ calibration


def _fake_stats(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict:
    features = rng.normal(100.0, 10.0, (n, 5))
    features[:, 0] += shift * 10.0
    channels = rng.dirichlet(np.ones(32) * 20, (n, 3))
    colour = rng.dirichlet(np.ones(12) * 20, n) * 0.3
    scores = rng.dirichlet(np.ones(6), n)
    return {
        "features": features,
        "channels": channels,
        "colour": colour,
        "confidence": scores.max(axis=1),
        "predicted": scores.argmax(axis=1),
        "num_classes": 6,
    }


def test_calibrated_rate_holds_on_fresh_windows_and_a_real_shift_is_caught():
    """200 fresh windows at a 1% rate: more than 8 alarms has probability < 0.001 (binomial)."""
    dc = device_module()
    rng = np.random.default_rng(0)
    reference = build_reference(_fake_stats(rng, 600), [str(i) for i in range(6)], (8, 8), windows=200)
    alarms = sum(dc.check(reference, _fake_stats(rng, 120))[0]["drift"] for _ in range(200))
    assert alarms <= 8
    caught = sum(dc.check(reference, _fake_stats(rng, 120, shift=1.0))[0]["drift"] for _ in range(50))
    assert caught == 50  # a one-standard-deviation shift of brightness in 120 images


def test_thresholds_interpolate_in_one_over_n():
    dc = device_module()
    calibration = {"sizes": [30, 60, 120, 240], "thresholds": {"x": [0.8, 0.4, 0.2, 0.1]}}
    assert dc.threshold_for(calibration, "x", 30) == 0.8
    assert dc.threshold_for(calibration, "x", 1000) == 0.1
    assert dc.threshold_for(calibration, "x", 40) == pytest.approx(0.8 + (1 / 40 - 1 / 30) / (1 / 60 - 1 / 30) * -0.4)


def test_reference_needs_two_windows_of_images():
    rng = np.random.default_rng(0)
    with pytest.raises(DriftError, match="at least 60 reference images"):
        build_reference(_fake_stats(rng, 59), [str(i) for i in range(6)], (8, 8))


# ------------------------------------------------------------------------------------------ shifts


def test_shifts_change_the_same_scene():
    base, labels = generate_scenes(1, 32, seed=2, progress=False)
    for shift in SHIFTS:
        shifted, shifted_labels = generate_scenes(1, 32, seed=2, progress=False, shift=shift)
        assert shifted.shape == base.shape and shifted.dtype == np.uint8
        assert np.array_equal(shifted_labels, labels)
        assert not np.array_equal(shifted, base), shift
    swapped, _ = generate_scenes(1, 32, seed=2, progress=False, shift="channel_swap")
    assert np.array_equal(swapped, base[..., ::-1])
    night, _ = generate_scenes(1, 32, seed=2, progress=False, shift="night")
    # At most 25% of the light times the strongest cast (1.15 x 1.1); the sensor noise (std <= 5), clipped
    # at 0, adds at most the mean of its positive part (5 * 0.399 = 2.0, + 0.55 for six standard
    # deviations of a 1,024-pixel mean); rounding 0.5.
    for n, b in zip(night, base):
        assert n.mean() <= 0.25 * 1.15 * 1.1 * b.mean() + 2.0 + 0.55 + 0.5
    fog, _ = generate_scenes(1, 32, seed=2, progress=False, shift="fog")
    # Within a row the veil is one value (>= 0.5 x 0.6): each row keeps at most 0.7 of its contrast,
    # + 0.5 for rounding to uint8 (clipping only lowers a spread).
    for f, b in zip(fog.astype(np.float64), base.astype(np.float64)):
        assert np.all(f.std(axis=1) <= 0.7 * b.std(axis=1) + 0.5 + 1e-9)


def test_unknown_shift_suggests_a_name():
    with pytest.raises(ConfigError, match="Did you mean 'night'"):
        apply_shift(np.zeros((4, 4, 3), np.uint8), "nigth", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="shift"):
        edgelab.synthetic_dataset(per_class=2, image_size=16, shift="rain", progress=False)


def test_make_scenes_with_a_shift(tmp_path, capsys):
    out = tmp_path / "fog"
    assert main(["data", "make-scenes", str(out), "--per-class", "2", "--size", "16", "--shift", "fog"]) == 0
    assert "shift fog" in capsys.readouterr().out
    marker = next(p for p in out.iterdir() if p.is_file() and p.suffix == ".json")
    assert json.loads(marker.read_text())["shift"] == "fog"


# ------------------------------------------------------------------------------------------ bundle diff


@pytest.mark.parametrize(
    ("fixed", "broken", "ship", "words"),
    [(20, 2, "new", "fixes 20"), (2, 20, "old", "NEW is worse"), (5, 4, "old", "within chance")],
)
def test_decide_ships_new_only_when_it_fixes_significantly_more(fixed, broken, ship, words):
    chosen, reason, p = decide(100, 100 + fixed - broken, fixed, broken, 200)
    assert chosen == ship and words in reason
    assert (p < 0.05) == (words != "within chance")


def test_bundle_diff_counts_agree(setup, tmp_path, capsys, intel_layout):
    data = intel_layout(classes=list(CLASS_NAMES), train=4, test=0, size=(SIZE, SIZE))
    result = diff_bundles(setup["bundle"], setup["plain"], data, latency=False)
    assert result.images == 24
    assert result.new.correct - result.old.correct == result.fixed - result.broken
    assert len(result.changed) == round((1 - result.agreement) * result.images)
    assert result.ship in ("old", "new") and result.old.size_bytes == setup["model"].stat().st_size
    assert main(["bundle", "diff", str(setup["bundle"]), str(setup["plain"]), "--data", str(data), "--no-latency"]) == 0
    out = capsys.readouterr().out
    assert f"ship {result.ship.upper()}: " in out and "top-1 agreement" in out


def test_bundle_diff_refuses_unknown_classes(setup, tmp_path, intel_layout):
    data = intel_layout(classes=["cats", "dogs"], train=2, test=0, size=(SIZE, SIZE))
    with pytest.raises(ConfigError, match="cats"):
        diff_bundles(setup["bundle"], setup["plain"], data, latency=False)
