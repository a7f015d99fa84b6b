"""Fast checks on the stored notebooks, without running them (nbval runs them: make nbtest).

A notebook that passes here was executed top to bottom in a fresh kernel and saved cleanly: counts
1..n in order, no errors or stderr, no machine-specific paths, a small tagged parameters cell that
reads the series' params.json, a reasonable size, only edgelab's public API, the state of every
widget it shows, and a checked assertion after every cell whose output nbval ignores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SERIES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 400 * 1024
#: Paths that only exist on one machine (this repository's checkout, temporary and home folders).
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:/work/|/tmp/|/root/|/home/|/Users/|/private/var/|[A-Za-z]:\\\\)")
BINARY_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
NBVAL_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP")
#: Longest line of printed text: what JupyterLab's output area shows at its default width (edgelab's
#: text is wrapped at words to edgelab._text.WIDTH); a longer line is broken mid-word ("limitat" / "ion").
LINE_LIMIT = 100
#: A line that is one URL alone may be longer: edgelab._text.wrap keeps a word whole, and a link
#: broken across lines of the output area still reads (and clicks) as one.
URL_ALONE = re.compile(r"^\s*https?://\S+$")
#: Longest line of code in a cell: the editor is as wide as the output area; a longer line scrolls
#: sideways and its end is hidden.
CODE_LINE_LIMIT = 100


def ids(paths):
    return [p.name for p in paths]


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def output_texts(cell):
    """Every text an output carries (streams, text/plain, html, errors), images left out."""
    for output in cell.outputs:
        if output.output_type == "stream":
            yield output.text
        elif output.output_type in ("execute_result", "display_data"):
            for mime, value in output.data.items():
                if mime not in BINARY_MIMES:
                    yield value if isinstance(value, str) else json.dumps(value)
        elif output.output_type == "error":
            yield "\n".join(output.traceback)


@pytest.fixture(params=SERIES, ids=ids(SERIES))
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def test_the_series_is_there_and_indexed():
    names = [p.name for p in SERIES]
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(len(names))], names  # 00, 01, ... no gaps
    assert len(names) >= 7
    index = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    missing = [n for n in names if f"({n})" not in index]
    assert not missing, f"notebooks/README.md does not link {missing}"


def test_valid_with_python3_kernel(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3", f"{path.name}: kernel {nb.metadata.kernelspec.name!r}"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_every_widget_shown_has_its_state_stored(notebook):
    """A reopened notebook, GitHub and nbviewer draw each explorer from the stored widget state."""
    path, nb = notebook
    shown = [
        output.data[WIDGET_VIEW]["model_id"]
        for cell in code_cells(nb)
        for output in cell.outputs
        if output.output_type in ("execute_result", "display_data") and WIDGET_VIEW in output.data
    ]
    if not shown:
        return
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [model_id for model_id in shown if model_id not in state]
    assert not missing, f"{path.name}: widget state missing for {missing} (regenerate with store_widget_state)"


def test_stored_widget_state_is_exactly_what_the_views_show(notebook):
    """No state of widgets that are not shown (closed progress bars, stale ids): it matches the views."""
    import copy

    from edgelab.nbval import keep_shown_widget_state

    path, nb = notebook
    dropped = keep_shown_widget_state(copy.deepcopy(nb))
    assert not dropped, f"{path.name}: widget state of {len(dropped)} models no stored view shows (regenerate it)"
    for cell in code_cells(nb):
        for output in cell.outputs:
            assert "FloatProgress" not in str(output.get("data", {}).get("text/plain", "")), path.name


def test_executed_in_order_from_a_fresh_kernel(notebook):
    path, nb = notebook
    counts = [cell.execution_count for cell in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"
    for cell in code_cells(nb):
        for output in cell.outputs:
            if output.output_type == "execute_result":
                assert output.execution_count == cell.execution_count, f"{path.name}: cell {cell.execution_count}"


def test_no_errors_or_stderr(notebook):
    path, nb = notebook
    for cell in code_cells(nb):
        for output in cell.outputs:
            assert output.output_type != "error", (
                f"{path.name} cell {cell.execution_count}: {output.ename}: {output.evalue}"
            )
            if output.output_type == "stream":
                assert output.name == "stdout", (
                    f"{path.name} cell {cell.execution_count} wrote to stderr:\n{output.text[:500]}"
                )


def displayed_text(cell):
    """The text a reader sees as text: streams, and text/plain where no richer view (HTML, picture, widget) is shown."""
    for output in cell.outputs:
        if output.output_type == "stream":
            yield output.text
        elif output.output_type in ("execute_result", "display_data") and set(output.data) == {"text/plain"}:
            yield output.data["text/plain"]


def test_printed_lines_fit_the_output_area(notebook):
    path, nb = notebook
    long = [
        f"cell {cell.execution_count}: {len(line)} characters: {line[:60]}..."
        for cell in code_cells(nb)
        for text in displayed_text(cell)
        for line in text.splitlines()
        if len(line) > LINE_LIMIT and not URL_ALONE.match(line)
    ]
    listed = "\n".join(long)
    assert not long, f"{path.name}: lines over {LINE_LIMIT} characters break mid-word in JupyterLab:\n{listed}"


def test_code_lines_fit_the_cell(notebook):
    path, nb = notebook
    long = [
        f"cell {cell.execution_count}: {len(line)} characters: {line[:60]}..."
        for cell in code_cells(nb)
        for line in cell.source.splitlines()
        if len(line) > CODE_LINE_LIMIT
    ]
    listed = "\n".join(long)
    assert not long, (
        f"{path.name}: code lines over {CODE_LINE_LIMIT} characters scroll sideways in JupyterLab:\n{listed}"
    )


def test_wrap_breaks_at_words_within_the_limit():
    from edgelab._text import WIDTH, wrap

    assert WIDTH == LINE_LIMIT
    text = "op 3 CONV_2D (conv3_relu): " + "output channel ranges differ up to 1.6x, " * 8 + "\n  short line"
    wrapped = wrap(text)
    lines = wrapped.split("\n")
    assert max(len(line) for line in lines) <= WIDTH and len(lines) > 3
    assert wrapped.split() == text.split()  # the same words, in order, none cut
    assert lines[-1] == "  short line" and all(line.startswith("  ") for line in lines[1:-1])
    url = "https://example.com/" + "x" * 120
    assert wrap(url) == url and URL_ALONE.match("    " + url)  # one word longer than the limit stays whole
    assert not URL_ALONE.match(f"see {url}")


def test_records_show_in_lines_that_fit():
    """A record too long for one line continues under its parenthesis, and still reads as Python."""
    from edgelab._text import WIDTH, fields_repr

    reason = "libedgetpu.so.1 is not installed (apt-get install libedgetpu1-std from Coral's apt repository)"
    parts = [("library", "libedgetpu.so.1"), "library_found=False", ("devices", ()), ("reason", reason)]
    text = fields_repr("Status", *parts)
    lines = text.split("\n")
    assert len(lines) > 1 and max(len(line) for line in lines) <= WIDTH
    assert all(line.startswith(" " * len("Status(")) for line in lines[1:])
    assert eval(text, {"Status": dict}) == {
        "library": "libedgetpu.so.1",
        "library_found": False,
        "devices": (),
        "reason": reason,
    }
    assert fields_repr("Short", ("a", 1), "b=2") == "Short(a=1, b=2)"


def test_no_machine_specific_paths(notebook):
    path, nb = notebook
    for cell in nb.cells:
        texts = [cell.source] + (list(output_texts(cell)) if cell.cell_type == "code" else [])
        for text in texts:
            match = ABSOLUTE_PATH.search(text)
            assert match is None, f"{path.name}: absolute path {text[max(0, match.start() - 40) : match.end() + 40]!r}"


def test_size_limit(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_BYTES, (
        f"{path.name}: {path.stat().st_size / 1024:.0f} KiB (limit {MAX_BYTES // 1024})"
    )


def test_parameters_cell_near_the_top(notebook):
    path, nb = notebook
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    cell = nb.cells[tagged[0]]
    assert cell.cell_type == "code" and tagged[0] <= 2, f"{path.name}: parameters cell at position {tagged[0]}"
    assert code_cells(nb)[0] is cell, f"{path.name}: code runs before the parameters cell"
    assert not cell.outputs, f"{path.name}: the parameters cell should only assign values"
    code = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code[:1] == ['PARAMS = "params.json"'] and len(code) <= 6, (
        f"{path.name}: the series' parameters live in params.json; the cell assigns PARAMS first, "
        "then at most a few settings of this notebook alone"
    )


def test_params_file_is_a_valid_workspace():
    from edgelab.demo import Workspace

    ws = Workspace.from_json(NOTEBOOKS / "params.json")
    assert ws.params.out_dir == "runs/notebooks" and ws.params.data is None


def test_every_ignored_output_is_followed_by_a_checked_assertion(notebook):
    """What nbval does not compare (float results, timings) is asserted in words that hold on any CPU."""
    path, nb = notebook
    cells = code_cells(nb)
    ignored = lambda cell: cell.source.lstrip().startswith("# NBVAL_IGNORE_OUTPUT")  # noqa: E731
    for i, cell in enumerate(cells):
        if not ignored(cell):
            continue
        # the next two checked cells (a table may come between the ignored cell and its claim)
        following = [c for c in cells[i + 1 :] if not ignored(c)][:2]
        checks = [c for c in following if re.search(r"^\s*assert ", c.source, re.M)]
        assert checks, (
            f"{path.name}: the ignored cell\n{cell.source[:300]}\nis not followed by a checked cell with an assert"
        )
        assert checks[0].outputs, f"{path.name}: the checked cell after an ignored one should print its claim"


def test_public_api_only(notebook):
    path, nb = notebook
    for cell in code_cells(nb):
        private = re.findall(r"edgelab\.(_\w+)|from edgelab\._\w+|el\.(_\w+)", cell.source)
        assert not private, f"{path.name}: private edgelab names in\n{cell.source}"
        assert not re.search(r"^\s*def \w+\(", cell.source, re.M), (
            f"{path.name}: helper function defined in\n{cell.source}"
        )


def test_nbval_markers_are_exact(notebook):
    """nbval honours a marker only when the comment is exactly the marker: anything more is ignored silently."""
    path, nb = notebook
    for cell in code_cells(nb):
        for line in cell.source.splitlines():
            if "NBVAL" in line:
                comment = line.strip().lstrip("#").strip()
                assert comment in NBVAL_MARKERS, f"{path.name}: {line.strip()!r} is not an nbval marker nbval will see"
