"""Re-execute the notebook series headlessly and store its outputs (``make nbregen``).

    python notebooks/regenerate.py                 # every notebook, from a clean notebooks/runs/
    python notebooks/regenerate.py 02_post_training_quantization.ipynb   # one, reusing runs/

Each notebook is run with ``edgelab notebook execute``, exactly as a user stores a notebook for
``pytest --nbval -p edgelab.nbval``: top to bottom in a fresh kernel, in notebooks/, in the plugin's
environment (one thread, no progress bars), with the widget state stored and TensorFlow's native
log lines dropped from stderr. Regenerating the whole series first deletes notebooks/runs/, so the
notebooks run as on a fresh clone: 01 trains the model and the later ones reuse it, as under
``make nbtest``. notebooks/runs-cache/ (files that depend only on a graph) is kept.

The executed notebooks are then cleaned the way ``nbstripout --keep-output --keep-count`` would:
outputs and execution counts stay, and so does the widget state (the explorers' last state, which
JupyterLab, GitHub and nbviewer draw from), while other notebook metadata and cell metadata other
than tags go. Any stderr output left is kept, and the lint test (tests/test_notebooks_lint.py) then
fails on it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "widgets")
KEEP_CELL_METADATA = ("tags",)


def notebooks(names: list[str]) -> list[Path]:
    """The notebooks to run: the given names, or every numbered notebook in order."""
    if not names:
        return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    paths = [HERE / Path(name).name for name in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"regenerate.py: no such notebook in {HERE.name}/: {', '.join(missing)}")
    return paths


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Keep outputs, counts and widget state; drop volatile notebook and cell metadata."""
    nb.metadata = nbformat.NotebookNode({k: nb.metadata[k] for k in KEEP_NOTEBOOK_METADATA if k in nb.metadata})
    for cell in nb.cells:
        cell.metadata = nbformat.NotebookNode({k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata})
    return nb


def execute(path: Path, timeout: int) -> float:
    """Run one notebook with ``edgelab notebook execute`` and clean it; returns the seconds taken."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "edgelab.cli", "notebook", "execute", str(path), "--timeout", str(timeout)]
    if subprocess.run(command, cwd=HERE).returncode != 0:
        raise SystemExit(f"regenerate.py: {path.name} failed (left unchanged)")
    seconds = time.perf_counter() - start
    nb = nbformat.read(path, as_version=4)
    nbformat.write(strip(nb), path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: the whole series)")
    parser.add_argument("--keep-runs", action="store_true", help="keep notebooks/runs/ (default: clear it for a full run)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)

    paths = notebooks(args.notebooks)
    runs = HERE / "runs"
    if not args.notebooks and not args.keep_runs and runs.exists():
        shutil.rmtree(runs)
    total = 0.0
    for path in paths:
        total += execute(path, args.timeout)
    print(f"{len(paths)} notebook(s) in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
