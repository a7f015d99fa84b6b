"""What a search returns: every trial, the Pareto front, the best trial within the budget, a plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._text import wrap
from ..records import Record, rounded
from .prescreen import Constraints
from .space import describe

#: Trial states in the table and the JSON.
STATES = ("complete", "pruned", "infeasible", "failed", "running")

#: Validation images within which two accuracies count as the same when choosing the best trial:
#: accuracy on n images moves in steps of 1/n, so one image apart is the smallest difference the
#: validation split can show, and no evidence that one candidate is more accurate than the other.
TIE_IMAGES = 1


@dataclass(frozen=True)
class TrialRecord(Record):
    """One trial of the study.

    Attributes:
        number: Optuna's trial number (unique within the study, whichever worker ran it).
        state: ``complete``, ``pruned``, ``infeasible`` (rejected before training), ``failed`` or
            ``running`` (another worker is on it).
        params: The candidate: architecture, width, input_size (and learning_rate, epochs when searched).
        accuracy: The int8 file's accuracy on the validation split (None when not trained).
        latency_ms: Estimated Edge TPU time per inference on the search's link (None if not analysed).
        ops_edgetpu, ops_total: Ops mapped to the Edge TPU, and all ops.
        size_bytes: The int8 file's size.
        seconds: Wall time of the trial (for an infeasible one: the time its rejection took).
        reason: Why it was rejected, pruned or failed (None for a complete trial).
        model: The trained int8 file (None unless complete).
        epochs_run: Epochs trained.
        val_images: Validation images the accuracy was measured on (its resolution is 1/val_images).
        prescreen_seconds, prescreen_cpu_seconds: Wall and CPU time (all of the process's threads)
            of building, converting and analysing the untrained candidate.
    """

    number: int
    state: str
    params: dict[str, Any]
    accuracy: float | None
    latency_ms: float | None
    ops_edgetpu: int | None
    ops_total: int | None
    size_bytes: int | None
    seconds: float | None = field(metadata=rounded(2))
    reason: str | None
    model: str | None
    epochs_run: int | None = None
    val_images: int | None = None
    prescreen_seconds: float | None = None
    prescreen_cpu_seconds: float | None = None

    def correct(self) -> int | None:
        """Validation images classified right (None when unknown): ``accuracy * val_images``."""
        if self.accuracy is None or not self.val_images:
            return None
        return round(self.accuracy * self.val_images)  # accuracies are kept to 4 decimals: exact below 5000 images

    @property
    def label(self) -> str:
        return describe(self.params) if "input_size" in self.params else "?"

    def __repr__(self) -> str:
        acc = "-" if self.accuracy is None else f"{self.accuracy:.4f}"
        lat = "-" if self.latency_ms is None else f"{self.latency_ms:.2f} ms"
        return f"TrialRecord({self.number}, {self.state}, {self.label}, accuracy={acc}, latency={lat})"


def record_from_trial(trial: Any) -> TrialRecord:
    """A :class:`TrialRecord` from an Optuna ``FrozenTrial`` (its user attributes hold edgelab's facts)."""
    # deferred: optuna (about a second to import; reading a result does not need it)
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "running",
    }[trial.state]
    if state == "complete" and attrs.get("infeasible"):
        state = "infeasible"
    seconds = attrs.get("seconds")
    if seconds is None and trial.datetime_start and trial.datetime_complete:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    accuracy = attrs.get("accuracy") if state == "complete" else None
    return TrialRecord(
        number=trial.number,
        state=state,
        params=dict(attrs.get("params") or trial.params),
        accuracy=accuracy,
        latency_ms=attrs.get("latency_ms"),
        ops_edgetpu=attrs.get("ops_edgetpu"),
        ops_total=attrs.get("ops_total"),
        size_bytes=attrs.get("size_bytes"),
        seconds=seconds,
        reason=attrs.get("reason"),
        model=attrs.get("model") if state == "complete" else None,
        epochs_run=attrs.get("epochs_run"),
        val_images=attrs.get("val_images"),
        prescreen_seconds=attrs.get("prescreen_seconds"),
        prescreen_cpu_seconds=attrs.get("prescreen_cpu_seconds"),
    )


@dataclass(frozen=True)
class TuneResult:
    """A study's trials, its Pareto front and its best trial within the budget.

    Attributes:
        study: The study name.
        storage: Where the study lives (a URL without its password).
        run_dir: The run folder; trial ``n``'s files are under ``run_dir/<study>/trial_<n>``.
        constraints: The constraints candidates were screened against.
        trials: Every trial, by number.
        pareto_numbers: The trials on the Pareto front (int8 accuracy up, estimated latency down;
            feasible, complete trials only), from Optuna's ``study.best_trials``.
    """

    study: str
    storage: str
    run_dir: Path
    constraints: Constraints
    trials: tuple[TrialRecord, ...]
    pareto_numbers: tuple[int, ...]

    @property
    def pareto_front(self) -> list[TrialRecord]:
        """The front, fastest first."""
        front = [t for t in self.trials if t.number in self.pareto_numbers]
        return sorted(front, key=lambda t: (t.latency_ms or 0.0, t.number))

    @property
    def best(self) -> TrialRecord | None:
        """The fastest complete trial within :data:`TIE_IMAGES` validation image of the top accuracy.

        Every complete trial meets the constraints. Accuracies one validation image apart are the
        same at the split's resolution, so among the trials that many images or fewer behind the most
        accurate one, the lowest estimated latency wins (ties: the more accurate, then the earlier).
        Trials recorded without their validation count compare on accuracy alone.
        """
        done = [t for t in self.trials if t.state == "complete" and t.accuracy is not None]
        if not done:
            return None
        top = max(done, key=lambda t: (t.accuracy, -(t.latency_ms or 0.0), -t.number))
        top_correct = top.correct()

        def close(t: TrialRecord) -> bool:
            mine = t.correct()
            if top_correct is None or mine is None or t.val_images != top.val_images:
                return t.accuracy == top.accuracy
            return top_correct - mine <= TIE_IMAGES

        return min((t for t in done if close(t)), key=lambda t: (t.latency_ms or 0.0, -(t.accuracy or 0.0), t.number))

    @property
    def best_model(self) -> Path | None:
        """The best trial's int8 ``.tflite`` (its ``labels.txt`` sits beside it)."""
        best = self.best
        return None if best is None or best.model is None else self.run_dir / best.model

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    def closest(self) -> TrialRecord | None:
        """The infeasible candidate with the lowest estimated latency (what comes closest to the budget)."""
        rejected = [t for t in self.trials if t.state == "infeasible" and t.latency_ms is not None]
        return min(rejected, key=lambda t: (t.latency_ms, t.number)) if rejected else None

    def to_frame(self) -> pd.DataFrame:
        """One row per trial: number, state, candidate, accuracy, latency_ms, ops, size, seconds, reason, model."""
        rows = []
        for t in self.trials:
            rows.append(
                {
                    "number": t.number,
                    "state": t.state,
                    "candidate": t.label,
                    **{k: v for k, v in t.params.items()},
                    "accuracy": t.accuracy,
                    "latency_ms": t.latency_ms,
                    "edgetpu_ops": None if t.ops_total is None else f"{t.ops_edgetpu}/{t.ops_total}",
                    "size_bytes": t.size_bytes,
                    "seconds": None if t.seconds is None else round(t.seconds, 2),
                    "pareto": t.number in self.pareto_numbers,
                    "reason": t.reason,
                    "model": t.model,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``edgelab tune --json`` document: study, best (or None) and every trial."""
        best = self.best
        best_dict = None
        if best is not None:
            best_dict = {
                "number": best.number,
                "params": best.params,
                "accuracy": best.accuracy,
                "latency_ms": best.latency_ms,
                "ops_edgetpu": best.ops_edgetpu,
                "ops_total": best.ops_total,
                "model": str(self.best_model),
            }
        return {
            "study": self.study,
            "best": best_dict,
            "trials": [
                {
                    "number": t.number,
                    "state": t.state,
                    "params": t.params,
                    "accuracy": t.accuracy,
                    "latency_ms": t.latency_ms,
                    "seconds": None if t.seconds is None else round(t.seconds, 2),
                    "reason": t.reason,
                }
                for t in self.trials
            ],
        }

    def summary(self) -> str:
        c = self.constraints
        budget = f"budget {c.budget_ms:g} ms on {c.link}" if c.budget_ms is not None else f"no budget ({c.link})"
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATES if self.count(s))
        lines = [f"study {self.study!r}: {len(self.trials)} trials ({counts or 'none yet'}); {budget}"]
        best = self.best
        if best is not None:
            lines.append(
                f"best: trial {best.number}, {best.label}: int8 accuracy {best.accuracy:.4f}, "
                f"{best.latency_ms:.2f} ms on {c.link}, {best.ops_edgetpu}/{best.ops_total} ops on the Edge TPU"
            )
            lines.append(f"  {self.best_model}")
        else:
            closest = self.closest()
            hint = f"; the closest: trial {closest.number}, {closest.label} ({closest.reason})" if closest else ""
            lines.append(f"best: none yet{hint}")
        return wrap("\n".join(lines))

    def __repr__(self) -> str:
        best = self.best
        b = "None" if best is None else f"trial {best.number} ({best.label}, {best.accuracy:.4f})"
        return f"TuneResult(study={self.study!r}, trials={len(self.trials)}, best={b})"

    def plot(self, ax: Any = None, annotate: bool = True) -> Any:
        """Accuracy against estimated Edge TPU latency: trained trials, the front, the budget line,
        and the candidates rejected before training (marked at the bottom, at their latency).

        Returns the matplotlib Axes.
        """
        # deferred: matplotlib
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        c = self.constraints
        done = [t for t in self.trials if t.state == "complete" and t.accuracy is not None]
        pruned = [t for t in self.trials if t.state == "pruned" and t.latency_ms is not None]
        rejected = [t for t in self.trials if t.state == "infeasible" and t.latency_ms is not None]
        accs = [t.accuracy for t in done if t.accuracy is not None]
        floor = min(accs + [1.0]) - 0.08 if accs else 0.0
        if done:
            ax.scatter([t.latency_ms for t in done], accs, color="tab:blue", label="trained (int8 file)", zorder=3)
        front = self.pareto_front
        if front:
            ax.plot(
                [t.latency_ms for t in front],
                [t.accuracy for t in front],
                color="tab:green",
                marker="o",
                lw=2,
                label="Pareto front",
                zorder=4,
            )
        if pruned:
            ax.scatter(
                [t.latency_ms for t in pruned],
                [floor + 0.02] * len(pruned),
                facecolors="none",
                edgecolors="tab:gray",
                label="pruned while training",
                zorder=3,
            )
        if rejected:
            ax.scatter(
                [t.latency_ms for t in rejected],
                [floor] * len(rejected),
                marker="x",
                color="tab:red",
                label="infeasible (rejected before training)",
                zorder=3,
            )
        if c.budget_ms is not None:
            ax.axvline(c.budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {c.budget_ms:g} ms")
            right = max([t.latency_ms or 0.0 for t in self.trials] + [c.budget_ms * 1.2])
            ax.axvspan(c.budget_ms, right * 1.05, color="tab:red", alpha=0.07)
        best = self.best
        if best is not None and annotate:
            ax.annotate(
                f"best: {best.label}",
                (best.latency_ms, best.accuracy),
                textcoords="offset points",
                xytext=(6, -12),
                fontsize=8,
            )
        ax.set_xlabel(f"estimated Edge TPU latency on {c.link} (ms)")
        ax.set_ylabel("int8 accuracy (validation)")
        ax.set_title(f"search {self.study!r}: {len(self.trials)} trials")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        return ax


def trials_sorted(records: Sequence[TrialRecord]) -> tuple[TrialRecord, ...]:
    return tuple(sorted(records, key=lambda t: t.number))
