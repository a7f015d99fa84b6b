"""Copy a set of files to a folder on a device, reusing what is already there by hash.

Each needed file travels once, named by its sha256, into ``<folder>/.incoming/``; a device-side step
then checks every hash and moves the copies into place, so the folder never holds a half-written
file. An interrupted copy leaves only finished or torn files in ``.incoming/``: the rerun keeps the
finished ones (their hash matches) and sends the rest. ``.edgelab-files.json`` records what edgelab
wrote, so a file changed on the device is noticed instead of silently overwritten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._files import sha256_file
from .._log import logger, tqdm
from ..errors import DeviceDiskFullError, DeviceError, DeviceFileConflictError
from . import ssh

#: Files per scp call (one connection each).
BATCH = 64
#: Free disk the device keeps beyond the copy.
DISK_MARGIN_BYTES = 8 * 2**20


@dataclass(frozen=True)
class SyncResult:
    """What one copy did."""

    copied: int
    reused: int
    bytes_copied: int
    removed: tuple[str, ...] = ()


def local_files(folder: Path) -> dict[str, Path]:
    """Every regular, non-hidden file under ``folder``, by its relative POSIX path."""
    out: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file():
            out[rel.as_posix()] = path
    return out


def push(
    device: ssh.SSHTarget,
    files: Mapping[str, Path],
    remote_dir: str,
    *,
    overwrite: bool = False,
    executable: tuple[str, ...] = ("classify.py",),
    progress: bool | None = None,
    timeout_s: float = 1800.0,
) -> SyncResult:
    """Make ``remote_dir`` hold exactly ``files`` (relative path -> local file).

    Raises:
        DeviceFileConflictError: a file edgelab copied earlier was changed on the device (pass
            ``overwrite=True`` to replace it).
        DeviceDiskFullError: the device has not enough free disk for what must be copied.
        DeviceError: the copy or the check on the device failed.
    """
    wanted = {rel: sha256_file(path) for rel, path in files.items()}
    state = ssh.run_helper(
        device, {"action": "hashes", "root": remote_dir, "files": wanted}, what="reading the device's copy"
    )
    if state.get("ok") is False:
        raise DeviceError(f"reading {remote_dir} on {device.host} failed: {state.get('error')}")
    remote = state.get("files", {})
    recorded = (state.get("record") or {}).get("files", {})
    edited = sorted(
        rel
        for rel, digest in remote.items()
        if digest is not None and digest != wanted[rel] and recorded.get(rel, digest) != digest
    )
    unknown = sorted(rel for rel, digest in remote.items() if digest and digest != wanted[rel] and rel not in recorded)
    if state.get("exists") and not recorded and unknown:
        edited = sorted(set(edited) | set(unknown))  # a folder edgelab did not make
    if edited and not overwrite:
        raise DeviceFileConflictError(
            f"{', '.join(edited[:3])}{' ...' if len(edited) > 3 else ''} in {remote_dir} on {device.host} "
            "changed on the device since edgelab copied it; nothing was replaced (rerun with --overwrite to "
            "replace the device's version, or --cleanup to start over)"
        )
    staged = set(state.get("staged", {}))
    needed: dict[str, Path] = {}
    for rel, digest in wanted.items():
        if remote.get(rel) != digest and digest not in staged:
            needed.setdefault(digest, files[rel])
    size = sum(p.stat().st_size for p in needed.values())
    free = state.get("free_bytes")
    if free is not None and size + DISK_MARGIN_BYTES > free:
        raise DeviceDiskFullError(
            f"{device.host} has {free / 2**20:.1f} MiB free at {remote_dir} but the copy needs "
            f"{(size + DISK_MARGIN_BYTES) / 2**20:.1f} MiB; free some space or pass --remote-dir on a bigger disk"
        )
    incoming = ssh.remote_path(remote_dir, ".incoming")
    if needed:
        done = ssh.run(device, f"mkdir -p -- {ssh.shlex.quote(incoming)}", what="creating the folder")
        if done.returncode != 0:
            raise ssh.ssh_failure(device, done.stderr.decode("utf-8", "replace"), f"creating {incoming}")
        with tempfile.TemporaryDirectory(prefix="edgelab-push-") as tmp:
            names = []
            for digest, path in needed.items():  # scp names the copy after the local file: link by hash
                link = Path(tmp, digest)
                os.symlink(path.resolve(), link)
                names.append(link)
            batches = [names[i : i + BATCH] for i in range(0, len(names), BATCH)]
            for batch in tqdm(batches, desc=f"copy to {device.host}", unit="batch", progress=progress):
                ssh.copy(device, batch, incoming, timeout_s=timeout_s)
    stale = sorted(set(recorded) - set(wanted))
    result = ssh.run_helper(
        device,
        {
            "action": "commit",
            "root": remote_dir,
            "files": wanted,
            "executable": [e for e in executable if e in wanted],
            "remove": stale,
        },
        what="checking the copy",
    )
    if not result.get("ok"):
        error = str(result.get("error"))
        if result.get("errno") in (28, 122):  # ENOSPC, EDQUOT
            raise DeviceDiskFullError(f"the device {device.host} ran out of disk in {remote_dir}: {error}")
        raise DeviceError(f"the copy to {remote_dir} on {device.host} is not complete: {error}; a rerun resumes it")
    logger.info("%s: %d file(s) copied, %d reused", device.host, len(needed), len(wanted) - len(needed))
    return SyncResult(len(needed), len(wanted) - len(needed), size, tuple(result.get("removed", ())))


def remove(device: ssh.SSHTarget, remote_dir: str) -> bool:
    """Delete a folder edgelab made on the device (it holds .edgelab-files.json); True if it existed."""
    result = ssh.run_helper(device, {"action": "remove", "root": remote_dir}, what="cleaning up")
    if not result.get("ok"):
        raise DeviceError(f"cleaning up {remote_dir} on {device.host} failed: {result.get('error')}")
    return bool(result.get("removed"))
