"""edgelab device against a real OpenSSH server on 127.0.0.1 whose "device" Python is the device stack
(tflite-runtime 2.14 + numpy 1.26 + Pillow, no TensorFlow, no edgelab): bench, doctor, deploy, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_class_folders

from edgelab import errors
from edgelab.bundle import export_bundle
from edgelab.cli import main

LABELS = ["buildings", "forest", "sea"]
SIZE = 16


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """An untrained CNN as float32 and as full int8 (uint8 I/O)."""
    from edgelab._keras import keras, tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    out = tmp_path_factory.mktemp("device-models")
    calib = (np.random.default_rng(0).integers(0, 256, (8, SIZE, SIZE, 3)).astype(np.float32) - 127.5) / 127.5
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (out / "tiny_fp32.tflite").write_bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([img[None]] for img in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    (out / "tiny_int8.tflite").write_bytes(conv.convert())
    return {"int8": out / "tiny_int8.tflite", "fp32": out / "tiny_fp32.tflite"}


@pytest.fixture(scope="module")
def bundle(tiny_models, tmp_path_factory) -> Path:
    return export_bundle(tiny_models, LABELS, out_dir=tmp_path_factory.mktemp("b") / "my bundle")


@pytest.fixture(scope="module")
def test_images(tmp_path_factory) -> Path:
    return make_class_folders(tmp_path_factory.mktemp("images") / "scenes", LABELS, 4, size=(24, 20))


@pytest.fixture
def device(sshd, device_python, tmp_path):
    """CLI arguments reaching the test device, with a device folder whose path has spaces."""
    remote = tmp_path / "device home" / "edge lab"
    return {
        "args": ["--host", sshd.host, "--ssh-config", str(sshd.ssh_config), "--python", str(device_python)],
        "remote": remote,
        "api": {"ssh_config": sshd.ssh_config, "python": str(device_python), "remote_dir": str(remote)},
        "host": sshd.host,
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("edgelab: error: ")
    return lines[0]


def near_ties(model_path: Path, images: Path, margin: float) -> int:
    """Test images whose host top-1 and top-2 scores differ by less than ``margin``."""
    from edgelab.data.decoding import load_image
    from edgelab.tflite.runtime import TFLiteModel

    model = TFLiteModel(model_path)
    files = sorted(p for p in images.rglob("*.jpg"))
    scores = model.predict(np.stack([load_image(p, (SIZE, SIZE)) for p in files]), progress=False)
    top2 = np.sort(scores, axis=1)[:, -2:]
    return int(np.sum(top2[:, 1] - top2[:, 0] < margin))


def test_bench_round_trip_on_the_device_stack(bundle, test_images, device, capsys, tiny_models):
    code, out, err = run_cli(
        capsys,
        "device", "bench", str(bundle), *device["args"], "--remote-dir", str(device["remote"]),
        "--data", str(test_images), "--runs", "5", "--min-time", "0", "--warmup", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    dev = result["device"]
    assert (dev["runtime"], dev["runtime_version"], dev["numpy"].split(".")[0]) == ("tflite_runtime", "2.14.0", "1")
    assert dev["edgetpu"] is False and dev["machine"] and dev["free_bytes"] > 0
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"int8", "fp32"}
    images = 4 * len(LABELS)
    for name, row in rows.items():
        assert row["status"] == "ok" and row["runtime"] == "tflite_runtime" and row["images"] == images
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["cold_ms"] > 0 and row["runs"] >= 5
        # The device and this machine run the same file on the same pixels: their top-1 can differ only
        # where two scores are closer than one output step (int8: 1/256; float: rounding).
        margin = 2 / 256 if name == "int8" else 1e-5
        ties = near_ties(tiny_models[name], test_images, margin)
        assert row["near_ties"] == ties and row["agreement"] >= 1 - ties / images
        assert abs(row["accuracy"] - row["host_accuracy"]) <= 1 - row["agreement"] + 1e-9
    folder = device["remote"] / "bench" / "my_bundle"
    assert (folder / "classify.py").is_file() and not (folder / ".incoming").exists()
    assert len(list((folder / "bench-data").glob("*.jpg"))) == images

    # A second run copies nothing: every file is reused by hash.
    import edgelab.device as eld

    again = eld.bench(bundle, device["host"], data=test_images, runs=1, min_time_s=0, warmup=0, **device["api"])
    assert (again.copied, again.reused) == (0, len(list(bundle.iterdir())) + images + 1)  # + the manifest
    # An edit made on the device is noticed, not overwritten; --overwrite puts the bundle's file back.
    (folder / "classify.py").write_text("print('edited on the device')\n")
    code, out, err = run_cli(
        capsys, "device", "bench", str(bundle), *device["args"], "--remote-dir", str(device["remote"])
    )
    assert code == 2 and "changed on the device" in one_error_line(err) and "--overwrite" in err
    assert (folder / "classify.py").read_text() == "print('edited on the device')\n"
    cleaned = eld.bench(bundle, device["host"], runs=1, min_time_s=0, overwrite=True, cleanup=True, **device["api"])
    assert cleaned.cleaned_up and not folder.exists()


def test_wrong_host_key_is_refused_and_nothing_runs(bundle, sshd, device_python, tmp_path, capsys):
    import _sshd

    wrong = _sshd.write_known_hosts(tmp_path / "known_hosts", sshd.port, _sshd.keygen(tmp_path / "other"))
    config = sshd.client_config(tmp_path / "ssh_config", known_hosts=wrong)
    remote = tmp_path / "never made"
    argv = ["--host", sshd.host, "--ssh-config", str(config), "--python", str(device_python)]
    code, out, err = run_cli(capsys, "device", "bench", str(bundle), *argv, "--remote-dir", str(remote))
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert (
        "host key" in line
        and "changed" in line
        and "nothing was run" in line
        and "ssh-keygen -f " in line
        and " -R " in line
    )
    assert not remote.exists()
    # An unknown key (empty known_hosts): refused too, with how to add it.
    config = sshd.client_config(tmp_path / "ssh_config2", known_hosts=tmp_path / "empty_known_hosts")
    argv[3] = str(config)
    code, _, err = run_cli(capsys, "device", "doctor", *argv, "--remote-dir", str(remote))
    assert code == 2 and "not in known_hosts" in one_error_line(err) and "ssh-keyscan" in err
    assert not remote.exists()


def test_unreachable_host_and_refused_login_are_one_line(sshd, device_python, tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    config = sshd.client_config(tmp_path / "closed_config", port=closed)
    code, _, err = run_cli(capsys, "device", "doctor", "--host", sshd.host, "--ssh-config", str(config))
    assert code == 2 and "cannot reach" in one_error_line(err)

    config = tmp_path / "other_identity"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.identity), str(tmp_path / "nokey")))
    import _sshd

    _sshd.keygen(tmp_path / "nokey")
    with pytest.raises(errors.DeviceAuthError, match="refused the login"):
        import edgelab.device as eld

        eld.device_doctor(sshd.host, ssh_config=config, python=str(device_python))


def test_doctor_names_a_missing_runtime_and_the_numpy2_conflict(sshd, device_python, tmp_path, capsys):
    # A device Python with numpy, Pillow and tflite-runtime 2.14 from the device stack, but numpy 2 in front.
    import numpy

    if int(numpy.__version__.split(".")[0]) < 2:
        pytest.skip("numpy 2 conflict: this machine's numpy is not 2.x")
    site = subprocess.run(
        [str(device_python), "-c", "import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    venv = tmp_path / "np2 venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    host_site = Path(numpy.__file__).parent.parent
    for name in ("numpy", "numpy.libs"):
        if (host_site / name).exists():
            (overlay / name).symlink_to(host_site / name)
    venv_site = next((venv / "lib").glob("python3*/site-packages"))
    (venv_site / "00-device-stack.pth").write_text(f"{overlay}\n{site}\n")
    python = venv / "bin" / "python"
    code, out, err = run_cli(capsys, "device", "doctor", "--host", sshd.host, "--ssh-config", str(sshd.ssh_config),
                             "--python", str(python), "--json")  # fmt: skip
    assert code == 1, err
    checks = {c["item"]: c for c in json.loads(out)["checks"]}
    assert not checks["numpy"]["ok"] and "numpy 2" in checks["numpy"]["found"]
    assert checks["numpy"]["fix"] == f'{python} -m pip install "numpy<2"'
    assert not checks["runtime"]["ok"] and checks["runtime"]["fix"] == checks["numpy"]["fix"]


def test_no_runtime_on_the_device(bundle, sshd, tmp_path, capsys):
    bare = tmp_path / "bare venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    remote = tmp_path / "remote"
    code, _, err = run_cli(capsys, "device", "bench", str(bundle), "--host", sshd.host, "--ssh-config",
                           str(sshd.ssh_config), "--python", str(bare / "bin" / "python"), "--remote-dir", str(remote))  # fmt: skip
    line = one_error_line(err)
    assert code == 2 and "no working TFLite runtime" in line and "-m pip install" in line
    assert not remote.exists()


def test_full_device_disk_is_refused_before_copying(bundle, device, monkeypatch):
    import edgelab.device as eld
    from edgelab.device import ssh

    real = ssh.run_helper

    def tiny_disk(dev, request, **kwargs):
        answer = real(dev, request, **kwargs)
        if request.get("action") == "hashes":
            answer["free_bytes"] = 1024  # what device_info.py reports on a full disk
        return answer

    monkeypatch.setattr(ssh, "run_helper", tiny_disk)
    with pytest.raises(errors.DeviceDiskFullError, match="MiB free"):
        eld.bench(bundle, device["host"], runs=1, min_time_s=0, **device["api"])
    assert not (device["remote"] / "bench" / "my_bundle" / "classify.py").exists()


def _fake_scp(tmp_path: Path, behaviour: str) -> dict[str, str]:
    """A PATH with an scp that copies only the first file of its batch, then fails or kills its caller."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    real = subprocess.run(["which", "scp"], capture_output=True, text=True, check=True).stdout.strip()
    script = bin_dir / "scp"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, signal, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "cut = args.index('--')\n"
        "options, files = args[:cut], args[cut + 1:]\n"
        f"done = subprocess.run([{real!r}, *options, '--', files[0], files[-1]])\n"
        f"if {behaviour!r} == 'kill':\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "sys.stderr.write('client_loop: send disconnect: Broken pipe\\n')\n"
        "sys.exit(1)\n"
    )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_interrupted_copy_leaves_nothing_half_written_and_the_rerun_resumes(bundle, device, tmp_path, monkeypatch):
    import edgelab.device as eld

    folder = device["remote"] / "bench" / "my_bundle"
    monkeypatch.setenv("PATH", _fake_scp(tmp_path, "fail")["PATH"])
    with pytest.raises(errors.DeviceError, match="copying files"):
        eld.bench(bundle, device["host"], runs=1, min_time_s=0, **device["api"])
    assert not (folder / "classify.py").exists()  # nothing in place, one copy waits in .incoming
    assert len(list((folder / ".incoming").iterdir())) == 1
    monkeypatch.undo()
    result = eld.bench(bundle, device["host"], runs=1, min_time_s=0, **device["api"])
    total = len(list((Path(bundle)).iterdir()))
    assert (result.copied, result.reused) == (total - 1, 1)


def _deploy(capsys, device, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(
        capsys, "device", "deploy", *extra, *device["args"], "--remote-dir", str(device["remote"]), "--json"
    )
    return code, (json.loads(out) if out.strip() else {}), err


def _links(app: Path) -> list[str]:
    return sorted(p.name for p in app.iterdir() if p.name.startswith("current"))


def test_deploy_update_rollback_and_a_kill_in_the_middle(tiny_models, device, tmp_path, capsys):
    v1 = export_bundle({"int8": tiny_models["int8"]}, LABELS, out_dir=tmp_path / "scenes")
    code, first, err = _deploy(capsys, device, str(v1))
    assert code == 0, err
    app = device["remote"] / "deploy" / "scenes"
    assert _links(app) == ["current"] and first["previous"] is None
    assert os.readlink(app / "current") == f"versions/{first['current']}"

    v2 = export_bundle(tiny_models, LABELS, out_dir=tmp_path / "v2" / "scenes")
    code, second, err = _deploy(capsys, device, str(v2))
    assert code == 0, err
    assert _links(app) == ["current"] and (second["previous"], second["current"]) == (
        first["current"],
        second["current"],
    )
    assert second["current"] != first["current"] and (app / "current" / "tiny_fp32.tflite").is_file()

    code, back, err = _deploy(capsys, device, "--rollback", "--app", "scenes")
    assert code == 0, err
    assert _links(app) == ["current"] and (back["current"], back["previous"]) == (first["current"], second["current"])

    # A smoke test that fails on the device (a model the runtime cannot load) leaves the running version.
    v3 = export_bundle({"int8": tiny_models["int8"]}, LABELS, out_dir=tmp_path / "v3" / "scenes")
    (v3 / "tiny_int8.tflite").write_bytes(b"TFL3" + b"\0" * 64)
    code, _, err = _deploy(capsys, device, str(v3))
    assert code == 2 and "smoke test" in one_error_line(err) and "untouched" in err
    assert os.readlink(app / "current") == f"versions/{first['current']}"

    # A kill in the middle of the copy of a new version: the edgelab process dies, the old version still runs.
    v4 = export_bundle({"fp32": tiny_models["fp32"]}, LABELS, out_dir=tmp_path / "v4" / "scenes")
    env = _fake_scp(tmp_path, "kill")
    command = [
        sys.executable,
        "-m",
        "edgelab.cli",
        "device",
        "deploy",
        str(v4),
        *device["args"],
        "--remote-dir",
        str(device["remote"]),
    ]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert _links(app) == ["current"] and os.readlink(app / "current") == f"versions/{first['current']}"
    image = tmp_path / "photo.jpg"
    from conftest import write_image

    write_image(image, size=(SIZE, SIZE))
    ran = subprocess.run(
        [device["api"]["python"], str(app / "current" / "classify.py"), str(image)], capture_output=True, text=True
    )
    assert ran.returncode == 0 and "tiny_int8.tflite" in ran.stdout


def test_ctrl_c_mid_benchmark_stops_the_device_too(bundle, device, tmp_path):
    command = [
        sys.executable, "-m", "edgelab.cli", "device", "bench", str(bundle), *device["args"],
        "--remote-dir", str(device["remote"]), "--runs", "1000000", "--min-time", "3000",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = str(device["remote"] / "bench" / "my_bundle")

    def device_benches() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if b"--bench" in cmd and cwd == marker:
                found.append(int(pid))
        return found

    deadline = time.monotonic() + 240
    while not device_benches() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert device_benches(), proc.communicate()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and len(err.strip().splitlines()) == 1
    deadline = time.monotonic() + 60  # the device side sees its session end and stops by itself
    while device_benches() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not device_benches()


def test_local_doctor_reports_this_machine(capsys):
    code, out, _err = run_cli(capsys, "doctor", "--json")
    report = json.loads(out)
    items = {c["item"]: c for c in report["checks"]}
    assert {"python", "tensorflow", "tf_keras", "litert", "numpy", "edgetpu_compiler", "chromium", "ssh"} <= set(items)
    assert items["litert"]["ok"] and items["numpy"]["ok"]  # this test runs in edgelab's own environment
    assert code == (0 if report["ok"] else 1)


def test_host_argument_is_checked_before_anything_runs(bundle, capsys):
    code, _, err = run_cli(capsys, "device", "doctor", "--host", "-oProxyCommand=touch /tmp/x")
    assert code == 2 and "user@host[:port]" in one_error_line(err)


@pytest.mark.parametrize("name", ["device_info.py", "device_bench.py"])
def test_device_side_modules_are_python37_and_need_only_the_device_stack(name):
    import ast

    import edgelab

    source = (Path(edgelab.__file__).parent / "bundle_template" / name).read_text()
    tree = ast.parse(source, feature_version=(3, 7))  # Coral's Mendel images ship Python 3.7
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = set(sys.stdlib_module_names) | {"numpy", "PIL", "classify", "tflite_runtime", "ai_edge_litert"}
    assert imported <= allowed, imported - allowed
    assert "edgelab" not in imported and "tensorflow" not in imported


def test_comparison_device_columns_come_from_the_device(tiny_models, sshd, device_python, tmp_path):
    """What run_comparison(..., device=...) calls: the files run there on in-memory test images (as PNG)."""
    from edgelab.device import Device

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (9, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.arange(9) % len(LABELS)
    remote = tmp_path / "remote"
    measured = Device(sshd.host, sshd.ssh_config, str(device_python)).bench_variants(
        {"int8": tiny_models["int8"], "fp32": tiny_models["fp32"]}, LABELS, images, labels, remote_dir=str(remote)
    )
    assert (remote / "bench" / "edgelab-comparison" / "classify.py").exists()  # there, not in the login's home
    assert measured["device"]["runtime"] == "tflite_runtime" and measured["device"]["host"] == sshd.host
    assert set(measured["models"]) == {"int8", "fp32"}
    for columns in measured["models"].values():
        assert set(columns) == {"device_p50_ms", "device_accuracy", "device_agreement"}
        assert columns["device_p50_ms"] > 0 and 0 <= columns["device_accuracy"] <= 1
        assert columns["device_accuracy"] * 9 == round(columns["device_accuracy"] * 9)  # a share of 9 images
