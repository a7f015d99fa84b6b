"""Shared test fixtures: small image folders written with Pillow."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")
# Decoded-image caches of the test folders stay out of the user's ~/.cache.
if "EDGELAB_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="edgelab-test-cache-")
    os.environ["EDGELAB_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
# A shell without job control starts background commands (`make test &`, some CI runners) with Ctrl-C
# ignored, and child processes inherit that: the Ctrl-C tests need it delivered as a user's terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np
import pytest
from PIL import Image

#: One dominant colour per class index, so a test can tell an image's class from its pixels.
CLASS_COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200), (200, 40, 200))


def write_image(
    path: Path,
    colour: Sequence[int] = (128, 128, 128),
    size: tuple[int, int] = (20, 20),
    seed: int = 0,
    mode: str = "RGB",
    format: str | None = None,
) -> Path:
    """Write a noisy image around ``colour`` (height, width = size), converted to ``mode``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(colour, np.int16) + rng.integers(-25, 26, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path, format=format)
    return path


def make_class_folders(
    root: Path, classes: Sequence[str], per_class: int, size: tuple[int, int] = (20, 20), seed: int = 0
) -> Path:
    """``root/<class>/<k>.jpg``; class i is tinted CLASS_COLOURS[i]."""
    for i, name in enumerate(classes):
        for k in range(per_class):
            write_image(
                root / name / f"{k}.jpg", CLASS_COLOURS[i % len(CLASS_COLOURS)], size, seed=seed * 100003 + i * 1009 + k
            )
    return root


@pytest.fixture(scope="session")
def intel_layout(tmp_path_factory) -> Callable[..., Path]:
    """Factory writing Intel's Kaggle layout: ``make(classes, train=, test=, pred=, size=)`` -> root."""

    def make(
        classes: Sequence[str] = ("buildings", "forest", "sea"),
        train: int = 10,
        test: int = 3,
        pred: int = 0,
        size: tuple[int, int] = (20, 20),
        nested: bool = True,
    ) -> Path:
        root = tmp_path_factory.mktemp("intel")
        twice = (lambda name: Path(name, name)) if nested else Path
        make_class_folders(root / twice("seg_train"), classes, train, size, seed=1)
        if test:
            make_class_folders(root / twice("seg_test"), classes, test, size, seed=2)
        for k in range(pred):
            write_image(root / twice("seg_pred") / f"{k}.jpg", (128, 128, 128), size, seed=3000 + k)
        return root

    return make


@dataclass
class BadCorpus:
    """A folder in Intel's layout full of awkward files, and what loading it must give."""

    root: Path
    classes: list[str]
    #: Relative path -> class name, for every file that must load.
    good: dict[str, str] = field(default_factory=dict)
    #: Relative path -> skip reason, for every file or folder that must be reported.
    skipped: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory) -> BadCorpus:
    """Intel layout (buildings, forest, sea) with every kind of bad and unusual file edgelab handles."""
    from edgelab.data.datasets import SkipReason as R

    root = tmp_path_factory.mktemp("bad_corpus")
    corpus = BadCorpus(root, ["buildings", "forest", "sea"])

    def good(rel: str, cls: str, **kwargs) -> Path:
        corpus.good[rel] = cls
        return write_image(root / rel, CLASS_COLOURS[corpus.classes.index(cls)], seed=len(corpus.good), **kwargs)

    def bad(rel: str, reason: str) -> Path:
        corpus.skipped[rel] = reason
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        return root / rel

    for cls in corpus.classes:
        for k in range(6):
            good(f"seg_train/seg_train/{cls}/{k}.jpg", cls)
        for k in range(3):
            good(f"seg_test/seg_test/{cls}/{k}.jpg", cls)

    b = "seg_train/seg_train/buildings"
    # Unusual but valid images.
    good(f"{b}/gray.jpg", "buildings", mode="L")
    good(f"{b}/cmyk.jpg", "buildings", mode="CMYK")
    good(f"{b}/palette.gif", "buildings", mode="P")
    good(f"{b}/photo.webp", "buildings")
    good(f"{b}/photo.bmp", "buildings")
    good(f"{b}/UPPER.JPG", "buildings")
    good(f"{b}/Upper.PnG", "buildings")
    good(f"{b}/café_Ωmega.jpg", "buildings")
    good(f"{b}/建物.png", "buildings")
    good(f"{b}/nested/deeper/inner.jpeg", "buildings")
    corpus.good[f"{b}/rgba.png"] = "buildings"
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = (220, 30, 30, 255)  # opaque left half; the right half is fully transparent black
    Image.fromarray(rgba, "RGBA").save(root / b / "rgba.png")
    corpus.good[f"{b}/sixteen.png"] = "buildings"
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(root / b / "sixteen.png")

    # Files that must be skipped, each for its reason.
    jpeg = (root / b / "0.jpg").read_bytes()
    bad(f"{b}/truncated.jpg", R.TRUNCATED).write_bytes(jpeg[: len(jpeg) // 2])
    bad(f"{b}/zero.jpg", R.ZERO_BYTE).write_bytes(b"")
    bad(f"{b}/notes.jpg", R.NOT_IMAGE).write_text("this is not a picture\n")
    bad(f"{b}/.hidden.jpg", R.HIDDEN).write_bytes(jpeg)
    bad(f"{b}/._0.jpg", R.HIDDEN).write_bytes(b"\x00\x05\x16\x07AppleDouble")
    bad(f"{b}/readme.txt", R.UNSUPPORTED).write_text("notes")
    bad(f"{b}/.ipynb_checkpoints", R.HIDDEN).mkdir()
    (root / b / ".ipynb_checkpoints" / "0-checkpoint.jpg").write_bytes(jpeg)
    bad(f"{b}/nested/empty", R.EMPTY_FOLDER).mkdir()
    bad("seg_train/seg_train/glacier", R.EMPTY_FOLDER).mkdir()  # an empty class folder: class dropped,
    write_image(bad("seg_test/seg_test/glacier", R.UNKNOWN_CLASS) / "0.jpg")  # with its test images
    bad("seg_train/seg_train/stray.jpg", R.OUTSIDE_CLASSES).write_bytes(jpeg)
    bad("seg_train/seg_train/.DS_Store", R.HIDDEN).write_bytes(b"\x00\x00\x00\x01Bud1")
    write_image(bad("seg_test/seg_test/mountain", R.UNKNOWN_CLASS) / "0.jpg")  # no seg_train folder

    for k in range(2):
        write_image(root / "seg_pred" / "seg_pred" / f"{k}.jpg", seed=900 + k)
    return corpus


# --- a fake edgetpu_compiler (real-format output), for the compiler wrapper and the verdict ---

FAKE = Path(__file__).parent / "fake_edgetpu_compiler" / "edgetpu_compiler"


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    """Put the fake edgetpu_compiler first on PATH, run by this interpreter; returns a setter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "edgetpu_compiler"
    body = FAKE.read_text().split("\n", 1)[1]
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    argv_file = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_EDGETPU_ARGV", str(argv_file))

    def use(scenario: str, version: str | None = None):
        monkeypatch.setenv("FAKE_EDGETPU_SCENARIO", scenario)
        if version:
            monkeypatch.setenv("FAKE_EDGETPU_VERSION", version)
        return argv_file

    return use


@pytest.fixture
def no_compiler(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# --- the device stack: a separate interpreter with tflite-runtime 2.14 + numpy<2 + Pillow, and a real sshd ---

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def device_python() -> Path:
    """The device stack's interpreter (make device-venv; EDGELAB_DEVICE_PYTHON overrides)."""
    override = os.environ.get("EDGELAB_DEVICE_PYTHON")
    path = Path(override) if override else REPO / ".venv-device" / "bin" / "python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"EDGELAB_DEVICE_PYTHON={override}" if override else f"{path} (make device-venv)"
        pytest.skip(f"device stack: no interpreter at {where}")
    return path


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 (tests/_sshd.py); skips when openssh-server is not installed."""
    import _sshd

    why = _sshd.missing()
    if why:
        pytest.skip(f"sshd: {why}")
    server = _sshd.start(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        _sshd.stop(server)
