"""Which CPU a latency comes from: its model and the instruction sets that decide int8 speed.

XNNPACK's int8 kernels beat its float32 ones only when the CPU has int8 dot-product instructions
(x86: AVX-512 VNNI, AVX-VNNI, AMX; ARM: dotprod, i8mm). Without them (AVX2 alone) the same int8
model runs slower than float32. Standard library only, no TensorFlow: runs on devices too.
"""

from __future__ import annotations

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


def cpu() -> tuple[str, list[str] | None]:
    """``(model, isa)``: the CPU's name and which of :data:`ISA_FLAGS` it has (None when unknown).

    Linux reads /proc/cpuinfo, macOS asks sysctl; elsewhere the model comes from ``platform``
    and the instruction sets are unknown.
    """
    model: str | None = None
    flags: set[str] = set()
    known = False
    cpuinfo = Path("/proc/cpuinfo")
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


def int8_expectation(model: str | None = None, isa: list[str] | None = None) -> str:
    """One line saying which case this CPU is: int8 expected faster or slower than float32."""
    if model is None and isa is None:
        model, isa = cpu()
    dot = int8_dot_product(isa)
    if dot is None:
        return (
            f"CPU: {model}; its instruction sets could not be read, so whether int8 beats float32 on this CPU "
            "is unknown (it does when the CPU has int8 dot-product instructions: VNNI on x86, dotprod on Arm)."
        )
    if dot:
        return (
            f"CPU: {model}, with int8 dot-product instructions ({', '.join(dot)}): "
            "int8 is expected to run faster than float32 on this CPU."
        )
    simd = [f for f in ("avx512f", "avx2", "asimd") if f in (isa or [])][:1]
    return (
        f"CPU: {model}, {'with ' + simd[0] + ' but ' if simd else ''}without int8 dot-product instructions "
        "(VNNI, dotprod): int8 is expected to run slower than float32 on this CPU; it still wins on size and "
        "on the Edge TPU."
    )
