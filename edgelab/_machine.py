"""Which CPU a latency comes from: its model and its instruction sets, recorded beside every latency.

Whether int8 runs faster than float32 is measured, never predicted from these flags: the int8/fp32
p50 ratio of the same model has been 0.43-0.61 on an AMD EPYC with AVX-512 VNNI, 0.96-0.98 on an
Intel Xeon with AVX-512 VNNI and AMX, and above 1 on CPUs with AVX2 alone (README, "Measured on this
kind of machine"). Standard library only, no TensorFlow: runs on devices too.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

#: Flags that shape int8/float CPU speed, as Linux's /proc/cpuinfo spells them, in a stable order.
ISA_FLAGS = (
    # x86-64
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "avx_vnni_int8",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    # Arm (AArch64 "Features")
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)
#: Of those, the int8 dot-product instructions XNNPACK's fast int8 kernels use.
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "asimddp", "i8mm")

#: macOS sysctl names -> Linux spellings.
_MAC_ARM = {
    "FEAT_DotProd": "asimddp",
    "FEAT_I8MM": "i8mm",
    "FEAT_BF16": "bf16",
    "FEAT_FP16": "asimdhp",
    "AdvSIMD": "asimd",
}
_MAC_X86 = {
    "SSE4.1": "sse4_1",
    "SSE4.2": "sse4_2",
    "AVX1.0": "avx",
    "AVX2": "avx2",
    "FMA": "fma",
    "F16C": "f16c",
    "AVX512F": "avx512f",
    "AVX512BW": "avx512bw",
    "AVX512VL": "avx512vl",
    "AVX512VNNI": "avx512_vnni",
}


def _cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """CPU model and flags from the text of /proc/cpuinfo (x86 and Arm layouts)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), re.sub(r"\s+", " ", value.strip()))  # the first CPU's values
    flags = set((fields.get("flags") or fields.get("features") or "").lower().split())
    model = fields.get("model name")  # x86 (its "model" is a number); Arm Linux rarely names the chip
    if model and fields.get("cpu family", "").isdigit() and fields.get("model", "").isdigit():
        # Virtual machines often show only "AMD EPYC": the family tells Zen 4 (25) from Zen 5 (26).
        model = f"{model} (family {fields['cpu family']}, model {fields['model']})"
    if not model and fields.get("model") and not fields["model"].isdigit():
        model = fields["model"]  # e.g. Raspberry Pi's board name
    if not model and fields.get("cpu implementer"):
        model = f"Arm CPU (implementer {fields['cpu implementer']}, part {fields.get('cpu part', '?')})"
    return model or fields.get("hardware") or None, flags


def _sysctl(name: str) -> str | None:
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _macos() -> tuple[str | None, set[str]]:
    model = _sysctl("machdep.cpu.brand_string")
    flags = set()
    for name, flag in _MAC_ARM.items():
        if _sysctl(f"hw.optional.arm.{name}") == "1":
            flags.add(flag)
    x86 = " ".join(filter(None, (_sysctl("machdep.cpu.features"), _sysctl("machdep.cpu.leaf7_features")))).split()
    flags |= {_MAC_X86[f] for f in x86 if f in _MAC_X86}
    return model, flags


def cpu(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[str, list[str] | None]:
    """``(model, isa)``: the CPU's name and which of :data:`ISA_FLAGS` it has (None when unknown).

    Linux reads ``cpuinfo`` (another path reads a saved copy, e.g. another machine's
    /proc/cpuinfo), macOS asks sysctl; elsewhere the model comes from ``platform`` and the
    instruction sets are unknown.
    """
    model: str | None = None
    flags: set[str] = set()
    known = False
    cpuinfo = Path(cpuinfo)
    if cpuinfo.is_file():
        try:
            model, flags = _cpuinfo(cpuinfo.read_text(errors="replace"))
            known = bool(flags)
        except OSError:
            pass
    elif platform.system() == "Darwin":
        model, flags = _macos()
        known = bool(flags) or platform.machine() == "arm64"
    model = model or platform.processor() or platform.machine() or "unknown"
    return model, ([f for f in ISA_FLAGS if f in flags] if known else None)


def int8_dot_product(isa: list[str] | None) -> list[str] | None:
    """The int8 dot-product instructions among ``isa`` (empty: none), or None when ``isa`` is unknown."""
    return None if isa is None else [f for f in INT8_DOT_PRODUCT if f in isa]


def machine_info() -> dict[str, Any]:
    """What a latency figure depends on: CPU model, instruction sets, core count, platform, Python."""
    model, isa = cpu()
    return {
        "cpu_model": model,
        "isa": isa,
        "int8_dot_product": int8_dot_product(isa),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def cpu_line(model: str | None = None, isa: list[str] | None = None) -> str:
    """``CPU: <model> (<vector and int8 dot-product instructions>)``: which machine a latency comes from."""
    if model is None and isa is None:
        model, isa = cpu()
    if isa is None:
        return f"CPU: {model} (instruction sets unknown)"
    simd = [f for f in ("avx512f", "avx2", "asimd") if f in isa][:1]
    dot = int8_dot_product(isa) or []
    return f"CPU: {model} ({', '.join(simd) or 'no AVX2/AVX-512/NEON'}; int8 dot-product: {', '.join(dot) or 'none'})"


def int8_measured(ratio: float | None, model: str | None = None, isa: list[str] | None = None) -> str:
    """One line naming this CPU and what was measured on it: int8 p50 latency / float32 p50 latency.

    The words describe ``ratio`` itself (below 1: int8 ran faster here; above 1: slower), so they hold
    for the number printed beside them on any CPU; nothing is predicted from instruction sets.
    """
    where = cpu_line(model, isa)
    if ratio is None or math.isnan(ratio) or ratio <= 0:  # a failed or missing measurement
        return f"{where}. int8 vs float32 latency was not measured on it."
    if ratio < 1:
        verdict = "int8 ran faster than float32 here"
    elif ratio > 1:
        verdict = "int8 ran slower than float32 here"
    else:
        verdict = "int8 and float32 ran equally fast here"
    return (
        f"{where}. Measured: int8 p50 latency / float32 p50 = {ratio:.3f}, so {verdict}. "
        "Another CPU can differ either way: measure it there."
    )
