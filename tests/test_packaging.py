"""The pinned environment is one set of pins, and the package metadata matches the code."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import sync_environment

import edgelab

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_carries_exactly_the_constraints_pins():
    assert (ROOT / "environment.yml").read_text() == sync_environment.render(ROOT / "constraints.txt")


def test_core_dependencies_are_pinned():
    pinned = {pin.split("==")[0].lower().replace("_", "-") for pin in sync_environment.pins(ROOT / "constraints.txt")}
    for name in (
        "tensorflow",
        "tf-keras",
        "tensorflow-model-optimization",
        "ai-edge-litert",
        "numpy",
        "pillow",
        "pandas",
        "matplotlib",
        "ipywidgets",
        "tqdm",
        "pytest",
        "nbval",
        "jupyterlab",
    ):
        assert name in pinned, name


def test_public_api_resolves():
    missing = [name for name in edgelab.__all__ if name != "__version__" and not hasattr(edgelab, name)]
    assert missing == []
