"""``edgelab device deploy`` / ``--rollback``: install a bundle as a new version and switch atomically.

On the device (``<remote_dir>/deploy/<app>/``)::

    versions/<version>/     one folder per installed bundle (version = a hash of its files)
    current -> versions/<version>     what runs; replaced in one rename, so it always names one version
    previous -> versions/<version>    what --rollback returns to

A deploy copies into a staging folder (resumable, see :mod:`edgelab.device.sync`), runs the smoke
test there with the device's own stack (``classify.py --bench --smoke``: every model loads, runs once
and gives one score per label), and only then moves the folder into ``versions/`` and switches
``current``. A failed copy, a failed smoke test or a kill at any point leaves the running version as
it was.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import sha256_file
from .._text import dataclass_repr
from ..errors import ConfigError, DeviceError
from ..records import Record
from . import ssh, sync
from .bench import Device, bundle_folder_name, bundle_meta


@dataclass(frozen=True)
class DeployResult(Record):
    """Where the device's ``current`` and ``previous`` links point after a deploy or rollback."""

    host: str
    app: str
    current: str | None
    previous: str | None
    changed: bool
    copied: int = 0
    reused: int = 0

    def __repr__(self) -> str:
        return dataclass_repr(self)


def bundle_version(bundle: str | Path) -> str:
    """The version name of a bundle: ``v-`` and 12 hex digits of the hash of its files and their paths."""
    files = sync.local_files(Path(bundle))
    digest = hashlib.sha256()
    for rel, path in sorted(files.items()):
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return "v-" + digest.hexdigest()[:12]


def _device(host: str | ssh.SSHTarget, connection: dict[str, Any]) -> ssh.SSHTarget:
    return ssh.as_target(host, connection, Device)


def _check_app(app: str) -> str:
    if not app or app in (".", "..") or "/" in app or app.startswith("."):
        raise ConfigError(f"Expected --app to be a plain folder name. Received: {app!r}")
    return app


def deploy(
    bundle: str | Path,
    host: str | ssh.SSHTarget,
    *,
    app: str | None = None,
    smoke_test: bool = True,
    progress: bool | None = None,
    timeout_s: float = 1800.0,
    **connection: Any,
) -> DeployResult:
    """Install ``bundle`` on the device as a new version and make it ``current``.

    Args:
        bundle: A bundle folder.
        host: An ssh_config alias, ``user@host[:port]``, or a :class:`Device`.
        app: The application folder on the device (default: the bundle folder's name).
        smoke_test: Run every model once on the device before switching.
        progress: Progress bars.
        timeout_s: Seconds the copy may take.
        **connection: Fields of :class:`Device`, replacing ``host``'s: ``ssh_config`` (client config
            file for ``ssh -F``), ``python`` (the device's interpreter, runs the smoke test),
            ``connect_timeout_s``, ``remote_dir`` (the folder on the device holding ``deploy/<app>/``).

    Raises:
        DeviceError: the copy or the smoke test failed (the running version is untouched), or ssh failed.
    """
    device = _device(host, connection)
    remote_dir = device.remote_dir
    folder = Path(bundle).expanduser()
    bundle_meta(folder)
    name = _check_app(app or bundle_folder_name(folder))
    version = bundle_version(folder)
    app_dir = ssh.remote_path(remote_dir, "deploy", name)
    status = _status(device, app_dir)
    if version in status.get("versions", []):
        copied = reused = 0
        staged = ssh.remote_path(app_dir, "versions", version)
        files = sync.local_files(folder)
        state = ssh.run_helper(
            device,
            {"action": "hashes", "root": staged, "files": {r: sha256_file(p) for r, p in files.items()}},
            what="checking the installed version",
        )
        changed = [r for r, d in state.get("files", {}).items() if d != sha256_file(files[r])]
        if changed:
            raise DeviceError(
                f"version {version} on {device.host} was changed there ({', '.join(sorted(changed)[:3])}); "
                "nothing was switched"
            )
    else:
        staged = ssh.remote_path(app_dir, "versions", f".staging-{version}")
        pushed = sync.push(
            device, sync.local_files(folder), staged, overwrite=True, progress=progress, timeout_s=timeout_s
        )
        copied, reused = pushed.copied, pushed.reused
    if smoke_test:
        remote = f"cd {shlex.quote(staged)} && exec {shlex.quote(device.python)} -B classify.py --bench --smoke"
        done = ssh.run(device, remote, what="the smoke test", timeout_s=600)
        problem = ssh.no_python(device, done)
        if problem is not None:
            raise problem
        result = ssh.parse_result(done.stdout) or {}
        if not result.get("ok"):
            failed = [f"{r.get('model')}: {r.get('reason')}" for r in result.get("rows", []) if r.get("status") != "ok"]
            why = result.get("error") or "; ".join(failed) or ssh._last_line(done.stderr.decode("utf-8", "replace"))
            raise DeviceError(
                f"the smoke test of {version} failed on {device.host} ({why}); the running version "
                f"({status.get('current') or 'none'}) is untouched"
            )
    answer = ssh.run_helper(
        device, {"action": "install", "app": app_dir, "version": version, "staged": staged}, what="switching versions"
    )
    if not answer.get("ok"):
        raise DeviceError(f"switching to {version} on {device.host} failed: {answer.get('error')}")
    return DeployResult(
        device.host, name, answer.get("current"), answer.get("previous"), bool(answer.get("changed")), copied, reused
    )


def _status(device: ssh.SSHTarget, app_dir: str) -> dict[str, Any]:
    answer = ssh.run_helper(device, {"action": "status", "app": app_dir}, what="reading the installed versions")
    if not answer.get("ok"):
        raise DeviceError(f"reading {app_dir} on {device.host} failed: {answer.get('error')}")
    return answer


def rollback(
    host: str | ssh.SSHTarget,
    app: str,
    **connection: Any,
) -> DeployResult:
    """Switch ``current`` back to the previous version (and ``previous`` to the one that was current).

    ``connection``: fields of :class:`Device` (``ssh_config``, ``python``, ``remote_dir``, ...), replacing ``host``'s.
    """
    device = _device(host, connection)
    name = _check_app(app)
    app_dir = ssh.remote_path(device.remote_dir, "deploy", name)
    answer = ssh.run_helper(device, {"action": "rollback", "app": app_dir}, what="rolling back")
    if not answer.get("ok"):
        raise DeviceError(f"rolling back {name} on {device.host} failed: {answer.get('error')}")
    return DeployResult(device.host, name, answer.get("current"), answer.get("previous"), True)


def deployed(
    host: str | ssh.SSHTarget,
    app: str,
    **connection: Any,
) -> dict[str, Any]:
    """The installed versions of ``app`` on the device, and where ``current``/``previous`` point.

    ``connection``: fields of :class:`Device` (``ssh_config``, ``python``, ``remote_dir``, ...), replacing ``host``'s.
    """
    device = _device(host, connection)
    status = _status(device, ssh.remote_path(device.remote_dir, "deploy", _check_app(app)))
    status.pop("ok", None)
    return status
