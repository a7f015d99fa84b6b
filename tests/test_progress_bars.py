"""Progress bars in a notebook: a widget while they run, plain text (or nothing) once finished.

A finished widget bar stored in a notebook shows "Error displaying widget: model not found" after a
reopen whenever its widget state is not stored with it; a bar that ends as text cannot.
"""

from __future__ import annotations

import json

import nbformat
import pytest

pytest.importorskip("nbclient")

from edgelab.nbval import execute_notebook

CELLS = [
    "from edgelab._log import tqdm\nfor _ in tqdm(range(3), desc='kept', progress=True):\n    pass",
    "for _ in tqdm(range(3), desc='gone', leave=False, progress=True):\n    pass",
    "bar = tqdm(total=5, desc='stopped', progress=True)\nbar.update(2)\nbar.close()",
]


def test_finished_bars_leave_text_and_no_widget_behind(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    path = tmp_path / "bars.ipynb"
    nbformat.write(nb, path)
    execute_notebook(path, timeout_s=120)
    stored = json.loads(path.read_text())
    outputs = [cell["outputs"] for cell in stored["cells"]]
    for cell in outputs:
        for output in cell:
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {}), output
    kept, gone, stopped = (["".join(o.get("data", {}).get("text/plain", "")) for o in cell] for cell in outputs)
    assert len(kept) == 1 and kept[0].startswith("kept: 100%") and "3/3" in kept[0]
    assert gone == [""]  # leave=False: nothing left where the bar was
    assert len(stopped) == 1 and stopped[0].startswith("stopped:  40%") and "2/5" in stopped[0]  # where it stopped
    # No bar's widget is left in the stored state either.
    state = stored["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert not [m for m in state.get("state", {}).values() if m["model_name"] == "FloatProgressModel"]


def test_stored_widget_state_is_what_the_stored_views_show(tmp_path):
    cells = [
        "import ipywidgets as w\nhidden = w.IntSlider()  # never shown\nclosed = w.Button()\nclosed.close()",
        "box = w.VBox([w.IntSlider(value=3), w.HTML('x')])\nbox",
    ]
    path = tmp_path / "state.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    execute_notebook(path, timeout_s=120)
    stored = nbformat.read(path, as_version=4)
    state = stored.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    from edgelab.nbval import shown_widget_ids

    (view,) = shown_widget_ids(stored)
    names = sorted(model["model_name"] for model in state.values())
    # The box, its two children and the layouts/styles they reference; not the hidden slider or closed button.
    assert view in state and names.count("IntSliderModel") == 1 and "ButtonModel" not in names
    assert {"VBoxModel", "HTMLModel"} <= set(names)
    slider = next(m for m in state.values() if m["model_name"] == "IntSliderModel")
    assert slider["state"]["value"] == 3
