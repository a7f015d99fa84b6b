"""Folder and in-memory datasets: layouts, bad files, splits, arrays, tf.data, calibration data."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_COLOURS, make_class_folders, write_image
from PIL import Image

from edgelab.data import (
    Dataset,
    DatasetWarning,
    SkipReason,
    find_layout,
    load_dataset,
    load_image,
    scan,
    stratified_split,
    synthetic_dataset,
)
from edgelab.errors import ConfigError, DatasetError
from edgelab.preprocess import denormalize, parse_image_size


@pytest.fixture(autouse=True)
def _image_cache(tmp_path_factory, monkeypatch):
    """Decoded-image caches of these tests go to a temporary folder."""
    monkeypatch.setenv("EDGELAB_CACHE_DIR", str(tmp_path_factory.mktemp("image-cache")))


def rel(paths, root: Path) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


def dominant_class(image: np.ndarray) -> int:
    """Class index from an image's tint (see conftest.CLASS_COLOURS)."""
    mean = image.reshape(-1, 3).mean(0)
    return int(np.argmin([np.abs(mean - np.asarray(c)).sum() for c in CLASS_COLOURS]))


# -- bad input ------------------------------------------------------------------------------------


def test_scan_loads_exactly_the_good_files_and_reports_every_other_one(bad_corpus):
    result = scan(bad_corpus.root)

    assert result.layout.kind == "intel"
    assert result.class_names == ["buildings", "forest", "sea"]  # the empty glacier folder is dropped
    assert rel(result.paths, bad_corpus.root) == set(bad_corpus.good)
    for path, label in zip(result.paths, result.labels):
        assert result.class_names[label] == bad_corpus.good[Path(path).relative_to(bad_corpus.root).as_posix()]
    reported = {Path(s.path).relative_to(bad_corpus.root).as_posix(): s.reason for s in result.skipped}
    assert reported == bad_corpus.skipped
    assert result.skipped.by_reason()[SkipReason.HIDDEN] == 4
    assert rel(result.pred_paths, bad_corpus.root) == {"seg_pred/seg_pred/0.jpg", "seg_pred/seg_pred/1.jpg"}


def test_load_dataset_warns_once_and_keeps_the_report(bad_corpus):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(bad_corpus.root, image_size=16, seed=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    # One warning for the skipped files, one for the class left without images (the empty glacier folder).
    skipped = [m for m in ours if "see Dataset.skipped" in m]
    assert len(skipped) == 1 and f"{len(bad_corpus.skipped)} files skipped" in skipped[0]
    assert [m for m in ours if m not in skipped] == ["dropped classes without usable images: ['glacier']"]
    assert {s.reason for s in ds.skipped} == set(bad_corpus.skipped.values())

    # Intel's seg_test is the test split; val is carved from seg_train.
    seg_test = {k for k in bad_corpus.good if k.startswith("seg_test/")}
    assert rel(ds.test.paths, bad_corpus.root) == seg_test
    assert len(ds.train) + len(ds.val) == len(bad_corpus.good) - len(seg_test)
    assert len(ds.pred_paths) == 2

    images, labels = ds.arrays("train")
    assert images.shape == (len(ds.train), 16, 16, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.array_equal(labels, ds.train.labels)


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    root = make_class_folders(tmp_path, ["a", "b"], 3)
    locked = root / "a" / "1.jpg"
    real_open = Image.open

    def open_(fp, *args, **kwargs):
        if Path(fp) == locked:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_)
    result = scan(root)
    assert [(s.path, s.reason) for s in result.skipped] == [(locked, SkipReason.UNREADABLE)]
    assert len(result.paths) == 5


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_file_is_reported_unreadable(tmp_path):
    root = make_class_folders(tmp_path, ["a", "b"], 2)
    locked = root / "b" / "0.jpg"
    locked.chmod(0)
    try:
        result = scan(root)
    finally:
        locked.chmod(0o644)
    assert [(s.path, s.reason) for s in result.skipped] == [(locked, SkipReason.UNREADABLE)]


def test_unverified_scan_reports_broken_files_when_they_are_decoded(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 3)
    data = write_image(tmp_path / "big.jpg", size=(64, 64)).read_bytes()
    (root / "a" / "broken.jpg").write_bytes(data[: len(data) * 3 // 4])  # the header survives

    ds = load_dataset(root, image_size=8, val_fraction=0, test_fraction=0, verify=False)
    assert len(ds.train) == 7 and len(ds.skipped) == 0
    with pytest.warns(DatasetWarning, match="1 image files failed to decode"):
        images, labels = ds.arrays("train")
    assert len(images) == len(labels) == 6
    assert [(s.path, s.reason) for s in ds.skipped] == [(root / "a" / "broken.jpg", SkipReason.TRUNCATED)]


# -- decoding -------------------------------------------------------------------------------------


def test_unusual_modes_become_rgb_uint8(bad_corpus):
    b = bad_corpus.root / "seg_train" / "seg_train" / "buildings"
    red = np.asarray(CLASS_COLOURS[0], np.float64)
    for name in ("cmyk.jpg", "palette.gif", "photo.webp", "photo.bmp", "Upper.PnG", "建物.png"):
        image = load_image(b / name)
        assert image.shape == (20, 20, 3) and image.dtype == np.uint8, name
        assert np.abs(image.reshape(-1, 3).mean(0) - red).max() < 20, name

    gray = load_image(b / "gray.jpg")
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])

    rgba = load_image(b / "rgba.png")  # transparent pixels are composited on white
    assert (rgba[:, 10:] == 255).all()
    assert (rgba[:, :10] == (220, 30, 30)).all()

    assert (load_image(b / "sixteen.png") == 255).all()  # 65535 -> 255, not clipped garbage


def test_sixteen_bit_is_scaled_and_resize_gives_requested_shape(tmp_path):
    path = tmp_path / "mid.png"
    Image.fromarray(np.full((30, 40), 32896, np.uint16)).save(path)
    assert (load_image(path) == 128).all()
    assert load_image(path, (8, 12)).shape == (8, 12, 3)
    big = write_image(tmp_path / "big.jpg", (10, 120, 200), size=(200, 300))
    small = load_image(big, 32)
    assert small.shape == (32, 32, 3)
    assert np.abs(small.reshape(-1, 3).mean(0) - (10, 120, 200)).max() < 12


# -- layouts and splits ---------------------------------------------------------------------------


def test_intel_splits_are_stratified_seeded_and_disjoint(intel_layout):
    root = intel_layout(classes=("buildings", "forest", "sea"), train=20, test=4)
    ds = load_dataset(root, image_size=8, val_fraction=0.25, seed=3)

    assert ds.layout.kind == "intel" and ds.class_names == ["buildings", "forest", "sea"]
    counts = ds.counts()
    assert counts.columns.tolist() == ["train", "val", "test"]
    assert counts["train"].tolist() == [15, 15, 15]
    assert counts["val"].tolist() == [5, 5, 5]
    assert counts["test"].tolist() == [4, 4, 4]
    parts = [set(ds.train.paths), set(ds.val.paths), set(ds.test.paths)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert all("seg_test" in str(p) for p in ds.test.paths)
    for split in (ds.train, ds.val, ds.test):  # labels follow the folder each file is in
        assert [ds.class_names[i] for i in split.labels] == [Path(p).parent.name for p in split.paths]

    again = load_dataset(root, image_size=8, val_fraction=0.25, seed=3)
    assert again.val.paths == ds.val.paths
    other = load_dataset(root, image_size=8, val_fraction=0.25, seed=4)
    assert set(other.val.paths) != set(ds.val.paths)
    assert repr(ds) == "Dataset(layout='intel', classes=3, image_size=(8, 8), train=45, val=15, test=12, skipped=0)"


def test_class_folders_are_split_three_ways(tmp_path):
    root = make_class_folders(tmp_path, ["cat", "dog"], 20)
    write_image(root / "dog" / "more" / "extra.png")  # nested sub-folders count for their class
    ds = load_dataset(root, image_size=8, val_fraction=0.15, test_fraction=0.25, seed=0)
    assert ds.layout.kind == "class_folders"
    assert ds.counts().to_dict("list") == {"train": [12, 13], "val": [3, 3], "test": [5, 5]}
    every = set(ds.train.paths) | set(ds.val.paths) | set(ds.test.paths)
    assert len(every) == 41 and root / "dog" / "more" / "extra.png" in every


def test_other_intel_variants_and_pointing_inside_the_layout(intel_layout):
    flat = intel_layout(train=3, test=2, nested=False)
    layout = find_layout(flat)
    assert (layout.kind, layout.train_dir, layout.test_dir) == ("intel", flat / "seg_train", flat / "seg_test")
    assert len(load_dataset(flat, image_size=8).test) == 6

    nested = intel_layout(train=3, test=0)
    assert find_layout(nested).test_dir is None  # no seg_test: the test split is carved from seg_train
    assert len(load_dataset(nested, image_size=8, val_fraction=0, test_fraction=0.34).test) == 3
    inner = find_layout(nested / "seg_train")  # the user points at seg_train, not the root
    assert (inner.kind, inner.root) == ("class_folders", nested / "seg_train" / "seg_train")


def test_classes_pick_and_order_labels_and_max_per_class_caps(intel_layout):
    root = intel_layout(classes=("buildings", "forest", "sea"), train=12, test=4)
    ds = load_dataset(root, image_size=8, classes=["sea", "buildings"], max_per_class=5, val_fraction=0.2)
    assert ds.class_names == ["sea", "buildings"]
    assert ds.counts().to_dict("list") == {"train": [4, 4], "val": [1, 1], "test": [4, 4]}
    images, labels = ds.arrays("train")
    assert [dominant_class(im) for im in images] == [(2, 0)[label] for label in labels]


def test_stratified_split_keeps_every_class_in_train():
    labels = np.repeat(np.arange(4), [1, 2, 7, 40])
    train, val, test = stratified_split(labels, 0.2, 0.3, seed=5)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[train], minlength=4).tolist()[:2] == [1, 1]  # tiny classes keep a training image
    assert np.bincount(labels[test], minlength=4)[1] == 1  # and a class of two still gets a test image
    assert np.bincount(labels[test], minlength=4)[3] == 12 and np.bincount(labels[val], minlength=4)[3] == 8
    again = stratified_split(labels, 0.2, 0.3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert train.dtype == np.int64


# -- serving --------------------------------------------------------------------------------------


def test_arrays_are_cached_read_only_uint8(intel_layout):
    ds = load_dataset(intel_layout(train=4, test=2), image_size=(12, 10), val_fraction=0)
    images, labels = ds.arrays("test")
    assert images.shape == (6, 12, 10, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert 0 < images.min() < images.max() < 255
    assert ds.arrays("test")[0] is images
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1


def test_representative_dataset_is_class_balanced(intel_layout):
    ds = load_dataset(intel_layout(train=10, test=1), image_size=8, val_fraction=0)
    gen = ds.representative_dataset(n=12, seed=1)
    samples = [s for (s,) in gen()]
    assert len(samples) == 12
    assert all(s.shape == (1, 8, 8, 3) and s.dtype == np.float32 and -1 <= s.min() <= s.max() <= 1 for s in samples)
    classes = [dominant_class(denormalize(s[0])) for s in samples]
    assert np.bincount(classes).tolist() == [4, 4, 4]
    assert classes[:3] == [0, 1, 2]  # classes take turns, so a short calibration still sees them all
    assert len(list(gen())) == 12  # the generator function can be called again
    assert len(list(ds.representative_dataset(n=500)())) == 30  # capped by the training split


def test_tf_dataset_streams_or_serves_normalized_batches(intel_layout):
    ds = load_dataset(intel_layout(train=8, test=2), image_size=8, val_fraction=0)

    def collect(tfds):
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in tfds])
        return np.concatenate(xs), np.concatenate(ys), [len(y) for y in ys]

    x, y, sizes = collect(ds.tf_dataset("train", batch_size=10))  # decoded from files
    assert sizes == [10, 10, 4] and x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (24, 8, 8, 3) and -1 <= x.min() < x.max() <= 1
    assert np.array_equal(y, ds.train.labels)
    images, _labels = ds.arrays("train")
    x2, y2, _ = collect(ds.tf_dataset("train", batch_size=10))  # now served from memory
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.array_equal(denormalize(x), images)

    s1 = collect(ds.tf_dataset("train", batch_size=10, shuffle=True, seed=7))[1]
    s2 = collect(ds.tf_dataset("train", batch_size=10, shuffle=True, seed=7))[1]
    streamed = load_dataset(ds.root, image_size=8, val_fraction=0)
    s3 = collect(streamed.tf_dataset("train", batch_size=10, shuffle=True, seed=7))[1]
    assert np.array_equal(s1, s2) and np.array_equal(s1, s3)
    assert not np.array_equal(s1, y) and sorted(s1) == sorted(y)


def test_from_arrays_and_synthetic_dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 6, 6, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 20)
    ds = Dataset.from_arrays(images, labels, ["a", "b", "c"], val_fraction=0.1, test_fraction=0.2, seed=0)
    assert ds.layout.kind == "arrays" and ds.root is None and ds.image_size == (6, 6)
    assert ds.counts().to_dict("list") == {"train": [14, 14, 14], "val": [2, 2, 2], "test": [4, 4, 4]}
    test_images, test_labels = ds.arrays("test")
    assert np.array_equal(test_images, images[ds.test.indices]) and np.array_equal(test_labels, labels[ds.test.indices])
    with pytest.raises(ConfigError, match="Received: dtype=float32"):
        Dataset.from_arrays(images.astype(np.float32), labels, ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"labels in \[0, 1\]"):
        Dataset.from_arrays(images, labels, ["a", "b"])

    synth = synthetic_dataset(per_class=4, image_size=16, seed=0, classes=["forest", "sea"], progress=False)
    assert synth.class_names == ["forest", "sea"]
    assert sum(len(synth.split(s)) for s in ("train", "val", "test")) == 8
    assert synth.arrays("train")[0].shape[1:] == (16, 16, 3)


# -- errors ---------------------------------------------------------------------------------------


def test_missing_and_empty_datasets_raise_dataset_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as info:
        load_dataset(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "seg_train/seg_train/<class>/" in message and "root/<class>/" in message

    with pytest.raises(DatasetError, match="No usable images"):
        load_dataset(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"3 files skipped \(zero-byte file: 1, empty folder: 2\)"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"image_size": (0, 96)}, "Received: image_size=(0, 96)"),
        ({"image_size": "big"}, "Received: image_size='big'"),
        ({"val_fraction": 1.0}, "Expected val_fraction to be a number in [0, 1). Received: val_fraction=1.0"),
        ({"test_fraction": -0.1}, "Received: test_fraction=-0.1"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "Expected val_fraction + test_fraction < 1"),
        ({"classes": ["forrest"]}, "Received: 'forrest'. Did you mean 'forest'?"),
        ({"max_per_class": 0}, "Received: max_per_class=0"),
        ({"seed": -1}, "Received: seed=-1"),
    ],
)
def test_wrong_arguments_say_what_was_expected_and_received(intel_layout, kwargs, expected):
    root = intel_layout(train=1, test=0)
    with pytest.raises(ConfigError) as info:
        load_dataset(root, **kwargs)
    assert expected in str(info.value)


def test_unknown_split_name(intel_layout):
    ds = load_dataset(intel_layout(train=2, test=1), image_size=8)
    with pytest.raises(ConfigError, match="Did you mean 'train'"):
        ds.arrays("training")


def test_importing_datasets_does_not_import_tensorflow():
    code = "import sys, edgelab.data.datasets; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "size, expected",
    [(96, (96, 96)), ((64, 48), (64, 48)), ([32, 16], (32, 16)), (np.int64(8), (8, 8)), ((np.int32(4), 6), (4, 6))],
)
def test_parse_image_size_accepts_an_int_or_a_pair(size, expected):
    result = parse_image_size(size)
    assert result == expected and all(type(v) is int for v in result)


@pytest.mark.parametrize("size", [0, -3, True, (0, 96), (96,), (96, 96, 3), "96", "16x16", (8.0, 8), None])
def test_parse_image_size_echoes_what_it_received(size):
    with pytest.raises(ConfigError) as info:
        parse_image_size(size)
    assert str(info.value) == (
        f"Expected image_size to be a positive int or two positive ints (height, width). Received: image_size={size!r}"
    )
    with pytest.raises(ConfigError, match=r"Expected size to be .* Received: size="):
        parse_image_size(size, name="size")


# --------------------------------------------------------------------------------------------
# Walks that terminate and count once; the decoded-pixels budget
# --------------------------------------------------------------------------------------------


def test_a_loop_link_in_a_class_folder_counts_each_file_once(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 14)
    (root / "a" / "loop").symlink_to(".")
    (root / "b" / "deeper").mkdir()
    (root / "b" / "deeper" / "back").symlink_to("..")
    result = scan(root, progress=False)
    assert len(result.paths) == 28 and len(set(map(os.path.realpath, result.paths))) == 28
    assert result.counts() == {"a": 14, "b": 14}
    loops = result.skipped.paths(SkipReason.LINK_LOOP)
    assert rel(loops, root) == {"a/loop", "b/deeper/back"}
    ds = load_dataset(root, image_size=16, progress=False, val_fraction=0.2, test_fraction=0.2)
    real = [set(map(os.path.realpath, ds.split(s).paths)) for s in ("train", "val", "test")]
    assert not (real[0] & real[1] or real[0] & real[2] or real[1] & real[2])
    assert sum(map(len, real)) == 28


def test_a_link_up_to_the_dataset_folder_does_not_move_images_between_classes(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 3)
    (root / "a" / "up").symlink_to("..")
    (root / "a" / "to_b").symlink_to("../b")
    result = scan(root, progress=False)
    assert result.counts() == {"a": 3, "b": 3}
    labels = {Path(p).relative_to(root).parts[0]: set() for p in result.paths}
    for path, label in zip(result.paths, result.labels):
        labels[Path(path).relative_to(root).parts[0]].add(result.class_names[label])
    assert labels == {"a": {"a"}, "b": {"b"}}
    assert rel(result.skipped.paths(SkipReason.LINK_LOOP), root) == {"a/up", "a/to_b"}


def _peak_rss_kb() -> str:
    """Code printing this process's peak resident memory in KB (VmHWM: ru_maxrss survives exec)."""
    return "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"


def test_loops_in_two_classes_end_with_little_memory(tmp_path):
    """Links back to the class folder and to / are not followed: the scan ends (the timeout only
    bounds a hang; following / would not end) with the 28 real images and a bounded peak memory."""
    root = make_class_folders(tmp_path / "data", ["a", "b"], 14)
    for cls in ("a", "b"):
        (root / cls / "loop").symlink_to(".")
        (root / cls / "root").symlink_to("/")
    code = (
        f"from edgelab.data import scan; r = scan({str(root)!r}, progress=False); "
        "print(len(r.paths))\n" + _peak_rss_kb()
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    count, peak_kb = out.split()
    # 300 MB: the interpreter with numpy/Pillow takes ~100 MB; a walk of / would keep growing past it.
    assert int(count) == 28 and int(peak_kb) < 300_000


def test_a_file_reached_twice_through_links_counts_once(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 2)
    (root / "b" / "again.jpg").symlink_to(root / "a" / "0.jpg")
    result = scan(root, progress=False)
    assert result.counts() == {"a": 2, "b": 2}
    assert [s.reason for s in result.skipped if s.path.name == "again.jpg"] == [SkipReason.DUPLICATE]


def _pixel_bomb(path: Path, side: int = 12000) -> Path:
    """A 16-bit grayscale PNG of side x side pixels that compresses to a few hundred KB."""
    import zlib

    row = b"\x00" + b"\x12\x34" * side  # filter byte + uniform 16-bit samples
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        import struct

        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    import struct

    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_pixel_bomb_is_skipped_as_too_large_before_decoding(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 3)
    bomb = _pixel_bomb(root / "a" / "bomb.png")
    assert bomb.stat().st_size < 1_000_000
    result = scan(root, progress=False)
    assert result.counts() == {"a": 3, "b": 3}
    (skip,) = [s for s in result.skipped if s.path == bomb]
    assert skip.reason == SkipReason.TOO_LARGE and "12000x12000" in skip.detail
    from edgelab.data.decoding import ImageTooLargeError

    with pytest.raises(ImageTooLargeError, match=r"at most 50,000,000 pixels.*EDGELAB_MAX_PIXELS.*12000x12000"):
        load_image(bomb, 96)


def test_pixel_budget_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((300, 400), 40000, np.uint16)).save(path)
    assert load_image(path, max_pixels=120_000).shape == (300, 400, 3)
    with pytest.raises(DatasetError, match="at most 119,999 pixels"):
        load_image(path, max_pixels=119_999)
    monkeypatch.setenv("EDGELAB_MAX_PIXELS", "1000")
    with pytest.raises(DatasetError, match="400x300 = 120,000 pixels"):
        load_image(path)
    monkeypatch.setenv("EDGELAB_MAX_PIXELS", "0")  # no limit
    assert load_image(path)[0, 0, 0] == round(40000 / 257)
    monkeypatch.setenv("EDGELAB_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match=r"EDGELAB_MAX_PIXELS.*Received: 'lots'"):
        load_image(path)


def test_sixteen_bit_rounding_matches_the_float_formula(tmp_path):
    values = np.arange(0, 65536, dtype=np.uint16).reshape(256, 256)
    path = tmp_path / "ramp.png"
    Image.fromarray(values).save(path)
    got = load_image(path)[..., 0]
    np.testing.assert_array_equal(got, np.rint(values / 257.0).astype(np.uint8))


def test_data_check_peak_memory_on_a_pixel_bomb(tmp_path):
    root = make_class_folders(tmp_path / "data", ["a", "b"], 2)
    _pixel_bomb(root / "a" / "bomb.png")
    code = (
        "import sys; from edgelab.cli import main\n"
        f"code = main(['data', 'check', {str(root)!r}, '--json', '--no-progress'])\n"
        "sys.stdout.flush()\n" + _peak_rss_kb() + "\nsys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report, peak_kb = done.stdout.rsplit("\n", 2)[:2]
    assert "too large" in report
    assert int(peak_kb) < 200_000  # the bomb alone would decode to gigabytes


# --------------------------------------------------------------------------------------------
# The decoded-image cache
# --------------------------------------------------------------------------------------------


def _count_decodes(monkeypatch) -> list[Path]:
    import edgelab.data.cache as cache_module

    seen: list[Path] = []
    real = cache_module.try_load

    def counting(path, *args, **kwargs):
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache_module, "try_load", counting)
    return seen


def test_arrays_are_a_memory_mapped_cache_reused_by_the_next_load(intel_layout, tmp_path, monkeypatch):
    root = intel_layout()
    cache = tmp_path / "cache"
    decoded = _count_decodes(monkeypatch)
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    images, _labels = ds.arrays("train")
    assert isinstance(images, np.memmap) and not images.flags.writeable
    assert len(images) == len(ds.train)
    for split in ("val", "test"):
        ds.arrays(split)
    every = [p for split in ("train", "val", "test") for p in ds.split(split).paths]
    assert sorted(decoded) == sorted(every)  # the scan decoded each image once; the splits read it
    again = load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    np.testing.assert_array_equal(again.arrays("train")[0], images)
    assert len(decoded) == len(every)  # nothing decoded a second time
    in_memory = load_dataset(root, image_size=24, progress=False, cache_dir=False)
    np.testing.assert_array_equal(in_memory.arrays("train")[0], images)
    assert not isinstance(in_memory.arrays("train")[0], np.memmap)


@pytest.mark.parametrize("max_per_class", [None, 4])
def test_an_in_memory_load_decodes_each_image_once(intel_layout, tmp_path, monkeypatch, max_per_class):
    """cache_dir=False: the scan's decode is the one the splits keep (each file opened once, pixels
    and labels as the cached load gives them); with max_per_class the unused images are not kept."""
    root = intel_layout(pred=2)
    cached = load_dataset(
        root, image_size=24, progress=False, cache_dir=tmp_path / "cache", max_per_class=max_per_class
    )
    expected = {split: cached.arrays(split) for split in ("train", "val", "test")}
    opened: list[Path] = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(Path(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=False, max_per_class=max_per_class)
    got = {split: ds.arrays(split) for split in ("train", "val", "test")}
    candidates = sorted(p for p in root.rglob("*.jpg") if "seg_pred" not in p.parts)
    assert sorted(opened) == candidates  # every image decoded once, by the scan; none again
    for split, (images, labels) in got.items():
        np.testing.assert_array_equal(images, expected[split][0])
        np.testing.assert_array_equal(labels, expected[split][1])
        assert not images.flags.writeable and len(images) == len(ds.split(split))
    used = sum(len(images) for images, _ in got.values())
    base = got["train"][0].base if got["train"][0].base is not None else got["train"][0]
    assert len(base) == used if max_per_class else len(base) == len(candidates)  # the unused rows are freed


def test_cache_is_rebuilt_when_a_file_or_a_setting_changes(intel_layout, tmp_path):
    root = intel_layout()
    cache = tmp_path / "cache"
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    first = ds.arrays("test")[0]
    changed = ds.test.paths[0]
    write_image(changed, (255, 255, 255), (32, 32), seed=99)
    os.utime(changed, ns=(1, 1))
    fresh = load_dataset(root, image_size=24, progress=False, cache_dir=cache).arrays("test")[0]
    assert fresh[0].mean() > first[0].mean() + 20  # the white image, not the cached one
    np.testing.assert_array_equal(fresh[1:], first[1:])
    assert len(list(cache.glob("*.u8"))) == 3  # one per split: the stale test file went
    load_dataset(root, image_size=20, progress=False, cache_dir=cache).arrays("test")
    assert len(list(cache.glob("*.u8"))) == 6  # another size is another file per split


def test_an_interrupted_load_resumes_from_the_cache(intel_layout, tmp_path, monkeypatch):
    root = intel_layout()
    cache = tmp_path / "cache"
    decoded = _count_decodes(monkeypatch)
    import edgelab.data.cache as cache_module

    counting = cache_module.try_load

    def interrupted(path, *args, **kwargs):
        if len(decoded) >= 5:
            raise KeyboardInterrupt
        return counting(path, *args, **kwargs)

    monkeypatch.setattr(cache_module, "try_load", interrupted)
    with pytest.raises(KeyboardInterrupt):  # during the scan's decoding pass
        load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    done = len(decoded)
    monkeypatch.setattr(cache_module, "try_load", counting)
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    images, _ = ds.arrays("train")
    every = [p for split in ("train", "val", "test") for p in ds.split(split).paths]
    assert done == 5 and len(decoded) == len(every)  # only the rest was decoded
    reference = load_dataset(root, image_size=24, progress=False, cache_dir=False).arrays("train")[0]
    np.testing.assert_array_equal(images, reference)


def test_a_deleted_pixel_file_is_decoded_again(intel_layout, tmp_path):
    root = intel_layout()
    cache = tmp_path / "cache"
    first = load_dataset(root, image_size=24, progress=False, cache_dir=cache).arrays("val")[0].copy()
    pixel_files = list(cache.glob("*.u8"))
    assert len(pixel_files) == 3  # one per split
    for pixels in pixel_files:
        pixels.unlink()
    again = load_dataset(root, image_size=24, progress=False, cache_dir=cache).arrays("val")[0]
    np.testing.assert_array_equal(again, first)
    assert again.any()


def test_files_broken_after_the_scan_are_left_out_of_the_cache(intel_layout, tmp_path):
    root = intel_layout()
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=tmp_path / "cache")
    broken = ds.train.paths[2]
    expected_labels = np.delete(ds.train.labels, 2)
    broken.write_bytes(b"not an image any more")
    with pytest.warns(DatasetWarning):
        images, labels = ds.arrays("train")
    np.testing.assert_array_equal(labels, expected_labels)
    reference = np.stack([load_image(p, 24) for p in ds.train.paths if p != broken])
    np.testing.assert_array_equal(images, reference)
    assert [s.path for s in ds.skipped if s.reason == SkipReason.NOT_IMAGE] == [broken]


def test_an_unwritable_cache_folder_falls_back_to_memory(intel_layout, tmp_path, caplog):
    root = intel_layout()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=blocker / "cache")
    with caplog.at_level("WARNING", logger="edgelab"):
        images, labels = ds.arrays("val")
    assert len(images) == len(labels) == len(ds.val)
    assert "cannot use the image cache" in caplog.text


def test_uint8_tf_dataset_matches_the_arrays(intel_layout, tmp_path):
    root = intel_layout()
    ds = load_dataset(root, image_size=24, progress=False, cache_dir=tmp_path / "cache")
    images, labels = ds.arrays("train")
    batches = list(ds.tf_dataset("train", batch_size=5, normalized=False).as_numpy_iterator())
    assert batches[0][0].dtype == np.uint8
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), images)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)
    one = [b[1] for b in ds.tf_dataset("train", batch_size=5, shuffle=True, seed=3).as_numpy_iterator()]
    two = [b[1] for b in ds.tf_dataset("train", batch_size=5, shuffle=True, seed=3).as_numpy_iterator()]
    np.testing.assert_array_equal(np.concatenate(one), np.concatenate(two))
    assert sorted(np.concatenate(one).tolist()) == sorted(labels.tolist())


# --------------------------------------------------------------------------------------------
# Decoding in worker processes (large loads)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def worker_processes(monkeypatch):
    """Loads decode in worker processes only (not in the loading thread too), from the first image
    (large loads only, by default); returns the list of worker processes started."""
    import edgelab.data.cache as cache_module
    import edgelab.data.workers as workers

    monkeypatch.setattr(workers, "PROCESS_MIN_IMAGES", 1)
    monkeypatch.setattr(workers, "WORKERS", 2)
    only_workers = lambda *args: workers.decode_in_processes(*args[:6], None)  # noqa: E731 (args, local)
    monkeypatch.setattr(cache_module, "decode_in_processes", only_workers)
    started: list[subprocess.Popen] = []
    real = workers.start_worker

    def start(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(workers, "start_worker", start)
    return started


def _splits(ds) -> list[np.ndarray]:
    return [ds.arrays(split)[0] for split in ("train", "val", "test")]


def test_worker_processes_decode_the_pixels_and_skips_of_threads(bad_corpus, tmp_path, worker_processes, caplog):
    with pytest.warns(DatasetWarning), caplog.at_level("INFO", logger="edgelab"):
        in_workers = load_dataset(bad_corpus.root, image_size=16, seed=0, cache_dir=tmp_path / "cache")
    assert "decoded on processes" in caplog.text and worker_processes
    assert all(proc.returncode is not None for proc in worker_processes)  # finished, and waited for
    with pytest.warns(DatasetWarning):
        on_threads = load_dataset(bad_corpus.root, image_size=16, seed=0, cache_dir=False)
    assert in_workers.skipped.to_list() == on_threads.skipped.to_list()  # same reasons, details, order
    for got, want in zip(_splits(in_workers), _splits(on_threads)):
        np.testing.assert_array_equal(got, want)


def test_ctrl_c_stops_the_worker_processes_and_the_cache_resumes(
    intel_layout, tmp_path, worker_processes, monkeypatch, caplog
):
    import edgelab.data.cache as cache_module
    import edgelab.data.workers as workers

    root = intel_layout(train=20, test=5)
    cache = tmp_path / "cache"

    def interrupted(*args):
        reported = 0
        on_row = args[5]

        def report(i, why):
            nonlocal reported
            reported += 1
            if reported == 5:  # Ctrl-C while the worker holds more rows (two messages of 16)
                raise KeyboardInterrupt
            on_row(i, why)

        return workers.decode_in_processes(*args[:5], report, local=None)

    monkeypatch.setattr(cache_module, "decode_in_processes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    assert worker_processes and all(proc.returncode is not None for proc in worker_processes)  # none left running
    monkeypatch.setattr(cache_module, "decode_in_processes", workers.decode_in_processes)
    with caplog.at_level("INFO", logger="edgelab"):
        resumed = load_dataset(root, image_size=24, progress=False, cache_dir=cache)
    assert "resuming, 4 of 75 images already decoded" in caplog.text  # the rows reported before Ctrl-C
    reference = load_dataset(root, image_size=24, progress=False, cache_dir=False)
    for got, want in zip(_splits(resumed), _splits(reference)):
        np.testing.assert_array_equal(got, want)


def test_a_failing_worker_process_leaves_the_work_to_threads(
    intel_layout, tmp_path, worker_processes, monkeypatch, caplog
):
    import edgelab.data.workers as workers

    root = intel_layout()
    monkeypatch.setattr(
        workers,
        "worker_command",
        lambda: [sys.executable, "-c", "import sys; sys.stderr.write('no luck'); sys.exit(3)"],
    )
    with caplog.at_level("INFO", logger="edgelab"):
        ds = load_dataset(root, image_size=24, progress=False, cache_dir=tmp_path / "cache")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "decoding worker" in warned[0] and "on threads" in warned[0], warned
    assert "decoded on processes, then threads" in caplog.text
    reference = load_dataset(root, image_size=24, progress=False, cache_dir=False)
    for got, want in zip(_splits(ds), _splits(reference)):
        np.testing.assert_array_equal(got, want)


def test_a_worker_process_imports_no_tensorflow():
    from edgelab.data.workers import worker_command

    command = worker_command()
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], input=b"", capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.decode().splitlines() if "import time:" in line}
    assert {"edgelab.data.decoding", "PIL.Image"} <= imported  # what a worker decodes with
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "pandas", "scipy")}
