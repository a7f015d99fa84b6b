"""Tests exercise edgelab through what users can call: no test takes a private function or variable
(a name starting with ``_``) of an edgelab module, by import, attribute or monkeypatch.

Private *modules* (``edgelab._files``, ``edgelab._keras``, ...) may be imported by name; their public,
documented functions are the seams the tests use to inject faults (``_files.publish``, the last rename of
an atomic write, made to fail) or to read a saved file (``_machine.cpu(path)``, another machine's
cpuinfo), never the modules they import (``_files.os``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import types
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _foreign_module(module: str, attr: str) -> bool:
    """True when ``module.attr`` is a module from outside edgelab (``edgelab._files.os``)."""
    try:
        value = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    return isinstance(value, types.ModuleType) and not value.__name__.startswith("edgelab")


def private_uses(source: str, where: str = "<test>") -> list[str]:
    """``file:line: what`` for each private edgelab name ``source`` takes."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> edgelab module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "edgelab":
                    local = alias.asname or alias.name.split(".")[0]
                    modules[local] = alias.name if alias.asname else "edgelab"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "edgelab":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _is_module(full):
                    modules[alias.asname or alias.name] = full
                elif _private(alias.name):
                    found.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if module is not None and not _is_module(f"{module}.{node.attr}"):
                found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setattr" and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id in modules
                and _foreign_module(modules[target.value.id], target.attr)
            ):  # patching what an edgelab module imported (os, shutil) patches it for the whole process
                found.append(f"{where}:{node.lineno}: setattr({target.value.id}.{target.attr}, ...)")
            if (
                isinstance(target, ast.Name)
                and target.id in modules
                and isinstance(name, ast.Constant)
                and _private(str(name.value))
            ):
                found.append(f"{where}:{node.lineno}: setattr({target.id}, {name.value!r})")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_no_test_takes_a_private_name_of_edgelab():
    found = []
    for path in sorted(TESTS.glob("*.py")):
        found += private_uses(path.read_text(encoding="utf-8"), path.name)
    assert not found, "tests take private names of edgelab (test the public behaviour instead):\n" + "\n".join(found)


def test_the_scan_sees_an_import_an_attribute_and_a_monkeypatch():
    """It fails by construction on each way of reaching a private name or patching what an edgelab
    module imported, and lets private modules and their public seams pass."""
    source = (
        "from edgelab.demo import _reuse, Workspace\n"
        "from edgelab import _files\n"
        "from edgelab.tflite import trust\n"
        "import edgelab as el\n"
        "def test(monkeypatch):\n"
        "    trust._MEMO.clear()\n"
        "    monkeypatch.setattr(trust, '_MEMO', {})\n"
        "    _files.write_atomic\n"
        "    el._keras.keras\n"
        "    monkeypatch.setattr(_files.os, 'replace', None)\n"
        "    monkeypatch.setattr(_files, 'publish', None)\n"
    )
    assert private_uses(source) == [
        "<test>:1: from edgelab.demo import _reuse",
        "<test>:6: trust._MEMO",
        "<test>:7: setattr(trust, '_MEMO')",
        "<test>:10: setattr(_files.os, ...)",
    ]
