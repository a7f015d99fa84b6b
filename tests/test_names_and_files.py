"""Names and arguments fail before the work; files that are not regular files are never read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image
from PIL import Image

from edgelab.cli import main
from edgelab.data.datasets import load_dataset
from edgelab.data.decoding import PixelFormatError, load_image
from edgelab.data.scanning import scan
from edgelab.errors import DatasetError

MODEL = Path(__file__).parent / "data" / "coral" / "split_concat.tflite"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """(exit code, stderr) of the CLI run in this process; argparse's own exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def one_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, (code, err)
    return lines[0]


def two_classes(root: Path, second: str) -> Path:
    for name in ("cat", second):
        for i in range(3):
            write_image(root / name / f"{i}.png", (40 * i, 90, 200))
    return root


@pytest.mark.parametrize("char", ["\n", "\r"], ids=["newline", "carriage-return"])
def test_a_class_name_that_is_not_one_line_is_refused_at_scan_time(tmp_path, capsys, char):
    root = two_classes(tmp_path / "data", f"do{char}g")
    message = one_line(*run_cli(capsys, "data", "check", root))
    assert repr(str(root / f"do{char}g")) in message and "labels.txt" in message
    with pytest.raises(DatasetError, match="in its name"):
        scan(root, verify=False)
    with pytest.raises(DatasetError, match="in its name"):
        load_dataset(root, image_size=8, progress=False)
    # Before any training: the demo refuses it while reading the dataset.
    message = one_line(*run_cli(capsys, "demo", "--data", root, "--out", tmp_path / "out", "--no-progress"))
    assert "in its name" in message


def test_arguments_are_checked_before_the_data_is_read(tmp_path, capsys):
    missing = tmp_path / "no-such-dataset"  # read first, this would be the error
    message = one_line(*run_cli(capsys, "layers", MODEL, MODEL, "--data", missing, "--max-images", "0"))
    assert "--max-images" in message
    message = one_line(*run_cli(capsys, "layers", MODEL, MODEL, "--data", missing, "--top", "-1"))
    assert "--top" in message
    message = one_line(*run_cli(capsys, "demo", "--data", missing, "--arch", "mobilenet", "--out", tmp_path / "o"))
    assert "--arch" in message and "mobilenetv2" in message
    message = one_line(*run_cli(capsys, "analyze", MODEL, "--num-segments", "0"))
    assert "--num-segments" in message


@pytest.fixture
def specials(tmp_path) -> dict[str, Path]:
    """A FIFO, a socket, links to /dev/zero and to the FIFO, and a link that points at itself."""
    folder = tmp_path / "special"
    folder.mkdir()
    paths = {k: folder / f"{k}.tflite" for k in ("fifo", "socket", "zero_link", "fifo_link", "loop")}
    os.mkfifo(paths["fifo"])
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(paths["socket"]))
    paths["zero_link"].symlink_to("/dev/zero")
    paths["fifo_link"].symlink_to(paths["fifo"])
    paths["loop"].symlink_to(paths["loop"].name)
    paths["device"] = Path("/dev/zero")
    yield paths
    sock.close()


WHAT = {
    "fifo": "a FIFO (named pipe)",
    "socket": "a socket",
    "zero_link": "a symbolic link to a character device (/dev/zero)",
    "fifo_link": "a symbolic link to a FIFO (named pipe)",
    "loop": "a symbolic link loop",
    "device": "a character device",
}


@pytest.mark.parametrize("command", ["inspect", "analyze", "benchmark", "layers"])
def test_model_commands_refuse_files_that_are_not_regular(specials, capsys, tmp_path, command):
    for kind, path in specials.items():
        argv = [command, path] if command != "layers" else [command, path, MODEL, "--data", tmp_path]
        message = one_line(*run_cli(capsys, *argv))
        assert f"which is {WHAT[kind]}" in message and "not a regular file" in message, (kind, message)


def test_data_check_names_odd_files_and_never_reads_them(tmp_path, capsys):
    root = two_classes(tmp_path / "data", "dog")
    cat = root / "cat"
    os.mkfifo(cat / "fifo.jpg")
    (cat / "zero.jpg").symlink_to("/dev/zero")
    (cat / "loop.jpg").symlink_to("loop.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(cat / "socket.png"))
    Image.fromarray(np.full((16, 16), 100, np.int32), mode="I").save(cat / "int32.tif")
    Image.fromarray(np.full((16, 16), 0.5, np.float32), mode="F").save(cat / "float.tif")
    Image.fromarray((np.arange(256).reshape(16, 16) * 257).astype(np.uint16)).save(cat / "gray16.png")
    Image.new("1", (10_000, 9_000)).save(cat / "bomb.png")  # 90 Mpx: above Pillow's warning threshold
    try:  # a real process: pytest would capture a warning that a user sees on stderr
        proc = subprocess.run(
            [sys.executable, "-m", "edgelab.cli", "data", "check", str(root), "--json"],
            capture_output=True,
            text=True,
            timeout=300,  # a read of the FIFO would block forever: fail instead
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    reasons = {Path(s["path"]).name: (s["reason"], s["detail"]) for s in report["skipped"]}
    assert reasons["fifo.jpg"] == ("not a regular file", "a FIFO (named pipe)")
    assert reasons["zero.jpg"] == ("not a regular file", "a symbolic link to a character device (/dev/zero)")
    assert reasons["loop.jpg"] == ("not a regular file", "a symbolic link loop")
    assert reasons["socket.png"] == ("not a regular file", "a socket")
    assert reasons["int32.tif"][0] == reasons["float.tif"][0] == "unsupported pixel format"
    assert reasons["bomb.png"][0] == "too large"
    assert "gray16.png" not in reasons  # unsigned 16-bit has a fixed range: scaled, kept
    assert "DecompressionBomb" not in proc.stderr


def test_pixels_without_a_fixed_range_are_reported_not_darkened(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.full((8, 8), 200, np.int32), mode="I").save(path)
    with pytest.raises(PixelFormatError, match="32-bit integer pixels"):
        load_image(path)
    gray16 = tmp_path / "gray16.pgm"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(gray16)  # opens as mode I, stored as I;16B
    assert load_image(gray16).min() == 255


def test_a_reused_output_folder_is_held_by_one_process_at_a_time(tmp_path):
    """Two runs filling one cache folder (convert_all(reuse=True)) take turns: while one holds the folder,
    another process cannot take it; once released, it can."""
    from edgelab._files import shared_output

    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    print('held')\n"
        "else:\n"
        "    print('free')\n"
    )
    folder = tmp_path / "runs-cache"

    def other_process() -> str:
        done = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    with shared_output(folder):
        assert folder.is_dir()
        assert other_process() == "held"
    assert other_process() == "free"
    assert list(folder.iterdir()) == []  # no lock file left behind
