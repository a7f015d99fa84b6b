"""The ``edgelab`` command: a thin layer over the library.

Each area registers its subcommands from ``edgelab/_cli/<area>.py`` (``add_commands``). A command
function takes the parsed arguments and returns an exit code. Expected failures (EdgelabError) end
with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from ._cli.args import OneLineParser, one_line_warnings, report_interrupt, run_command
from ._interrupt import install_counting_handler, interrupt_count, was_interrupted

#: Modules under edgelab._cli that contribute subcommands, in help order.
AREAS = (
    "data",
    "demo",
    "models",
    "convert",
    "analyze",
    "edgetpu",
    "layers",
    "drift",
    "bundle",
    "device",
    "tune",
    "notebook",
)

#: The top-level commands of each area: running one command imports only its area's module (and what
#: that imports), so e.g. ``edgelab drift`` starts without TensorFlow or pandas. Help and unknown
#: commands build the whole parser. tests/test_cli.py checks this table against ``add_commands``.
COMMANDS = {
    "data": "data",
    "demo": "demo",
    "inspect": "models",
    "benchmark": "models",
    "convert": "convert",
    "analyze": "analyze",
    "compile": "edgetpu",
    "read-log": "edgetpu",
    "export-bundle": "edgetpu",
    "devices": "edgetpu",
    "layers": "layers",
    "drift": "drift",
    "bundle": "bundle",
    "device": "device",
    "doctor": "device",
    "tune": "tune",
    "notebook": "notebook",
}


def _command(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is not an option), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``edgelab`` parser: every area's commands, or only the area of ``command`` when it is known."""
    areas = (COMMANDS[command],) if command in COMMANDS else AREAS
    parser = OneLineParser(
        prog="edgelab",
        description="Train, quantize, convert, compile and compare edge image classifiers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"edgelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in areas:
        try:
            module = importlib.import_module(f"edgelab._cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgelab._cli.{area}":
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    exit_fast = argv is None  # the real command line
    if exit_fast:
        install_counting_handler()
        one_line_warnings()
    # Building the parser imports the command's module (every one for help): a Ctrl-C there ends
    # the run with the same line as one during the command, also when an extension module's import
    # turned it into its own ImportError.
    interrupts = interrupt_count()
    try:
        parser = build_parser(_command(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return report_interrupt(exit_fast)
    except Exception as exc:
        if was_interrupted(exc, since=interrupts):
            return report_interrupt(exit_fast)
        raise
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2

    return run_command(args.func, args, exit_fast=exit_fast)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
