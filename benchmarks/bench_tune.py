"""The search on the demo data: how fast it finds a fit, what the prescreen saves, and the winner
against the demo's edgecnn.

    python benchmarks/bench_tune.py --out runs/bench-tune [--trials 12] [--budget-ms 1.0]

On the demo's data (synthetic scenes, 400 per class, 96 px, seed 0) it

1. trains the demo's edgecnn (width 1.0, 96 px, 15 epochs), converts it to int8 and
   measures the file's accuracy on the test split and its USB 3 estimate (the baseline);
2. runs ``edgelab.tune`` with the default space (edgecnn and MobileNetV2 widths, 64 and 96 px)
   under the budget, and measures: seconds to the first feasible trial, the share of candidates
   rejected before training and the seconds each rejection took, the total wall time;
3. evaluates the best trial's int8 file on the same test split.

Prints one JSON document (also written to ``<out>/bench_tune.json``), with the CPU and load average:
on a shared machine the times are noisy, the accuracies and estimates are not.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-tune")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--budget-ms", type=float, default=1.0)
    parser.add_argument("--per-class", type=int, default=400)
    args = parser.parse_args()

    import edgelab as el
    from edgelab._machine import cpu
    from edgelab.edgetpu import estimate_latency

    out = Path(args.out)
    data = el.synthetic_dataset(per_class=args.per_class, image_size=96, seed=0, progress=False)
    x_test, y_test = data.arrays("test")

    start = time.perf_counter()
    model = el.build_model("edgecnn", num_classes=6, image_size=96)
    el.train(model, data, epochs=args.epochs, run_dir=out / "baseline" / "train", progress=False)
    base = el.convert(model, "int8", out_dir=out / "baseline", calibration=data, labels=data.class_names)
    baseline = {
        "accuracy_test": round(float(base.evaluate(x_test, y_test).accuracy), 4),
        "usb3_ms": estimate_latency(base.path)["usb3"].total_ms,
        "seconds": round(time.perf_counter() - start, 1),
    }

    finished: list[tuple[float, object]] = []
    t0 = time.perf_counter()
    result = el.tune(
        data,
        budget_ms=args.budget_ms,
        link="usb3",
        trials=args.trials,
        epochs=args.epochs,
        run_dir=out / "search",
        on_trial=lambda record: finished.append((time.perf_counter() - t0, record)),
    )
    wall = time.perf_counter() - t0
    rejected = [r for _, r in finished if r.state == "infeasible"]
    distinct = [r for r in rejected if "same candidate" not in (r.reason or "")]
    first_feasible = next((t for t, r in finished if r.state == "complete"), None)
    best = result.best
    best_test = None
    if best is not None:
        converted = el.ConvertedModel.from_file(result.best_model, "int8", data.class_names)
        size = int(best.params["input_size"])
        from edgelab.tune import resize_images

        best_test = round(float(converted.evaluate(resize_images(x_test, size), y_test).accuracy), 4)
    report = {
        "cpu": cpu()[0],
        "load_average": os.getloadavg(),
        "trials": args.trials,
        "budget_ms": args.budget_ms,
        "baseline_edgecnn": baseline,
        "seconds_to_first_feasible": None if first_feasible is None else round(first_feasible, 1),
        "rejected_before_training": len(rejected),
        "rejected_share": round(len(rejected) / max(1, len(finished)), 3),
        "seconds_per_rejection": [round(r.seconds or 0.0, 2) for r in distinct],
        "cpu_seconds_per_rejection": [r.prescreen_cpu_seconds for r in distinct],
        "rejected": [f"{r.label}: {r.reason}" for r in distinct],
        "prescreen_seconds_of_trained": [r.prescreen_seconds for _, r in finished if r.state in ("complete", "pruned")],
        "wall_seconds": round(wall, 1),
        "states": {s: result.count(s) for s in ("complete", "pruned", "infeasible", "failed")},
        "best": None
        if best is None
        else {
            "number": best.number,
            "params": best.params,
            "accuracy_val": best.accuracy,
            "accuracy_test": best_test,
            "usb3_ms": best.latency_ms,
            "rule": "the fastest complete trial within one validation image of the top accuracy",
        },
        "best_vs_baseline": None
        if best is None or best_test is None
        else {
            "accuracy_points": round(100 * (best_test - baseline["accuracy_test"]), 2),
            "test_images": len(y_test),
            "latency_change": round(best.latency_ms / baseline["usb3_ms"] - 1, 4),
        },
        "table": result.to_frame().drop(columns=["model"]).to_dict(orient="records"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_tune.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2, default=str))


if __name__ == "__main__":
    main()
