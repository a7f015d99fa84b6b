"""The test device: a real OpenSSH server on 127.0.0.1 (the implementation is edgelab.device.local)."""

import subprocess
from pathlib import Path

from edgelab.device.local import HOST, SshServer, missing, start, stop, write_known_hosts

__all__ = ["HOST", "SshServer", "keygen", "missing", "start", "stop", "write_known_hosts"]


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (and ``path.pub``), made by ssh-keygen; its public key line."""
    for old in (path, path.with_suffix(".pub")):  # ssh-keygen would ask before replacing a key
        old.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgelab-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"
