"""Validate notebooks with nbval in a stable environment: a pytest plugin, and notebook execution.

Store a notebook's outputs, then check them in CI::

    edgelab notebook execute my_notebook.ipynb
    pytest --nbval -p edgelab.nbval my_notebook.ipynb

Both run the kernel in the same environment (:data:`NOTEBOOK_ENV`: one thread, a fixed hash seed,
quiet TensorFlow logs, no edgelab progress bars; a variable you set yourself wins) and with
Python from this environment. ``EDGELAB_NB_PORTABLE=1`` adds :data:`PORTABLE_ENV`, which changes the
numerics the way another CPU changes them: stored outputs that pass both ways hold on other machines. The plugin also leaves stderr, HTML and widget views out of the
comparison (:data:`SKIP_COMPARE`) and registers :data:`SANITIZERS` (memory addresses, versions,
timestamps, progress bars, temporary paths), so ``--nbval-sanitize-with`` is only needed for
patterns of your own; they are applied after these.

This module imports neither pytest nor nbval nor TensorFlow at import time.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._files import write_atomic
from .errors import ConfigError, NotebookError, check_number

#: The kernel's environment, for storing outputs and validating them alike.
NOTEBOOK_ENV: dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ info and warning lines
    "EDGELAB_PROGRESS": "0",  # edgelab's progress bars are for people
    # One thread: training is repeatable run to run, and latency is measured the same way each time.
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "PYTHONHASHSEED": "0",  # set and dict order of strings, hash() values
}

#: Added by ``EDGELAB_NB_PORTABLE=1``: TensorFlow without oneDNN (Eigen's kernels: another training
#: history), LiteRT without XNNPACK (TFLite's built-in kernels round int8 results differently now
#: and then) and numpy without its AVX-512 loops (see :func:`notebook_environment`). The thread count
#: stays 1: two threads on a busy 2-core runner measure scheduler stalls, not kernels.
PORTABLE_ENV: dict[str, str] = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "EDGELAB_XNNPACK": "0",
}

#: Folders whose notebooks the plugin does not collect: model caches and JupyterLab's checkpoints.
IGNORE_DIRS: tuple[str, ...] = ("runs", "runs-cache", ".ipynb_checkpoints")

#: Output keys nbval does not compare: native log lines on stderr vary by machine; HTML repeats
#: the compared text/plain with markup; widget views and states carry random model ids.
SKIP_COMPARE: tuple[str, ...] = (
    "stderr",
    "text/html",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)

_TMP_PATH_END = r"[^\s'\"),\]}]*"

#: ``(regex, replacement)`` pairs applied to stored and fresh outputs before comparing, in order.
SANITIZERS: tuple[tuple[str, str], ...] = (
    # Memory addresses in object reprs.
    (r"0x[0-9a-fA-F]{6,}", "0xADDRESS"),
    # Versions that change with upgrades, not with results.
    (r'"(edgelab|tensorflow|litert)_version": "[^"]*"', r'"\1_version": "VERSION"'),
    (
        r"\b(edgelab|tensorflow|tf[-_]keras|keras|ai[-_]edge[-_]litert|litert|tflite[-_]runtime|numpy|pandas"
        r"|Python|python)( ?(?:==|=|:|version|v)? ?)\d+\.\d+(?:\.\d+)?(?:[.+-]?[a-z0-9]+)*\b",
        r"\1\2VERSION",
    ),
    # Wall-clock timestamps (ISO 8601, with or without fraction and zone).
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "TIMESTAMP"),
    # tqdm meters (text bars and the text/plain twin of widget bars): counts stay, times and rates go.
    (
        r"\d+%\|[^|\n]*\|\s*(\d+(?:\.\d+)?[kMG]?/\d+(?:\.\d+)?[kMG]?|\d+(?:\.\d+)?[kMG]?/\?) \[[^\]\n]*\]",
        r"PROGRESS \1",
    ),
    # Keras progress bars: "12/12 [=====] - 1s 8ms/step" keeps the step count.
    (
        r"(\[[=>.]+\]) - (?:ETA: )?\d+(?:\.\d+)?(?:m?s|us|µs)(?: \d+(?:\.\d+)?(?:m?s|us|µs)/(?:step|sample))?",
        r"\1 - TIME",
    ),
    # Temporary files and folders (Linux, macOS, Windows).
    (r"(?:/private)?/var/folders/[^/\s]+/[^/\s]+/T/" + _TMP_PATH_END, "TMPPATH"),
    (r"(?<![\w.])/tmp/" + _TMP_PATH_END, "TMPPATH"),
    (r"[A-Za-z]:\\\\?Users\\\\?[^\\\s]+\\\\?AppData\\\\?Local\\\\?Temp\\\\?" + _TMP_PATH_END, "TMPPATH"),
)

#: Native (C++) log lines on stderr: absl/glog format, absl's pre-init notice, TFLite's delegate notices.
NATIVE_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$"
)


def sanitizers() -> list[tuple[str, str]]:
    """:data:`SANITIZERS` plus this machine's temporary folder when it is somewhere unusual."""
    pairs = list(SANITIZERS)
    tmp = tempfile.gettempdir()
    if not any(re.match(regex, tmp + "/x") for regex, _ in SANITIZERS[-3:]):
        pairs.append((re.escape(tmp) + r"[/\\]" + _TMP_PATH_END, "TMPPATH"))
    return pairs


def _numpy_avx512() -> str:
    """numpy's AVX-512 dispatch targets found on this CPU (disabling an absent one is an error)."""

    try:
        features = importlib.import_module("numpy._core._multiarray_umath").__cpu_features__
    except ImportError:  # numpy < 2
        features = importlib.import_module("numpy.core._multiarray_umath").__cpu_features__
    wanted = ("AVX512_SPR", "AVX512_ICL", "X86_V4", "AVX512_SKX", "AVX512F")
    return " ".join(name for name in wanted if features.get(name))


def notebook_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) with :data:`NOTEBOOK_ENV` filled in where unset.

    With ``EDGELAB_NB_PORTABLE=1`` in ``base``, :data:`PORTABLE_ENV` is filled in too, and numpy's
    AVX-512 loops are turned off (``NPY_DISABLE_CPU_FEATURES``) on a CPU that has them.
    """
    env = dict(os.environ if base is None else base)
    for key, value in NOTEBOOK_ENV.items():
        env.setdefault(key, value)
    if env.get("EDGELAB_NB_PORTABLE") == "1":
        for key, value in PORTABLE_ENV.items():
            env.setdefault(key, value)
        avx512 = _numpy_avx512()
        if avx512:
            env.setdefault("NPY_DISABLE_CPU_FEATURES", avx512)
    return env


def sanitize(text: str) -> str:
    """``text`` as the plugin compares it (every sanitizer applied)."""
    for regex, replacement in sanitizers():
        text = re.sub(regex, replacement, text)
    return text


# --------------------------------------------------------------------------------------------
# pytest plugin (enabled with ``-p edgelab.nbval``)
# --------------------------------------------------------------------------------------------


def pytest_configure(config: Any) -> None:
    """Set the kernels' environment (nbval's kernels inherit it) and run them on this Python."""
    os.environ.update(notebook_environment())
    option = config.option
    if hasattr(option, "nbval_current_env") and not getattr(option, "nbval_kernel_name", None):
        option.nbval_current_env = True  # the Python that has edgelab and this plugin installed


def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
    """Skip :data:`IGNORE_DIRS`: copies of notebooks there are not the user's notebooks."""
    return True if collection_path.name in IGNORE_DIRS and collection_path.is_dir() else None


def pytest_collectstart(collector: Any) -> None:
    """Add :data:`SKIP_COMPARE` and the sanitizers to each notebook nbval collects."""
    if getattr(collector, "path", None) is None or collector.path.suffix != ".ipynb":
        return
    if not hasattr(collector, "skip_compare") or not hasattr(collector, "sanitize_patterns"):
        return  # collected by something other than nbval
    collector.skip_compare = tuple(collector.skip_compare) + tuple(
        key for key in SKIP_COMPARE if key not in collector.skip_compare
    )
    # nbval adds --nbval-sanitize-with patterns later (in setup), so a user's own come after these.
    collector.sanitize_patterns.update(sanitizers())


# --------------------------------------------------------------------------------------------
# Executing a notebook and storing its outputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutedNotebook:
    """One notebook run by :func:`execute_notebook`."""

    path: Path
    seconds: float
    code_cells: int
    widget_models: int

    def __repr__(self) -> str:
        return (
            f"ExecutedNotebook(path={self.path.name!r}, seconds={self.seconds:.1f}, "
            f"code_cells={self.code_cells}, widget_models={self.widget_models})"
        )


def _clean_stderr(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not NATIVE_LOG.match(line.rstrip("\n")))


def _drop_native_logs(nb: Any) -> None:
    """Native log lines vary by machine and say nothing about the notebook: drop them."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                output.text = _clean_stderr(output.text)
                if not output.text:
                    continue
            kept.append(output)
        cell.outputs = kept


def _this_python_kernel_manager() -> type:
    """A kernel manager class that starts ipykernel on this Python, whatever kernelspecs exist."""
    # deferred: the Jupyter kernel machinery, only to run a notebook (this plugin loads with every pytest run)
    import ipykernel.kernelspec
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.paths import jupyter_runtime_dir

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> Any:
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
            )

    class ThisPythonKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("kernel_spec_manager", ThisPythonSpecs())
            if os.name == "posix" and "transport" not in kwargs:  # local sockets: nothing listens on the network
                runtime = Path(jupyter_runtime_dir())
                runtime.mkdir(parents=True, exist_ok=True)
                kwargs.update(transport="ipc", ip=str(runtime / f"kernel-edgelab-{uuid.uuid4().hex[:12]}-ipc"))
            super().__init__(**kwargs)

    return ThisPythonKernelManager


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def shown_widget_ids(nb: Any) -> list[str]:
    """The model ids of the widget views stored in a notebook's outputs, in order."""
    return [
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]


def keep_shown_widget_state(nb: Any) -> list[str]:
    """Keep the stored widget state of the views the outputs show, and of the widgets they contain.

    nbclient stores every widget model the kernel ever announced, also those that were closed
    (finished progress bars) or never shown. The state kept is exactly what the stored views need:
    each view's model and every model it references (``IPY_MODEL_<id>``), so the state always
    matches the views and a reopened notebook renders each of them. Returns the ids dropped.
    """
    widgets = nb.get("metadata", {}).get("widgets", {})
    state = widgets.get(WIDGET_STATE, {}).get("state")
    if state is None:
        return []
    keep: set[str] = set()
    todo = [i for i in shown_widget_ids(nb) if i in state]
    while todo:
        model_id = todo.pop()
        if model_id in keep:
            continue
        keep.add(model_id)
        text = json.dumps(state[model_id].get("state", {}))
        todo += [ref for ref in re.findall(r"IPY_MODEL_([0-9a-f]+)", text) if ref in state]
    dropped = [i for i in state if i not in keep]
    for model_id in dropped:
        del state[model_id]
    if not state:
        del widgets[WIDGET_STATE]
        if not widgets:
            del nb["metadata"]["widgets"]
    return dropped


def _failed_cell(nb: Any) -> int | None:
    """Index (0-based, among all cells) of the first cell that stored an error, if any."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs):
            return index
    return None


def execute_notebook(
    path: str | Path,
    *,
    timeout_s: float = 1800,
    allow_errors: bool = False,
    cwd: str | Path | None = None,
) -> ExecutedNotebook:
    """Run a notebook top to bottom in a fresh kernel and store its outputs in the file.

    The kernel runs on this Python in :func:`notebook_environment`, in ``cwd`` (default: the
    notebook's folder). Outputs, execution counts and the widgets' state are stored; native
    log lines on stderr are dropped. The file is replaced in one step, and only when the run
    finished: a failing cell leaves it as it was (unless ``allow_errors``).

    Args:
        path: the ``.ipynb`` file.
        timeout_s: seconds allowed per cell.
        allow_errors: store the outputs even when a cell raises (the error is stored too).
        cwd: working folder of the kernel.

    Raises:
        ConfigError: the file is missing, is not a notebook, or nbclient is not installed.
        NotebookError: a cell raised or timed out, or the kernel died.
    """
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ConfigError(f"Expected an existing .ipynb file. Received: {str(path)!r}")
    timeout_s = check_number("timeout_s", timeout_s, minimum=0, min_open=True, unit="seconds")
    try:
        # deferred: nbformat and nbclient, only to run a notebook (this plugin loads with every pytest run)
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f"Expected nbclient and nbformat to be installed (pip install 'edgelab[test]'). Received: {exc}"
        ) from exc
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for unreadable files
        raise ConfigError(f"Expected a Jupyter notebook (nbformat 4). Received: {path.name}: {exc}") from exc
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code_cells:
        cell.outputs, cell.execution_count = [], None
    folder = Path(cwd) if cwd is not None else path.resolve().parent
    client = NotebookClient(
        nb,
        timeout=max(1, math.ceil(timeout_s)),
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(folder)}},
        coalesce_streams=True,
        record_timing=False,
        store_widget_state=True,
        kernel_manager_class=_this_python_kernel_manager(),
    )
    start = time.perf_counter()
    try:
        client.execute(env=notebook_environment())
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        where = _failed_cell(nb)
        what = f"{exc.ename}: {exc.evalue}" if isinstance(exc, CellExecutionError) else str(exc).splitlines()[0]
        raise NotebookError(
            f"Expected every cell of {path.name} to run. Received: "
            + (f"cell {where} raised " if where is not None else "")
            + f"{what}. The file was left unchanged (allow_errors / --allow-errors stores the outputs anyway)."
        ) from exc
    seconds = time.perf_counter() - start
    _drop_native_logs(nb)
    keep_shown_widget_state(nb)
    nbformat.validate(nb)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    write_atomic(path, nbformat.writes(nb) + "\n")
    return ExecutedNotebook(path, round(seconds, 2), len(code_cells), len(state.get("state", {})))
