"""Pick the variant to ship from a comparison table, within an accuracy budget, with its reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._text import wrap
from ..edgetpu.mapping import Target
from ..enums import StrEnum
from ..errors import ConfigError
from ..tflite.inspection import short_name

__all__ = ["Prefer", "Recommendation", "Target", "recommend"]


class Prefer(StrEnum):
    """What to optimise once the accuracy budget is met."""

    LATENCY = "latency"
    SIZE = "size"


@dataclass(frozen=True)
class Recommendation:
    """The variant to ship (None when none meets the budget), why, and what to try otherwise.

    Attributes:
        precision: The chosen row's precision, or None.
        reason: One sentence of reasons.
        fix: When nothing meets the budget, the fix the measurements point to (else empty).
        candidates: Precisions that met the budget.
        costs: One line per integer option (int8, repaired int8 rows, mixed_int8): accuracy lost, ops
            off the Edge TPU, the estimated Edge TPU latency and the size.
    """

    precision: str | None
    reason: str
    fix: str = ""
    candidates: tuple[str, ...] = ()
    costs: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = self.reason + (f" {self.fix}" if self.fix else "")
        return wrap(text + ("\nOptions:\n" + "\n".join(f"  {c}" for c in self.costs) if self.costs else ""))

    def __repr__(self) -> str:
        return f"Recommendation(precision={self.precision!r}, candidates={list(self.candidates)})"


def _mapped(value: Any) -> tuple[int, int] | None:
    """``"9/9"`` -> ``(9, 9)``."""
    try:
        mapped, total = str(value).split("/")
        return int(mapped), int(total)
    except (ValueError, AttributeError):
        return None


def _partly_mapped(every: pd.DataFrame, mapped: pd.DataFrame, max_drop: float) -> str:
    """For the Edge TPU: the row within budget with the most ops on the Edge TPU, when not all of them are.

    Every row counts: one that keeps the accuracy with part of its ops on the Edge TPU is the
    trade-off on offer, and the reader sees it beside the fully mapped ones.
    """
    partial = every[(every["drop"] <= max_drop + 1e-9) & ~every.precision.isin(mapped.precision)]
    if "edgetpu_ops" not in partial.columns:
        return ""
    partial = partial.assign(on_tpu=[m[0] if (m := _mapped(v)) else 0 for v in partial["edgetpu_ops"]])
    partial = partial[partial.on_tpu > 0]
    if not len(partial):
        return ""
    best = partial.sort_values(["on_tpu", "drop"], ascending=[False, True], kind="stable").iloc[0]
    return (
        f" Within budget, {best.precision} loses {max(best['drop'], 0) * 100 + 0:.1f} points with "
        f"{best.edgetpu_ops} ops on the Edge TPU (mapped/total; the rest run on the CPU)."
    )


def recommend(
    table: pd.DataFrame,
    max_accuracy_drop: float = 0.01,
    target: Target | str = "cpu",
    prefer: Prefer | str = "latency",
    *,
    calibration: Any = None,
    layers: Any = None,
) -> Recommendation:
    """The variant to ship: within ``max_accuracy_drop`` of the float model, best for ``target``.

    Args:
        table: A comparison table (``edgelab.compare``: precision, status, accuracy, delta_accuracy,
            size_bytes, p50_ms, edgetpu_ops).
        max_accuracy_drop: Largest accepted accuracy loss against the float Keras model (0.01 = 1 point).
        target: ``"cpu"`` (measured latency and size count) or ``"edgetpu"`` (only variants whose ops
            all map to the Edge TPU, then the fewest ops left on the CPU).
        prefer: ``"latency"`` or ``"size"`` among the variants within budget.
        calibration: A :class:`~edgelab.diagnose.calibration.RangeCheck`, to name calibration as the
            fix when it flagged layers.
        layers: A :class:`~edgelab.diagnose.layers.LayerReport` of the int8 model, to name a per-channel
            range ``cause`` and equalization as the fix.

    Repaired int8 rows (``int8+eq``, ``int8+eq+bc`` from ``run_comparison(repair=...)``) keep every op
    on the Edge TPU; when one of them meets the budget it is preferred over ``mixed_int8``, whose float
    layers leave the Edge TPU (and every op after them). ``costs`` states each option's price.
    """
    target = Target.parse(target, "target")
    prefer = Prefer.parse(prefer, "prefer")
    if not max_accuracy_drop >= 0:
        raise ConfigError(f"Expected max_accuracy_drop >= 0. Received: max_accuracy_drop={max_accuracy_drop!r}")
    missing = [c for c in ("precision", "status", "delta_accuracy", "size_bytes", "p50_ms") if c not in table.columns]
    if missing:
        raise ConfigError(f"Expected a comparison table (edgelab.compare). Received: a table without {missing}")
    ok = table[table.status == "ok"].copy()
    ok["drop"] = -pd.to_numeric(ok.delta_accuracy, errors="coerce")
    ok["size"] = pd.to_numeric(ok.size_bytes, errors="coerce")
    ok["latency"] = pd.to_numeric(ok.p50_ms, errors="coerce")
    budget = f"{max_accuracy_drop * 100:.1f}-point"
    every = ok.copy()  # every measured row, also those the target rules out, for the reasons below
    fits = ok[ok["drop"] <= max_accuracy_drop + 1e-9]
    repaired = fits[fits.precision.astype(str).str.startswith("int8+")]
    fallback = fits[fits.precision.astype(str) == "mixed_int8"]
    if target is Target.EDGETPU:
        tpu = ok["edgetpu_ops"].map(_mapped) if "edgetpu_ops" in ok.columns else pd.Series(None, index=ok.index)
        ok["cpu_ops"] = [t[1] - t[0] if t else None for t in tpu]
        ok = ok[[t is not None and t[0] == t[1] and t[1] > 0 for t in tpu]]
    within = ok[ok["drop"] <= max_accuracy_drop + 1e-9]
    costs = _costs(table)
    if len(repaired) and len(fallback):  # a repair that keeps the Edge TPU mapping beats a float fallback
        within = within[within.precision.astype(str) != "mixed_int8"]
    if (fits.precision.astype(str) == "int8").any():  # int8 needs no repair: the repaired rows add nothing
        within = within[~within.precision.astype(str).str.startswith("int8+")]
        repaired = repaired.iloc[0:0]
    if len(within):
        key = "latency" if prefer is Prefer.LATENCY and target is Target.CPU else "size"
        best = within.sort_values([key, "drop"], kind="stable").iloc[0]
        where = "every op maps to the Edge TPU, " if target is Target.EDGETPU else ""
        measured = f"{best.latency:.3f} ms p50 on this CPU" if key == "latency" else f"{best['size'] / 1024:.0f} KiB"
        others = len(within) - 1
        reason = (
            f"Ship {best.precision}: {where}it loses {max(best['drop'], 0) * 100 + 0:.1f} accuracy points "
            f"(budget {max_accuracy_drop * 100:.1f}) and is the {'fastest' if key == 'latency' else 'smallest'} "
            f"within budget ({measured}{f', ahead of {others} other' + ('s' if others > 1 else '') if others else ''})."
        )
        if len(repaired) and len(fallback):
            reason += (
                f" {', '.join(map(str, repaired.precision))} recover the accuracy with every op on the Edge TPU, so "
                "they are preferred over mixed_int8, whose float layers run on the CPU."
            )
        return Recommendation(str(best.precision), reason, "", tuple(within.precision), costs)
    # Nothing fits: say which fix the measurements point to.
    pool = table[table.status == "ok"].set_index("precision")
    drop = -pd.to_numeric(pool.delta_accuracy, errors="coerce")
    if target is Target.EDGETPU and ok.empty:
        reason = f"No variant meets the {budget} budget on the Edge TPU: no variant has every op mapped."
        reason += _partly_mapped(every, ok, max_accuracy_drop)
        return Recommendation(
            None, reason, "Convert with convert_for_edgetpu (full int8, uint8 I/O) and check edgelab analyze."
        )
    fix = ""
    cause = _range_cause(layers)
    if cause and not any(str(p).startswith("int8+") for p in drop.index):
        fix = cause
    elif calibration is not None and calibration.flagged:
        fix = f"Fix the calibration set first: {calibration.message}"
    elif "int8" in drop and "qat_int8" not in drop:
        fix = "Try quantization-aware training (qat_int8): it learns ranges and weights that survive int8."
    elif "int16x8" in drop and drop.get("int16x8", 1) <= max_accuracy_drop and target is Target.CPU:
        fix = "int16x8 keeps the accuracy: the loss is in 8-bit activations; keep the worst layers in float (mixed_int8) or use QAT."
    elif "mixed_int8" not in drop:
        fix = (
            "Find the layers that add the most error (edgelab.diagnose.analyze_layers) and keep them in float "
            "(mixed_int8), or calibrate on more images."
        )
    else:
        fix = "Keep more layers in float (mixed_int8) or use quantization-aware training."
    near = ok.set_index("precision")["drop"]
    closest = near.idxmin() if len(near) else None
    reason = f"No variant meets the {budget} budget on {target.value}" + (
        f"; the closest is {closest} ({near[closest] * 100:.1f} points lost)." if closest is not None else "."
    )
    if target is Target.EDGETPU:
        reason += _partly_mapped(every, ok, max_accuracy_drop)
    return Recommendation(None, reason, fix, (), costs)


def _range_cause(layers: Any) -> str:
    """The words naming a per-channel range cause in a LayerReport, or ''."""
    if layers is None or "cause" not in getattr(layers, "frame", pd.DataFrame()).columns:
        return ""
    ranked = layers.ranked()
    hit = ranked[ranked.cause.notna()]
    if hit.empty:
        return ""
    row = hit.iloc[0]
    cause = layers.row(row.cause)
    if cause.tensor == row.tensor:
        return (
            f"{short_name(row.tensor)}'s own weights have channel ranges differing {row.weight_range_ratio:.0f}x: "
            "equalize the float model (run_comparison(repair=['equalize'])) before keeping layers in float."
        )
    return (
        f"The error shows in {short_name(row.tensor)} but is caused upstream: {short_name(cause.tensor)}'s output "
        f"channels differ {cause.channel_range_ratio:.0f}x in range, so under one int8 scale its median channel keeps "
        f"{cause.levels_median_channel:.1f} levels. Equalize the float model (run_comparison(repair=['equalize'])): "
        "it keeps every op on the Edge TPU, while keeping either layer in float would not restore those levels."
    )


def _costs(table: pd.DataFrame) -> tuple[str, ...]:
    """One line per integer row: accuracy lost, ops off the Edge TPU, estimated Edge TPU latency, size."""
    lines = []
    for _, row in table[table.status == "ok"].iterrows():
        name = str(row.precision)
        if not (name.startswith("int8") or name in ("mixed_int8", "qat_int8")):
            continue
        mapped = _mapped(row.get("edgetpu_ops"))
        off = f"{mapped[1] - mapped[0]} of {mapped[1]} ops off the Edge TPU" if mapped else "Edge TPU mapping unknown"
        ms = pd.to_numeric(pd.Series([row.get("edgetpu_usb3_ms")]), errors="coerce").iloc[0]
        latency = f"~{ms:.2f} ms estimated on a Coral USB 3" if pd.notna(ms) else "no Edge TPU latency estimate"
        drop = -float(pd.to_numeric(pd.Series([row.delta_accuracy]), errors="coerce").iloc[0]) * 100
        size = pd.to_numeric(pd.Series([row.size_bytes]), errors="coerce").iloc[0]
        lines.append(f"{name}: loses {max(drop, 0) + 0:.1f} points, {off}, {latency}, {size / 1024:.0f} KiB")
    return tuple(lines)
