"""A stand-in device on this machine: a real OpenSSH server on 127.0.0.1 (Debian's openssh-server).

For trying ``edgelab device`` without a device (notebook 09) and for the tests: log in to this machine
over ssh and run bundles with another interpreter, e.g. the device stack of ``make device-venv``.

Everything is made at test time in one folder: a host key and a client key (ssh-keygen), the server's own
sshd_config (a free port, HostKey, AuthorizedKeysFile, PidFile, UsePAM no, the sftp subsystem that scp
needs), and a client config passed with ``ssh -F`` (system ssh reads ``~/.ssh/config`` from the password
database's home, not from ``$HOME``). The server runs in the foreground (``sshd -D``) and is stopped by its
pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DeviceError
from .bench import Device

__all__ = ["HOST", "SshServer", "keygen", "local_device", "missing", "start", "stop", "write_known_hosts"]

SSHD = Path(os.environ.get("EDGELAB_SSHD", "/usr/sbin/sshd"))
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
#: The host alias the client config defines.
HOST = "edgelab-device"
#: How long the server may take to accept connections (a wait, never an assertion).
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SshServer:
    """A running sshd and the client files that reach it."""

    host: str  # the alias in ssh_config
    port: int
    user: str
    ssh_config: Path  # pass with ssh -F / edgelab --ssh-config
    known_hosts: Path
    identity: Path
    host_public_key: str  # "ssh-ed25519 AAAA..."
    pid: int
    log: Path
    root: Path
    process: subprocess.Popen = field(compare=False, repr=False)
    python: str = "python3"

    def device(self, python: str | None = None) -> Any:
        """An :class:`edgelab.device.Device` that reaches this server."""

        return Device(self.host, self.ssh_config, python or self.python)

    def client_config(self, path: Path, known_hosts: Path | None = None, port: int | None = None) -> Path:
        """Write another client config for the same server (e.g. with a wrong known_hosts file)."""
        path.write_text(_client_config(self, known_hosts or self.known_hosts, port or self.port))
        return path


def missing() -> str | None:
    """Why no test sshd can run here (one line), or None."""
    for tool in (SSHD, SFTP_SERVER):
        if not tool.exists():
            return f"{tool} is not installed (apt-get install openssh-server)"
    for name in ("ssh", "scp", "ssh-keygen"):
        if shutil.which(name) is None:
            return f"{name} is not on PATH (apt-get install openssh-client)"
    return None


def _die_with_parent() -> None:
    """In the child before exec: Linux stops sshd when the process that started it dies (even on SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (and ``path.pub``), made by ssh-keygen; its public key line."""
    for old in (path, path.with_suffix(".pub")):  # a key from an earlier start: ssh-keygen would ask
        old.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgelab-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


def _client_config(server: SshServer, known_hosts: Path, port: int) -> str:
    return (
        f"Host {server.host}\n"
        f"  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        f"  User {server.user}\n"
        f"  IdentityFile {server.identity}\n"
        f"  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        f"  GlobalKnownHostsFile /dev/null\n"
        f"  StrictHostKeyChecking yes\n"
        f"  LogLevel ERROR\n"
    )


def write_known_hosts(path: Path, port: int, public_key: str) -> Path:
    path.write_text(f"[127.0.0.1]:{port} {public_key}\n")
    return path


def start(root: Path, python: str = "python3") -> SshServer:
    """Start sshd on a free port of 127.0.0.1 with keys and configs under ``root``."""
    why = missing()
    if why:
        raise DeviceError(f"no local sshd: {why}")
    root = Path(root).resolve()  # sshd re-executes itself from / for each connection: absolute paths only
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    host_pub = keygen(root / "host_ed25519")
    client_pub = keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_pub + "\n")
    os.chmod(root / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        # sshd started as root insists on its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    user = getpass.getuser()
    log = root / "sshd.log"
    last_error = ""
    for _attempt in range(3):  # another process may take the free port between picking it and binding it
        port = _free_port()
        config = root / "sshd_config"
        config.write_text(
            f"Port {port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {root / 'host_ed25519'}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
            f"AllowUsers {user}\n"
            "UsePAM no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "MaxStartups 50:30:100\n"
            "MaxSessions 50\n"
            f"Subsystem sftp {SFTP_SERVER}\n"
        )
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        last_error = (proc.stderr.read().decode(errors="replace") if proc.stderr else "") + (
            log.read_text(errors="replace") if log.exists() else ""
        )
    else:
        raise DeviceError(f"the local sshd did not start: {' '.join(last_error.split())[:300]}")
    known_hosts = write_known_hosts(root / "known_hosts", port, host_pub)
    server = SshServer(
        host=HOST,
        port=port,
        user=user,
        ssh_config=root / "ssh_config",
        known_hosts=known_hosts,
        identity=root / "client_ed25519",
        host_public_key=host_pub,
        pid=proc.pid,
        log=log,
        root=root,
        process=proc,
        python=python,
    )
    server.client_config(server.ssh_config)
    return server


def stop(server: SshServer) -> None:
    """Stop the server by its pid (the listener; sessions it forked end with their connections)."""
    proc = server.process
    if proc.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@contextmanager
def local_device(python: str = "python3", root: str | os.PathLike | None = None) -> Iterator[SshServer]:
    """A local sshd for the block, stopped (by its pid) at the end; ``server.device()`` reaches it."""

    with tempfile.TemporaryDirectory(prefix="edgelab-sshd-", dir=root) as tmp:
        server = start(Path(tmp), python)
        try:
            yield server
        finally:
            stop(server)
