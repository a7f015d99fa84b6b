"""Pick the variant to ship from a comparison table, within an accuracy budget, with its reasons."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from ..errors import ConfigError, did_you_mean

__all__ = ["Prefer", "Recommendation", "Target", "recommend"]


class Target(str, enum.Enum):
    """Where the model will run."""

    CPU = "cpu"
    EDGETPU = "edgetpu"


class Prefer(str, enum.Enum):
    """What to optimise once the accuracy budget is met."""

    LATENCY = "latency"
    SIZE = "size"


def _parse(enum_cls, value, name):
    try:
        return enum_cls(str(getattr(value, "value", value)).lower())
    except ValueError:
        names = [m.value for m in enum_cls]
        raise ConfigError(
            f"Expected {name} to be one of {names}. Received: {name}={value!r}.{did_you_mean(str(value), names)}"
        ) from None


@dataclass(frozen=True)
class Recommendation:
    """The variant to ship (None when none meets the budget), why, and what to try otherwise.

    Attributes:
        precision: The chosen row's precision, or None.
        reason: One sentence of reasons.
        fix: When nothing meets the budget, the fix the measurements point to (else empty).
        candidates: Precisions that met the budget.
    """

    precision: str | None
    reason: str
    fix: str = ""
    candidates: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.reason + (f" {self.fix}" if self.fix else "")

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
    """
    target = cast(Target, _parse(Target, target, "target"))
    prefer = cast(Prefer, _parse(Prefer, prefer, "prefer"))
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
    if target is Target.EDGETPU:
        tpu = ok["edgetpu_ops"].map(_mapped) if "edgetpu_ops" in ok.columns else pd.Series(None, index=ok.index)
        ok["cpu_ops"] = [t[1] - t[0] if t else None for t in tpu]
        ok = ok[[t is not None and t[0] == t[1] and t[1] > 0 for t in tpu]]
    within = ok[ok["drop"] <= max_accuracy_drop + 1e-9]
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
        return Recommendation(str(best.precision), reason, "", tuple(within.precision))
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
    if calibration is not None and calibration.flagged:
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
    return Recommendation(None, reason, fix, ())
