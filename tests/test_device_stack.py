"""The device stack the device tests run on: a separate interpreter and a real sshd on 127.0.0.1."""

from __future__ import annotations

import subprocess


def _ssh(server, *command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", str(server.ssh_config), "-o", "BatchMode=yes", server.host, *command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def test_device_python_has_the_device_stack_and_nothing_else(device_python):
    probe = (
        "import importlib.util as u, numpy, PIL, tflite_runtime;"
        "print(tflite_runtime.__version__, numpy.__version__.split('.')[0],"
        " [m for m in ('tensorflow', 'edgelab', 'ai_edge_litert') if u.find_spec(m)])"
    )
    out = subprocess.run([str(device_python), "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=2) == ["2.14.0", "1", "[]\n"]


def test_sshd_runs_commands_and_copies_files_with_strict_host_keys(sshd, tmp_path):
    done = _ssh(sshd, "echo", "hello from the device")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from the device\n"
    src = tmp_path / "a file.txt"
    src.write_text("payload")
    target = tmp_path / "copied here"
    target.mkdir()
    copy = subprocess.run(
        ["scp", "-F", str(sshd.ssh_config), "-o", "BatchMode=yes", str(src), f"{sshd.host}:{target}/"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert copy.returncode == 0, copy.stderr
    assert (target / "a file.txt").read_text() == "payload"


def test_sshd_refuses_a_client_that_expects_another_host_key(sshd, tmp_path):
    import _sshd

    other = _sshd.keygen(tmp_path / "other_host_key")
    wrong = _sshd.write_known_hosts(tmp_path / "known_hosts", sshd.port, other)
    config = sshd.client_config(tmp_path / "ssh_config", known_hosts=wrong)
    marker = tmp_path / "ran"
    done = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", sshd.host, "touch", str(marker)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in done.stderr
    assert not marker.exists()
