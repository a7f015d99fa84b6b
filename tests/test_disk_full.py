"""A full disk is one ``edgelab: error: the disk is full (...)`` line, wherever edgelab writes.

The disk is a tiny tmpfs mounted for the test (deterministic ENOSPC: a filler file leaves a few
kilobytes free). Mounting needs root; elsewhere these tests skip with one line.
"""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def full_disk(tmp_path):
    """A 4 MB tmpfs with all but ``free`` bytes taken by a filler file: ``make(free) -> folder``."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): full-disk tests skipped")

    def make(free: int = 16 * 1024) -> Path:
        st = os.statvfs(mount)
        with open(mount / "filler", "wb") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - free))
        return mount

    yield make
    gc.collect()
    subprocess.run(["umount", "-l", str(mount)], check=False)


def run_cli_line(func, *args) -> tuple[int, str]:
    """run_command (the CLI's error handling) on ``func(*args)``: exit code and stderr lines."""
    import contextlib
    import io

    from edgelab._cli.args import run_command

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_command(lambda _: func(*args), None)
    return code, err.getvalue().strip().splitlines()


def test_h5_save_on_a_full_disk_is_enospc_and_leaves_nothing(full_disk, recwarn):
    """h5py reports a full disk as "Slist already enabled?" and its finalizers print tracebacks."""
    from _tiny import small_cnn

    from edgelab.demo import DemoConfig, Workspace

    folder = full_disk(free=1 << 40)  # nothing taken yet: the workspace's folder and params.json fit
    workspace = Workspace(DemoConfig(out_dir=str(folder / "run")), progress=False)
    out = workspace.path()
    full_disk(free=8 * 1024)
    model = small_cnn(size=32, num_classes=3)
    code, lines = run_cli_line(workspace.save_float_model, model)
    assert code == 2 and len(lines) == 1
    assert lines[0] == f"edgelab: error: the disk is full ({out / 'float_model.h5'}); finished steps are kept"
    gc.collect()
    assert sorted(p.name for p in out.iterdir()) == ["params.json"]  # no temporary file, no half model
    unraisable = [w for w in recwarn if "Unraisable" in type(w.message).__name__]
    assert not unraisable, [str(w.message) for w in unraisable]
    (folder / "filler").unlink()  # space freed: the same save now works
    workspace.save_float_model(model)
    assert (out / "float_model.h5").stat().st_size > 0


def test_savedmodel_export_on_a_full_disk_is_enospc(full_disk, monkeypatch):
    """TensorFlow's SaveV2 error text becomes the one disk-full line."""
    import tempfile

    from _tiny import small_cnn

    from edgelab.tflite.conversion import ExportedModel

    folder = full_disk(free=8 * 1024)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    code, lines = run_cli_line(ExportedModel, small_cnn(size=32))
    assert code == 2 and len(lines) == 1 and lines[0].startswith("edgelab: error: the disk is full ("), lines
    left = sorted(p.name for p in folder.iterdir() if not p.name.startswith("__autograph"))  # TensorFlow's own
    assert left == ["filler"]  # the half-written SavedModel folder is gone


def test_the_decoded_image_cache_on_a_full_disk_falls_back_to_memory(full_disk, tmp_path, caplog):
    """A sparse memory map written on a full tmpfs ends the process with SIGBUS; reserved, it is an OSError."""
    from conftest import write_image

    from edgelab.data.datasets import load_dataset

    root = tmp_path / "data"
    for c in ("a", "b"):
        for i in range(6):
            write_image(root / c / f"{i}.png", (40 * i, 90, 200), size=(64, 64))
    folder = full_disk(free=4 * 1024)  # 12 images at 64x64x3 need 147 KB
    data = load_dataset(root, image_size=64, cache_dir=folder / "cache", progress=False, seed=0)
    images, labels = data.arrays("train", progress=False)
    assert len(images) == len(labels) > 0 and not isinstance(images, np.memmap)
    assert "cannot use the image cache" in caplog.text and "No space left on device" in caplog.text


def test_report_bundle_and_conversion_outputs_on_a_full_disk(full_disk):
    from edgelab._files import write_atomic
    from edgelab.bundle import export_bundle

    folder = full_disk(free=4 * 1024)
    coral = ROOT / "tests" / "data" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"  # 480 KB
    code, lines = run_cli_line(
        lambda: export_bundle([coral], [f"c{i}" for i in range(1001)], out_dir=folder / "bundle")
    )
    assert code == 2 and len(lines) == 1 and lines[0].startswith("edgelab: error: the disk is full"), lines
    assert not (folder / "bundle" / coral.name).exists()
    code, lines = run_cli_line(write_atomic, folder / "model_int8.tflite", coral.read_bytes())
    assert code == 2
    assert lines == [f"edgelab: error: the disk is full ({folder / 'model_int8.tflite'}); finished steps are kept"]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("bundle")) == ["filler"]


def test_writer_errors_that_wrap_enospc_are_recognised(tmp_path):
    from edgelab._files import disk_full_error

    wrapped = RuntimeError("SaveV2: /out/variables.data-00000-of-00001.tempstate; No space left on device")
    full = disk_full_error(wrapped, tmp_path, check_free=False)
    assert full is not None and full.errno == errno.ENOSPC and full.filename == str(tmp_path)
    inner = OSError(errno.EDQUOT, "Disk quota exceeded", "/home/u/run/x.h5")
    outer = RuntimeError("Slist already enabled?")
    outer.__context__ = inner
    assert disk_full_error(outer, tmp_path).errno == errno.EDQUOT
    assert disk_full_error(RuntimeError("unrelated"), tmp_path, check_free=False) is None


def test_the_cli_after_a_full_disk_prints_no_finalizer_tracebacks():
    """h5py's __dealloc__ reports at exit ("Exception ignored in ...") stay off stderr after the line."""
    code = (
        "import errno, sys\n"
        "from edgelab._cli.args import run_command\n"
        "class Noisy:\n"
        "    def __del__(self):\n"
        "        raise RuntimeError('Slist already enabled?')\n"
        "keep = Noisy()\n"
        "def full(_):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', '/out/qat_model.h5')\n"
        "sys.exit(run_command(full, None))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgelab: error: the disk is full (/out/qat_model.h5); finished steps are kept"
    ]
