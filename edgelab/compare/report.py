"""Write a comparison to disk: ``report.md`` (table + plots), ``report.csv`` and ``manifest.json``."""

from __future__ import annotations

import html
import json
import numbers
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._files import atomic_path, sha256_file, write_atomic, write_labels
from .._machine import int8_measured, machine_info
from .._text import wrap
from .recommendation import recommend

if TYPE_CHECKING:
    from .comparison import Comparison

#: Columns shown in the printed and markdown tables (the CSV keeps all of them).
SUMMARY_COLUMNS = (
    "precision",
    "status",
    "size_bytes",
    "size_ratio",
    "accuracy",
    "delta_accuracy",
    "agreement",
    "p50_ms",
    "p99_ms",
    "latency_ratio",
    "edgetpu_ops",
)
PACKAGES = (
    "edgelab",
    "tensorflow",
    "tf_keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "pandas",
    "pillow",
)


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape the results, plus Python and the platform."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def summary_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The columns people read first, with failed variants' reasons kept."""
    columns = [c for c in SUMMARY_COLUMNS if c in table.columns]
    frame = table[columns].copy()
    if "reason" in table.columns and table["reason"].notna().any():
        frame["reason"] = table["reason"]
    return frame


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_numeric(column: pd.Series) -> bool:
    """Numbers (right-aligned); booleans and text are not."""
    values = column.dropna()
    return bool(len(values)) and all(isinstance(v, numbers.Number) and not _is_bool(v) for v in values)


def table_cell(value: Any, float_format: str = "{}") -> str:
    """One table cell as text: booleans as yes/no (the one wording everywhere), missing values blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if _is_bool(value):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return float_format.format(value)
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no extra dependency): text left-aligned, numbers right-aligned."""

    def cell(value: Any) -> str:
        return table_cell(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---:" if _is_numeric(frame[c]) else ":---" for c in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def html_table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """An HTML table for notebooks: text left-aligned, numbers right-aligned, booleans as yes/no.

    JupyterLab's stylesheet right-aligns every cell, which leaves sentences (an op's ``reason``)
    ragged; each cell here says how it is aligned.
    """
    align = ["right" if _is_numeric(frame[c]) else "left" for c in frame.columns]
    head = "".join(f'<th style="text-align: {a}">{html.escape(str(c))}</th>' for c, a in zip(frame.columns, align))
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align: {a}">{html.escape(table_cell(v, float_format))}</td>' for v, a in zip(row, align)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


DEVICE_TABLE = ("precision", "p50_ms", "device_p50_ms", "accuracy", "device_accuracy", "device_agreement")


def device_section(table: pd.DataFrame) -> list[str]:
    """The report's ``device`` section: the device and the same files measured there (empty without one)."""
    device = table.attrs.get("device")
    if not device or "device_p50_ms" not in table.columns:
        return []
    tpu = "yes" if device.get("edgetpu") else "no"
    lines = [
        "## On the device",
        "",
        f"`{device.get('host')}`: Python {device.get('python')}, {device.get('runtime')} {device.get('runtime_version')}, "
        f"numpy {device.get('numpy')}, {device.get('machine')} ({device.get('cpu')}, {device.get('cpu_count')} cores), "
        f"{device.get('os')}; Edge TPU: {tpu}.",
        "",
        markdown_table(table.loc[table.status == "ok", [c for c in DEVICE_TABLE if c in table.columns]]),
        "",
        "`device_p50_ms` is measured on the device with the bundle's own code (`classify.py --bench`); "
        "`device_accuracy` on the same test images there; `device_agreement` is the share of those images whose "
        "top-1 class on the device equals this machine's run of the same file.",
        "",
    ]
    return lines


def int8_latency_ratio(table: pd.DataFrame) -> float | None:
    """The int8 row's ``latency_ratio`` (int8 p50 / fp32 p50, as measured in ``table``), or None."""
    if "precision" not in table or "latency_ratio" not in table:
        return None
    rows = table[(table.precision.astype(str) == "int8") & (table.status.astype(str) == "ok")]
    ratio = pd.to_numeric(rows.latency_ratio, errors="coerce").dropna()
    return float(ratio.iloc[0]) if len(ratio) else None


def int8_speed(table: pd.DataFrame) -> str:
    """This CPU (its model and int8 dot-product instructions) and the int8/fp32 p50 ratio measured in
    ``table``, in words that describe the measured ratio (never predicted from the instruction sets)."""
    return wrap(int8_measured(int8_latency_ratio(table)))


def write_report(
    comparison: Comparison,
    *,
    out_dir: str | Path,
    history: pd.DataFrame | None = None,
    qat_history: pd.DataFrame | None = None,
    parameters: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    title: str = "edgelab report",
) -> Path:
    """Write ``report.md``, ``report.csv``, the plots and ``manifest.json`` into ``out_dir``.

    Returns:
        The path of ``report.md``.
    """
    # deferred: matplotlib (the tables and summaries of this module are needed without it)
    from .plots import plot_confusions, plot_history, plot_sizes, plot_tradeoff

    machine = machine_info()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = comparison.table
    write_atomic(out / "report.csv", table.to_csv(index=False).encode())
    write_labels(out, comparison.class_names)

    figures = {"tradeoff.png": plot_tradeoff(table), "sizes.png": plot_sizes(table)}
    evaluations = {"keras float": comparison.float_evaluation}
    evaluations.update({p.value: v.evaluation for p, v in comparison.variants.items() if v.evaluation is not None})
    figures["confusions.png"] = plot_confusions(evaluations, comparison.class_names)
    if history is not None and len(history):
        figures["training.png"] = plot_history(history, "Float training")
    if qat_history is not None and len(qat_history):
        figures["qat.png"] = plot_history(qat_history, "Quantization-aware fine-tuning")
    for name, fig in figures.items():
        with atomic_path(out / name) as tmp:  # never half a PNG; a full disk is one OSError(ENOSPC)
            fig.savefig(tmp, dpi=110, format="png")

    ok = table[table.status == "ok"]
    lines = [f"# {title}", ""]
    lines += [
        f"Float Keras model: test accuracy **{comparison.float_accuracy:.4f}** on {len(comparison.test_labels)} test images.",
        "",
    ]
    sanity = tuple(getattr(comparison, "sanity", ()))
    lines += [f"> **Warning:** {text}" for text in sanity] + ([""] if sanity else [])
    lines += ["## Every precision, measured on the converted file", "", markdown_table(summary_frame(table)), ""]
    lines += [
        "`size_ratio` and `latency_ratio` are against fp32; `delta_accuracy` is against the float Keras model; "
        "`agreement` is the share of test images classified as the float model does; `edgetpu_ops` is how many ops "
        "the Edge TPU compiler maps (predicted offline unless the compiler ran). Latency: single-image `invoke()`, "
        "p50 over repeated runs after warm-up.",
        "",
        int8_measured(int8_latency_ratio(table), machine["cpu_model"], machine["isa"]),
        "",
    ]
    if len(ok):
        fastest = ok.loc[ok.p50_ms.idxmin()]
        smallest = ok.loc[ok.size_bytes.astype(float).idxmin()]
        best = ok.loc[ok.accuracy.idxmax()]
        lines += [
            f"- Most accurate: **{best.precision}** ({best.accuracy:.4f}).",
            f"- Fastest: **{fastest.precision}** ({fastest.p50_ms:.3f} ms p50).",
            f"- Smallest: **{smallest.precision}** ({int(smallest.size_bytes) / 1024:.1f} KiB).",
            "",
        ]
        lines += ["## Recommendation (within 1 accuracy point)", ""]
        lines += [
            f"- {where}: {recommend(table, 0.01, target)}"
            for where, target in (("CPU", "cpu"), ("Edge TPU", "edgetpu"))
        ]
        lines += [""]
    failed = table[table.status != "ok"]
    for _, row in failed.iterrows():
        lines.append(f"- {row.precision} failed: {row.reason}")
    lines += device_section(table)
    lines += ["## Pictures", ""] + [f"![{name}]({name})" for name in figures] + [""]
    lines += [
        "## Files",
        "",
        "- `report.csv`: the full table",
        "- `manifest.json`: package versions, the CPU (model, instruction sets), parameters, timings, file hashes",
        "- `labels.txt`: class names, one per line",
        "",
    ]
    report = out / "report.md"
    write_atomic(report, "\n".join(lines).encode())

    models = {}
    for precision, variant in comparison.variants.items():
        if variant.model is not None and Path(variant.model.path).exists():
            path = Path(variant.model.path)
            models[precision.value] = {
                "path": str(path),
                "size_bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
    manifest = {
        "packages": package_versions(),
        "machine": machine,
        "parameters": dict(parameters or {}),
        "timings_s": {k: round(v, 2) for k, v in (timings or {}).items()},
        "float_accuracy": round(comparison.float_accuracy, 4),
        "device": table.attrs.get("device"),
        "models": models,
        "files": sorted({p.name for p in out.iterdir() if p.is_file()} | {"manifest.json"}),  # once on reruns too
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())
    return report
