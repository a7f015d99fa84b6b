"""edgelab's figures show as pictures in a notebook that never ran ``%matplotlib inline``."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]

CELL = """import pandas as pd
import edgelab as el

table = pd.DataFrame(
    {
        "precision": ["fp32", "int8"],
        "status": ["ok", "ok"],
        "size_bytes": [4000, 1100],
        "p50_ms": [2.0, 1.0],
        "accuracy": [0.90, 0.89],
    }
)
el.plot_tradeoff(table)"""


def test_a_cell_ending_in_plot_tradeoff_shows_a_png_without_matplotlib_inline(tmp_path, monkeypatch):
    from edgelab.nbval import execute_notebook

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    path = tmp_path / "figure.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(CELL),
            nbformat.v4.new_code_cell("import sys\nprint('matplotlib.pyplot' in sys.modules)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    execute_notebook(path, timeout_s=120)
    cells = nbformat.read(path, as_version=4).cells
    results = [o for o in cells[0].outputs if o["output_type"] == "execute_result"]
    assert len(results) == 1, cells[0].outputs
    png = base64.b64decode(results[0]["data"]["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert re.fullmatch(
        r"<Figure size \d+x\d+ with 1 Axes>", results[0]["data"]["text/plain"]
    )  # matplotlib's text form
    assert "".join(o.get("text", "") for o in cells[1].outputs).strip() == "False"  # no pyplot state was made


def test_the_png_representation_is_the_figure_and_leaves_pyplot_alone():
    import sys

    from edgelab.compare.plots import plot_tradeoff

    had_pyplot = "matplotlib.pyplot" in sys.modules
    from test_plots_report import hand_table

    png = plot_tradeoff(hand_table())._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
