"""Energy per inference on the Edge TPU: an estimate per link, from Coral's published power figure.

Coral publishes one power figure for the Edge TPU, the same chip on every product: "4 trillion
operations per second (4 TOPS), using 2 watts of power" ("0.5 watts for each TOPS"), in the datasheets
of the USB Accelerator (v1.4), the M.2 and Mini PCIe Accelerators, the Accelerator Module, and on the
FAQ and benchmarks pages (sources in :data:`SOURCES`). Coral publishes no per-model or idle figure.

The estimate is therefore an upper bound of the Edge TPU's own share: the chip at its published
full-load power for the whole estimated time it works on one inference (per-op overhead, compute,
parameter streaming and input/output transfer from :mod:`edgelab.edgetpu.latency`; the ops left on
the host CPU are not counted). It leaves out the host CPU, the USB bridge of the USB Accelerator and the
rest of a Dev Board. It is labelled an estimate wherever it is shown; only a power meter measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Record
from .latency import LatencyEstimate, Link

#: The Edge TPU's published full-load power (watts): 4 TOPS at 2 TOPS per watt.
EDGETPU_WATTS = 2.0
#: Where the figure comes from (the same chip and figure on every Coral product).
SOURCES = {
    "usb": "https://coral.ai/static/files/Coral-USB-Accelerator-datasheet.pdf (v1.4: 4 TOPS, 2 TOPS per watt)",
    "m2_pcie": "https://coral.ai/docs/m2/datasheet/ (Edge TPU: 4 TOPS using 0.5 watts for each TOPS)",
    "devboard": "https://coral.ai/technology (Edge TPU on the Dev Board's SoM: 4 TOPS, 0.5 W per TOPS)",
    "faq": "https://coral.ai/docs/edgetpu/faq (4 TOPS using only 2 watts of power)",
}
#: Which published source covers each link.
LINK_SOURCE = {Link.USB3: "usb", Link.USB2: "usb", Link.PCIE: "m2_pcie", Link.DEVBOARD: "devboard"}
LABEL = "estimate: Edge TPU at its published 2 W full-load power x its estimated busy time; host CPU excluded"


@dataclass(frozen=True)
class EnergyEstimate(Record):
    """Estimated Edge TPU energy per inference (millijoules) per link; None without a latency estimate."""

    RECORD_KEYS = (
        ("mj_per_inference", "mj"),
        "watts",
        ("estimate", lambda e: True),
        "label",
        ("sources", "sources"),
        "reason",
    )

    mj: dict[str, float | None]
    watts: float = EDGETPU_WATTS
    label: str = LABEL
    reason: str | None = None

    @property
    def sources(self) -> dict[str, str]:
        """The published source of the power figure, per link."""
        return {link: SOURCES[LINK_SOURCE[Link(link)]] for link in self.mj}

    def summary(self) -> str:
        if all(v is None for v in self.mj.values()):
            return f"Edge TPU energy: no estimate ({self.reason})"
        parts = ", ".join(f"{k} {v:.3f} mJ" for k, v in self.mj.items() if v is not None)
        return f"Edge TPU energy per inference ({self.label}): {parts}"


def estimate_energy(latency: LatencyEstimate) -> EnergyEstimate:
    """Energy per inference per link from a latency estimate (see the module docstring for the bound)."""
    found = {}
    for part in latency.links:
        busy_ms = part.overhead_ms + part.compute_ms + part.streaming_ms + part.transfer_ms
        found[part.link.value] = round(EDGETPU_WATTS * busy_ms, 4)  # W x ms = mJ
    return EnergyEstimate({link.value: found.get(link.value) for link in Link}, reason=latency.reason)
