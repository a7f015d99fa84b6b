"""``edgelab bundle diff``: compare two deploy bundles on the same images and say which to ship."""

from __future__ import annotations

import argparse

from ..bundle_diff import diff_bundles
from . import args as types
from . import print_json, print_usage


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``edgelab bundle diff OLD NEW --data DIR``."""
    bundle = subparsers.add_parser(
        "bundle",
        help="compare deploy bundles (which to ship)",
        description="Work with deploy bundles written by `edgelab export-bundle`.",
    )
    bundle.set_defaults(func=lambda args: print_usage(bundle))
    actions = bundle.add_subparsers(dest="bundle_command", metavar="ACTION")
    p = actions.add_parser(
        "diff",
        help="two bundles on the same labelled images: accuracy, agreement, changed answers, size, latency",
        description="Classify the same labelled images with two bundles' default CPU models and report accuracy, "
        "top-1 agreement, the images that changed answer, model size, host latency and the Edge TPU estimate. "
        "Ships NEW only when it fixes significantly more images than it breaks (McNemar's exact test, p < 0.05).",
    )
    p.add_argument("old", metavar="OLD", help="the running bundle")
    p.add_argument("new", metavar="NEW", help="the candidate bundle")
    p.add_argument("--data", required=True, metavar="DIR", help="labelled images: one folder per class")
    p.add_argument("--threads", type=types.int_range(1, types.MAX_THREADS), default=1, help="interpreter threads")
    p.add_argument("--no-latency", action="store_true", help="skip the host latency measurement")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=diff_command)


def diff_command(args: argparse.Namespace) -> int:

    result = diff_bundles(args.old, args.new, args.data, num_threads=args.threads, latency=not args.no_latency)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0
