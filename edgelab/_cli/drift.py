"""``edgelab drift``: does a window of images still look like the bundle's reference?"""

from __future__ import annotations

import argparse

from ..drift import check_drift
from . import print_json


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``edgelab drift BUNDLE IMAGES_DIR``."""
    p = subparsers.add_parser(
        "drift",
        help="check a window of images against a bundle's reference statistics",
        description="Compare a window of images (30 or more; thresholds are calibrated for 30 to 240) with the "
        "reference statistics in a deploy bundle: brightness, contrast, sharpness, noise, colour, the model's "
        "confidence and class mix. Prints the verdict and the signals that moved; the same verdict as "
        "`python3 classify.py --drift IMAGES...` in the bundle.",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle folder exported with a reference")
    p.add_argument("images", metavar="IMAGES_DIR", help="a folder of images (searched recursively)")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"drift", "score", "threshold", "images", "signals": [{"name", "score", "drift"}]}',
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=drift_command)


def drift_command(args: argparse.Namespace) -> int:
    """Print the verdict (exit 0 whether or not the images drifted)."""

    result = check_drift(args.bundle, args.images, progress=False if args.no_progress else None)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0
