"""Per-layer error of a quantized ``.tflite`` against its float twin, measured on the files themselves.

Both models run on the same images with every intermediate tensor kept. Each op of the quantized
model is matched to the float op that computes the same thing (by tensor name, then by position
among ops of the same type), and three comparisons are made at its output:

* **total**: the quantized model's tensor against the float model's (``sqnr_db``, ``cosine``,
  ``max_abs_error``): everything quantization did up to here;
* **added**: the quantized op run *on its own*, fed the float model's inputs (quantized to its
  input types), against the float output (``added_error``, ``added_sqnr_db``). This is the error the
  layer adds itself, with nothing inherited from earlier layers;
* **layer-wise**, as TensorFlow's ``QuantizationDebugger`` computes it: the float op run on the
  quantized op's own (dequantized) inputs, against the quantized output (``rmse_scale``, in steps of
  the output's scale; ~0.289 = 1/sqrt(12) is ideal rounding, above ~0.7 the debugger's tutorial
  flags a layer).

``clipped`` is the share of the float model's values that fall outside the range the quantized
tensor can hold: calibration ranges the data exceeds.

**Per-channel ranges** (:mod:`edgelab.diagnose.channels`): ``channel_range_ratio`` (widest over
median channel range of the op's output, from the float model's values) and
``levels_median_channel`` (the median channel's range in steps of the tensor's one scale); the same
for the op's weights (``weight_range_ratio``, ``weight_levels_median_channel``). An 8-bit tensor
beyond :data:`~edgelab.diagnose.channels.CHANNEL_RANGE_FACTOR` is ``range_flagged``, and the ops
reading it name its producer as their ``cause``: the error they *add* was set up by that scale.
No TensorFlow is imported.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._log import logger, tqdm
from .._text import wrap
from ..errors import ConfigError, ModelFileError, check_int
from ..preprocess import normalize
from ..tflite.inspection import ModelInfo, inspect_model, load_model_bytes, short_name
from ._graph import OpSlicer, Runner, quantized_range, run_batches, to_float, to_tensor
from .channels import CHANNEL_RANGE_FACTOR, ChannelRanges, find_causes, flagged, ratio_and_levels, weight_channels

__all__ = ["COLUMNS", "LayerReport", "analyze_layers"]

#: Columns of :attr:`LayerReport.frame`, in order.
COLUMNS = (
    "index",
    "op",
    "tensor",
    "dtype",
    "scale",
    "zero_point",
    "rmse_scale",
    "sqnr_db",
    "cosine",
    "max_abs_error",
    "clipped",
    "added_error",
    "added_sqnr_db",
    "inherited_sqnr_db",
    "layer_mse",
    "layer_mean_error",
    "layer_max_abs_error",
    "channel_range_ratio",
    "levels_median_channel",
    "weight_range_ratio",
    "weight_levels_median_channel",
    "range_flagged",
    "cause",
)
#: The keys of ``edgelab layers --json`` rows.
JSON_KEYS = (
    "index",
    "op",
    "tensor",
    "rmse_scale",
    "sqnr_db",
    "cosine",
    "max_abs_error",
    "clipped",
    "added_error",
    "channel_range_ratio",
    "levels_median_channel",
    "weight_range_ratio",
    "cause",
)
#: SQNR is capped here (an exact match would be infinite).
MAX_SQNR_DB = 120.0
_PASS_THROUGH = ("QUANTIZE", "DEQUANTIZE")
_SAMPLE = 4096


@dataclass(frozen=True)
class LayerReport:
    """Per-op error of a quantized model, one row per op output in graph order.

    Attributes:
        frame: The :data:`COLUMNS` table.
        float_model: Path (or ``"<bytes>"``) of the float model.
        quant_model: Path (or ``"<bytes>"``) of the quantized model.
        activations: The quantized model's activation type (``"int8"``, ``"int16"``, ``"float16"``...).
        num_images: Images analyzed.
        seconds: Wall time of the analysis.
        samples: ``{op index: (float values, quantized values)}``, a fixed random sample of each
            output for histograms (not part of comparisons).
        ranges: ``{op index: (low, high)}`` the quantized output can hold (integer outputs only).
    """

    frame: pd.DataFrame = field(repr=False)
    float_model: str
    quant_model: str
    activations: str
    num_images: int
    seconds: float = field(compare=False)
    samples: Mapping[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)
    ranges: Mapping[int, tuple[float, float]] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        worst = self.worst(1)
        name = short_name(worst[0]) if worst else "none"
        return (
            f"LayerReport({Path(self.quant_model).name!r} vs {Path(self.float_model).name!r}, "
            f"activations={self.activations}, layers={len(self.frame)}, images={self.num_images}, worst={name!r})"
        )

    def ranked(self) -> pd.DataFrame:
        """Rows sorted by ``added_error``, worst first (ties keep graph order)."""
        return self.frame.sort_values("added_error", ascending=False, kind="stable")

    def worst(self, k: int = 1, compute_only: bool = True) -> list[str]:
        """Tensor names of the ``k`` ops that add the most error (QUANTIZE/DEQUANTIZE left out by default)."""
        ranked = self.ranked()
        if compute_only:
            ranked = ranked[~ranked.op.isin(_PASS_THROUGH)]
        return list(ranked.tensor.head(check_int("k", k)))

    def row(self, key: int | str) -> pd.Series:
        """One row by op index or tensor name."""
        hits = (
            self.frame[self.frame["index"] == key]
            if isinstance(key, (int, np.integer))
            else self.frame[self.frame.tensor == key]
        )
        if hits.empty:
            raise ConfigError(f"Expected an op index or tensor name of {self.quant_model}. Received: {key!r}")
        return hits.iloc[0]

    def suspects(self, k: int = 1) -> list[str]:
        """Tensor names of the ``k`` ops to fix, worst first: for each op ranked by added error, its
        ``cause`` when a flagged per-channel range upstream set it up, else the op itself."""
        ranked = self.ranked()
        ranked = ranked[~ranked.op.isin(_PASS_THROUGH)]
        picked: list[str] = []
        for _, r in ranked.iterrows():
            name = r.cause if isinstance(r.cause, str) else r.tensor
            if name not in picked:
                picked.append(name)
            if len(picked) == check_int("k", k):
                break
        return picked

    def explain(self, key: int | str) -> str:
        """One or two sentences on an op's channel ranges and, if it has one, its cause."""
        r = self.row(key)
        name = short_name(r.tensor)
        parts = [f"op {r['index']} {r.op} ({name})"]
        if math.isfinite(r.channel_range_ratio):
            parts.append(
                f"output channel ranges differ up to {r.channel_range_ratio:.1f}x, the median channel spans "
                f"{r.levels_median_channel:.1f} steps of its scale"
                if math.isfinite(r.levels_median_channel)
                else f"output channel ranges differ up to {r.channel_range_ratio:.1f}x"
            )
        text = ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]
        if r.range_flagged and math.isfinite(r.channel_range_ratio) and r.channel_range_ratio > CHANNEL_RANGE_FACTOR:
            text += (
                f" (flagged: beyond {CHANNEL_RANGE_FACTOR:.0f}x; its own error looks small because the wide channel "
                "dominates it, the ops reading it pay)"
            )
        if isinstance(r.cause, str) and r.cause != r.tensor:
            c = self.row(r.cause)
            text += (
                f". Its error is set up upstream: {short_name(c.tensor)} (op {c['index']}) has channel ranges "
                f"differing {c.channel_range_ratio:.0f}x (flagged above {CHANNEL_RANGE_FACTOR:.0f}x), so under one "
                f"int8 scale its median channel keeps {c.levels_median_channel:.1f} levels; keeping {name} in float "
                f"does not restore them, equalizing the two layers (edgelab.equalize) does"
            )
        elif isinstance(r.cause, str):
            text += (
                f". Its own weights' channel ranges differ {r.weight_range_ratio:.0f}x (flagged above "
                f"{CHANNEL_RANGE_FACTOR:.0f}x): the median channel keeps {r.weight_levels_median_channel:.1f} of 127 levels"
            )
        return wrap(text + ".")

    def to_dict(self) -> dict[str, Any]:
        """``{"layers": [{index, op, tensor, rmse_scale, sqnr_db, cosine, max_abs_error, clipped, added_error}]}``."""
        rows = []
        for record in self.frame[list(JSON_KEYS)].to_dict("records"):
            rows.append(
                {k: (None if isinstance(v, float) and not math.isfinite(v) else _plain(v)) for k, v in record.items()}
            )
        return {"layers": rows}

    def summary(self, top: int = 3) -> str:
        """A few lines: what was compared and the layers adding the most error."""
        lines = [
            f"{Path(self.quant_model).name} ({self.activations} activations) vs {Path(self.float_model).name}: "
            f"{len(self.frame)} ops on {self.num_images} images"
        ]
        for _, r in self.ranked().head(top).iterrows():
            cause = (  # on a line of its own, so the op's line stays short
                f"\n      <- cause: {short_name(r.cause)} (channel ranges differ {self.row(r.cause).channel_range_ratio:.0f}x)"
                if isinstance(r.cause, str) and r.cause != r.tensor
                else ""
            )
            lines.append(
                f"  op {r['index']:>3} {r.op:<16} adds error {r.added_error:.4f} (SQNR {r.added_sqnr_db:.1f} dB), "
                f"clipped {r.clipped:.2%}: {short_name(r.tensor)}{cause}"
            )
        return wrap("\n".join(lines))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _norm(name: str) -> str:
    return re.sub(r"\d+$", "", name)


def match_ops(quant: ModelInfo, flt: ModelInfo) -> dict[int, int]:
    """``{quantized op index: float op index}`` for ops that compute the same thing.

    By op type and tensor name (the converter appends digits to keep names unique, so those are
    ignored), then by position among the remaining ops of that type.
    """
    candidates = [op for op in flt.ops if op.op not in _PASS_THROUGH and op.outputs]
    used: set[int] = set()
    matches: dict[int, int] = {}
    last = -1
    for op in quant.ops:
        if op.op in _PASS_THROUGH or not op.outputs:
            continue
        name = _norm(quant.tensors[op.outputs[0]].name)
        same = [f for f in candidates if f.op == op.op and f.index not in used]
        pick = next((f for f in same if _norm(flt.tensors[f.outputs[0]].name) == name), None)
        if pick is None:
            pick = next((f for f in same if f.index > last), None)
        if pick is not None:
            matches[op.index] = pick.index
            used.add(pick.index)
            last = pick.index
    return matches


def _references(quant: ModelInfo, flt: ModelInfo, matches: Mapping[int, int]) -> dict[int, int]:
    """``{quantized tensor: float tensor holding the value it approximates}``."""
    ref: dict[int, int] = {}
    for q, f in zip(quant.inputs, flt.inputs):
        ref[q.index] = f.index
    for op in quant.ops:
        if op.index in matches:
            fop = flt.ops[matches[op.index]]
            for qt, ft in zip(op.outputs, fop.outputs):
                ref[qt] = ft
        elif op.op in _PASS_THROUGH and op.inputs and op.inputs[0] in ref:
            ref[op.outputs[0]] = ref[op.inputs[0]]
    for q, f in zip(quant.outputs, flt.outputs):
        ref[q.index] = f.index
    return ref


class _Stats:
    """Running sums for one comparison (float reference r, approximation a)."""

    __slots__ = ("a2", "e", "e2", "images", "max_abs", "n", "r2", "sum_max")

    def __init__(self) -> None:
        self.n = self.images = 0
        self.e = self.e2 = self.r2 = self.a2 = self.max_abs = self.sum_max = 0.0

    def add(self, ref: np.ndarray, approx: np.ndarray) -> None:
        # float32 with BLAS dot products: fast, and accurate to ~1e-5 relative (SQNR to ~1e-4 dB).
        r = np.asarray(ref, np.float32).reshape(-1)
        a = np.asarray(approx, np.float32).reshape(-1)
        d = a - r
        images = ref.shape[0]
        self.n += d.size
        self.images += images
        self.e += float(d.sum(dtype=np.float64))
        self.e2 += float(np.dot(d, d))
        self.r2 += float(np.dot(r, r))
        self.a2 += float(np.dot(a, a))
        if d.size:
            per_image = np.abs(d).reshape(images, -1).max(axis=1)
            self.max_abs = max(self.max_abs, float(per_image.max()))
            self.sum_max += float(per_image.sum(dtype=np.float64))

    def mse(self) -> float:
        return self.e2 / self.n if self.n else math.nan

    def nsr(self) -> float:
        """Noise-to-signal ratio: rms error / rms reference."""
        if self.e2 == 0:
            return 0.0
        return math.sqrt(self.e2 / self.r2) if self.r2 > 0 else math.inf

    def sqnr_db(self) -> float:
        if self.e2 == 0:
            return MAX_SQNR_DB
        if self.r2 == 0:
            return -MAX_SQNR_DB
        return min(MAX_SQNR_DB, 10 * math.log10(self.r2 / self.e2))

    def cosine(self) -> float:
        if self.r2 == 0 or self.a2 == 0:
            return 1.0 if self.r2 == self.a2 else 0.0
        # 1 - cos from the error energy: |r-a|^2 = r2 + a2 - 2 r.a, without cancellation in r.a.
        gap = (math.sqrt(self.r2) - math.sqrt(self.a2)) ** 2
        return max(-1.0, 1.0 - (self.e2 - gap) / (2 * math.sqrt(self.r2 * self.a2)))


def _read(source: str | os.PathLike | bytes, what: str) -> tuple[bytes, str, ModelInfo]:
    data, path = load_model_bytes(source, purpose=f"({what})")
    info = inspect_model(data)
    if info.is_edgetpu_compiled:
        raise ModelFileError(
            f"Expected a model that runs on the CPU ({what}). Received: {path or 'model bytes'}, compiled for the "
            "Edge TPU: analyze the .tflite from before edgetpu_compiler."
        )
    if len(info.inputs) != 1 or len(info.inputs[0].shape) != 4:
        raise ModelFileError(
            f"Expected an image classifier with one NHWC input ({what}). Received: {path or 'model bytes'} with inputs "
            f"{[t.describe() for t in info.inputs]}"
        )
    return data, path or "<bytes>", info


def analyze_layers(
    float_model: str | os.PathLike | bytes,
    quant_model: str | os.PathLike | bytes,
    images: Any,
    *,
    batch_size: int = 64,
    max_images: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> LayerReport:
    """Per-layer error of ``quant_model`` against ``float_model`` on raw uint8 ``images``.

    Args:
        float_model: The fp32 ``.tflite`` (path or bytes).
        quant_model: A quantized ``.tflite`` of the same model: int8, qat_int8, mixed_int8, int16x8,
            fp16 or dynamic (path or bytes).
        images: uint8 pixels ``(N, H, W, 3)`` at the models' input size, an edgelab Dataset (its
            test split) or an ``(images, labels)`` pair.
        batch_size: Images per interpreter call.
        max_images: Analyze at most this many images (an evenly spaced subset), None for all.
        seed: Which values are kept for histograms.
        progress: Show a progress bar.

    Returns:
        A :class:`LayerReport`, rows in the quantized model's graph order.

    Raises:
        ModelFileError: a file is missing, not TFLite, compiled for the Edge TPU, or the two models'
            inputs differ.
        ConfigError: images of the wrong shape or type.
    """
    start = time.perf_counter()
    fdata, fname, finfo = _read(float_model, "the float model")
    qdata, qname, qinfo = _read(quant_model, "the quantized model")
    if finfo.inputs[0].dtype != "float32":
        raise ModelFileError(
            f"Expected the float model first, with a float32 input. Received: {fname} with a {finfo.inputs[0].dtype} input"
        )
    if tuple(finfo.inputs[0].shape[1:]) != tuple(qinfo.inputs[0].shape[1:]):
        raise ModelFileError(
            f"Expected two versions of one model (same input shape). Received: {fname} takes {finfo.inputs[0].shape[1:]}, "
            f"{qname} takes {qinfo.inputs[0].shape[1:]}"
        )
    pixels = _images(images, tuple(finfo.inputs[0].shape[1:]), max_images)
    batch_size = check_int("batch_size", batch_size)

    matches = match_ops(qinfo, finfo)
    ref = _references(qinfo, finfo, matches)
    rows = [op for op in qinfo.ops if op.outputs and op.outputs[0] in ref]
    if not rows:
        raise ModelFileError(f"Expected {qname} to be a version of {fname}: none of their ops correspond.")
    fslicer, qslicer = OpSlicer(fdata), OpSlicer(qdata)
    frun, qrun = Runner(fdata, preserve=True), Runner(qdata, preserve=True)
    added_runs = {op.index: (Runner(qslicer.model_bytes(op.index)), qslicer.inputs(op.index)) for op in rows}
    layer_runs = {
        op.index: (Runner(fslicer.model_bytes(matches[op.index])), fslicer.inputs(matches[op.index]))
        for op in rows
        if op.index in matches
    }
    tracked = sorted({t for t in ref if t in set(qwanted_all(qinfo))})
    total = {t: _Stats() for t in tracked}
    added = {op.index: _Stats() for op in rows}
    layer = {op.index: _Stats() for op in rows}
    clipped = {op.index: [0, 0] for op in rows}
    channel_ranges = {op.index: ChannelRanges() for op in rows}
    ranges = {op.index: span for op in rows if (span := quantized_range(qinfo, op.outputs[0])) is not None}
    samples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    rng = np.random.default_rng(seed)

    fwanted = sorted({t for t in ref.values()})
    qwanted = qwanted_all(qinfo)
    with tqdm(total=len(pixels), desc="layers", unit="img", leave=False, progress=progress) as bar:
        for lo in range(0, len(pixels), batch_size):
            x = normalize(pixels[lo : lo + batch_size])
            fvals = run_batches(frun, [x.astype(np.float32)], fwanted)
            qin = qinfo.inputs[0].index
            qvals = run_batches(qrun, [to_tensor(qinfo, qin, x)], qwanted)
            floats = {t: to_float(qinfo, t, qvals[t]) for t in tracked}
            for t in tracked:
                total[t].add(fvals[ref[t]], floats[t])
            for op in rows:
                out = op.outputs[0]
                r = fvals[ref[out]]
                q = floats[out]
                channel_ranges[op.index].add(r)
                if op.index in ranges:
                    low, high = ranges[op.index]
                    half = (qinfo.tensors[out].scale or 0) / 2
                    clipped[op.index][0] += int(((r < low - half) | (r > high + half)).sum())
                    clipped[op.index][1] += r.size
                # Added: this op alone, fed the float model's values in its own input types.
                runner, inputs = added_runs[op.index]
                feed = [to_tensor(qinfo, t, fvals[ref[t]]) if t in ref else qvals[t] for t in inputs]
                alone = run_batches(runner, feed, [out])[out]
                added[op.index].add(r, to_float(qinfo, out, alone))
                # Layer-wise (TensorFlow's debugger): the float op on the quantized op's own inputs.
                if op.index in layer_runs:
                    frunner, finputs = layer_runs[op.index]
                    qinputs = [t for t in op.inputs if t >= 0 and not qinfo.tensors[t].has_buffer and t in ref]
                    fop_out = finfo.ops[matches[op.index]].outputs[0]
                    feed = [floats[qt] for qt in qinputs[: len(finputs)]]
                    expected = run_batches(frunner, feed, [fop_out])[fop_out] if len(feed) == len(finputs) else None
                else:  # QUANTIZE / DEQUANTIZE: the float op is the identity
                    source = op.inputs[0]
                    expected = floats[source] if source in floats else to_float(qinfo, source, qvals[source])
                if expected is not None:
                    layer[op.index].add(expected, q)
                if op.index not in samples:
                    flat_r, flat_q = r.reshape(-1), q.reshape(-1)
                    pick = rng.choice(flat_r.size, size=min(_SAMPLE, flat_r.size), replace=False)
                    samples[op.index] = (flat_r[pick].astype(np.float32), flat_q[pick].astype(np.float32))
            bar.update(len(x))

    channel_stats = {
        op.index: ratio_and_levels(
            channel_ranges[op.index].ranges(),
            qinfo.tensors[op.outputs[0]].scale
            if qinfo.tensors[op.outputs[0]].dtype in ("int8", "uint8", "int16")
            else None,
        )
        for op in rows
    }
    weight_stats = {op.index: weight_channels(qslicer._model, op.index) for op in rows}
    act_flags = {i: flagged(v[0], qinfo.tensors[qinfo.ops[i].outputs[0]].dtype) for i, v in channel_stats.items()}
    weight_flags = {i: flagged(v[0], "int8") for i, v in weight_stats.items()}
    causes = find_causes(qinfo, [op.index for op in rows], act_flags, weight_flags)
    records = []
    for op in rows:
        info_out = qinfo.tensors[op.outputs[0]]
        tot, a, lw = total[op.outputs[0]], added[op.index], layer[op.index]
        ins = [total[i] for i in op.inputs if i in total]
        scale = info_out.scale if info_out.dtype in ("int8", "uint8", "int16") else None
        count, size = clipped[op.index]
        records.append(
            {
                "index": op.index,
                "op": op.op,
                "tensor": info_out.name,
                "dtype": info_out.dtype,
                "scale": scale,
                "zero_point": info_out.zero_point if scale else None,
                "rmse_scale": math.sqrt(lw.mse()) / scale if scale and lw.n else math.nan,
                "sqnr_db": tot.sqnr_db(),
                "cosine": tot.cosine(),
                "max_abs_error": tot.max_abs,
                "clipped": count / size if size else 0.0,
                "added_error": a.nsr(),
                "added_sqnr_db": a.sqnr_db(),
                "inherited_sqnr_db": min((i.sqnr_db() for i in ins), default=MAX_SQNR_DB),
                "layer_mse": lw.mse() if lw.n else math.nan,
                "layer_mean_error": lw.e / lw.n if lw.n else math.nan,
                "layer_max_abs_error": lw.sum_max / lw.images if lw.images else math.nan,
                "channel_range_ratio": channel_stats[op.index][0],
                "levels_median_channel": channel_stats[op.index][1],
                "weight_range_ratio": weight_stats[op.index][0],
                "weight_levels_median_channel": weight_stats[op.index][1],
                "range_flagged": bool(act_flags[op.index] or weight_flags[op.index]),
                "cause": qinfo.tensors[qinfo.ops[causes[op.index]].outputs[0]].name if op.index in causes else None,
            }
        )
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    for column in (
        "rmse_scale",
        "sqnr_db",
        "cosine",
        "max_abs_error",
        "clipped",
        "added_error",
        "added_sqnr_db",
        "inherited_sqnr_db",
        "channel_range_ratio",
        "levels_median_channel",
        "weight_range_ratio",
        "weight_levels_median_channel",
    ):
        frame[column] = frame[column].astype(float).round(6)
    seconds = time.perf_counter() - start
    activations = _activation_type(qinfo, rows)
    logger.info("per-layer analysis of %s: %d ops, %d images, %.1f s", qname, len(rows), len(pixels), seconds)
    return LayerReport(frame, str(fname), str(qname), activations, len(pixels), seconds, samples, ranges)


def qwanted_all(info: ModelInfo) -> list[int]:
    """Every non-constant tensor an op reads or writes."""
    return sorted(
        {t for op in info.ops for t in (*op.inputs, *op.outputs) if t >= 0 and not info.tensors[t].has_buffer}
    )


def _activation_type(info: ModelInfo, rows) -> str:
    kinds = [info.tensors[op.outputs[0]].dtype for op in rows if op.op not in _PASS_THROUGH]
    return max(set(kinds), key=kinds.count) if kinds else "unknown"


def _images(images: Any, shape: tuple[int, ...], max_images: int | None) -> np.ndarray:
    if hasattr(images, "arrays"):
        images = images.arrays("test")[0]
    elif isinstance(images, (tuple, list)) and len(images) == 2 and np.ndim(images[0]) == 4:
        images = images[0]
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or tuple(arr.shape[1:]) != shape or arr.dtype != np.uint8 or len(arr) == 0:
        raise ConfigError(
            f"Expected uint8 images of shape (N, {', '.join(map(str, shape))}) (raw pixels). "
            f"Received: shape={tuple(arr.shape)}, dtype={arr.dtype}"
        )
    if max_images is not None and len(arr) > check_int("max_images", max_images):
        arr = arr[np.linspace(0, len(arr) - 1, max_images).round().astype(int)]
    return arr
