"""``edgelab tune --data ROOT --budget-ms MS``: search for the model that fits the Edge TPU (Optuna).

One line per finished trial (on stderr with ``--json``), then the study's summary or its JSON.
``--storage URL --study NAME`` lets any number of processes, on one machine or many, work on one
study; ``--trials 0`` only reports it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..data.datasets import load_dataset
from ..errors import ConfigError
from ..tune.prescreen import Constraints
from ..tune.search import DEFAULT_STUDY, collect, tune
from ..tune.space import DEFAULT_WIDTHS, SearchSpace
from ..tune.storage import default_storage_url, open_storage, redact_url
from . import args as types
from . import print_json


def _csv(kind: Any, name: str) -> Any:
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated values for {name}, received {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one value for {name}, received {text!r}")
        return values

    parse.__name__ = "list"
    return parse


def add_commands(subparsers: Any) -> None:
    """Register ``tune`` on the ``edgelab`` command."""
    p = subparsers.add_parser(
        "tune",
        help="search architectures, widths and input sizes for the best int8 model within an Edge TPU budget",
        description="Search for the most accurate int8 model that maps to the Edge TPU within a latency budget. "
        "Candidates that cannot fit are rejected before training, from their untrained graph. "
        "Studies live in an Optuna storage: several `edgelab tune` processes with the same --storage and "
        "--study share the work.",
    )
    p.add_argument("--data", metavar="ROOT", help="dataset folder (class folders or Intel layout)")
    p.add_argument(
        "--budget-ms",
        type=types.float_range(0.0, 1e6, low_open=True),
        metavar="MS",
        help="estimated Edge TPU latency per inference on --link, at most",
    )
    p.add_argument("--link", choices=("usb3", "usb2", "pcie", "devboard"), default="usb3", help="Edge TPU link (usb3)")
    p.add_argument(
        "--trials", type=types.int_range(0, 100_000), default=20, help="trials this process runs (20; 0: report)"
    )
    p.add_argument("--epochs", type=types.int_range(1, 10_000), default=6, help="maximum epochs per trial (6)")
    p.add_argument("--storage", metavar="URL", help="journal:PATH, sqlite:///PATH, postgresql://..., mysql://...")
    p.add_argument("--study", metavar="NAME", help="study name (edgelab)")
    p.add_argument("--out", default="runs/tune", metavar="DIR", help="run folder: trial files, default storage")
    p.add_argument(
        "--architectures", type=_csv(str, "--architectures"), metavar="A,B", help="edgecnn,mobilenetv2 (both)"
    )
    p.add_argument(
        "--input-sizes",
        type=_csv(int, "--input-sizes"),
        metavar="S,S",
        help="input sizes in px (2/3 and all of --image-size)",
    )
    p.add_argument(
        "--learning-rates", type=_csv(float, "--learning-rates"), metavar="LR,LR", help="learning rates to search"
    )
    p.add_argument("--image-size", type=types.int_range(8, 4096), default=96, help="dataset decode size in px (96)")
    p.add_argument(
        "--max-cpu-ops", type=types.int_range(0, 100_000), default=0, help="ops allowed on the CPU (0: all mapped)"
    )
    p.add_argument(
        "--max-off-chip-kb",
        type=types.int_range(0, 10**9),
        default=0,
        help="parameter KiB allowed outside the on-chip memory (0)",
    )
    p.add_argument("--max-size-kb", type=types.int_range(1, 10**9), help="largest int8 file in KiB")
    p.add_argument("--seed", type=types.seed, default=0, help="seed of the sampler and training (0)")
    p.add_argument("--json", action="store_true", help="print the study as JSON")
    p.set_defaults(func=_run)


def _line(record: Any, link: str) -> str:
    acc = "-" if record.accuracy is None else f"{record.accuracy:.4f}"
    lat = "-" if record.latency_ms is None else f"{record.latency_ms:.2f} ms {link}"
    secs = "-" if record.seconds is None else f"{record.seconds:.1f} s"
    why = f"  ({record.reason})" if record.reason else ""
    return f"trial {record.number:4d} {record.state:<10} {record.label:<24} accuracy {acc:<7} {lat:<14} {secs}{why}"


def _report(args: argparse.Namespace) -> int:
    # deferred: optuna (about a second to import; the CLI starts without it)
    import optuna

    url = args.storage or default_storage_url(args.out)
    store = open_storage(url, args.out)
    name = args.study or DEFAULT_STUDY
    try:
        study = optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        raise ConfigError(f"No study {name!r} in {redact_url(url)}. Studies there: {names or 'none'}") from None
    definition = study.user_attrs.get("edgelab_definition") or {}
    saved = definition.get("constraints") or {}
    constraints = Constraints(
        budget_ms=saved.get("budget_ms"),
        link=saved.get("link", args.link),
        max_cpu_ops=saved.get("max_cpu_ops", 0),
        max_off_chip_bytes=saved.get("max_off_chip_bytes", 0),
        max_size_bytes=saved.get("max_size_bytes"),
    )
    return _print(collect(study, Path(args.out), constraints, redact_url(url)), args)


def _print(result: Any, args: argparse.Namespace) -> int:
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.trials == 0:
        return _report(args)
    if args.data is None:
        raise ConfigError("Expected --data ROOT (a dataset folder) to train candidates on. Received: no --data")

    kwargs: dict[str, Any] = {}
    if args.architectures:
        kwargs["architectures"] = args.architectures
        kwargs["widths"] = {a: DEFAULT_WIDTHS[a] for a in args.architectures if a in DEFAULT_WIDTHS}
    sizes = args.input_sizes or tuple(sorted({max(32, round(args.image_size * 2 / 3 / 8) * 8), args.image_size}))
    kwargs["input_sizes"] = sizes
    if args.learning_rates:
        kwargs["learning_rates"] = args.learning_rates
    space = SearchSpace(**kwargs)
    data = load_dataset(args.data, image_size=max(max(sizes), args.image_size))
    lines = sys.stderr if args.json else sys.stdout

    def on_trial(record: Any) -> None:
        print(_line(record, args.link), file=lines, flush=True)

    result = tune(
        data,
        budget_ms=args.budget_ms,
        link=args.link,
        trials=args.trials,
        epochs=args.epochs,
        space=space,
        storage=args.storage,
        study=args.study,
        run_dir=args.out,
        max_cpu_ops=args.max_cpu_ops,
        max_off_chip_bytes=args.max_off_chip_kb * 1024,
        max_size_bytes=None if args.max_size_kb is None else args.max_size_kb * 1024,
        seed=args.seed,
        progress=False,
        on_trial=on_trial,
    )
    return _print(result, args)
