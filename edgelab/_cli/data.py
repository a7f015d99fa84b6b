"""``edgelab data``: write the synthetic scenes to disk and check a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.scanning import scan
from ..data.scene_files import make_scenes
from ..data.shifts import SHIFTS
from ..errors import DatasetError
from . import args as types
from . import print_json, print_usage


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``edgelab data make-scenes`` and ``edgelab data check``."""
    data = subparsers.add_parser(
        "data",
        help="write the synthetic scenes, check a dataset folder",
        description="Write the built-in synthetic scenes in Intel's layout, or check a dataset folder.",
    )
    data.set_defaults(func=lambda args: print_usage(data))
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")

    make = actions.add_parser(
        "make-scenes",
        help="write synthetic scenes in Intel Image Classification's layout",
        description="Write synthetic scenes as JPEGs in Intel's Kaggle layout "
        "(OUT/seg_train/seg_train/<class>/, OUT/seg_test/seg_test/<class>/).",
    )
    make.add_argument("out", metavar="OUT", help="output folder (new, empty, or an earlier make-scenes output)")
    make.add_argument(
        "--per-class",
        type=types.int_range(1, 100_000),
        default=100,
        help="images per class, train and test (1-100000, default: 100)",
    )
    make.add_argument(
        "--size",
        type=types.int_range(8, 4096),
        default=150,
        help="image side in pixels (8-4096, default: 150, as Intel's)",
    )
    make.add_argument("--seed", type=types.seed, default=0, help="random seed (default: 0)")
    make.add_argument(
        "--test-fraction",
        type=types.float_range(0.0, 1.0, low_open=True, high_open=True),
        default=0.2,
        help="share of each class in seg_test, in (0, 1) (default: 0.2)",
    )
    make.add_argument(
        "--pred-count", type=types.int_range(0, 100_000), default=0, help="unlabelled images in seg_pred (default: 0)"
    )
    make.add_argument(
        "--shift",
        choices=SHIFTS,
        default=None,
        help="draw every image under a camera or weather condition (default: none)",
    )
    make.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    make.set_defaults(func=make_scenes_command)

    check = actions.add_parser(
        "check",
        help="validate a dataset folder: images per class and every skipped file",
        description="Check a dataset folder (Intel's layout or one folder per class): print the images per "
        "class and every file that would be skipped, with its reason. Exit code 0 when the dataset is "
        "usable, 2 when it is missing or has no usable images.",
    )
    check.add_argument("root", metavar="ROOT", help="dataset folder")
    check.add_argument(
        "--json", action="store_true", help="print JSON: {classes: {name: count}, skipped: [{path, reason}]}"
    )
    check.add_argument(
        "--no-verify", action="store_true", help="read only image headers (faster; misses truncated files)"
    )
    check.add_argument(
        "--max-pixels",
        type=types.int_range(0),
        default=None,
        metavar="N",
        help="skip images of more than N pixels (width x height) as 'too large'; 0: no limit "
        "(default: EDGELAB_MAX_PIXELS or 50000000)",
    )
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    check.set_defaults(func=check_command)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def make_scenes_command(args: argparse.Namespace) -> int:
    """Write the scenes, then print one line saying what was written where."""

    out = make_scenes(
        args.out,
        args.per_class,
        image_size=args.size,
        seed=args.seed,
        test_fraction=args.test_fraction,
        pred_count=args.pred_count,
        progress=_progress(args),
        shift=args.shift,
    )
    result = scan(out, verify=False, progress=False)
    per_split = {origin: sum(counts.values()) for origin, counts in result.counts_by_origin().items()}
    parts = [f"seg_train {per_split.get('train', 0)}", f"seg_test {per_split.get('test', 0)}"]
    if result.pred_paths:
        parts.append(f"seg_pred {len(result.pred_paths)}")
    total = len(result.paths) + len(result.pred_paths)
    print(
        f"wrote {total} images ({len(result.class_names)} classes, {args.size}x{args.size}, seed {args.seed}"
        f"{', shift ' + args.shift if args.shift else ''}) "
        f"to {out} in Intel layout: {', '.join(parts)}"
    )
    return 0


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _print_report(result) -> None:
    root = result.root
    layout = result.layout.to_dict()
    folders = ", ".join(v for k, v in layout.items() if k.endswith("_dir") and v)
    print(f"{root}: {result.layout.kind} layout ({folders})")
    by_origin = result.counts_by_origin()
    columns = list(by_origin) if result.layout.kind == "intel" else []
    header = ["class", *columns, "total" if columns else "images"]
    rows = [
        [name] + [str(by_origin[c][name]) for c in columns] + [str(count)] for name, count in result.counts().items()
    ]
    rows.append(["total"] + [str(sum(by_origin[c].values())) for c in columns] + [str(len(result.paths))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        )
    if result.pred_paths:
        print(f"unlabelled images (seg_pred): {len(result.pred_paths)}")
    skipped = result.skipped
    if not len(skipped):
        print("skipped: none")
        return
    print(f"{skipped.summary()}:")
    for item in skipped:
        try:
            shown = item.path.relative_to(root).as_posix()
        except ValueError:
            shown = str(item.path)
        detail = f" ({item.detail})" if item.detail else ""
        print(f"  {shown}: {item.reason}{detail}")


def check_command(args: argparse.Namespace) -> int:
    """Print the dataset's images per class and skipped files; fail (exit 2) when unusable."""

    try:
        result = scan(Path(args.root), verify=not args.no_verify, progress=_progress(args), max_pixels=args.max_pixels)
    except DatasetError as exc:
        # The library's message also draws the expected folder trees; the CLI keeps to one line.
        raise DatasetError(_first_line(exc)) from None
    if args.json:
        print_json(result.to_dict())
    else:
        _print_report(result)
    if not result.usable:
        found = f"; {result.skipped.summary()}" if len(result.skipped) else ""
        raise DatasetError(f"no usable images in {result.root} ({result.layout.kind} layout{found})")
    return 0
