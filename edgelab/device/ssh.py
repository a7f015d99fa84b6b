"""Reach a device with the system's OpenSSH client (``ssh``/``scp``), the user's own setup.

Host aliases, keys, the agent and known_hosts come from ``~/.ssh/config`` or from ``ssh_config``
(``ssh -F``). Every call runs with ``BatchMode=yes`` (never waits for a password or a question),
``StrictHostKeyChecking=yes`` (an unknown or changed host key stops the call before anything runs on
the device), a connection timeout and an overall timeout. ssh's own failures become typed errors with
one line that says what to do.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from .._config import Options
from .._log import logger
from ..errors import (
    ConfigError,
    DeviceAuthError,
    DeviceDiskFullError,
    DeviceError,
    DeviceRuntimeError,
    DeviceTimeoutError,
    DeviceUnreachableError,
    HostKeyError,
)

RESULT_MARKER = "EDGELAB-RESULT "
#: Seconds ssh may take to open the connection.
CONNECT_TIMEOUT_S = 10
#: Seconds a short command (a probe, a file operation) may take in all.
SHORT_TIMEOUT_S = 120
#: The device folder edgelab works in, relative to the login's home unless absolute.
REMOTE_DIR = "edgelab"

_HOST_RE = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@\s:\[\]]+)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class SSHTarget(Options):
    """How to reach one device: ``host`` is an ssh_config alias or ``user@host[:port]``.

    :class:`edgelab.device.Device` is this plus what runs there (``bench_variants``). Checked once,
    when made; the device functions take its fields as keyword arguments too.

    Attributes:
        host: What the user gave.
        ssh_config: A client config file passed with ``ssh -F`` (None: ``~/.ssh/config``).
        python: The device's interpreter (a command on its PATH or a path).
        connect_timeout_s: Seconds to open the connection.
        remote_dir: The folder edgelab works in on the device (relative to the login's home unless
            absolute): ``bench/<bundle>/`` and ``deploy/<app>/`` go under it.
    """

    options_name: ClassVar[str | None] = "Device"

    host: str
    ssh_config: str | os.PathLike | None = None
    python: str = "python3"
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    remote_dir: str = REMOTE_DIR

    def __post_init__(self) -> None:
        host = str(self.host).strip()
        if not host or host.startswith("-") or not _HOST_RE.match(host):
            raise ConfigError(
                f"Expected --host to be an ssh_config alias or user@host[:port]. Received: host={self.host!r}"
            )
        object.__setattr__(self, "host", host)
        if self.ssh_config is not None:
            path = Path(self.ssh_config).expanduser()
            if not path.is_file():
                raise ConfigError(f"Expected --ssh-config to be a file. Received: {str(path)!r}, which does not exist")
            object.__setattr__(self, "ssh_config", path)
        if not str(self.python).strip():
            raise ConfigError(f"Expected --python to name the device's interpreter. Received: {self.python!r}")
        if not self.connect_timeout_s > 0:
            raise ConfigError(f"Expected connect_timeout_s > 0. Received: {self.connect_timeout_s!r}")
        if not isinstance(self.remote_dir, str) or not self.remote_dir.strip():
            raise ConfigError(
                f"Expected --remote-dir to be a folder on the device. Received: remote_dir={self.remote_dir!r}"
            )

    @property
    def destination(self) -> str:
        m = _HOST_RE.match(self.host)
        assert m is not None  # checked in __post_init__
        host = m.group("host").strip("[]")
        return f"{m.group('user')}@{host}" if m.group("user") else host

    @property
    def port(self) -> int | None:
        m = _HOST_RE.match(self.host)
        return int(m.group("port")) if m and m.group("port") else None

    def options(self) -> list[str]:
        """The options every ssh and scp call gets."""
        opts = ["-F", os.fspath(self.ssh_config)] if self.ssh_config else []
        for option in (
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            f"ConnectTimeout={max(1, round(self.connect_timeout_s))}",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
        ):
            opts += ["-o", option]
        return opts

    def ssh_command(self, remote: str) -> list[str]:
        port = ["-p", str(self.port)] if self.port else []
        return ["ssh", *self.options(), *port, "--", self.destination, remote]

    def scp_command(self, sources: Sequence[str | os.PathLike], remote_dir: str) -> list[str]:
        port = ["-P", str(self.port)] if self.port else []
        target = f"{self._scp_host()}:{scp_path(remote_dir.rstrip('/') + '/')}"
        return ["scp", "-q", *self.options(), *port, "--", *[str(s) for s in sources], target]

    def _scp_host(self) -> str:
        m = _HOST_RE.match(self.host)
        assert m is not None
        host = m.group("host")
        if ":" in host.strip("[]") and not host.startswith("["):
            host = f"[{host}]"
        return f"{m.group('user')}@{host}" if m.group("user") else host


def as_target(host: str | SSHTarget, options: Mapping[str, Any], kind: type[SSHTarget] = SSHTarget) -> SSHTarget:
    """``host`` (a name, or a target kept with its own class) with the connection ``options`` applied.

    Raises:
        ConfigError: an option is not a connection setting (with a did-you-mean hint), or a value is wrong.
    """
    if isinstance(host, SSHTarget):
        return host.replace(**options) if options else host
    return kind.resolve(None, {**options, "host": str(host)})


def check_clients() -> None:
    """Refuse early, in one line, when OpenSSH's client is not installed."""
    missing = [name for name in ("ssh", "scp") if shutil.which(name) is None]
    if missing:
        raise DeviceError(
            f"{' and '.join(missing)} not found: edgelab reaches devices with OpenSSH's client "
            "(sudo apt-get install openssh-client)"
        )


@functools.cache
def _openssh_version() -> tuple[int, int]:
    try:
        done = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stderr + done.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def scp_path(path: str) -> str:
    """A remote path as scp must write it: literal for OpenSSH 9+ (SFTP protocol), shell-quoted before."""
    return path if _openssh_version() >= (9, 0) else shlex.quote(path)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def resolved(device: SSHTarget) -> dict[str, str]:
    """What ssh makes of the host (``ssh -G``: hostname, port, known_hosts files), without connecting."""
    port = ["-p", str(device.port)] if device.port else []
    try:
        done = subprocess.run(
            ["ssh", "-G", *device.options(), *port, "--", device.destination],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out


def _known_host_hints(device: SSHTarget) -> tuple[str, str, str]:
    """(hostname, port, the known_hosts file) as ssh resolves them for the device."""
    config = resolved(device)
    host = config.get("hostname") or device.destination.rpartition("@")[2]
    port = config.get("port") or str(device.port or 22)
    files = config.get("userknownhostsfile", "").split()
    return host, port, files[0] if files else "~/.ssh/known_hosts"


def ssh_failure(device: SSHTarget, stderr: str, what: str) -> DeviceError:
    """The typed error for a failed ssh/scp call (exit 255 or scp's exit 1)."""
    text = stderr or ""
    host = device.host
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or ("Host key for" in text and "has changed" in text):
        name, port, known = _known_host_hints(device)
        entry = name if port == "22" else f"[{name}]:{port}"
        return HostKeyError(
            f"the host key of {host} has changed since it was added to known_hosts, so nothing was run on it; "
            f"if the device was reinstalled, check its new key and replace the old one: ssh-keygen -f "
            f"{shlex.quote(known)} -R {shlex.quote(entry)}, then ssh {host} once"
        )
    if "Host key verification failed" in text or "host key is known" in text:
        name, port, known = _known_host_hints(device)
        return HostKeyError(
            f"{host}'s host key is not in known_hosts, so nothing was run on it; check its fingerprint and add it: "
            f"ssh-keyscan {'' if port == '22' else '-p ' + port + ' '}{name} >> {shlex.quote(known)} "
            f"(or ssh {host} once and answer yes)"
        )
    if "Permission denied" in text or "Too many authentication failures" in text:
        return DeviceAuthError(
            f"{host} refused the login ({_last_line(text)}); install your public key there with ssh-copy-id "
            f"{host}, or name the key with IdentityFile in your ssh config"
        )
    unreachable = (
        "Could not resolve hostname",
        "Connection refused",
        "Connection timed out",
        "Operation timed out",
        "No route to host",
        "Network is unreachable",
        "Connection closed by",
        "Connection reset",
        "timed out during banner exchange",
        "Name or service not known",
        "Temporary failure in name resolution",
    )
    if any(marker in text for marker in unreachable):
        return DeviceUnreachableError(f"cannot reach {host}: {_last_line(text)}")
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return DeviceDiskFullError(f"the device {host} ran out of disk while {what}: {_last_line(text)}")
    return DeviceError(f"{what} on {host} failed: {_last_line(text) or 'ssh gave no reason'}")


def run(
    device: SSHTarget,
    remote: str,
    *,
    what: str,
    input: bytes | None = None,
    timeout_s: float = SHORT_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    """Run ``remote`` (a shell command line) on the device; ssh failures raise typed errors.

    A non-zero exit of the command itself is returned, not raised.
    """
    check_clients()
    command = device.ssh_command(remote)
    logger.debug("ssh: %s", shlex.join(command))
    try:
        done = subprocess.run(
            command,
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise DeviceTimeoutError(
            f"{what} on {device.host} took longer than {timeout_s:.0f} s and was stopped"
        ) from None
    if done.returncode == 255:
        raise ssh_failure(device, done.stderr.decode("utf-8", "replace"), what)
    return done


def copy(device: SSHTarget, sources: Sequence[str | os.PathLike], remote_dir: str, *, timeout_s: float) -> None:
    """scp ``sources`` into ``remote_dir`` (which exists) on the device."""
    check_clients()
    command = device.scp_command(sources, remote_dir)
    logger.debug("scp: %d file(s) to %s", len(sources), remote_dir)
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceTimeoutError(
            f"copying to {device.host} took longer than {timeout_s:.0f} s and was stopped; a rerun reuses what arrived"
        ) from None
    if done.returncode != 0:
        raise ssh_failure(device, done.stderr.decode("utf-8", "replace"), "copying files")


def template_source(name: str) -> str:
    """The text of a device-side module from edgelab/bundle_template/."""
    return (resources.files("edgelab") / "bundle_template" / name).read_text(encoding="utf-8")


def parse_result(stdout: bytes) -> dict[str, Any] | None:
    """The JSON after the last ``EDGELAB-RESULT`` line a device-side script printed, or None."""
    text = stdout.decode("utf-8", "replace")
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                return json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                return None
    return None


def no_python(device: SSHTarget, done: subprocess.CompletedProcess) -> DeviceRuntimeError | None:
    """The error when the device's shell found no ``--python`` interpreter (exit 126/127)."""
    if done.returncode in (126, 127):
        return DeviceRuntimeError(
            f"{device.python!r} cannot run on {device.host} ({_last_line(done.stderr.decode('utf-8', 'replace'))}); "
            "install Python 3 there (sudo apt-get install python3) or name an interpreter with --python PATH"
        )
    return None


def run_helper(
    device: SSHTarget, request: dict[str, Any], *, what: str, timeout_s: float = SHORT_TIMEOUT_S
) -> dict[str, Any]:
    """Run device_info.py (sent on stdin, nothing copied first) with one request; its JSON answer."""
    source = template_source("device_info.py")
    script = source.replace(
        'if __name__ == "__main__":\n    sys.exit(main())',
        f"sys.exit(main(json.loads({json.dumps(json.dumps(request))})))",
    )
    done = run(device, f"{shlex.quote(device.python)} -", what=what, input=script.encode("utf-8"), timeout_s=timeout_s)
    problem = no_python(device, done)
    if problem is not None:
        raise problem
    result = parse_result(done.stdout)
    if result is None:
        detail = _last_line(done.stderr.decode("utf-8", "replace")) or f"exit code {done.returncode}"
        raise DeviceError(f"{what} on {device.host} failed: {detail}")
    return result


def remote_path(*parts: str) -> str:
    """Join device-side path parts with '/' (the device is POSIX, whatever this machine is)."""
    out = "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)
    return out or "."
