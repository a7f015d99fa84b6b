"""The CPU a latency comes from: model, the instruction sets that decide int8 speed, and the one-line verdict."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgelab._machine import ISA_FLAGS, cpu, int8_dot_product, int8_measured, machine_info

# Trimmed /proc/cpuinfo of the machines the project has run on, and of two Arm boards.
EPYC_VNNI = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni
"""
AVX2_ONLY = """processor\t: 0
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu sse sse2 fma sse4_1 sse4_2 avx f16c avx2
processor\t: 1
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu sse sse2 fma sse4_1 sse4_2 avx f16c avx2
"""
PI5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""
PI3 = """processor\t: 0
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd03
"""


@pytest.mark.parametrize(
    ("text", "model", "isa", "dot"),
    [
        (
            EPYC_VNNI,
            "AMD EPYC (family 26, model 17)",
            [
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
            ],
            ["avx512_vnni"],
        ),
        (
            AVX2_ONLY,
            "Intel(R) Xeon(R) CPU @ 2.20GHz (family 6, model 85)",
            ["sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c"],
            [],
        ),
        (PI5, "Raspberry Pi 5 Model B Rev 1.0", ["asimd", "asimdhp", "asimddp"], ["asimddp"]),
        (PI3, "Arm CPU (implementer 0x41, part 0xd03)", ["asimd"], []),
    ],
)
def test_cpuinfo_model_and_int8_flags(tmp_path, text, model, isa, dot):
    (tmp_path / "cpuinfo").write_text(text)
    assert cpu(tmp_path / "cpuinfo") == (model, isa)
    assert int8_dot_product(isa) == dot


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        (0.43, "so int8 ran faster than float32 here"),
        (1.63, "so int8 ran slower than float32 here"),
        (1.0, "so int8 and float32 ran equally fast here"),
    ],
)
def test_the_int8_line_describes_the_measured_ratio_whatever_the_flags(ratio, words):
    """The same words for a VNNI CPU and an AVX2-only one: the ratio decides them, the flags do not."""
    for isa in (["avx2", "fma", "avx512f", "avx512_vnni"], ["avx2", "fma"]):
        line = int8_measured(ratio, "AMD EPYC", isa)
        assert line.startswith("CPU: AMD EPYC (")
        assert f"= {ratio:.3f}, {words}." in line
        assert "expected" not in line
    assert "int8 dot-product: avx512_vnni" in int8_measured(1.0, "X", ["avx512f", "avx512_vnni"])
    assert "(instruction sets unknown)" in int8_measured(ratio, "Some CPU", None)


@pytest.mark.parametrize("ratio", [None, float("nan")])
def test_the_int8_line_without_a_measurement_claims_nothing(ratio):
    line = int8_measured(ratio, "AMD EPYC", ["avx2"])
    assert line == "CPU: AMD EPYC (avx2; int8 dot-product: none). int8 vs float32 latency was not measured on it."


def test_machine_info_on_this_machine():
    info = machine_info()
    assert info["cpu_model"] and info["cpus"] >= 1 and info["python"] == ".".join(map(str, sys.version_info[:3]))
    if sys.platform.startswith("linux"):
        assert isinstance(info["isa"], list) and set(info["isa"]) <= set(ISA_FLAGS)
        assert info["isa"] == [f for f in ISA_FLAGS if f in info["isa"]]  # stable order
        assert info["int8_dot_product"] == int8_dot_product(info["isa"])


def test_machine_module_imports_no_tensorflow():
    code = "import sys, edgelab._machine as m; m.machine_info(); print('tensorflow' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_int8_speed_is_the_measured_line_wrapped_for_a_notebook():
    import pandas as pd

    from edgelab._text import WIDTH
    from edgelab.compare import int8_speed

    table = pd.DataFrame(
        {"precision": ["fp32", "int8"], "status": ["ok", "ok"], "p50_ms": [0.1, 0.2], "latency_ratio": [1.0, 2.0]}
    )
    text = int8_speed(table)
    assert text.split() == int8_measured(2.0).split()  # the same words, for the int8 row's measured ratio
    assert "int8 ran slower than float32 here" in " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= WIDTH
