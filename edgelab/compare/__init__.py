"""Compare: accuracy and agreement of converted files, latency percentiles, the comparison of every
precision in one table, its plots and the written report.

Evaluation and latency import no TensorFlow; :func:`run_comparison` converts, so it does.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "EvalResult": "evaluate",
    "classification_metrics": "evaluate",
    "evaluate_model": "evaluate",
    "LatencyResult": "benchmark",
    "measure_latency": "benchmark",
    "TimingOptions": "timing",
    "COLUMNS": "comparison",
    "Comparison": "comparison",
    "ComparisonOptions": "comparison",
    "VariantResult": "comparison",
    "VariantStatus": "comparison",
    "run_comparison": "comparison",
    "comparison_table": "comparison",
    "pareto_front": "plots",
    "plot_confusions": "plots",
    "plot_history": "plots",
    "plot_sizes": "plots",
    "plot_tradeoff": "plots",
    "Prefer": "recommendation",
    "Recommendation": "recommendation",
    "recommend": "recommendation",
    "int8_speed": "report",
    "summary_frame": "report",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
