"""What a device (or this machine) can run: the facts, and the doctor that turns them into fixes.

The facts come from ``device_info.py`` (a bundle module, standard library only) run by the device's own
interpreter: sent over ssh on stdin for a device, run as a child process for this machine. Runtimes
and the Edge TPU delegate are tried in child processes there, so a broken stack is reported, not fatal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata, resources
from typing import TYPE_CHECKING, Any

from .._text import hanging
from ..errors import DeviceError
from ..records import Record
from . import ssh

if TYPE_CHECKING:
    import pandas as pd

#: Runtimes a bundle can use on the CPU, in classify.py's order.
CPU_RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
#: Free disk a device needs for a bundle and its test images.
MIN_FREE_BYTES = 100 * 2**20
#: The oldest Python the bundle's code runs on (classify.py and its modules: 3.6 syntax).
MIN_PYTHON = (3, 6)
#: tflite-runtime's last release is 2.14: every release is built against numpy 1.
TFLITE_RUNTIME_NUMPY2 = (2, 15)


def _version_tuple(text: str | None) -> tuple[int, ...]:
    out = []
    for part in str(text or "").split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


@dataclass(frozen=True)
class DeviceInfo:
    """The facts device_info.py reported (``raw``), with the few the rest of edgelab reads."""

    raw: dict[str, Any] = field(repr=False)
    python_command: str = "python3"

    @property
    def python(self) -> str:
        return str(self.raw.get("python"))

    @property
    def runtimes(self) -> dict[str, dict[str, Any]]:
        return dict(self.raw.get("runtimes") or {})

    def working_runtimes(self) -> list[str]:
        return [n for n in CPU_RUNTIMES if self.runtimes.get(n, {}).get("ok")]

    @property
    def runtime(self) -> str | None:
        """The runtime classify.py picks for a CPU model (its order: LiteRT, then tflite_runtime)."""
        working = self.working_runtimes()
        return working[0] if working else None

    @property
    def runtime_version(self) -> str | None:
        return self.runtimes.get(self.runtime or "", {}).get("version")

    @property
    def edgetpu(self) -> bool:
        tpu = self.raw.get("edgetpu") or {}
        return bool(tpu.get("usb") or tpu.get("pcie"))

    @property
    def edgetpu_delegate(self) -> bool:
        return bool((self.raw.get("edgetpu") or {}).get("delegate_loads"))

    def runtime_label(self) -> str:
        return f"{self.runtime} {self.runtime_version}" if self.runtime else "no TFLite runtime"

    def cannot_run_bundle(self) -> str | None:
        """Why the bundle cannot run there (the first failed required check, with its fix), or None."""
        for check in doctor_checks(self):
            if check.required and not check.ok:
                return f"{check.found}; fix: {check.fix}"
        return None

    def summary(self) -> dict[str, Any]:
        """The ``device`` part of the bench JSON."""
        raw = self.raw
        return {
            "python": self.python,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "machine": raw.get("machine"),
            "cpu": raw.get("cpu"),
            "cpu_count": raw.get("cpu_count"),
            "os": raw.get("os"),
            "numpy": raw.get("numpy"),
            "pillow": raw.get("pillow"),
            "edgetpu": self.edgetpu,
            "edgetpu_delegate": self.edgetpu_delegate,
            "temperature_c": raw.get("temperature_c") or {},
            "throttling": raw.get("throttling") or {},
            "free_bytes": raw.get("free_bytes"),
        }


def probe(device: ssh.SSHTarget, path: str = ".") -> DeviceInfo:
    """Ask the device what it has (device_info.py over ssh, nothing copied)."""
    raw = ssh.run_helper(device, {"action": "info", "path": path}, what="asking the device what it has")
    if raw.get("ok") is False:
        raise DeviceError(f"asking {device.host} what it has failed: {raw.get('error')}")
    return DeviceInfo(raw, device.python)


def probe_local(python: str | None = None, path: str = ".", tensorflow: bool = False) -> DeviceInfo:
    """The same facts for an interpreter on this machine (default: this one)."""

    script = resources.files("edgelab") / "bundle_template" / "device_info.py"
    request = json.dumps({"action": "info", "path": path, "tensorflow": tensorflow})
    done = subprocess.run(
        [python or sys.executable, str(script), request], capture_output=True, timeout=300, stdin=subprocess.DEVNULL
    )
    raw = ssh.parse_result(done.stdout)
    if raw is None:
        raise DeviceError(f"device_info.py failed: {ssh._last_line(done.stderr.decode('utf-8', 'replace'))}")
    return DeviceInfo(raw, python or sys.executable)


@dataclass(frozen=True)
class Check(Record):
    """One doctor item: what was found, whether it is fine, and the one command that fixes it."""

    RECORD_KEYS = ("item", "ok", "required", "found", "fix")

    item: str
    ok: bool
    found: str
    fix: str | None = None
    required: bool = True

    def line(self) -> str:
        mark = "ok " if self.ok else ("-- " if not self.required else "NO ")
        text = hanging(f"{mark} {self.item:<16} {self.found}", 21)
        return text + (f"\n{hanging(f'    fix: {self.fix}', 9)}" if self.fix and not self.ok else "")


@dataclass(frozen=True)
class DoctorReport(Record):
    """The doctor's items for one device or this machine."""

    RECORD_KEYS = ("where", "ok", "checks")

    where: str
    checks: tuple[Check, ...]
    info: DeviceInfo | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when every required item is fine (optional ones: the Edge TPU)."""
        return all(c.ok for c in self.checks if c.required)

    def check(self, item: str) -> Check:
        return next(c for c in self.checks if c.item == item)

    def to_frame(self) -> pd.DataFrame:
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.checks])

    def __str__(self) -> str:
        verdict = "can run a bundle" if self.ok else "cannot run a bundle yet"
        return "\n".join([f"{self.where}: {verdict}", *(c.line() for c in self.checks)])

    def __repr__(self) -> str:
        bad = [c.item for c in self.checks if not c.ok and c.required]
        return f"DoctorReport({self.where!r}, ok={self.ok}, missing={bad})"


def _pip(info: DeviceInfo, spec: str) -> str:
    return f"{info.python_command} -m pip install {spec}"


def doctor_checks(info: DeviceInfo) -> list[Check]:
    """The doctor's items for a device's facts: Python, runtimes, numpy ABI, Pillow, Edge TPU, disk."""
    raw = info.raw
    checks: list[Check] = []
    version = _version_tuple(raw.get("python"))
    checks.append(
        Check(
            "python",
            version >= MIN_PYTHON,
            f"Python {raw.get('python')}; the bundle's code needs 3.6+",
            "sudo apt-get install python3, or pass --python PATH to a newer interpreter",
        )
    )
    runtimes = info.runtimes
    working = info.working_runtimes()
    listed = ", ".join(
        f"{name} {r.get('version') or ''}".strip() + ("" if r.get("ok") else f" (fails: {r.get('error')})")
        for name, r in runtimes.items()
        if r.get("imported") or r.get("ok")
    )
    wheel = "tflite-runtime" if version and version[:2] <= (3, 11) else "ai-edge-litert"
    numpy = raw.get("numpy")
    tflite = runtimes.get("tflite_runtime", {})
    conflict = bool(
        tflite.get("imported")
        and _version_tuple(numpy)[:1] >= (2,)
        and (tflite.get("numpy_abi") or _version_tuple(tflite.get("version")) < TFLITE_RUNTIME_NUMPY2)
    )
    numpy_fix = _pip(info, '"numpy<2"')
    if conflict:  # the runtime is there; numpy 2 is what breaks it
        runtime_fix = numpy_fix
    elif wheel == "ai-edge-litert":
        runtime_fix = _pip(info, '"ai-edge-litert"')
    else:
        runtime_fix = _pip(info, '"tflite-runtime" "numpy<2"')
    checks.append(
        Check(
            "runtime",
            bool(working),
            f"working: {', '.join(working)}" + (f"; installed: {listed}" if listed else "")
            if working
            else f"no working TFLite runtime{'; installed: ' + listed if listed else ''}",
            runtime_fix,
        )
    )
    if conflict:
        found = (
            f"numpy {numpy} with tflite-runtime {tflite.get('version')}: tflite-runtime 2.14, its last release, is "
            "built for numpy 1 and fails under numpy 2 (_ARRAY_API not found)"
        )
    else:
        found = f"numpy {numpy}" if numpy else "numpy is not installed"
    checks.append(
        Check(
            "numpy",
            bool(numpy) and not conflict,
            found,
            numpy_fix if conflict or "tflite_runtime" in working or wheel == "tflite-runtime" else _pip(info, "numpy"),
        )
    )
    pillow = raw.get("pillow")
    checks.append(
        Check("pillow", bool(pillow), f"Pillow {pillow}" if pillow else "Pillow is not installed", _pip(info, "pillow"))
    )
    tpu = raw.get("edgetpu") or {}
    checks.append(
        Check(
            "libedgetpu",
            bool(tpu.get("library_loads")),
            f"{tpu.get('library')} loads"
            if tpu.get("library_loads")
            else f"{tpu.get('library')} not found (needed only for *_edgetpu.tflite)",
            "sudo apt-get install libedgetpu1-std (Coral's apt repository: https://coral.ai/software/#debian-packages)",
            required=False,
        )
    )
    delegate_fix = (
        "plug the USB Accelerator into a USB 3 port (replug after installing libedgetpu), or load the PCIe driver"
        if not info.edgetpu
        else f"{info.python_command} -m pip install tflite-runtime==2.5.0.post1 --extra-index-url https://google-coral.github.io/py-repo/"
    )
    checks.append(
        Check(
            "edgetpu delegate",
            bool(tpu.get("delegate_loads")),
            f"loads through {tpu.get('delegate_runtime')}"
            if tpu.get("delegate_loads")
            else f"does not load ({tpu.get('error') or 'no runtime to load it'})",
            delegate_fix,
            required=False,
        )
    )
    usb, pcie = tpu.get("usb") or [], tpu.get("pcie") or []
    slow = [u for u in usb if str(u.get("speed_mbps")) == "480"]
    present = ", ".join([f"USB {u['id']} ({u.get('speed_mbps')} Mbit/s)" for u in usb] + list(pcie))
    checks.append(
        Check(
            "edgetpu device",
            bool(usb or pcie) and not slow,
            present + ("; on a USB 2 port: several times slower" if slow else "")
            if usb or pcie
            else "no USB Accelerator (1a6e:089a / 18d1:9302) and no PCIe Edge TPU (/dev/apex_*)",
            "plug the USB Accelerator into a USB 3 port"
            if slow
            else "connect a Coral USB Accelerator, or for M.2/PCIe: sudo apt-get install gasket-dkms",
            required=False,
        )
    )
    free = raw.get("free_bytes")
    checks.append(
        Check(
            "disk",
            free is None or free >= MIN_FREE_BYTES,
            f"{free / 2**20:.0f} MiB free in the device folder" if free is not None else "free disk unknown",
            f"free at least {MIN_FREE_BYTES // 2**20} MiB there, or pass --remote-dir on a bigger disk",
        )
    )
    return checks


def device_doctor(host: str | ssh.SSHTarget, **connection: Any) -> DoctorReport:
    """Check that a device can run a bundle: per item what is missing and the one command that fixes it.

    ``host``: an ssh_config alias, ``user@host[:port]`` or a :class:`edgelab.device.Device`;
    ``connection``: its fields (``ssh_config``, ``python``, ``connect_timeout_s``, ``remote_dir``: the
    folder whose free disk is checked), replacing ``host``'s.
    """
    device = ssh.as_target(host, connection)
    info = probe(device, device.remote_dir)
    return DoctorReport(device.host, tuple(doctor_checks(info)), info)


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def local_doctor() -> DoctorReport:
    """The same for this machine: Python, TensorFlow, tf_keras, LiteRT, numpy, the compiler, Edge TPUs, Chromium, ssh."""
    info = probe_local(path=".")
    raw = info.raw
    checks: list[Check] = []
    version = _version_tuple(raw.get("python"))
    checks.append(
        Check(
            "python",
            (3, 10) <= version[:2] <= (3, 12),
            f"Python {raw.get('python')} ({sys.executable}); edgelab needs 3.10-3.12",
            "make PYTHON=python3.11 test (or install Python 3.11)",
        )
    )
    for dist, item, spec in (
        ("tensorflow", "tensorflow", '"tensorflow>=2.21,<2.22"'),
        ("tf-keras", "tf_keras", '"tf-keras>=2.21,<2.22"'),
        ("ai-edge-litert", "litert", "ai-edge-litert"),
    ):
        found = _dist_version(dist)
        checks.append(
            Check(
                item,
                found is not None,
                f"{dist} {found}" if found else f"{dist} is not installed",
                f"{sys.executable} -m pip install {spec}",
            )
        )
    litert = info.runtimes.get("ai_edge_litert", {})
    if litert.get("imported") and not litert.get("ok"):
        checks.append(
            Check(
                "litert runs",
                False,
                f"ai-edge-litert fails: {litert.get('error')}",
                f"{sys.executable} -m pip install --force-reinstall ai-edge-litert",
            )
        )
    device_checks = {c.item: c for c in doctor_checks(info)}
    checks.append(device_checks["numpy"])
    compiler = shutil.which("edgetpu_compiler")
    checks.append(
        Check(
            "edgetpu_compiler",
            compiler is not None,
            compiler or "not on PATH (edgelab predicts its verdict offline)",
            "sudo apt-get install edgetpu-compiler (Coral's apt repository, x86-64 Linux)",
            required=False,
        )
    )
    checks += [device_checks["libedgetpu"], device_checks["edgetpu delegate"], device_checks["edgetpu device"]]
    chromium = os.environ.get("EDGELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    checks.append(
        Check(
            "chromium",
            bool(chromium),
            chromium or "not found (the browser test is skipped)",
            "sudo apt-get install chromium",
            required=False,
        )
    )
    clients = [n for n in ("ssh", "scp") if shutil.which(n)]
    checks.append(
        Check(
            "ssh",
            len(clients) == 2,
            "OpenSSH client: " + (", ".join(clients) or "missing") + " (edgelab device)",
            "sudo apt-get install openssh-client",
            required=False,
        )
    )
    disk = device_checks["disk"]
    checks.append(Check(disk.item, disk.ok, disk.found.replace("in the device folder", "in this folder"), disk.fix))
    return DoctorReport("this machine", tuple(checks), info)
