"""On the device: measure a bundle where it runs, check the device, deploy and roll back, over OpenSSH.

    import edgelab as el
    result = el.device.bench("runs/demo/bundle", "pi@raspberrypi", data="datasets/scenes")
    result.to_frame()                       # p50/p99/cold start, accuracy and agreement per model
    print(el.device.device_doctor("pi@raspberrypi"))   # what is missing there, and the one command that fixes it
    el.device.deploy("runs/demo/bundle", "pi@raspberrypi")   # a new version; `current` switches atomically
    el.device.rollback("pi@raspberrypi", app="bundle")
    pi = el.device.Device("pi", ssh_config="~/lab/ssh_config", python="python3.9")   # a device's settings, once
    el.device.bench("runs/demo/bundle", pi, runs=30, cleanup=True)

Everything goes through the system's ``ssh``/``scp`` with the user's own configuration (``~/.ssh/config``
or ``ssh_config=``), host keys checked strictly, and timeouts on every call. What runs on the device is
the bundle's own code (``classify.py`` and its sibling modules: numpy, Pillow and a TFLite runtime).
"""

from __future__ import annotations

from .bench import BenchOptions, Device, DeviceBench, bench, labelled_images
from .deploy import DeployResult, bundle_version, deploy, deployed, rollback
from .info import Check, DeviceInfo, DoctorReport, device_doctor, local_doctor, probe

__all__ = [
    "BenchOptions",
    "Check",
    "DeployResult",
    "Device",
    "DeviceBench",
    "DeviceInfo",
    "DoctorReport",
    "bench",
    "bundle_version",
    "deploy",
    "deployed",
    "device_doctor",
    "labelled_images",
    "local_doctor",
    "probe",
    "rollback",
]
