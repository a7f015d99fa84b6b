"""Re-execute the notebook series headlessly and store its outputs (``make nbregen``).

    python notebooks/regenerate.py                 # every notebook, from a clean notebooks/runs/
    python notebooks/regenerate.py 02_post_training_quantization.ipynb   # one, reusing runs/

Each notebook runs top to bottom in a fresh kernel, in notebooks/, in the environment nbval
validates with (:data:`conftest.NOTEBOOK_ENV`: one thread, no progress bars). Regenerating the
whole series first deletes notebooks/runs/, so the notebooks run as on a fresh clone: 01 trains
the model and the later ones reuse it, as under ``make nbtest``.

The executed notebooks are then cleaned the way ``nbstripout --keep-output --keep-count`` would:
outputs and execution counts stay, and so does the widget state (the explorers' last state, which
JupyterLab, GitHub and nbviewer draw from), while other notebook metadata and cell metadata other
than tags go. Native log lines that TensorFlow and
LiteRT write to stderr (absl's "All log messages before absl::InitializeLog()", "I0000 ...
cuda_platform.cc ...", "INFO: Created TensorFlow Lite XNNPACK delegate") are dropped too: they
vary by machine and nbval does not compare stderr. Any other stderr output is kept, and the lint
test (tests/test_notebooks_lint.py) then fails on it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from conftest import NOTEBOOK_ENV  # noqa: E402  (the one definition of the environment)

KERNEL = "python3"
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "widgets")
KEEP_CELL_METADATA = ("tags",)
#: Native (C++) log lines: absl/glog format, absl's pre-init notice, TFLite's delegate notices.
NATIVE_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$"
)


def notebooks(names: list[str]) -> list[Path]:
    """The notebooks to run: the given names, or every numbered notebook in order."""
    if not names:
        return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    paths = [HERE / Path(name).name for name in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"regenerate.py: no such notebook in {HERE.name}/: {', '.join(missing)}")
    return paths


def clean_stderr(text: str) -> str:
    """``text`` without native log lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not NATIVE_LOG.match(line.rstrip("\n")))


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Keep outputs, counts and widget state; drop volatile metadata and native log noise."""
    nb.metadata = nbformat.NotebookNode({k: nb.metadata[k] for k in KEEP_NOTEBOOK_METADATA if k in nb.metadata})
    for cell in nb.cells:
        cell.metadata = nbformat.NotebookNode({k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata})
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                output.text = clean_stderr(output.text)
                if not output.text:
                    continue
            outputs.append(output)
        cell.outputs = outputs
    return nb


def execute(path: Path, timeout: int) -> float:
    """Run one notebook in a fresh kernel and write it back, cleaned; returns the seconds taken."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(HERE)}},
        coalesce_streams=True,
        record_timing=False,
        store_widget_state=True,  # each explorer shows when reopened, on GitHub and nbviewer
    )
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.validate(nb)
    nbformat.write(strip(nb), path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: the whole series)")
    parser.add_argument("--keep-runs", action="store_true", help="keep notebooks/runs/ (default: clear it for a full run)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)

    paths = notebooks(args.notebooks)
    os.environ.update(NOTEBOOK_ENV)  # the kernels inherit it
    runs = HERE / "runs"
    if not args.notebooks and not args.keep_runs and runs.exists():
        shutil.rmtree(runs)
    total = 0.0
    for path in paths:
        print(f"{path.name} ...", end=" ", flush=True)
        seconds = execute(path, args.timeout)
        total += seconds
        print(f"{seconds:.0f} s, {path.stat().st_size / 1024:.0f} KiB", flush=True)
    print(f"{len(paths)} notebook(s) in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
