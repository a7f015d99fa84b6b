"""Edge TPU energy per inference: an estimate from Coral's published power figure, labelled as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgelab.cli import main
from edgelab.edgetpu.energy import EDGETPU_WATTS, SOURCES, estimate_energy
from edgelab.edgetpu.latency import Link, estimate_latency

MOBILENET = Path(__file__).parent / "data" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture(scope="module")
def latency():
    estimate = estimate_latency(MOBILENET)
    assert estimate.links, estimate.reason
    return estimate


def test_energy_is_the_published_power_times_the_edgetpu_time(latency):
    energy = estimate_energy(latency)
    assert EDGETPU_WATTS == 2.0  # Coral: 4 TOPS at 2 TOPS per watt
    for part in latency.links:
        busy = part.overhead_ms + part.compute_ms + part.streaming_ms + part.transfer_ms
        assert energy.mj[part.link.value] == pytest.approx(2.0 * busy, abs=1e-4)
        # host CPU time is not counted; the four parts are each rounded to 0.01 ms
        assert energy.mj[part.link.value] <= 2.0 * (part.total_ms + 4 * 0.005) + 1e-4
    d = energy.to_dict()
    assert d["estimate"] is True and "estimate" in d["label"]
    assert set(d["sources"]) == {link.value for link in Link}
    assert all(src.startswith("https://coral.ai/") for src in SOURCES.values())


def test_analyze_json_carries_the_energy_estimate(latency, capsys):
    assert main(["analyze", str(MOBILENET), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["energy"]["mj_per_inference"] == estimate_energy(latency).mj
    assert payload["energy"]["estimate"] is True
