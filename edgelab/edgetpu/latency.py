"""How fast will a model run on the Coral? An offline Edge TPU latency estimate per link.

The estimate adds, for one inference:

* **overhead**: a fixed cost per mapped op (instruction issue, DMA set-up per layer);
* **compute**: the multiply-accumulates of the mapped ops at the Edge TPU's sustained rate;
* **streaming**: parameters that do not fit the on-chip cache, read over the link every time
  (see :mod:`edgelab.edgetpu.memory`), plus a wait for streamed fully connected weights, which
  are used once each (VGG16: 296 ms on USB 3 where its conv MACs alone explain about 100), plus
  activations that spill to host memory: the 8 MB of SRAM holds the cached parameters *and* the
  activations, so once the cache has filled most of it an op whose input and output activations
  exceed what is left reads and writes them over the link (ResNet-50 at 299x299 has 75x75x256
  maps, 1.4 MB, next to 6.8 MB of cached weights; Inception-ResNet-v2's largest maps after its stem
  are 35x35x320, which is why it runs 13 G MACs faster than ResNet-152 V2 runs 20);
* **transfer**: the Edge TPU subgraph's inputs and outputs over the link;
* **cpu**: ops left on the host CPU, from their MACs and output size at the host's rate.

The constants are fitted on Coral's published latencies (``benchmarks.json`` in this package,
every row with its source) by ``tools/fit_edgetpu_latency.py``, which rebuilds the public
architectures with random weights, converts them to int8 and prints the leave-one-out error that
becomes the stated uncertainty. The USB 3 and Dev Board columns are fitted jointly: the per-op cost
and the MAC rate belong to the chip and are shared, the three transfer rates (streamed parameters
and input/output, streamed fully connected weights, spilled activations) belong to the link.
The fitted rates are effective ones: conv weights that are streamed are reused across the image,
so their transfer overlaps compute and the fitted link rate comes out far above USB 3's 5 Gbit/s,
while fully connected weights, used once, stream at about USB 3's practical rate (640 MB/s).
Links: ``usb3`` (USB Accelerator on a desktop, fitted), ``devboard`` (Dev Board, its Edge TPU on
PCIe, fitted), ``pcie`` (an M.2/mini-PCIe card in a desktop: the Dev Board's Edge TPU and link
constants with a desktop CPU, no published figure to fit on), ``usb2`` (the USB 3 constants with
the USB 2 bandwidth that Coral's Raspberry Pi 3B+ reference run implies).

TensorFlow-free: the estimate is arithmetic on the ``.tflite`` graph.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..enums import StrEnum
from ..errors import ConfigError
from ..records import Record
from ..tflite.inspection import ModelInfo, inspect_model
from .analyze import TARGET_EDGETPU, analyze_edgetpu
from .memory import cached_flags, parameter_bytes, require_uncompiled

__all__ = [
    "BENCHMARKS_PATH",
    "LatencyEstimate",
    "LatencyFeatures",
    "Link",
    "LinkLatency",
    "estimate_latency",
    "features",
    "fit_constants",
    "format_fit_report",
    "link_latency",
    "load_benchmarks",
]

BENCHMARKS_PATH = Path(__file__).with_name("benchmarks.json")

#: The Edge TPU's on-chip SRAM (about 8 MB: coral.ai/docs/edgetpu/compiler), shared by the
#: parameter cache and the activations. Not fitted: the leave-one-out error stays within target
#: for any size from 7.5 to 9 MiB (see tools/fit_edgetpu_latency.py --sram-mib).
SRAM_BYTES = 8 * 1024 * 1024


class Link(StrEnum):
    """How the Edge TPU is attached to the host that runs the rest of the model."""

    USB3 = "usb3"
    USB2 = "usb2"
    PCIE = "pcie"
    DEVBOARD = "devboard"


@dataclass(frozen=True)
class LatencyFeatures(Record):
    """What the estimate reads from a ``.tflite`` (all integers, deterministic).

    Attributes:
        macs_edgetpu: Multiply-accumulates of the ops mapped to the Edge TPU.
        macs_cpu: Multiply-accumulates of the ops left on the CPU.
        cpu_elements: Output elements the CPU ops write (their element-wise work).
        ops_edgetpu: Ops mapped to the Edge TPU.
        ops_cpu: Ops left on the CPU.
        cached_bytes: Parameter bytes cached on chip.
        streamed_bytes: Parameter bytes streamed from host memory on every inference.
        streamed_fc_bytes: Of these, the weights of fully connected layers (each weight is used
            once per inference, so the Edge TPU waits for them; conv weights are reused).
        transfer_bytes: Bytes entering and leaving the Edge TPU subgraph per inference.
        spilled_bytes: Activation bytes (inputs and outputs) of the mapped ops whose activations
            do not fit the SRAM the cached parameters leave free, so they go through host memory.
    """

    macs_edgetpu: int
    macs_cpu: int
    cpu_elements: int
    ops_edgetpu: int
    ops_cpu: int
    cached_bytes: int
    streamed_bytes: int
    streamed_fc_bytes: int
    transfer_bytes: int
    spilled_bytes: int = 0


@dataclass(frozen=True)
class LinkLatency(Record):
    """The estimate for one link, with its parts (milliseconds, rounded to 0.01)."""

    link: Link
    total_ms: float
    overhead_ms: float
    compute_ms: float
    streaming_ms: float
    transfer_ms: float
    cpu_ms: float
    uncertainty: float


@dataclass(frozen=True)
class LatencyEstimate(Record):
    """Estimated time per inference on the Edge TPU, per link.

    Attributes:
        path: The model, None for bytes.
        links: One :class:`LinkLatency` per link, empty when there is no estimate.
        features: What the estimate was computed from, None when there is no estimate.
        reason: Why there is no estimate (not quantized, already compiled...), else None.
    """

    RECORD_KEYS = (("latency_ms", "ms"), ("parts", "parts"), "features", "reason")

    path: str | None
    links: tuple[LinkLatency, ...]
    features: LatencyFeatures | None
    reason: str | None = None

    @property
    def parts(self) -> dict[str, LinkLatency]:
        """The estimate of each link that has one, by link name."""
        return {e.link.value: e for e in self.links}

    @property
    def ms(self) -> dict[str, float | None]:
        """``{"usb3": ..., "usb2": ..., "pcie": ..., "devboard": ...}`` (None without an estimate)."""
        found = {e.link.value: e.total_ms for e in self.links}
        return {link.value: found.get(link.value) for link in Link}

    def __getitem__(self, link: str | Link) -> LinkLatency:
        key = Link.parse(link)
        for e in self.links:
            if e.link is key:
                return e
        raise KeyError(f"no estimate for {key.value!r}: {self.reason}")

    def summary(self) -> str:
        """One line per link, or the reason there is no estimate."""
        if not self.links:
            return f"Edge TPU latency: no estimate ({self.reason})"
        lines = ["Edge TPU latency (estimate, ms per inference):"]
        for e in self.links:
            lines.append(
                f"  {e.link.value:<9}{e.total_ms:>9.2f}  +/-{e.uncertainty:.0%}  (overhead {e.overhead_ms:.2f}, "
                f"compute {e.compute_ms:.2f}, streaming {e.streaming_ms:.2f}, transfer {e.transfer_ms:.2f}, "
                f"cpu {e.cpu_ms:.2f})"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.links:
            return f"LatencyEstimate(None, reason={self.reason!r})"
        parts = ", ".join(f"{k}={v:.2f}" for k, v in self.ms.items() if v is not None)
        return f"LatencyEstimate(ms: {parts})"


@lru_cache(maxsize=1)
def _cached_benchmarks(mtime: float) -> str:
    return BENCHMARKS_PATH.read_text(encoding="utf-8")


def load_benchmarks() -> dict[str, Any]:
    """The published measurements, their sources and the fitted constants (``benchmarks.json``)."""
    return json.loads(_cached_benchmarks(BENCHMARKS_PATH.stat().st_mtime))


def _boundary_bytes(info: ModelInfo, on_tpu: set[int]) -> int:
    """Bytes of the activations crossing into and out of the Edge TPU ops."""
    producer = {t: op.index for op in info.ops for t in op.outputs}
    consumers: dict[int, set[int]] = {}
    for op in info.ops:
        for t in op.inputs:
            consumers.setdefault(t, set()).add(op.index)
    graph_outputs = {t.index for t in info.outputs}
    crossing: set[int] = set()
    for op in info.ops:
        if op.index not in on_tpu:
            continue
        for t in op.inputs:
            if t >= 0 and not info.tensors[t].has_buffer and producer.get(t) not in on_tpu:
                crossing.add(t)
        for t in op.outputs:
            if t in graph_outputs or consumers.get(t, set()) - on_tpu:
                crossing.add(t)
    return sum(info.tensors[t].bytes for t in crossing)


def _spilled_bytes(info: ModelInfo, mapped: Sequence[Any], cached: int, sram_bytes: int) -> int:
    """Activation bytes of the mapped ops whose inputs and outputs exceed the free SRAM."""
    free = sram_bytes - cached
    spilled = 0
    for op in mapped:
        tensors = [info.tensors[t] for t in (*op.inputs, *op.outputs) if t >= 0]
        act = sum(t.bytes for t in tensors if not t.has_buffer)
        spilled += act if act > free else 0
    return spilled


def features(model: str | os.PathLike | bytes | ModelInfo, sram_bytes: int = SRAM_BYTES) -> LatencyFeatures:
    """Read the estimate's inputs from an uncompiled quantized ``.tflite``.

    Args:
        model: The ``.tflite`` (path, bytes or ModelInfo).
        sram_bytes: On-chip SRAM shared by cached parameters and activations.

    Raises:
        ConfigError: the model is already compiled or the compiler would refuse it.
    """
    info = model if isinstance(model, ModelInfo) else inspect_model(model)
    require_uncompiled(info)
    report = analyze_edgetpu(info)
    if not report.verdict.compiles:
        raise ConfigError(
            "Expected a quantized, uncompiled .tflite the Edge TPU Compiler accepts. "
            f"Received: {info.path or '<bytes>'} ({report.message})"
        )
    on_tpu = {v.index for v in report.ops if v.target == TARGET_EDGETPU}
    cpu_ops = [op for op in info.ops if op.index not in on_tpu]
    mapped = [op for op in info.ops if op.index in on_tpu]
    sizes = parameter_bytes(info, mapped)
    flags = cached_flags(sizes)
    cached = sum(s for s, c in zip(sizes, flags, strict=True) if c)
    streamed_fc = sum(s for op, s, c in zip(mapped, sizes, flags, strict=True) if not c and op.op == "FULLY_CONNECTED")
    return LatencyFeatures(
        macs_edgetpu=sum(op.macs for op in info.ops if op.index in on_tpu),
        macs_cpu=sum(op.macs for op in cpu_ops),
        cpu_elements=sum(math.prod(info.tensors[t].shape) for op in cpu_ops for t in op.outputs if t >= 0),
        ops_edgetpu=len(on_tpu),
        ops_cpu=len(cpu_ops),
        cached_bytes=cached,
        streamed_bytes=sum(sizes) - cached,
        streamed_fc_bytes=streamed_fc,
        transfer_bytes=_boundary_bytes(info, on_tpu) if on_tpu else 0,
        spilled_bytes=_spilled_bytes(info, mapped, cached, sram_bytes),
    )


def link_latency(link: str | Link, f: LatencyFeatures, consts: Mapping[str, Any] | None = None) -> LinkLatency:
    """The estimate on one link from given features (for what-ifs: less SRAM, another link).

    Args:
        link: ``usb3``, ``usb2``, ``pcie`` or ``devboard``.
        f: The model's features (see :func:`features`).
        consts: The fitted constants (default: ``load_benchmarks()["constants"]``).
    """
    link = Link.parse(link, "link")
    consts = consts if consts is not None else load_benchmarks()["constants"]
    tpu = consts["links"][link.value]
    cpu = consts["cpu"][tpu["cpu"]]
    overhead = f.ops_edgetpu * tpu["op_ms"]
    compute = f.macs_edgetpu / tpu["macs_per_ms"]
    streaming = (
        f.streamed_bytes / tpu["bytes_per_ms"]
        + f.streamed_fc_bytes / tpu["fc_bytes_per_ms"]
        + f.spilled_bytes / tpu.get("spill_bytes_per_ms", _UNBOUNDED)
    )
    transfer = f.transfer_bytes / tpu["bytes_per_ms"]
    cpu_ms = f.macs_cpu / cpu["macs_per_ms"] + f.cpu_elements / cpu["elements_per_ms"] + f.ops_cpu * cpu["op_ms"]
    return LinkLatency(
        link=link,
        total_ms=round(overhead + compute + streaming + transfer + cpu_ms, 2),
        overhead_ms=round(overhead, 2),
        compute_ms=round(compute, 2),
        streaming_ms=round(streaming, 2),
        transfer_ms=round(transfer, 2),
        cpu_ms=round(cpu_ms, 2),
        uncertainty=round(tpu["uncertainty"], 2),
    )


def estimate_latency(
    model: str | os.PathLike | bytes | ModelInfo, links: Sequence[str | Link] = tuple(Link)
) -> LatencyEstimate:
    """Estimate the time per inference of a quantized ``.tflite`` on the Edge TPU, per link.

    Args:
        model: An uncompiled, fully quantized ``.tflite`` (path, bytes or ModelInfo). A float or
            already compiled model gets an estimate with no links and a ``reason``.
        links: Which links to estimate (default: usb3, usb2, pcie, devboard).

    Returns:
        A :class:`LatencyEstimate`; ``estimate.ms`` is the ``{"usb3": ...}`` dict.
    """
    wanted = [Link.parse(link, "links") for link in links]

    info = model if isinstance(model, ModelInfo) else inspect_model(model)
    if info.is_edgetpu_compiled:
        return LatencyEstimate(info.path, (), None, "already compiled: estimate the .tflite it was compiled from")
    report = analyze_edgetpu(info)
    if not report.verdict.compiles:
        return LatencyEstimate(info.path, (), None, f"{report.verdict.value}: {report.message}")
    feats = features(info)
    consts = load_benchmarks()["constants"]
    return LatencyEstimate(info.path, tuple(link_latency(k, feats, consts) for k in wanted), feats)


# --- fitting (used by tools/fit_edgetpu_latency.py) ---------------------------------------------


def _nnls_relative(x: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """Non-negative least squares of ``y - offset ~ x @ c`` on relative errors (rows divided by y),
    by trying every support (a handful of columns)."""
    a, b = x / y[:, None], 1 - (0 if offset is None else offset) / y
    best, best_err = np.zeros(x.shape[1]), math.inf
    for k in range(1, x.shape[1] + 1):
        for cols in itertools.combinations(range(x.shape[1]), k):
            coef, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if (coef < 0).any():
                continue
            full = np.zeros(x.shape[1])
            full[list(cols)] = coef
            err = float(np.sum((a @ full - b) ** 2))
            if err < best_err:
                best, best_err = full, err
    return best


def _design(f: LatencyFeatures) -> list[float]:
    # ms = ops * per-op cost + macs / rate + (streamed + transfer) / link + streamed FC / fc rate
    #      + spilled activations / spill rate: linear in its five features.
    return [
        float(f.ops_edgetpu),
        float(f.macs_edgetpu),
        float(f.streamed_bytes + f.transfer_bytes),
        float(f.streamed_fc_bytes),
        float(f.spilled_bytes),
    ]


def _inverse(c: float) -> float:
    return round(1 / c) if c > 0 else _UNBOUNDED


#: A rate the fit found no cost for (its coefficient is 0): the term contributes nothing.
_UNBOUNDED = 1e15

#: The fitted columns: the chip's (per-op cost, MAC rate) are shared by every link, the link's
#: (parameter/IO streaming, streamed FC weights, spilled activations) are fitted per link.
_FITTED = ("usb3", "devboard")
_CHIP, _LINK = 2, 3


def _joint_table(
    rows: Sequence[Mapping[str, Any]], feats: Mapping[str, LatencyFeatures], skip: str | None = None
) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """One row per (model, link) measurement; the link columns are zero outside their link."""
    keys, design, measured = [], [], []
    for r in rows:
        if r["name"] not in feats or r["name"] == skip:
            continue
        x = _design(feats[r["name"]])
        for j, link in enumerate(_FITTED):
            if not r.get(link):
                continue
            line = x[:_CHIP] + [0.0] * (_LINK * len(_FITTED))
            line[_CHIP + _LINK * j : _CHIP + _LINK * (j + 1)] = x[_CHIP:]
            keys.append((r["name"], link))
            design.append(line)
            measured.append(float(r[link]))
    return keys, np.array(design), np.array(measured)


def _link_coefficients(coef: np.ndarray, link: str) -> np.ndarray:
    j = _FITTED.index(link)
    return np.concatenate([coef[:_CHIP], coef[_CHIP + _LINK * j : _CHIP + _LINK * (j + 1)]])


def _constants(coef: np.ndarray) -> dict[str, float]:
    return {
        "op_ms": round(float(coef[0]), 5),
        "macs_per_ms": _inverse(coef[1]),
        "bytes_per_ms": _inverse(coef[2]),
        "fc_bytes_per_ms": _inverse(coef[3]),
        "spill_bytes_per_ms": _inverse(coef[4]),
    }


def fit_constants(rows: Sequence[Mapping[str, Any]], feats: Mapping[str, LatencyFeatures]) -> dict[str, Any]:
    """Fit the Edge TPU constants of the usb3 and devboard links jointly, with leave-one-out errors.

    The per-op cost and the MAC rate are the chip's, shared by both columns; the three transfer
    rates are fitted per link. Leave-one-out holds a model out of both columns at once.

    Args:
        rows: ``benchmarks.json`` rows; those with features and a measurement in a column are used.
        feats: Features of each fitted row, by row name.

    Returns:
        ``{"constants": {...}, "loo": {link: [(name, measured, predicted), ...]}}``.
    """
    base = load_benchmarks().get("constants", {})

    def fit(skip: str | None = None) -> np.ndarray:
        _, x, y = _joint_table(rows, feats, skip)
        return _nnls_relative(x, y)

    coef = fit()
    links: dict[str, dict[str, Any]] = {link: _constants(_link_coefficients(coef, link)) for link in _FITTED}
    loo: dict[str, list[tuple[str, float, float]]] = {link: [] for link in _FITTED}
    held: dict[str, np.ndarray] = {}
    keys, x, y = _joint_table(rows, feats)
    for (name, link), line, measured in zip(keys, x, y, strict=True):
        if name not in held:
            held[name] = fit(skip=name)
        loo[link].append((name, float(measured), float(line @ held[name])))
    for link in _FITTED:
        errors = sorted(abs(p / m - 1) for _, m, p in loo[link])
        links[link]["uncertainty"] = round(float(np.median(errors)), 3)
        links[link]["cpu"] = "desktop" if link == "usb3" else "devboard"
    # USB 2: USB 3's Edge TPU constants; the link bandwidth from MobileNet v1 on a Pi 3B+ (USB 2),
    # whose parameters fit on chip, so the extra time over USB 3 is the slower transfer. Nothing
    # crosses USB 2 faster than that, so it also caps the FC-weight and spill rates.
    ref = next(r for r in rows if r["name"] == "mobilenet_v1_1.0_224")
    f = feats[ref["name"]]
    usb3 = links["usb3"]
    on_usb3 = f.ops_edgetpu * usb3["op_ms"] + f.macs_edgetpu / usb3["macs_per_ms"]
    usb2_ms = ref["also"]["pycoral-rp3b"]
    usb2_rate = round((f.streamed_bytes + f.transfer_bytes) / (usb2_ms - on_usb3))
    links["usb2"] = {
        **{k: usb3[k] for k in ("op_ms", "macs_per_ms")},
        "bytes_per_ms": usb2_rate,
        "fc_bytes_per_ms": min(usb3["fc_bytes_per_ms"], usb2_rate),
        "spill_bytes_per_ms": min(usb3["spill_bytes_per_ms"], usb2_rate),
        "uncertainty": max(usb3["uncertainty"], 0.5),
        "cpu": "desktop",
    }
    # PCIe card: the Dev Board's Edge TPU sits on PCIe; no published desktop M.2/PCIe table.
    links["pcie"] = {**links["devboard"], "cpu": "desktop", "uncertainty": max(links["devboard"]["uncertainty"], 0.5)}
    constants = {
        "about": "fitted by tools/fit_edgetpu_latency.py; uncertainty = leave-one-out median relative error "
        "(usb2 and pcie: at least 50%, no fitted rows)",
        "sram_bytes": SRAM_BYTES,
        "links": {k: links[k] for k in ("usb3", "usb2", "pcie", "devboard")},
        "cpu": base.get("cpu", _DEFAULT_CPU),
    }
    return {"constants": constants, "loo": loo}


#: CPU rates for ops left on the host. MACs: Coral's CPU columns for MobileNet v1 (0.57 G MACs in
#: 53 ms on the desktop Xeon, 164 ms on the Dev Board's Cortex-A53); element-wise work and per-op
#: cost are rough assumptions (about 10 and 2.5 bytes per ns), a minor part for typical tails.
_DEFAULT_CPU = {
    "desktop": {"macs_per_ms": 10_700_000, "elements_per_ms": 10_000_000, "op_ms": 0.01},
    "devboard": {"macs_per_ms": 3_470_000, "elements_per_ms": 2_500_000, "op_ms": 0.04},
}


def format_fit_report(fit: Mapping[str, Any]) -> str:
    """The fitted constants and each row's leave-one-out prediction, as printed by the fit script."""
    lines = []
    for link, rows in fit["loo"].items():
        c = fit["constants"]["links"][link]
        lines.append(
            f"{link}: {c['op_ms'] * 1000:.1f} us per op, {c['macs_per_ms'] / 1e6:.0f} G MACs/s, "
            f"link {c['bytes_per_ms'] / 1e3:.0f} MB/s, streamed FC weights {c['fc_bytes_per_ms'] / 1e3:.0f} MB/s, "
            f"spilled activations {c['spill_bytes_per_ms'] / 1e3:.0f} MB/s"
        )
        lines.append(f"  {'row':<26}{'measured':>9}{'LOO pred':>10}{'error':>8}")
        errors = []
        for name, measured, pred in rows:
            err = pred / measured - 1
            errors.append(abs(err))
            lines.append(f"  {name:<26}{measured:>9.2f}{pred:>10.2f}{err:>+8.0%}")
        worst = max(max(p / m, m / p) for _, m, p in rows)
        lines.append(
            f"  leave-one-out median |error| {np.median(errors):.1%}, max {max(errors):.1%}, "
            f"worst ratio {worst:.2f}x over {len(rows)} rows"
        )
    for link in ("usb2", "pcie"):
        c = fit["constants"]["links"][link]
        lines.append(f"{link}: link {c['bytes_per_ms'] / 1e3:.0f} MB/s (derived, not fitted)")
    return "\n".join(lines)
