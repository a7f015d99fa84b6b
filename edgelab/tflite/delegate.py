"""The Edge TPU delegate for a TFLite interpreter: the ``libedgetpu`` library, device discovery,
compiled-model checks (``edgelab.edgetpu.delegate`` re-exports these names).

Importable without TensorFlow (device side). The delegate is loaded through LiteRT
(``ai_edge_litert.interpreter.load_delegate``) or, on older device images, ``tflite_runtime``.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._log import logger
from .._text import dataclass_repr, wrap
from ..errors import ConfigError, DelegateError, RuntimeNotFoundError, did_you_mean
from ..records import Record
from .discovery import get_runtime
from .reader import EDGETPU_CUSTOM_OP, has_edgetpu_custom_op  # re-exported: detection reads the file

#: ``platform.system()`` -> the delegate library pycoral loads (pycoral/utils/edgetpu.py).
DELEGATE_LIBRARIES = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}

#: USB IDs of the Coral USB Accelerator: before its firmware loads, and after.
USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))

_DEVICE = re.compile(r"^(?:usb|pci)?(?::\d+)?$")
DEVICE_EXAMPLES = ("usb", "usb:0", "pci", "pci:0", ":0")


def coral_apt_commands(package: str) -> str:
    """The commands that install ``package`` from Coral's apt repository (the one copy in edgelab).

    Coral's pages add the key with ``apt-key``, deprecated on current Debian/Ubuntu; these put it
    in ``/etc/apt/keyrings`` instead (as Ultralytics' exporter does).
    """
    # Long commands continue with `` \`` (echo joins its two arguments with one space): each line fits
    # a notebook's output area and the text still pastes into a shell as is.
    return (
        "  sudo mkdir -p /etc/apt/keyrings\n"
        "  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \\\n"
        "    | sudo gpg --dearmor -o /etc/apt/keyrings/google.gpg\n"
        '  echo "deb [signed-by=/etc/apt/keyrings/google.gpg]" \\\n'
        '    "https://packages.cloud.google.com/apt coral-edgetpu-stable main" \\\n'
        "    | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list\n"
        "  sudo apt-get update\n"
        f"  sudo apt-get install {package}\n"
        "(Coral's own page pipes the key to `sudo apt-key add -` instead of the first two lines;\n"
        "apt-key is deprecated on current Debian/Ubuntu.)"
    )


_INSTALL_RUNTIME = wrap(
    "Install the Edge TPU runtime from Coral's apt repository (Debian/Ubuntu/Raspberry Pi OS):\n"
    + coral_apt_commands("libedgetpu1-std")
    + "\n(libedgetpu1-max runs at the maximum clock and gets hotter; the two packages conflict.) "
    "On macOS and Windows use the runtime archive from https://coral.ai/software/#edgetpu-runtime."
)

_NO_DEVICE = wrap(
    "For the USB Accelerator: plug it into a USB 3 port, check `lsusb` lists 1a6e:089a (before its "
    "firmware loads) or 18d1:9302 (after), and give your user access (udev rules from the "
    "libedgetpu package, then unplug and replug, or run as root). For a PCIe/M.2 card: install the "
    "gasket/apex driver (gasket-dkms), check /dev/apex_0 exists, and add your user to the 'apex' group."
)


def delegate_library_name(system: str | None = None) -> str:
    """The Edge TPU delegate library for an OS (``platform.system()`` name, default this machine).

    Raises:
        DelegateError: the OS has no Edge TPU runtime build.
    """
    system = system or platform.system()
    for name, library in DELEGATE_LIBRARIES.items():
        if name.lower() == str(system).lower():
            return library
    raise DelegateError(
        f"Expected an OS with an Edge TPU runtime, one of {list(DELEGATE_LIBRARIES)}. Received: system={system!r}"
    )


def validate_device(device: str | None) -> str | None:
    """Check an Edge TPU selector: None (any), ``usb``, ``usb:N``, ``pci``, ``pci:N`` or ``:N``.

    Raises:
        ConfigError: the selector has another form (the message echoes it).
    """
    if device is None:
        return None
    if not isinstance(device, str) or not device or not _DEVICE.match(device):
        hint = did_you_mean_device(device)
        raise ConfigError(
            "Expected device to be None (any Edge TPU), 'usb', 'usb:N', 'pci', 'pci:N' or ':N' "
            f"(N = 0, 1, ...). Received: device={device!r}{hint}"
        )
    return device


def did_you_mean_device(device: Any) -> str:
    """A hint for common selector slips (upper case, spaces, 'usb0')."""
    text = str(device).strip().lower().replace(" ", "")
    fixed = re.sub(r"^(usb|pci)(\d+)$", r"\1:\2", text)
    if fixed != str(device) and _DEVICE.match(fixed) and fixed:
        return f" Did you mean {fixed!r}?"
    return ""


def library_available(library: str | None = None) -> bool:
    """True when the delegate library can be opened (it is installed and on the loader path)."""
    try:
        ctypes.CDLL(library or delegate_library_name())
    except OSError:
        return False
    return True


def load_delegate_function() -> tuple[Any, str]:
    """``load_delegate`` of the TFLite runtime edgelab uses (see :mod:`edgelab.tflite.discovery`), and its name.

    Raises:
        RuntimeNotFoundError: no runtime, or one without ``load_delegate``.
    """
    runtime = get_runtime()
    if runtime.load_delegate is None:
        raise RuntimeNotFoundError(
            f"Loading the Edge TPU delegate needs a TFLite runtime with load_delegate; {runtime.name} has none: "
            "pip install ai-edge-litert (or on an old device image, Coral's tflite_runtime)."
        )
    return runtime.load_delegate, runtime.name


def load_edgetpu_delegate(device: str | None = None, library: str | None = None) -> Any:
    """Load the Edge TPU delegate for an interpreter's ``experimental_delegates``.

    Args:
        device: which Edge TPU: None (the first found), ``usb``, ``usb:N``, ``pci``, ``pci:N``
            or ``:N`` (the N-th of any kind).
        library: the delegate library (default: this OS's, e.g. ``libedgetpu.so.1``).

    Returns:
        The delegate object of the runtime used (LiteRT or tflite_runtime).

    Raises:
        ConfigError: a malformed device selector.
        DelegateError: the library is not installed, or it found no (matching) Edge TPU.
    """
    device = validate_device(device)
    library = library or delegate_library_name()
    load_delegate, runtime = load_delegate_function()
    # Probe with ctypes first: the runtimes report a missing library and a missing device with
    # the same ValueError, and LiteRT's half-built Delegate prints a traceback when collected.
    if not library_available(library):
        raise DelegateError(
            f"The Edge TPU runtime library {library!r} is not installed (or not on the loader "
            f"path), so the Edge TPU delegate cannot load.\n{_INSTALL_RUNTIME}"
        )
    options = {"device": device} if device else {}
    try:
        delegate = load_delegate(library, options)
    except (ValueError, RuntimeError, OSError) as exc:
        found = list_edge_tpus()
        seen = f"edgelab sees {found}" if found else "edgelab sees no Edge TPU in /sys or /dev"
        raise DelegateError(
            f"{library!r} is installed but found no Edge TPU"
            f"{' matching device=' + repr(device) if device else ''} ({seen}). {_NO_DEVICE} "
            f"[{runtime}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}]"
        ) from None
    logger.info("Loaded the Edge TPU delegate %s via %s (device=%r)", library, runtime, device)
    return delegate


def list_edge_tpus(sys_root: str | os.PathLike = "/sys", dev_root: str | os.PathLike = "/dev") -> list[dict[str, str]]:
    """Edge TPUs this Linux machine can see, best effort: ``[{"type": "usb"|"pci", "path": ...}]``.

    Scans sysfs for the USB Accelerator's IDs (1a6e:089a before its firmware loads, 18d1:9302
    after) and ``/dev/apex_*`` for PCIe/M.2 cards. Finding one does not prove it is usable
    (permissions, driver); :func:`load_edgetpu_delegate` tells. Returns [] elsewhere.
    """
    found: list[dict[str, str]] = []
    usb_root = Path(sys_root) / "bus" / "usb" / "devices"
    for dev in sorted(glob.glob(str(usb_root / "*"))):
        try:
            vendor = (Path(dev) / "idVendor").read_text().strip().lower()
            product = (Path(dev) / "idProduct").read_text().strip().lower()
        except OSError:
            continue
        if (vendor, product) in USB_IDS:
            found.append({"type": "usb", "path": dev, "id": f"{vendor}:{product}"})
    for apex in sorted(glob.glob(str(Path(dev_root) / "apex_*"))):
        found.append({"type": "pci", "path": apex})
    return found


def require_delegate_for(model: bytes | str | os.PathLike, delegate: Any | None) -> bool:
    """Fail early and clearly when a compiled model would run without the Edge TPU delegate.

    Without it the interpreter only says ``Didn't find custom op for name 'edgetpu-custom-op'``.

    Returns:
        True when the model needs the delegate (and one was given), False for a plain model.

    Raises:
        DelegateError: the model contains ``edgetpu-custom-op`` and ``delegate`` is None.
    """
    needs = has_edgetpu_custom_op(model)
    if needs and delegate is None:
        name = "the model" if isinstance(model, (bytes, bytearray, memoryview)) else repr(str(model))
        raise DelegateError(
            f"{name} was compiled for the Edge TPU (it contains {EDGETPU_CUSTOM_OP!r}) and cannot "
            "run without the Edge TPU delegate. Load one with "
            "edgelab.edgetpu.delegate.load_edgetpu_delegate(device='usb:0'), or run the "
            "uncompiled .tflite on the CPU."
        )
    return needs


@dataclass(frozen=True)
class DelegateStatus(Record):
    """What this machine offers for running compiled models (for ``edgelab devices``)."""

    RECORD_KEYS = ("library", "library_found", "runtime", "devices", "usable", "reason")

    library: str | None
    library_found: bool
    runtime: str | None
    devices: tuple[dict[str, str], ...] = field(default=())
    reason: str | None = None

    def __repr__(self) -> str:
        return dataclass_repr(self)

    @property
    def usable(self) -> bool:
        """True when the library, a Python runtime and at least one device are present."""
        return self.library_found and self.runtime is not None and bool(self.devices)


def delegate_status() -> DelegateStatus:
    """Check, without loading the delegate, what is missing to run an Edge TPU model here."""
    try:
        library = delegate_library_name()
    except DelegateError as exc:
        return DelegateStatus(None, False, None, reason=str(exc))
    try:
        _, runtime = load_delegate_function()
    except RuntimeNotFoundError:
        runtime = None
    found = library_available(library)
    devices = tuple(list_edge_tpus())
    if not found:
        reason = f"{library} is not installed (apt-get install libedgetpu1-std from Coral's apt repository)"
    elif runtime is None:
        reason = "no Python TFLite runtime (pip install ai-edge-litert)"
    elif not devices:
        reason = "no Edge TPU found (USB Accelerator IDs 1a6e:089a / 18d1:9302, or /dev/apex_*)"
    else:
        reason = None
    return DelegateStatus(library, found, runtime, devices, reason)


def parse_delegate(delegate: str | None) -> str | None:
    """``None | "edgetpu" | "edgetpu:usb:0"`` -> the device selector ('' for any device)."""
    if delegate is None:
        return None
    text = str(delegate).strip()
    head, _, device = text.partition(":")
    if head.lower() != "edgetpu":
        raise ConfigError(
            "Expected delegate to be None, 'edgetpu' or 'edgetpu:<device>' (e.g. 'edgetpu:usb:0', "
            f"'edgetpu:pci:0'). Received: delegate={delegate!r}.{did_you_mean(head, ['edgetpu'])}"
        )
    return device


def load_edgetpu(device: str) -> Any:
    """The Edge TPU delegate for a device selector from :func:`parse_delegate`."""
    return load_edgetpu_delegate(device or None)
