"""edgelab.nbval: a user's own notebook, outside notebooks/, stored with `edgelab notebook execute`
and validated with `pytest --nbval -p edgelab.nbval`, as the README tells users to do."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgelab.errors import ConfigError, NotebookError
from edgelab.nbval import NOTEBOOK_ENV, PORTABLE_ENV, SKIP_COMPARE, execute_notebook, notebook_environment, sanitize

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("nbval")

REPO = Path(__file__).resolve().parents[1]

#: Cells whose outputs change on every run or machine unless the plugin's environment and
#: sanitizers are in place, plus a widget and a cell whose output really depends on an input file.
CELLS = [
    "import os, sys, tempfile, datetime, time\n"
    "print(os.environ['OMP_NUM_THREADS'], os.environ['EDGELAB_PROGRESS'], hash('edgelab'))",
    "print(object())\nprint(datetime.datetime.now().isoformat())\nprint(tempfile.mkdtemp())\n"
    "import numpy\nprint('numpy', numpy.__version__)",
    "sys.stderr.write(str(time.time()))\nfrom IPython.display import HTML, display\ndisplay(HTML(f'<b>{time.time()}</b>'))",
    # The meters' postfix (inside tqdm's brackets, beside the time and rate) is new on every run, so
    # this cell differs without the plugin by construction, not only when the timing happens to.
    "from tqdm import tqdm\nfor _ in tqdm(range(3), file=sys.stdout, postfix=time.time_ns()):\n    pass\n"
    "from tqdm.auto import tqdm as auto_tqdm\nfor _ in auto_tqdm(range(3), postfix=time.time_ns()):\n    pass",
    "import ipywidgets as w\nslider = w.IntSlider(value=3)\nslider",
    "slider.value = 5\nprint('slider', slider.value, 'input', open('value.txt').read().strip())",
]


def _env() -> dict[str, str]:
    """This environment without the notebook settings, so the test shows the plugin sets them."""
    env = {k: v for k, v in os.environ.items() if k not in NOTEBOOK_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def _nbval(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run(
        ["-m", "pytest", "--nbval", *extra, "-p", "no:cacheprovider", "--rootdir", str(folder), "-q", "mine.ipynb"],
        folder,
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """``mine.ipynb`` in a fresh folder, executed once with ``edgelab notebook execute``."""
    folder = tmp_path_factory.mktemp("user_project")
    (folder / "value.txt").write_text("42\n")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, folder / "mine.ipynb")
    os.chmod(folder / "mine.ipynb", 0o644)
    done = _run(["-m", "edgelab.cli", "notebook", "execute", "mine.ipynb", "--timeout", "120"], folder)
    assert done.returncode == 0, done.stderr
    assert re.match(r"mine\.ipynb \.\.\. \d+ s, 6 code cells, widget state of \d+ models$", done.stdout.strip()), (
        done.stdout
    )
    return folder


@pytest.fixture
def project(executed: Path, tmp_path: Path) -> Path:
    """A copy of the executed project, for a test to change."""
    return Path(shutil.copytree(executed, tmp_path / "project"))


def test_execute_stores_outputs_widget_state_and_keeps_the_file_mode(executed: Path) -> None:
    path = executed / "mine.ipynb"
    nb = nbformat.read(path, as_version=4)
    first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert first.split()[:2] == ["1", "0"]  # the environment reached the kernel
    assert all(cell.execution_count == i + 1 for i, cell in enumerate(nb.cells))
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    sliders = [m for m in state.values() if m["model_name"] == "IntSliderModel"]
    assert [m["state"]["value"] for m in sliders] == [5]  # the state after the last cell, for reopening
    assert "slider 5 input 42" in nb.cells[5].outputs[0]["text"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_user_notebook_passes_nbval_twice_with_the_plugin_and_not_without(project: Path) -> None:
    for _ in range(2):
        run = _nbval(project, "-p", "edgelab.nbval")
        assert run.returncode == 0, run.stdout[-3000:]
        assert "6 passed" in run.stdout
    plain = _nbval(project)  # nbval alone: random hash, addresses, times, temp paths, stderr, HTML
    assert plain.returncode == 1
    failed = set(re.findall(r"FAILED mine\.ipynb::Cell (\d+)", plain.stdout))
    assert {"0", "1", "2", "3"} <= failed, plain.stdout[-3000:]


def test_a_real_output_change_is_still_caught(project: Path) -> None:
    (project / "value.txt").write_text("43\n")
    run = _nbval(project, "-p", "edgelab.nbval")
    assert run.returncode == 1
    assert re.findall(r"FAILED mine\.ipynb::Cell (\d+)", run.stdout) == ["5"], run.stdout[-3000:]
    assert "slider 5 input 43" in run.stdout


def test_users_own_sanitizer_file_still_applies_after_the_plugins(project: Path) -> None:
    (project / "value.txt").write_text("43\n")
    (project / "mine.cfg").write_text("regex: input \\d+\nreplace: input N\n")
    run = _nbval(project, "-p", "edgelab.nbval", "--nbval-sanitize-with", "mine.cfg")
    assert run.returncode == 0, run.stdout[-3000:]


def test_failing_cell_leaves_the_notebook_unchanged_unless_errors_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)"), nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(
        NotebookError, match=r"cell 1 raised ZeroDivisionError: division by zero\. The file was left unchanged"
    ):
        execute_notebook(path, timeout_s=60)
    assert path.read_bytes() == before
    run = execute_notebook(path, timeout_s=60, allow_errors=True)
    assert run.code_cells == 2
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[1].outputs[0]["ename"] == "ZeroDivisionError"


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    run = _run(["-m", "edgelab.cli", "notebook", "execute", "missing.ipynb"], tmp_path)
    assert run.returncode == 2
    assert (
        run.stderr.strip().splitlines()[-1]
        == "edgelab: error: Expected an existing .ipynb file. Received: 'missing.ipynb'"
    )
    run = _run(["-m", "edgelab.cli", "notebook", "execute", "x.ipynb", "--timeout", "0"], tmp_path)
    assert run.returncode == 2 and "expected a positive number of seconds, received '0'" in run.stderr
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(ConfigError, match=r"Expected a Jupyter notebook \(nbformat 4\)\. Received: bad\.ipynb"):
        execute_notebook(tmp_path / "bad.ipynb")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<Model at 0x7f3a2b4c5d60>", "<Model at 0xADDRESS>"),
        ("run at 2026-12-02T12:10:15.329592 and 2026-12-02 12:10:15+00:00", "run at TIMESTAMP and TIMESTAMP"),
        ('"edgelab_version": "0.1.0",', '"edgelab_version": "VERSION",'),
        (
            "runtime='litert 2.3.0', numpy 2.4.6, tensorflow==2.21.0, Python 3.11.9",
            "runtime='litert VERSION', numpy VERSION, tensorflow==VERSION, Python VERSION",
        ),
        ("100%|██████████| 3/3 [00:00<00:00, 19.79it/s]", "PROGRESS 3/3"),
        ("  0%|          | 0/12 [00:00<?, ?it/s]", "  PROGRESS 0/12"),
        (
            "19/19 [==============================] - 1s 23ms/step - loss: 0.8611",
            "19/19 [==============================] - TIME - loss: 0.8611",
        ),
        ("saved /tmp/tmpek6ocz3j/model.tflite", "saved TMPPATH"),
        ("at '/var/folders/ab/cd12/T/pytest-1/x.ipynb'", "at 'TMPPATH'"),
        # What a notebook claims stays compared.
        (
            "accuracy 0.8611, 56 of 180 images, 9 of 9 ops, 106.6 KiB",
            "accuracy 0.8611, 56 of 180 images, 9 of 9 ops, 106.6 KiB",
        ),
        ("runs/demo/model_int8.tflite", "runs/demo/model_int8.tflite"),
    ],
)
def test_sanitizers(text: str, expected: str) -> None:
    assert sanitize(text) == expected


def test_environment_fills_in_only_what_is_unset() -> None:
    env = notebook_environment({"OMP_NUM_THREADS": "4", "PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == "4" and env["PATH"] == "/bin"
    assert env["PYTHONHASHSEED"] == "0" and env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert {"stderr", "text/html", "application/vnd.jupyter.widget-view+json"} <= set(SKIP_COMPARE)
    assert json.dumps(NOTEBOOK_ENV)  # plain strings, for subprocess environments


def test_portable_switch_changes_the_numerics_settings_only_when_asked() -> None:
    plain = notebook_environment({"PATH": "/bin"})
    assert not set(PORTABLE_ENV) & set(plain) and "NPY_DISABLE_CPU_FEATURES" not in plain
    portable = notebook_environment({"EDGELAB_NB_PORTABLE": "1", "EDGELAB_XNNPACK": "1"})
    assert portable["TF_ENABLE_ONEDNN_OPTS"] == "0" and portable["OMP_NUM_THREADS"] == "1"
    assert portable["EDGELAB_XNNPACK"] == "1"  # a variable set by the user wins here too
    if "NPY_DISABLE_CPU_FEATURES" in portable:  # only the AVX-512 targets this CPU has
        assert all(name.startswith(("AVX512", "X86_V4")) for name in portable["NPY_DISABLE_CPU_FEATURES"].split())


def test_model_caches_and_checkpoints_are_not_collected(tmp_path: Path) -> None:
    for folder in ("runs", "runs-cache", ".ipynb_checkpoints", "keep"):
        (tmp_path / folder).mkdir()
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
        nbformat.write(nb, tmp_path / folder / "n.ipynb")
    args = ["-m", "pytest", "--nbval", "-p", "edgelab.nbval", "-p", "no:cacheprovider", "--collect-only", "-q"]
    done = _run([*args, "--rootdir", str(tmp_path), "."], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert collected == ["keep/n.ipynb::Cell 0"], done.stdout
