"""``edgelab notebook execute``: run notebooks in the environment nbval validates them in."""

from __future__ import annotations

import argparse

from ..nbval import execute_notebook
from . import print_usage


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, received {text!r}")
    return value


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``edgelab notebook execute``."""
    notebook = subparsers.add_parser(
        "notebook",
        help="execute notebooks and store their outputs for nbval",
        description="Execute notebooks the way `pytest --nbval -p edgelab.nbval` validates them.",
    )
    notebook.set_defaults(func=lambda args: print_usage(notebook))
    actions = notebook.add_subparsers(dest="notebook_command", metavar="ACTION")
    execute = actions.add_parser(
        "execute",
        help="run notebooks top to bottom and store their outputs and widget state",
        description="Run each notebook top to bottom in a fresh kernel on this Python, in the environment of "
        "edgelab.nbval (one thread, fixed hash seed, quiet TensorFlow logs, no progress bars; variables you set "
        "yourself win), in the notebook's folder, and store its outputs, execution counts and widget state. "
        "A notebook is rewritten only when every cell ran; then check it with "
        "`pytest --nbval -p edgelab.nbval PATH`.",
    )
    execute.add_argument("paths", metavar="PATH", nargs="+", help=".ipynb files, run in the order given")
    execute.add_argument(
        "--timeout", metavar="S", type=_positive_seconds, default=1800, help="seconds allowed per cell (default: 1800)"
    )
    execute.add_argument("--allow-errors", action="store_true", help="store the outputs even when a cell raises")
    execute.set_defaults(func=execute_command)


def execute_command(args: argparse.Namespace) -> int:

    for path in args.paths:
        print(f"{path} ...", end=" ", flush=True)
        try:
            run = execute_notebook(path, timeout_s=args.timeout, allow_errors=args.allow_errors)
        except BaseException:
            print("failed", flush=True)
            raise
        widgets = f", widget state of {run.widget_models} models" if run.widget_models else ""
        print(f"{run.seconds:.0f} s, {run.code_cells} code cells{widgets}", flush=True)
    return 0
