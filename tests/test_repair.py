"""Per-channel range diagnosis and the repairs of edgelab.training.equalize.

Float tolerances come from float32 rounding: a rescaled weight differs from the original by at most
one rounding (eps32 relative), and an output sums ``fan_in`` such products per layer, so after
``depth`` layers the outputs agree within ``depth * fan_in * eps32`` times the magnitude of the terms
summed (bounded here by the largest output, which is <= 1 after softmax, times the weights' scale).
"""

from __future__ import annotations

import numpy as np
import pytest
from _tiny import cached, colour_task, conv_bn_model, pipeline

SIZE = 16
EPS32 = float(np.finfo(np.float32).eps)


def _bound(model, magnitude: float = 1.0) -> float:
    """``depth * max fan-in * eps32 * magnitude``: the float32 rounding bound stated above."""
    weighted = [layer for layer in model.layers if layer.get_weights() and len(layer.get_weights()[0].shape) >= 2]
    fan_in = max(int(np.prod(layer.get_weights()[0].shape[:-1])) for layer in weighted)
    return len(weighted) * fan_in * EPS32 * magnitude * 16  # x16: the BatchNorm fold and the activations' scale


FACTOR = 1000.0  # the wide channel: the others keep ~255 / 1000 < 1 level under its scale


@pytest.fixture(scope="module")
def outlier(tmp_path_factory):
    def build():
        from edgelab.diagnose import analyze_layers, with_outlier_channel
        from edgelab.tflite.conversion import convert
        from edgelab.training.equalize import equalize

        out = tmp_path_factory.mktemp("repair")
        model = conv_bn_model(SIZE)
        train, test = colour_task(40, size=SIZE, seed=1), colour_task(30, size=SIZE, seed=2)
        case = with_outlier_channel(model, "conv1_conv", factor=FACTOR)
        fixed = equalize(case, train)
        files = {
            "fp32": convert(case, "fp32", out_dir=out, name="case").path,
            "int8": convert(case, "int8", out_dir=out, calibration=train, name="case").path,
            "eq_fp32": convert(fixed.model, "fp32", out_dir=out, name="eq").path,
            "eq_int8": convert(fixed.model, "int8", out_dir=out, calibration=train, name="eq").path,
        }
        report = analyze_layers(files["fp32"], files["int8"], test[0], progress=False)
        return dict(case=case, fixed=fixed, train=train, test=test, files=files, report=report, out=out)

    return cached("repair-outlier", build)


def _predictions(path, images):
    from edgelab.tflite.runtime import TFLiteModel

    return TFLiteModel(path).predict(images).argmax(axis=1)


def test_per_channel_diagnosis_names_the_layer_whose_scale_did_the_damage(outlier):
    report = outlier["report"]
    frame = report.frame.set_index("index")
    convs = report.frame[report.frame.op == "CONV_2D"]
    first, second = convs.iloc[0], convs.iloc[1]
    assert "conv1_relu" in first.tensor and "conv2_relu" in second.tensor
    # The wide channel: its range is FACTOR x the others' (the fold of BatchNorm keeps the ratio).
    assert first.channel_range_ratio > 16 and first.range_flagged, first
    assert first.levels_median_channel < 16, first  # fewer than 4 bits for the median channel
    # Per-tensor ranking blames the op after it; the cause column points back to the first convolution.
    assert report.worst(1) == [second.tensor], report.summary()
    assert second.cause == first.tensor, frame
    assert report.suspects(1) == [first.tensor]
    assert "conv1_relu" in report.explain(int(second["index"])) and "equaliz" in report.explain(int(second["index"]))
    assert "cause: conv1_relu" in report.summary()
    payload = report.to_dict()["layers"]
    assert [r["cause"] for r in payload if r["index"] == second["index"]] == [first.tensor]


def test_equalize_keeps_float_outputs_and_recovers_int8_on_the_edge_tpu(outlier):
    from edgelab.diagnose import analyze_layers
    from edgelab.edgetpu.analyze import analyze_edgetpu

    fixed, files, (x, _) = outlier["fixed"], outlier["files"], outlier["test"]
    assert [layer.name for layer in fixed.model.layers] == [layer.name for layer in outlier["case"].layers]
    assert fixed.equalized == (("conv1_conv", "conv2_conv"),)
    assert [(a, b) for a, b, _ in fixed.skipped] == [("conv2_conv", "classifier")]
    assert "ReLU6" in fixed.skipped[0][2]
    assert fixed.max_abs_difference <= _bound(fixed.model, fixed.output_magnitude), fixed
    reference = _predictions(files["fp32"], x)
    assert (_predictions(files["eq_fp32"], x) == reference).all()
    before = (_predictions(files["int8"], x) == reference).sum()
    after = (_predictions(files["eq_int8"], x) == reference).sum()
    # Recovered: at most one test image in 30 (3.3 points) disagrees with float after equalization,
    # while before it at least 10 did (the case is built to break int8).
    assert len(x) - after <= len(x) // 30 < 10 <= len(x) - before, (before, after, len(x))
    report = analyze_layers(files["eq_fp32"], files["eq_int8"], x, progress=False)
    assert not report.frame.range_flagged.any() and report.frame.cause.isna().all(), report.frame
    for name in ("int8", "eq_int8"):
        tpu = analyze_edgetpu(files[name])
        assert tpu.ops_cpu == 0 and tpu.ops_edgetpu == tpu.ops_total, name


def test_keeping_the_blamed_op_in_float_does_not_help(outlier):
    """The per-tensor pick (the second convolution) in float still reads the crushed activation."""
    from edgelab.tflite.conversion import convert

    files, (x, _) = outlier["files"], outlier["test"]
    mixed = convert(
        outlier["case"],
        "mixed_int8",
        out_dir=outlier["out"],
        calibration=outlier["train"],
        name="case",
        keep_float=outlier["report"].worst(1),
    )
    reference = _predictions(files["fp32"], x)
    fixed = (_predictions(files["eq_int8"], x) == reference).sum()
    assert (_predictions(mixed.path, x) == reference).sum() < fixed


def _mobilenet_blocks():
    from edgelab._keras import keras

    keras.utils.set_random_seed(1)
    L = keras.layers
    inputs = keras.Input((12, 12, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    # MobileNetV1-style: depthwise -> BN -> ReLU -> pointwise -> BN -> ReLU (exact pairs)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="b1_dw")(x)
    x = L.BatchNormalization(name="b1_dw_bn")(x)
    x = L.ReLU(name="b1_dw_relu")(x)
    x = L.Conv2D(16, 1, use_bias=False, name="b1_pw")(x)
    x = L.BatchNormalization(name="b1_pw_bn")(x)
    x = L.ReLU(name="b1_pw_relu")(x)
    # MobileNetV2-style inverted residual: expand (ReLU6) -> depthwise (ReLU6) -> linear project, + Add
    y = L.Conv2D(32, 1, use_bias=False, name="b2_expand")(x)
    y = L.BatchNormalization(name="b2_expand_bn")(y)
    y = L.ReLU(6.0, name="b2_expand_relu")(y)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="b2_dw")(y)
    y = L.BatchNormalization(name="b2_dw_bn")(y)
    y = L.ReLU(6.0, name="b2_dw_relu")(y)
    y = L.Conv2D(16, 1, use_bias=False, name="b2_project")(y)
    y = L.BatchNormalization(name="b2_project_bn")(y)
    x = L.Add(name="b2_add")([x, y])
    # A linear bottleneck feeding the next expansion (no residual): equalized through the linear path
    z = L.Conv2D(24, 1, use_bias=False, name="b3_project")(x)
    z = L.BatchNormalization(name="b3_project_bn")(z)
    z = L.Conv2D(48, 1, use_bias=False, name="b4_expand")(z)
    z = L.BatchNormalization(name="b4_expand_bn")(z)
    z = L.ReLU(6.0, name="b4_expand_relu")(z)
    z = L.GlobalAveragePooling2D(name="pool")(z)
    outputs = L.Dense(4, activation="softmax", name="classifier")(z)
    model = keras.Model(inputs, outputs, name="blocks")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # BatchNorm statistics of a trained net: channels of very different ranges
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.05, 4, g.shape).astype("f"),
                    rng.normal(0, 1, b.shape).astype("f"),
                    rng.normal(0, 0.5, m.shape).astype("f"),
                    rng.uniform(0.05, 3, v.shape).astype("f"),
                ]
            )
    from edgelab.preprocess import set_input_range

    set_input_range(model, (-1, 1))
    return model


def _bn_factor(model, name: str) -> np.ndarray:
    """|gamma / sqrt(var + eps)| of the BatchNormalization ``<name>_bn`` right after layer ``name``."""
    bn = model.get_layer(f"{name}_bn")
    gamma, _beta, _mean, variance = (np.asarray(w, np.float64) for w in bn.get_weights())
    return np.abs(gamma / np.sqrt(variance + bn.epsilon))


def _channel_ranges(model, first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    """Per channel between ``first`` and ``second``: max |weight| of the output channel of ``first`` and
    of the input channel of ``second``, each with its own BatchNorm folded in (the paper's r1_i, r2_i)."""
    k1 = np.abs(np.asarray(model.get_layer(first).get_weights()[0], np.float64))
    k2 = np.abs(np.asarray(model.get_layer(second).get_weights()[0], np.float64))
    depthwise1 = type(model.get_layer(first)).__name__ == "DepthwiseConv2D"
    depthwise2 = type(model.get_layer(second)).__name__ == "DepthwiseConv2D"
    out = (k1[..., 0] if depthwise1 else k1).reshape(-1, k1.shape[-2 if depthwise1 else -1]).max(axis=0)
    out = out * _bn_factor(model, first)
    if depthwise2:  # (kh, kw, channels, 1): input channel i is output channel i, scaled by BN channel i
        into = (k2[..., 0] * _bn_factor(model, second)).reshape(-1, k2.shape[-2]).max(axis=0)
    else:  # (kh, kw, in, out): BN scales the output channels
        into = np.moveaxis(k2 * _bn_factor(model, second), -2, 0).reshape(k2.shape[-2], -1).max(axis=1)
    return out, into


def test_mobilenet_style_blocks_equalize_exactly_and_skip_relu6():
    from edgelab.training.equalize import equalize

    model = _mobilenet_blocks()
    images = np.random.default_rng(3).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    fixed = equalize(model, images)
    assert set(fixed.equalized) == {("stem", "b1_dw"), ("b1_dw", "b1_pw"), ("b3_project", "b4_expand")}
    skipped = {(a, b): why for a, b, why in fixed.skipped}
    assert "ReLU6" in skipped[("b2_expand", "b2_dw")] and "ReLU6" in skipped[("b2_dw", "b2_project")]
    assert ("b1_pw", "b2_expand") not in fixed.equalized  # b1_pw also feeds the residual Add
    # High-bias absorption: only a ReLU pair whose second layer sees no zero padding (1x1 b1_pw; not the depthwise)
    assert [(a, b) for a, b, _ in fixed.absorbed] == [("b1_dw", "b1_pw")], fixed.absorbed
    assert fixed.max_abs_difference <= _bound(fixed.model, fixed.output_magnitude), fixed
    assert [layer.name for layer in fixed.model.layers] == [layer.name for layer in model.layers]
    # Equalized: each pair's channel ranges now match (r1_i == r2_i, the paper's fixed point), and the
    # first layer's output ranges are closer together than before
    for first, second in fixed.equalized:
        r1, r2 = _channel_ranges(fixed.model, first, second)
        np.testing.assert_allclose(r1, r2, rtol=1e-2)  # the sweeps stop within 0.1% per pair; chains compound
        r1_before, _ = _channel_ranges(model, first, second)
        assert r1.max() / r1.min() < r1_before.max() / r1_before.min()


def test_a_nested_backbone_is_flattened_first():
    from edgelab._keras import keras
    from edgelab.preprocess import set_input_range
    from edgelab.training.equalize import equalize

    blocks = _mobilenet_blocks()
    backbone = keras.Model(blocks.input, blocks.get_layer("b4_expand_relu").output, name="backbone")
    inputs = keras.Input((12, 12, 3), name="image")
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="nested")
    set_input_range(model, (-1, 1))
    images = np.random.default_rng(4).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    fixed = equalize(model, images)
    assert not any(isinstance(layer, keras.Model) for layer in fixed.model.layers)
    assert ("b1_dw", "b1_pw") in fixed.equalized
    assert fixed.max_abs_difference <= _bound(fixed.model, fixed.output_magnitude), fixed


def _int8_rounded(kernel: np.ndarray) -> np.ndarray:
    """A Conv2D kernel after TFLite's int8 weight rounding: symmetric, one scale per output channel
    (max |w| / 127), as the int8 converter stores it."""
    limit = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    scale = np.where(limit > 0, limit / 127, 1.0)
    return np.round(kernel / scale) * scale


def test_bias_correction_removes_the_mean_shift_of_int8_weights(outlier):
    from edgelab._keras import keras
    from edgelab.preprocess import model_input_range
    from edgelab.training.equalize import correct_bias

    model, train = outlier["fixed"].model, outlier["train"]
    fixed = correct_bias(model, train)
    assert fixed.corrected == ("conv1_conv", "conv2_conv")  # the classifier's softmax is not linear
    x = np.asarray(model_input_range(model)(train[0]), np.float32)  # the float inputs of the images
    quant = type(fixed.model).from_config(fixed.model.get_config())
    quant.set_weights(fixed.model.get_weights())
    for name in fixed.corrected:
        layer = quant.get_layer(name)
        w = layer.get_weights()
        layer.set_weights([_int8_rounded(w[0].astype(np.float64)).astype("f"), *w[1:]])
    names = ["conv1_bn", "conv2_bn"]  # the corrected layers' outputs, after the BatchNorm that took the fix

    def outputs(m):
        return [np.asarray(o, np.float64) for o in keras.Model(m.inputs, [m.get_layer(n).output for n in names])(x)]

    for name, got, want in zip(names, outputs(quant), outputs(model)):
        shift = np.abs(got.reshape(-1, got.shape[-1]).mean(0) - want.reshape(-1, want.shape[-1]).mean(0))
        before = np.abs(got - want).max()  # what int8 weight rounding does per value
        # The per-channel means agree to float32 accumulation over the images (eps32 x count x magnitude).
        assert shift.max() <= EPS32 * got[..., 0].size * np.abs(want).max(), (name, shift.max(), before)


def test_repairs_on_the_demo_model_do_not_hurt(tmp_path_factory, tmp_path):
    """Bound: within 0.5 accuracy points of int8, i.e. no test image lost when there are < 200 of them."""
    from edgelab.compare.comparison import run_comparison

    p = pipeline(tmp_path_factory)
    result = run_comparison(
        p.model,
        p.data,
        out_dir=tmp_path,
        precisions=["int8"],
        repair=["equalize", "bias_correction"],
        min_time_s=0.01,
        progress=False,
    )
    table = result.table.set_index("precision")
    assert list(table.index) == ["int8", "int8+eq", "int8+eq+bc"]
    n = len(result.test_labels)
    allowed = int(0.005 * n)  # images
    correct = (table.accuracy * n).round().astype(int)
    for row in ("int8+eq", "int8+eq+bc"):
        assert correct[row] >= correct["int8"] - allowed, table
        mapped, total = map(int, str(table.edgetpu_ops[row]).split("/"))
        assert mapped == total > 0, table
    for repair in result.repairs.values():
        if repair.steps == ("equalize",):
            assert repair.max_abs_difference <= _bound(repair.model, repair.output_magnitude), repair


def test_repair_names_are_checked():
    from edgelab.compare.comparison import repair_steps
    from edgelab.errors import ConfigError

    assert repair_steps(["bias-correction", "equalize"]) == [("equalize",), ("equalize", "bias_correction")]
    with pytest.raises(ConfigError, match="equalize"):
        repair_steps(["equalise"])


def test_cli_convert_equalize(tmp_path, capsys):
    from edgelab.cli import main

    model = _mobilenet_blocks()
    path = tmp_path / "blocks.keras"
    model.save(path)
    out = tmp_path / "eq.tflite"
    code = main(
        ["convert", str(path), "--precision", "int8", "--random-calibration", "4", "--equalize", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0 and out.exists() and "3 layer pairs equalized" in printed, printed
    code = main(["convert", str(path), "--precision", "fp16", "--equalize", "--out", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("edgelab: error:") and "--equalize" in err and len(err.splitlines()) == 1


def _table(rows):
    import pandas as pd

    columns = ("precision", "status", "delta_accuracy", "size_bytes", "p50_ms", "edgetpu_ops", "edgetpu_usb3_ms")
    return pd.DataFrame([dict(zip(columns, r)) for r in rows])


def test_recommend_prefers_a_repair_that_keeps_the_edge_tpu_over_float_layers(outlier):
    from edgelab.diagnose import recommend

    table = _table(
        [
            ("fp32", "ok", 0.0, 400_000, 0.30, "0/7", None),
            ("int8", "ok", -0.30, 110_000, 0.08, "9/9", 0.9),
            ("int8+eq", "ok", -0.002, 110_000, 0.09, "9/9", 0.9),
            ("mixed_int8", "ok", 0.0, 105_000, 0.07, "3/9", 2.5),  # smaller and faster: picked without the rule
        ]
    )
    for target in ("cpu", "edgetpu"):
        pick = recommend(table, max_accuracy_drop=0.01, target=target)
        assert pick.precision == "int8+eq", pick
        assert "preferred over mixed_int8" in pick.reason
    assert any(c.startswith("mixed_int8") and "6 of 9 ops off the Edge TPU" in c and "KiB" in c for c in pick.costs)
    assert any(c.startswith("int8+eq") and "0 of 9 ops off" in c and "ms estimated" in c for c in pick.costs)
    # When plain int8 meets the budget, no repair is needed: int8 is picked even if a repaired row is smaller.
    fine = table.assign(delta_accuracy=[0.0, -0.001, -0.001, 0.0], size_bytes=[400_000, 110_000, 109_000, 105_000])
    assert recommend(fine, max_accuracy_drop=0.01, target="edgetpu").precision == "int8"
    # Without the repaired row, the float fallback is what fits on a CPU.
    assert recommend(table[table.precision != "int8+eq"], 0.01, "cpu").precision == "mixed_int8"
    # Nothing fits: a per-channel range cause names equalization as the fix, and the layer to blame.
    none = recommend(table[table.precision.isin(["fp32", "int8"])], 0.01, "edgetpu", layers=outlier["report"])
    assert none.precision is None and "conv1_relu" in none.fix and "Equalize" in none.fix, none
