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

#: ``EDGELAB_NB_PORTABLE=1`` (the second pass of ``make nbtest``) changes the numerics the way another
#: CPU changes them, and the stored outputs must still match: TensorFlow without oneDNN (Eigen's
#: kernels: another training history), numpy without its AVX-512 loops, and LiteRT without XNNPACK
#: (TFLite's built-in kernels, which round int8 results differently now and then). The thread count
#: stays 1: two interpreter threads on a busy 2-core runner measure scheduler stalls, not kernels
#: (a run with ``EDGELAB_PARAMS='{"num_threads": 2}'`` timed qat_int8 slower than int16x8).
PORTABLE_ENV = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "EDGELAB_XNNPACK": "0",
}


def _numpy_avx512() -> str:
    """numpy's AVX-512 dispatch targets found on this CPU (disabling an absent one is an error)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    wanted = ("AVX512_SPR", "AVX512_ICL", "X86_V4", "AVX512_SKX", "AVX512F")
    return " ".join(name for name in wanted if features.get(name))


os.environ.update(NOTEBOOK_ENV)
if os.environ.get("EDGELAB_NB_PORTABLE") == "1":
    os.environ.update(PORTABLE_ENV)
    if _numpy_avx512():
        os.environ["NPY_DISABLE_CPU_FEATURES"] = _numpy_avx512()

#: Model caches and checkpoints live in notebooks/runs/ (gitignored); JupyterLab leaves checkpoints.
collect_ignore_glob = ["runs/*", ".ipynb_checkpoints/*", "**/.ipynb_checkpoints/*"]


def pytest_collectstart(collector):
    """Leave stderr and HTML out of the output comparison.

    stderr carries TensorFlow's native log lines, which vary by machine; every DataFrame is also
    shown as ``text/plain``, which is compared, so its HTML twin adds only markup churn.
    """
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr", "text/html")
