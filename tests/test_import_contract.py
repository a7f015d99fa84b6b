"""The import contract in pyproject.toml ([tool.importlinter]) holds, and it sees imports inside functions.

The contract is checked by import-linter (also run by `make lint`); these tests run it on this tree,
and on a copy with a deliberate violation hidden in a function, which it must refuse.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edgelab"

_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", _LINT, "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_the_contract():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout, run.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "edgelab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    splits = tmp_path / "edgelab" / "data" / "splits.py"
    splits.write_text(
        splits.read_text()
        + "\n\ndef _upward():\n    from ..compare.report import html_table\n\n    return html_table\n"
    )
    run = lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    assert "edgelab.data is not allowed to import edgelab.compare" in run.stdout, run.stdout
    assert "edgelab.data.splits -> edgelab.compare.report" in run.stdout, run.stdout


def test_a_circle_inside_a_package_breaks_the_contract(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "edgelab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    reader = tmp_path / "edgelab" / "tflite" / "reader.py"  # inspection imports reader; reader back:
    reader.write_text(
        reader.read_text() + "\n\ndef _back():\n    from .inspection import inspect_model\n\n    return inspect_model\n"
    )
    run = lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    assert "No cycles are allowed in edgelab.tflite" in run.stdout, run.stdout


def deferred_imports(package: Path = PACKAGE) -> list[tuple[str, int, str, str]]:
    """(file, line, import statement, comment) of every import inside a function under ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if "bundle_template" in path.parts:  # device-side scripts, not part of the package's graph
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        seen: set[int] = set()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in seen:
                    seen.add(node.lineno)
                    comment = lines[node.lineno - 1].partition("#")[2]
                    above = node.lineno - 2  # the comment may stand above a group of imports
                    while above >= 0 and lines[above].strip().startswith(("#", "from ", "import ", ")")):
                        comment += " " + lines[above].partition("#")[2]
                        above -= 1
                    found.append((path.name, node.lineno, ast.unparse(node), comment))
    return found


def unmarked(package: Path = PACKAGE) -> list[str]:
    return [f"{f}:{n}: {stmt}" for f, n, stmt, comment in deferred_imports(package) if "deferred" not in comment]


def test_every_import_inside_a_function_says_what_it_defers():
    missing = unmarked()
    assert not missing, "imports inside functions without a '# deferred: why' comment:\n" + "\n".join(missing)


def test_the_marker_check_finds_an_unmarked_import(tmp_path):
    (tmp_path / "mod.py").write_text(
        "def ok():\n    # deferred: matplotlib\n    import matplotlib\n\n"
        "def also_ok():\n    import tensorflow  # deferred: TensorFlow\n\n"
        "def bad():\n    import json\n    return json\n"
    )
    assert unmarked(tmp_path) == ["mod.py:9: import json"]


def error_classes_outside_errors(package: Path = PACKAGE) -> list[str]:
    """Public exception and warning classes defined anywhere but edgelab/errors.py."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "errors.py" or "bundle_template" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Warning", "Exception")) for b in bases):
                    found.append(f"{path.name}: {node.name}")
    return found


def test_every_error_and_warning_class_lives_in_errors_py(tmp_path):
    assert error_classes_outside_errors() == []
    (tmp_path / "mod.py").write_text(
        "class OddError(ValueError):\n    pass\n\n\nclass _Private(Exception):\n    pass\n"
    )
    assert error_classes_outside_errors(tmp_path) == ["mod.py: OddError"]
