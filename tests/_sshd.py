"""The test device: a real OpenSSH server on 127.0.0.1 (the implementation is edgelab.device.local)."""

from edgelab.device.local import HOST, SshServer, keygen, missing, start, stop, write_known_hosts

__all__ = ["HOST", "SshServer", "keygen", "missing", "start", "stop", "write_known_hosts"]
