"""One to_dict/to_frame for result dataclasses: plain JSON values, keys in field order, skipped fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgelab.compare.benchmark import LatencyResult
from edgelab.data.skips import SkippedFile
from edgelab.edgetpu.energy import EnergyEstimate
from edgelab.edgetpu.latency import Link, LinkLatency
from edgelab.edgetpu.logs import CompilerFailure, FailureKind
from edgelab.edgetpu.memory import MemoryPlan, SegmentMemory
from edgelab.precision import Precision
from edgelab.records import Record, plain


def test_plain_turns_enums_paths_and_numpy_values_into_json_data():
    value = {
        "precision": Precision.INT8,
        "path": Path("runs") / "m.tflite",
        "count": np.int64(3),
        "ratio": np.float32(0.5),
        "rows": (np.arange(2), [Link.USB3]),
    }
    assert plain(value) == {
        "precision": "int8",
        "path": "runs/m.tflite",
        "count": 3,
        "ratio": 0.5,
        "rows": [[0, 1], ["usb3"]],
    }
    assert type(plain(np.int64(3))) is int
    json.dumps(plain(value))  # no TypeError


def test_latency_result_rounds_times_and_leaves_the_samples_out():
    times = np.array([1.23456789, 2.0])
    result = LatencyResult(
        model="m.tflite",
        runtime="litert",
        xnnpack=True,
        num_threads=1,
        delegate=None,
        size_bytes=10,
        load_ms=1.234567,
        cold_ms=2.0,
        warmup=1,
        runs=2,
        p50_ms=np.float64(1.23456789),
        p90_ms=2.0,
        p99_ms=2.0,
        mean_ms=1.6,
        std_ms=0.4,
        min_ms=1.2,
        max_ms=2.0,
        total_s=0.01,
        times_ms=times,
    )
    out = result.to_dict()
    assert "times_ms" not in out
    assert list(out)[:3] == ["model", "runtime", "xnnpack"]
    assert out["p50_ms"] == 1.2346 and out["load_ms"] == 1.2346  # 4 decimals: 0.1 us
    assert json.loads(json.dumps(out)) == out
    frame = result.to_frame()
    assert frame.shape == (1, len(out)) and frame.loc[0, "runs"] == 2


def test_nested_enums_and_paths_come_out_as_before():
    assert LinkLatency(Link.USB3, 1.0, 0.1, 0.5, 0.2, 0.2, 0.0, 0.3).to_dict() == {
        "link": "usb3",
        "total_ms": 1.0,
        "overhead_ms": 0.1,
        "compute_ms": 0.5,
        "streaming_ms": 0.2,
        "transfer_ms": 0.2,
        "cpu_ms": 0.0,
        "uncertainty": 0.3,
    }
    failure = CompilerFailure(FailureKind.TIMEOUT, "too slow", None, None)
    assert failure.to_dict() == {
        "kind": FailureKind.TIMEOUT.value,
        "message": "too slow",
        "op": None,
        "op_version": None,
    }
    skipped = SkippedFile(Path("data") / "a.jpg", "unreadable", "truncated")
    assert skipped.to_dict() == {"path": "data/a.jpg", "reason": "unreadable", "detail": "truncated"}


def test_a_prescreen_keeps_its_keys_and_rounds_its_time():
    from edgelab.tune.prescreen import Screen

    screen = Screen(1.5, 30, 31, 0, 1000, {"budget_ms": np.float64(0.5)}, None, seconds=2.123456)
    out = screen.to_dict()
    assert list(out) == [
        "latency_ms", "ops_edgetpu", "ops_total", "off_chip_bytes", "size_bytes", "violations", "reason", "seconds"
    ]  # fmt: skip
    assert out["seconds"] == 2.123 and out["violations"] == {"budget_ms": 0.5}
    assert type(out["violations"]["budget_ms"]) is float


def test_record_keys_name_the_order_and_properties_of_the_dict():
    """A class with its own key order (a stable JSON schema) or a property beside the fields."""
    from edgelab.edgetpu.compiler import CompileResult, CompileStatus
    from edgelab.tflite.delegate import DelegateStatus

    status = DelegateStatus("libedgetpu.so.1", True, "litert", ({"type": "usb", "path": "/dev/bus/usb/001"},))
    assert list(status.to_dict()) == ["library", "library_found", "runtime", "devices", "usable", "reason"]
    assert status.to_dict()["usable"] is True and status.to_dict()["devices"] == [
        {"type": "usb", "path": "/dev/bus/usb/001"}
    ]
    result = CompileResult(
        CompileStatus.FAILED, Path("m.tflite"), command=("edgetpu_compiler", "m.tflite"), duration_s=1.23456, stderr="x"
    )
    out = result.to_dict()
    assert list(out)[:3] == ["status", "reason", "model"] and "stderr" not in out and "stdout" not in out
    assert (out["status"], out["model"], out["command"], out["duration_s"]) == (
        "failed",
        "m.tflite",
        ["edgetpu_compiler", "m.tflite"],
        1.235,
    )
    json.dumps(out)


def test_record_keys_rename_and_compute_values_without_a_hand_written_to_dict():
    """``(key, source)`` entries: a renamed property, a method's result, a value computed from the record."""

    @dataclass(frozen=True)
    class Counts(Record):
        RECORD_KEYS = ("name", ("n", lambda c: len(c.items)), "first", ("items_sorted", "sorted_items"))

        name: str
        items: tuple[str, ...]

        def first(self) -> str:
            return self.items[0]

        @property
        def sorted_items(self) -> tuple[str, ...]:
            return tuple(sorted(self.items))

    out = Counts("c", ("b", "a")).to_dict()
    assert out == {"name": "c", "n": 2, "first": "b", "items_sorted": ["a", "b"]}
    assert list(Counts("c", ("b", "a")).to_frame().columns) == ["name", "n", "first", "items_sorted"]

    plan = MemoryPlan(100, 60, 40, 60, (SegmentMemory("m", 60, 40, 60),), 2)
    assert list(plan.to_dict()) == [
        "parameter_bytes", "on_chip_bytes", "off_chip_bytes", "capacity_bytes", "fits_on_chip", "segments_to_fit",
        "segments",
    ]  # fmt: skip
    assert plan.to_dict()["fits_on_chip"] is False
    assert plan.to_dict()["segments"] == [
        {"name": "m", "on_chip_bytes": 60, "off_chip_bytes": 40, "capacity_bytes": 60}
    ]

    energy = EnergyEstimate({"usb3": 1.5, "pcie": None}).to_dict()
    assert list(energy) == ["mj_per_inference", "watts", "estimate", "label", "sources", "reason"]
    assert energy["mj_per_inference"] == {"usb3": 1.5, "pcie": None} and energy["estimate"] is True
    assert list(energy["sources"]) == ["usb3", "pcie"] and all(
        v.startswith("https://") for v in energy["sources"].values()
    )
