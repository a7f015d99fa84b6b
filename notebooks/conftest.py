"""nbval set-up for the notebook series: quiet, single-threaded, no progress bars, stable comparisons.

Run with ``make nbtest``. nbval starts one kernel per notebook as a child of this pytest process,
so the environment set here, at import time, is the kernels' environment too. ``regenerate.py``
imports :data:`NOTEBOOK_ENV` from here, so stored outputs and validation run in the same settings.
"""

from __future__ import annotations

import os

#: The environment the notebooks are executed in, for regeneration and validation alike.
NOTEBOOK_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ info and warning lines
    "EDGELAB_PROGRESS": "0",  # progress bars are for people; they stay on by default in JupyterLab
    # One thread everywhere: training is then bit-for-bit repeatable, and latency is measured
    # the same way each time.
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "PYTHONHASHSEED": "0",
}
os.environ.update(NOTEBOOK_ENV)

#: Model caches and checkpoints live in notebooks/runs/ (gitignored); JupyterLab leaves checkpoints.
collect_ignore_glob = ["runs/*", ".ipynb_checkpoints/*", "**/.ipynb_checkpoints/*"]


def pytest_collectstart(collector):
    """Leave stderr and HTML out of the output comparison.

    stderr carries TensorFlow's native log lines, which vary by machine; every DataFrame is also
    shown as ``text/plain``, which is compared, so its HTML twin adds only markup churn.
    """
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr", "text/html")
