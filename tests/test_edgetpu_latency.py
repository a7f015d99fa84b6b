"""The Edge TPU latency estimate, its data file and fit, and the memory plan."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgelab.edgetpu import Link, co_compiled_memory, estimate_latency, memory_plan
from edgelab.edgetpu import latency as lat
from edgelab.errors import ConfigError

CORAL = Path(__file__).parent / "data" / "coral"
MOBILENET = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
DEEPLAB = CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite"


def test_every_benchmark_row_cites_a_known_source_and_fitted_rows_name_an_architecture():
    data = lat.load_benchmarks()
    for row in data["rows"]:
        assert row["source"] in data["sources"], row["name"]
        assert all(key in data["sources"] for key in row.get("also", {})), row["name"]
        assert row.get("usb3") or row.get("devboard"), row["name"]
    fitted = [r for r in data["rows"] if r.get("arch")]
    assert len(fitted) >= 10 and {r["name"] for r in fitted} >= {"mobilenet_v1_1.0_224", "vgg16_224"}
    links = data["constants"]["links"]
    assert set(links) == {link.value for link in Link}
    assert links["usb3"]["uncertainty"] <= 0.25  # the fit script's leave-one-out median
    assert links["devboard"]["uncertainty"] <= 0.25
    assert links["usb3"]["op_ms"] == links["devboard"]["op_ms"]  # the chip's constants are shared
    assert links["usb3"]["macs_per_ms"] == links["devboard"]["macs_per_ms"]
    assert links["usb2"]["spill_bytes_per_ms"] <= links["usb2"]["bytes_per_ms"]  # capped by the USB 2 link


def test_estimate_has_every_link_and_its_parts_add_up():
    est = estimate_latency(MOBILENET)
    assert set(est.ms) == {"usb3", "usb2", "pcie", "devboard"}
    for part in est.links:
        total = part.overhead_ms + part.compute_ms + part.streaming_ms + part.transfer_ms + part.cpu_ms
        assert part.total_ms == pytest.approx(total, abs=0.03)  # 6 values each rounded to 0.01: <= 6 x 0.005
        assert 0 < part.uncertainty < 1
    assert est.ms["usb2"] > est.ms["usb3"]  # the same graph over a slower link
    assert est["usb3"].streaming_ms == 0 and est["usb3"].cpu_ms == 0  # fits on chip, all mapped


def test_estimate_reads_the_graph_it_is_given():
    """Op count and transfer bytes against the flatbuffer read with LiteRT's schema (independent of
    edgelab's reader): every op maps, input 128x128x3 uint8 in, 1001 uint8 scores out."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT.InitFromPackedBuf(MOBILENET.read_bytes(), 0).subgraphs[0]
    in_bytes = int(np.prod(graph.tensors[graph.inputs[0]].shape))
    out_bytes = int(np.prod(graph.tensors[graph.outputs[0]].shape))
    est = estimate_latency(MOBILENET)
    assert est.features.ops_edgetpu == len(graph.operators) and est.features.ops_cpu == 0
    assert est.features.transfer_bytes == in_bytes + out_bytes == 128 * 128 * 3 + 1001
    assert estimate_latency(MOBILENET.read_bytes()).ms == est.ms


def test_activations_spill_only_when_the_cache_leaves_too_little_sram():
    f = lat.features(MOBILENET)
    assert f.spilled_bytes == 0  # 0.5 MB of weights leave plenty of SRAM for 128x128 maps
    tight = lat.features(MOBILENET, sram_bytes=f.cached_bytes + 60_000)
    tighter = lat.features(MOBILENET, sram_bytes=f.cached_bytes + 10_000)
    # the first layers' 64x64 maps (64-96 KB in and out) no longer fit; with less room, more ops spill
    assert 0 < tight.spilled_bytes < tighter.spilled_bytes
    assert tight.streamed_bytes == f.streamed_bytes and tight.macs_edgetpu == f.macs_edgetpu
    c = lat.load_benchmarks()["constants"]
    slow = lat.link_latency("usb3", tight)
    assert slow.streaming_ms == round(tight.spilled_bytes / c["links"]["usb3"]["spill_bytes_per_ms"], 2)
    assert slow.total_ms > estimate_latency(MOBILENET)["usb3"].total_ms


def test_coral_mobilenet_estimate_is_within_the_stated_band_of_its_published_latency():
    """The published row the fit used for this very file (coral.ai/models, USB Accelerator), against
    the README's stated bound: the leave-one-out fit leaves no row off by 2x."""
    row = next(r for r in lat.load_benchmarks()["rows"] if r["name"] == "mobilenet_v1_0.25_128")
    usb3 = estimate_latency(MOBILENET)["usb3"]
    assert row["usb3"] / 2 < usb3.total_ms < row["usb3"] * 2
    # The stated uncertainty is the leave-one-out median error (README: 6% on USB 3).
    stated = lat.load_benchmarks()["constants"]["links"]["usb3"]["uncertainty"]
    assert usb3.uncertainty == pytest.approx(stated, abs=0.005) and stated <= 0.25  # shown to 2 decimals


def test_cpu_ops_count_on_a_partly_mapped_model():
    est = estimate_latency(DEEPLAB)
    assert est.features.ops_cpu == 8 and est["usb3"].cpu_ms > 0
    assert est["devboard"].cpu_ms > est["usb3"].cpu_ms  # Cortex-A53 vs desktop


def test_float_and_compiled_models_have_no_estimate(tmp_path):
    compiled = estimate_latency(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert compiled.ms == {"usb3": None, "usb2": None, "pcie": None, "devboard": None}
    assert "already compiled" in compiled.reason and compiled.links == ()
    assert "no estimate" in compiled.summary()
    with pytest.raises(ConfigError, match="Expected links"):
        estimate_latency(MOBILENET, links=["usb4"])


def test_fit_recovers_known_constants_and_reports_leave_one_out():
    truth = {"op_ms": 0.02, "macs_per_ms": 2.5e8, "bytes_per_ms": 4e5, "fc_bytes_per_ms": 5e5}
    board = {"bytes_per_ms": 3e5, "fc_bytes_per_ms": 4e5, "spill_bytes_per_ms": 1e6}
    truth["spill_bytes_per_ms"] = 2e6
    rng = np.random.default_rng(0)
    rows, feats = [], {}
    for i in range(8):
        f = lat.LatencyFeatures(
            macs_edgetpu=int(rng.integers(1e7, 2e10)),
            macs_cpu=0,
            cpu_elements=0,
            ops_edgetpu=int(rng.integers(20, 300)),
            ops_cpu=0,
            cached_bytes=7_000_000,
            streamed_bytes=int(rng.integers(0, 5e7)),
            streamed_fc_bytes=int(rng.integers(0, 1e7)),
            transfer_bytes=150_000,
            spilled_bytes=0 if i == 0 else int(rng.integers(0, 5e7)),
        )
        # the model as edgelab.edgetpu.latency states it: ops, MACs, streamed + transferred bytes, FC bytes, spills
        x = [f.ops_edgetpu, f.macs_edgetpu, f.streamed_bytes + f.transfer_bytes, f.streamed_fc_bytes, f.spilled_bytes]

        def ms(c, x=x):
            return (
                x[0] * truth["op_ms"]
                + x[1] / truth["macs_per_ms"]
                + x[2] / c["bytes_per_ms"]
                + x[3] / c["fc_bytes_per_ms"]
                + x[4] / c["spill_bytes_per_ms"]
            )

        name = "mobilenet_v1_1.0_224" if i == 0 else f"m{i}"
        rows.append({"name": name, "usb3": ms(truth), "devboard": ms(board), "also": {"pycoral-rp3b": ms(truth) * 3}})
        feats[name] = f
    fit = lat.fit_constants(rows, feats)
    links = fit["constants"]["links"]
    for link, rates in (("usb3", truth), ("devboard", {**truth, **board})):
        for key, value in rates.items():
            assert links[link][key] == pytest.approx(value, rel=1e-3), (link, key)
        assert links[link]["uncertainty"] < 1e-3
        assert all(math.isclose(p, m, rel_tol=1e-3) for _, m, p in fit["loo"][link])
    assert "leave-one-out median" in lat.format_fit_report(fit)


def test_memory_plan_segments_and_co_compilation():
    plan = memory_plan(MOBILENET)
    assert plan.fits and plan.off_chip_bytes == 0 and plan.segments_to_fit == 1
    small = memory_plan(MOBILENET, capacity_bytes=300_000)
    assert small.on_chip_bytes + small.off_chip_bytes == plan.parameter_bytes and small.off_chip_bytes > 0
    n = small.segments_to_fit
    assert n is not None and n > 1
    split = memory_plan(MOBILENET, num_segments=n, capacity_bytes=300_000)
    assert len(split.segments) == n and all(s.fits for s in split.segments)
    assert sum(s.on_chip_bytes for s in split.segments) == plan.parameter_bytes
    first, second = co_compiled_memory([MOBILENET, MOBILENET], capacity_bytes=int(plan.parameter_bytes * 1.5))
    assert first.fits and not second.fits  # the first model on the command line is served first
    assert second.capacity_bytes == int(plan.parameter_bytes * 1.5) - first.on_chip_bytes
    with pytest.raises(ConfigError, match="uncompiled"):
        memory_plan(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")


def test_cli_analyze_json_has_latency_and_memory(capsys):
    from edgelab.cli import main

    assert main(["analyze", str(MOBILENET), "--json", "--num-segments", "2", "--co-compile", str(DEEPLAB)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["latency_ms"]) == {"usb3", "usb2", "pcie", "devboard"}
    assert all(isinstance(v, float) for v in payload["latency_ms"].values())
    assert payload["memory"]["fits_on_chip"] is True and len(payload["memory"]["segments"]) == 2
    assert [m["name"] for m in payload["memory"]["co_compiled"]] == [MOBILENET.name, DEEPLAB.name]
    assert main(["analyze", str(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"), "--json"]) == 0
    compiled = json.loads(capsys.readouterr().out)
    assert compiled["latency_ms"] == {"usb3": None, "usb2": None, "pcie": None, "devboard": None}
    assert main(["analyze", str(MOBILENET)]) == 0
    assert "Edge TPU latency (estimate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # argparse's own range check, before the model is read
        main(["analyze", str(MOBILENET), "--num-segments", "0"])
    assert refused.value.code == 2


def test_latency_and_memory_import_no_tensorflow():
    import subprocess
    import sys

    code = "import sys, edgelab.edgetpu.latency, edgelab.edgetpu.memory; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_float_model_gets_null_latency_with_the_compilers_reason(tmp_path):
    from test_edgetpu_analyze import build_tflite

    model = tmp_path / "float.tflite"
    tensors = [{"shape": (1, 8, 8, 4), "dtype": "float32"}, {"shape": (1, 8, 8, 4), "dtype": "float32"}]
    model.write_bytes(build_tflite(tensors, [("ADD", 1, [0, 0], [1])], [0], [1]))
    est = estimate_latency(model)
    assert est.ms == dict.fromkeys(("usb3", "usb2", "pcie", "devboard"))
    assert est.reason == "not_quantized: Model not quantized"
    with pytest.raises(ConfigError, match="Model not quantized"):
        lat.features(model)


def test_compare_table_has_the_estimated_edge_tpu_latency_column():
    from edgelab.compare.comparison import COLUMNS, VariantResult, comparison_table
    from edgelab.precision import Precision
    from edgelab.tflite.conversion import ConvertedModel

    variants = {
        Precision.INT8: VariantResult(Precision.INT8, "ok", model=ConvertedModel.from_file(MOBILENET, "int8")),
        Precision.FP32: VariantResult(Precision.FP32, "failed", "boom"),
    }
    table = comparison_table(variants, float_accuracy=0.9).set_index("precision")
    assert "edgetpu_usb3_ms" in COLUMNS
    assert table.loc["int8", "edgetpu_usb3_ms"] == estimate_latency(MOBILENET).ms["usb3"]
    assert table.loc["fp32", "edgetpu_usb3_ms"] is None or np.isnan(table.loc["fp32", "edgetpu_usb3_ms"])
