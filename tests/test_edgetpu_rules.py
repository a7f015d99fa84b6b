"""Analyzer rules added for compiler 16's op table: recurrent ops, TILE, resize op versions, -a."""

from __future__ import annotations

import numpy as np
from test_edgetpu_analyze import Q, act, build_tflite, const

from edgelab.edgetpu import analyze_edgetpu
from edgelab.edgetpu import ops as table


def _resize(op: str, half_pixel: bool) -> str:
    from ai_edge_litert import schema_py_generated as s

    if op == "RESIZE_BILINEAR":
        opts, kind = s.ResizeBilinearOptionsT(), s.BuiltinOptions.ResizeBilinearOptions
    else:
        opts, kind = s.ResizeNearestNeighborOptionsT(), s.BuiltinOptions.ResizeNearestNeighborOptions
    opts.halfPixelCenters = half_pixel
    tensors = [act((1, 4, 4, 8)), const([8, 8]), act((1, 8, 8, 8))]
    model = build_tflite(tensors, [(op, 3 if half_pixel else 1, [0, 1], [2], kind, opts)], [0], [2])
    return analyze_edgetpu(model).ops[0].reason


def test_half_pixel_nearest_neighbor_is_logged_as_an_unsupported_version():
    # Compilers 14.1-15 log it "Operation version not supported" (tiny_yolo_edgetpu.log, edgetpu#187, #420).
    assert _resize("RESIZE_NEAREST_NEIGHBOR", half_pixel=True) == table.STATUS_VERSION
    assert _resize("RESIZE_NEAREST_NEIGHBOR", half_pixel=False) == table.STATUS_MAPPED


def _conv(cin: int, cout: int) -> list[dict]:
    weights = {"shape": (cout, 1, 1, cin), "dtype": "int8", "quant": Q, "data": np.ones((cout, 1, 1, cin))}
    return [weights, const(np.zeros(cout))]


def test_three_half_pixel_bilinear_upsamplings_between_convolutions_map_as_compiler_16_maps_them():
    """The shape of a public model compiled with edgetpu_compiler 16: three int8 2x RESIZE_BILINEAR
    with half_pixel_centers=true, align_corners=false (6->12, 12->24, 24->48), each after a
    convolution; the compiler mapped all three (98 of that model's 157 ops on the Edge TPU)."""
    from ai_edge_litert import schema_py_generated as s

    tensors: list[dict] = []
    ops: list[tuple] = []

    def add(tensor: dict) -> int:
        tensors.append(tensor)
        return len(tensors) - 1

    x = add(act((1, 6, 6, 64)))
    first = x
    for size, cin, cout in ((6, 64, 64), (12, 64, 32), (24, 32, 24)):
        w, b = (add(t) for t in _conv(cin, cout))
        y = add(act((1, size, size, cout)))
        ops.append(("CONV_2D", 1, [x, w, b], [y]))
        opts = s.ResizeBilinearOptionsT()
        opts.halfPixelCenters, opts.alignCorners = True, False
        target = add(const([2 * size, 2 * size]))
        x = add(act((1, 2 * size, 2 * size, cout)))
        ops.append(("RESIZE_BILINEAR", 3, [y, target], [x], s.BuiltinOptions.ResizeBilinearOptions, opts))
    w, b = (add(t) for t in _conv(24, 8))
    out = add(act((1, 48, 48, 8)))
    ops.append(("CONV_2D", 1, [x, w, b], [out]))

    report = analyze_edgetpu(build_tflite(tensors, ops, [first], [out]))
    resizes = [v for v in report.ops if v.op == "RESIZE_BILINEAR"]
    assert len(resizes) == 3
    assert all(v.reason == table.STATUS_MAPPED for v in resizes), [v.reason for v in resizes]
    assert report.verdict == "ok" and report.ops_edgetpu == report.ops_total == 7


def test_every_limit_names_its_source():
    from edgelab.edgetpu.rules import LIMITS, SOURCES

    assert set(SOURCES) == set(LIMITS)
    assert all(len(text) > 20 for text in SOURCES.values())


def test_tile_is_not_in_the_edge_tpu_op_set():
    # Source: Coral's table of supported ops (compiler 16) has no TILE, so it is "Operation not supported".
    tensors = [act((1, 4, 8)), const([1, 2, 1]), act((1, 8, 8))]
    report = analyze_edgetpu(build_tflite(tensors, [("TILE", 1, [0, 1], [2])], [0], [2]))
    assert report.ops[0].reason == table.STATUS_NOT_SUPPORTED
    assert report.verdict == "none_mapped"
    # No public compiler log shows TILE either way: the report says so instead of guessing.
    assert report.unverified == (0,) and report.to_dict()["unverified"] == [0]
    (hint,) = report.hints
    assert hint.startswith("Unverified: TILE (#0) is predicted on the CPU (Operation not supported)")
    assert "no public compiler log" in hint and "Unverified: TILE" in report.summary()


def _bilinear(src: int, dst: int, align: bool = False, half_pixel: bool = False):
    from ai_edge_litert import schema_py_generated as s

    opts = s.ResizeBilinearOptionsT()
    opts.alignCorners, opts.halfPixelCenters = align, half_pixel
    tensors = [act((1, src, src, 4)), const([dst, dst]), act((1, dst, dst, 4))]
    ops = [("RESIZE_BILINEAR", 3 if half_pixel else 1, [0, 1], [2], s.BuiltinOptions.ResizeBilinearOptions, opts)]
    return analyze_edgetpu(build_tflite(tensors, ops, [0], [2]))


def test_align_corners_resize_from_more_than_one_pixel_is_reported_unverified():
    # A deeplab decoder's 33 -> 65 upsampling: (65-1)/(33-1) = 2, predicted mapped, but no public
    # compiler log shows an align_corners resize mapped (or refused) from more than one pixel.
    exact = _bilinear(33, 65, align=True)
    assert exact.ops[0].reason == table.STATUS_MAPPED and exact.unverified == (0,)
    assert exact.hints[0].startswith("Unverified: RESIZE_BILINEAR (#0) is predicted on the Edge TPU")
    inexact = _bilinear(3, 8, align=True)  # 7/2: no exact grid, predicted on the CPU
    assert inexact.ops[0].reason == table.STATUS_LIMITATION and inexact.unverified == (0,)
    # Pinned by public evidence, so not flagged: the Coral deeplab pair's 1x1 -> 33x33 (CPU), and
    # the compiler-16 half-pixel 2x upsampling (mapped).
    one_pixel = _bilinear(1, 33, align=True)
    assert one_pixel.ops[0].reason == table.STATUS_LIMITATION and one_pixel.unverified == ()
    half_pixel = _bilinear(6, 12, half_pixel=True)
    assert half_pixel.ops[0].reason == table.STATUS_MAPPED and half_pixel.unverified == () and not half_pixel.hints


def test_coral_deeplab_pair_has_no_unverified_verdict():
    # Its align_corners 33 -> 33 and 33 -> 513 resizes stay on the CPU by the single partition,
    # not by their own rule; the 1x1 -> 33x33 one is the pair's own evidence.
    from test_edgetpu_analyze import CORAL

    report = analyze_edgetpu(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    assert report.unverified == ()
    assert not any(h.startswith("Unverified") for h in report.hints)


def _lstm(cell_dtype: str = "int16", op: str = "UNIDIRECTIONAL_SEQUENCE_LSTM") -> bytes:
    """An integer LSTM laid out as TFLite's converter writes it (24 inputs, two state variables)."""
    steps, features, units = 4, 8, 16
    w_in = {"shape": (units, features), "dtype": "int8", "quant": Q, "data": np.ones((units, features))}
    w_rec = {"shape": (units, units), "dtype": "int8", "quant": Q, "data": np.ones((units, units))}
    bias = {"shape": (units,), "dtype": "int32", "quant": Q, "data": np.zeros(units)}
    tensors = [act((1, steps, features))] + [w_in] * 4 + [w_rec] * 4 + [bias] * 4
    tensors += [
        {"shape": (1, units), "dtype": "int8", "quant": Q, "variable": True},  # output state
        {"shape": (1, units), "dtype": cell_dtype, "quant": (2**-11, 0), "variable": True},  # cell state
        act((1, steps, units)),
        act((1, steps, units)),
    ]
    ins = [0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, 9, 10, 11, 12, -1, -1, 13, 14, -1, -1, -1, -1]
    return build_tflite(tensors, [(op, 1, ins, [15]), ("ADD", 1, [15, 15], [16])], [0], [16])


def test_unidirectional_lstm_maps_from_runtime_14_with_its_int16_cell_state():
    # Coral's table: "LSTM: unidirectional LSTM only", runtime 14.
    assert analyze_edgetpu(_lstm()).ops[0].reason == table.STATUS_MAPPED
    assert analyze_edgetpu(_lstm(), runtime_version=13).ops[0].reason == table.STATUS_NOT_SUPPORTED


def test_float_lstm_and_bidirectional_lstm_stay_on_the_cpu():
    assert analyze_edgetpu(_lstm(cell_dtype="float32")).ops[0].reason == table.STATUS_LIMITATION
    bidi = analyze_edgetpu(_lstm(op="BIDIRECTIONAL_SEQUENCE_LSTM"))
    assert bidi.ops[0].target == "cpu" and bidi.ops_edgetpu == 1  # only the ADD after it


def test_multiple_subgraphs_flag_maps_ops_after_a_cpu_op_again():
    tensors = [act(), act(), act(), act()]
    ops = [("ADD", 1, [0, 0], [1]), ("MyCustomOp", 1, [1], [2]), ("ADD", 1, [2, 2], [3])]
    model = build_tflite(tensors, ops, [0], [3])
    one = analyze_edgetpu(model)
    assert [v.reason for v in one.ops][2] == table.STATUS_SUBGRAPH and one.subgraphs == 1
    several = analyze_edgetpu(model, multiple_subgraphs=True)
    assert [v.target.value for v in several.ops] == ["edgetpu", "cpu", "edgetpu"]
    assert several.subgraphs == 2 and several.verdict == "partial"
