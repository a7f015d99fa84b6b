"""The built-in synthetic scene generator: determinism, balance, sizes, class statistics, Intel layout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgelab.data.scene_files import MARKER_NAME, make_scenes
from edgelab.data.scenes import CLASS_NAMES, generate_scenes, render_scene
from edgelab.errors import ConfigError


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """A small balanced set shared by the statistics tests."""
    return generate_scenes(24, 40, seed=0, progress=False)


def _jpegs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_images_and_another_seed_differs():
    a_images, a_labels = generate_scenes(2, 32, seed=7, progress=False)
    b_images, b_labels = generate_scenes(2, 32, seed=7, progress=False)
    c_images, _ = generate_scenes(2, 32, seed=8, progress=False)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    # Every single image changes with the seed, not just some.
    assert all(not np.array_equal(a, c) for a, c in zip(a_images, c_images))


def test_an_image_does_not_depend_on_how_many_are_generated_or_which_classes():
    small, small_labels = generate_scenes(2, 32, seed=3, progress=False)
    large, large_labels = generate_scenes(3, 32, seed=3, progress=False)
    n = len(small)
    np.testing.assert_array_equal(large[:n], small)
    np.testing.assert_array_equal(large_labels[:n], small_labels)
    only_sea, only_sea_labels = generate_scenes(3, 32, seed=3, classes=("sea",), progress=False)
    np.testing.assert_array_equal(only_sea, large[large_labels == CLASS_NAMES.index("sea")])
    assert set(only_sea_labels.tolist()) == {0}


def test_a_second_process_draws_the_same_bytes_and_a_failed_one_costs_nothing(monkeypatch):
    """A large set is drawn half here, half in a worker process: the same images as drawn in order, a
    shift included; a worker that fails leaves its half to be drawn here, with the same result."""
    from edgelab.data import scene_workers

    in_order, in_order_labels = generate_scenes(3, 24, seed=4, shift="fog", progress=False)
    started = []
    monkeypatch.setattr(scene_workers, "MIN_IMAGES", 2)
    monkeypatch.setattr(scene_workers, "use_background", lambda count: True)  # on a 1-CPU machine too
    start = scene_workers.draw_in_background

    def spy(*args):
        started.append(start(*args))
        return started[-1]

    monkeypatch.setattr(scene_workers, "draw_in_background", spy)
    halves, halves_labels = generate_scenes(3, 24, seed=4, shift="fog", progress=False)
    assert [(b.start, b.stop) for b in started] == [(9, 18)]  # images 9-17 came from the worker
    assert started[0].proc is not None and started[0].proc.returncode == 0  # which drew them, not a fallback
    np.testing.assert_array_equal(halves, in_order)
    np.testing.assert_array_equal(halves_labels, in_order_labels)

    monkeypatch.setattr(scene_workers, "worker_command", lambda module: [sys.executable, "-c", "raise SystemExit(3)"])
    fallback, _ = generate_scenes(3, 24, seed=4, shift="fog", progress=False)
    np.testing.assert_array_equal(fallback, in_order)
    assert len(started) == 2 and started[1].proc is not None
    assert not any(b.path.exists() for b in started)  # the workers' files are gone


def test_render_scene_is_a_function_of_its_rng():
    a = render_scene("mountain", np.random.default_rng(5), (36, 52))
    b = render_scene("mountain", np.random.default_rng(5), (36, 52))
    c = render_scene("mountain", np.random.default_rng(6), (36, 52))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ----------------------------------------------------------------------------- balance, shapes


def test_classes_are_exactly_balanced_and_interleaved():
    images, labels = generate_scenes(5, 24, seed=0, progress=False)
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=6).tolist() == [5] * 6
    # Interleaved: any prefix of whole rounds is balanced too.
    np.testing.assert_array_equal(labels[:12], np.tile(np.arange(6), 2))
    assert len(images) == 30


def test_labels_index_the_requested_classes_in_their_order():
    images, labels = generate_scenes(2, 24, seed=0, classes=("street", "forest"), progress=False)
    assert labels.tolist() == [0, 1, 0, 1]
    assert images.shape == (4, 24, 24, 3)
    full, full_labels = generate_scenes(2, 24, seed=0, progress=False)
    np.testing.assert_array_equal(images[labels == 1], full[full_labels == CLASS_NAMES.index("forest")])


@pytest.mark.parametrize(
    "size, shape", [(150, (150, 150)), (32, (32, 32)), ((48, 96), (48, 96)), ((96, 48), (96, 48)), ((3, 5), (3, 5))]
)
def test_shape_and_dtype_at_any_size(size, shape):
    images, _ = generate_scenes(1, size, seed=1, progress=False)
    assert images.shape == (6, *shape, 3)
    assert images.dtype == np.uint8
    one = render_scene("street", np.random.default_rng(0), size)
    assert one.shape == (*shape, 3) and one.dtype == np.uint8


def test_images_use_the_pixel_range_and_are_not_flat(sample):
    images, _ = sample
    per_image_std = images.reshape(len(images), -1).std(axis=1)
    assert per_image_std.min() > 5  # every image has structure
    assert images.min() < 40 and images.max() > 215


# ----------------------------------------------------------------------------- class statistics


def _mean_rgb(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    return {c: images[labels == i].reshape(-1, 3).astype(np.float64).mean(axis=0) for i, c in enumerate(CLASS_NAMES)}


def _colour_histograms(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for i, c in enumerate(CLASS_NAMES):
        q = (images[labels == i] // 64).reshape(-1, 3).astype(np.int64)
        h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(np.float64)
        out[c] = h / h.sum()
    return out


def test_classes_differ_in_colour_the_way_the_scenes_do(sample):
    mean = _mean_rgb(*sample)
    green = {c: m[1] - (m[0] + m[2]) / 2 for c, m in mean.items()}
    blue = {c: m[2] - m[0] for c, m in mean.items()}
    brightness = {c: m.mean() for c, m in mean.items()}
    assert max(green, key=green.get) == "forest"
    assert min(brightness, key=brightness.get) == "forest"
    assert max(brightness, key=brightness.get) == "glacier"  # ice and snow
    assert max(blue, key=blue.get) == "sea"
    # Grey cities: buildings and streets are the least saturated classes.
    spread = {c: m.max() - m.min() for c, m in mean.items()}
    assert set(sorted(spread, key=spread.get)[:2]) == {"buildings", "street"}


def test_the_confusions_of_real_photographs_are_built_in(sample):
    hist = _colour_histograms(*sample)

    def overlap(a: str, b: str) -> float:
        return float(np.minimum(hist[a], hist[b]).sum())

    # Neighbours in Intel's data look alike; unrelated classes do not.
    assert overlap("glacier", "mountain") > 2 * overlap("forest", "sea")
    assert overlap("glacier", "sea") > 2 * overlap("glacier", "forest")
    assert overlap("buildings", "street") > 2 * overlap("buildings", "forest")
    # Buildings and streets are each other's closest class.
    for a, b in (("buildings", "street"), ("street", "buildings")):
        others = [overlap(a, c) for c in CLASS_NAMES if c not in (a, b)]
        assert overlap(a, b) > max(others)


def test_classes_are_not_separable_by_colour_alone(sample):
    """A nearest-mean colour classifier must be far from perfect, or the task would be trivial."""
    images, labels = sample
    feats = images.reshape(len(images), -1, 3).astype(np.float64).mean(axis=1)
    centres = np.stack([feats[labels == i].mean(axis=0) for i in range(6)])
    pred = np.argmin(((feats[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    # 144 images, chance 1/6 (24): colour carries the signal real photographs have (more than 0.3, 43
    # images, 4.3 standard deviations of a guesser's count above chance) but not the whole task (at
    # least 15 images, 10%, wrong).
    right = int((pred == labels).sum())
    assert len(labels) == 144 and 0.3 * 144 < right < 0.9 * 144


# ----------------------------------------------------------------------------- make_scenes


def test_make_scenes_writes_intel_layout_with_exact_counts(tmp_path):
    out = make_scenes(tmp_path / "scenes", per_class=5, image_size=(40, 56), seed=2, pred_count=3, progress=False)
    assert out == tmp_path / "scenes"
    train_root, test_root = out / "seg_train" / "seg_train", out / "seg_test" / "seg_test"
    assert sorted(p.name for p in train_root.iterdir()) == sorted(CLASS_NAMES)
    assert sorted(p.name for p in test_root.iterdir()) == sorted(CLASS_NAMES)
    for name in CLASS_NAMES:
        assert [p.name for p in _jpegs(train_root / name)] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
        assert [p.name for p in _jpegs(test_root / name)] == ["0.jpg"]
    assert len(_jpegs(out / "seg_pred" / "seg_pred")) == 3
    for path in out.rglob("*.jpg"):
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (56, 40))
    assert not list(out.rglob("*.tmp"))
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["complete"] is True and marker["per_class"] == 5


def test_make_scenes_writes_the_same_scenes_as_generate_scenes(tmp_path):
    make_scenes(tmp_path, per_class=3, image_size=48, seed=4, progress=False)
    images, labels = generate_scenes(3, 48, seed=4, progress=False)
    street = images[labels == CLASS_NAMES.index("street")]
    on_disk = [np.asarray(Image.open(tmp_path / "seg_train" / "seg_train" / "street" / f"{k}.jpg")) for k in (0, 1)]
    on_disk.append(np.asarray(Image.open(tmp_path / "seg_test" / "seg_test" / "street" / "0.jpg")))
    for k, written in enumerate(on_disk):
        error = [np.abs(written.astype(np.int16) - expected).mean() for expected in street]
        assert error[k] < 8  # the same scene, up to JPEG compression and its smoothing of the noise
        assert error[k] < min(e for j, e in enumerate(error) if j != k) / 2  # and not another one


def test_make_scenes_is_byte_identical_for_the_same_arguments(tmp_path):
    make_scenes(tmp_path / "a", per_class=2, image_size=32, seed=9, progress=False)
    make_scenes(tmp_path / "b", per_class=2, image_size=32, seed=9, progress=False)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg"))
    assert files_a == files_b and len(files_a) == 12
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)


@pytest.mark.parametrize(
    "per_class, test_fraction, expected",
    [(1, 0.2, (1, 0)), (2, 0.2, (1, 1)), (10, 0.2, (8, 2)), (6, 0.2, (4, 2)), (4, 0.0, (4, 0))],
)
def test_make_scenes_split_counts(tmp_path, per_class, test_fraction, expected):
    out = make_scenes(tmp_path, per_class=per_class, image_size=8, test_fraction=test_fraction, progress=False)
    n_train = len(_jpegs(out / "seg_train" / "seg_train" / "glacier"))
    n_test = len(_jpegs(out / "seg_test" / "seg_test" / "glacier"))
    assert (n_train, n_test) == expected


def test_make_scenes_replaces_its_own_earlier_output_without_stale_files(tmp_path):
    make_scenes(tmp_path, per_class=6, image_size=16, pred_count=2, progress=False)
    (tmp_path / "notes.txt").write_text("kept")
    make_scenes(tmp_path, per_class=2, image_size=16, seed=1, progress=False)
    assert len(list(tmp_path.rglob("*.jpg"))) == 12  # 1 train + 1 test per class, no leftovers
    assert not (tmp_path / "seg_pred").exists()
    assert (tmp_path / "notes.txt").read_text() == "kept"  # never delete what make_scenes did not write
    assert json.loads((tmp_path / MARKER_NAME).read_text())["seed"] == 1


def test_make_scenes_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.jpg").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="not empty and was not written by make_scenes"):
        make_scenes(tmp_path, per_class=1, image_size=8, progress=False)
    assert (tmp_path / "mine.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.jpg"]
    a_file = tmp_path / "mine.jpg"
    with pytest.raises(ConfigError, match="a file"):
        make_scenes(a_file, per_class=1, image_size=8, progress=False)


def test_an_interrupted_run_leaves_no_half_files_and_can_be_rerun(tmp_path, monkeypatch):
    real_save = Image.Image.save
    calls = {"n": 0}

    def failing_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            half = b"\xff\xd8\xff half a jpeg"  # the encoder dies midway, into a file or a buffer
            fp.write(half) if hasattr(fp, "write") else Path(fp).write_bytes(half)
            raise OSError("disk full")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        make_scenes(tmp_path, per_class=2, image_size=16, progress=False)
    written = list(tmp_path.rglob("*.jpg"))
    assert len(written) == 4
    for path in written:
        with Image.open(path) as im:
            im.load()  # every file that exists is whole
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(Image.Image, "save", real_save)
    make_scenes(tmp_path, per_class=2, image_size=16, progress=False)  # the marker allows a rerun
    assert len(list(tmp_path.rglob("*.jpg"))) == 12


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("image_size", [(0, 96), (96,), (96, 96, 3), "150", 0, -5, (96.0, 96), True, None])
def test_bad_image_size_says_what_was_expected_and_echoes_it(image_size):
    with pytest.raises(ConfigError, match=r"Expected image_size .*Received: image_size=") as info:
        generate_scenes(1, image_size, progress=False)
    assert repr(image_size) in str(info.value)
    with pytest.raises(ConfigError):
        render_scene("sea", np.random.default_rng(0), image_size)


@pytest.mark.parametrize("per_class", [0, -1, 1.5, "3", True])
def test_bad_per_class(per_class, tmp_path):
    with pytest.raises(ConfigError, match=r"Expected per_class to be a positive int\. Received: per_class="):
        generate_scenes(per_class, 16, progress=False)
    with pytest.raises(ConfigError, match="per_class"):
        make_scenes(tmp_path / "x", per_class, image_size=16, progress=False)
    assert not (tmp_path / "x").exists()


def test_unknown_class_names_suggest_the_right_one():
    with pytest.raises(ConfigError, match=r"Received: 'glacer'\. Did you mean 'glacier'\?"):
        generate_scenes(1, 16, classes=("sea", "glacer"), progress=False)
    with pytest.raises(ConfigError, match="Did you mean 'street'"):
        render_scene("streets", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="distinct"):
        generate_scenes(1, 16, classes=("sea", "sea"), progress=False)
    with pytest.raises(ConfigError, match="at least one class"):
        generate_scenes(1, 16, classes=(), progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"pred_count": -1}, "pred_count"),
    ],
)
def test_bad_make_scenes_arguments(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_scenes(tmp_path / "x", 2, image_size=16, progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


def test_render_scene_needs_a_generator():
    with pytest.raises(ConfigError, match=r"Expected rng to be a numpy Generator.*Received: rng=7"):
        render_scene("sea", 7)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        generate_scenes(1, (0, 0), progress=False)


def test_scenes_do_not_import_tensorflow():
    import subprocess

    code = "import sys, edgelab.data.scenes; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_worker_whose_parent_was_killed_removes_its_file():
    """A parent killed with SIGKILL cannot remove the worker's pixel file: the worker does."""
    code = (
        "import os, signal\n"
        "from edgelab.data import scene_workers\n"
        "job = {'seed': 0, 'classes': ['buildings', 'forest'], 'size': [16, 16], 'shift': None}\n"
        "bg = scene_workers.draw_in_background(job, 0, 8, (16, 16, 3))\n"
        "print(bg.proc.pid, bg.path, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    pid, path = out.stdout.split()
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 300  # a guard against a hang, not a timing check
    while stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(path).exists()
