"""``edgelab device bench|doctor|deploy|rollback|status`` (over OpenSSH) and ``edgelab doctor`` (this machine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..device import bench, deploy, deployed, device_doctor, local_doctor, rollback
from ..device.bench import bundle_folder_name
from ..errors import ConfigError
from . import args as types
from . import print_json, print_usage

#: Exit code of a doctor that found a required item missing.
EXIT_NOT_READY = 1


def _connection(p: argparse.ArgumentParser, *, bundle: bool) -> None:
    if bundle:
        p.add_argument("bundle", help="a bundle folder (edgelab export-bundle)")
    p.add_argument("--host", required=True, help="an alias from your ssh config, or user@host[:port]")
    p.add_argument("--ssh-config", metavar="FILE", help="ssh client config to use instead of ~/.ssh/config (ssh -F)")
    p.add_argument("--python", default="python3", help="the device's Python interpreter (default: python3)")
    p.add_argument(
        "--remote-dir",
        default="edgelab",
        help="folder on the device, relative to the login's home unless absolute (default: edgelab)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def add_commands(subparsers) -> None:
    device = subparsers.add_parser(
        "device",
        help="measure, check, deploy and roll back a bundle on a device over SSH",
        description="Work with a Linux device over the system's OpenSSH client: your ~/.ssh/config (or "
        "--ssh-config), keys and known_hosts; host keys are checked strictly.",
    )
    sub = device.add_subparsers(dest="device_command", metavar="ACTION")
    device.set_defaults(func=lambda args: print_usage(device))

    p = sub.add_parser(
        "bench",
        help="copy a bundle to the device, run it there, compare with this machine",
        description="Copy the bundle (and labelled test images) to a per-bundle folder on the device, reusing "
        "what is there by hash; run the bundle's own code there (cold start, warm-up, p50/p99 per model; "
        "with --data accuracy and top-1 agreement with edgelab's run of the same file here); report the device.",
    )
    _connection(p, bundle=True)
    p.add_argument("--data", help="labelled test images: Intel layout (seg_test) or one folder per class")
    p.add_argument("--model", action="append", help="a model of the bundle (name or file); repeat for several")
    p.add_argument("--max-images", type=types.int_range(1), help="use at most this many test images")
    p.add_argument("--warmup", type=types.int_range(0, 100_000), default=10, help="untimed inferences first (10)")
    p.add_argument("--runs", type=types.int_range(1, 1_000_000), default=50, help="timed inferences at least (50)")
    p.add_argument(
        "--min-time", type=types.float_range(0.0, 3600.0), default=0.5, help="seconds of timed inferences at least"
    )
    p.add_argument("--threads", type=types.threads, help="interpreter threads on the device")
    p.add_argument("--timeout", type=types.seconds, default=1800.0, help="seconds before the device run stops (1800)")
    p.add_argument("--cleanup", action="store_true", help="delete the bundle's folder on the device afterwards")
    p.add_argument("--overwrite", action="store_true", help="replace files that were changed on the device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_bench)

    p = sub.add_parser(
        "doctor",
        help="check that the device can run a bundle, and say how to fix what is missing",
        description="Python and syntax level, runtimes that work, numpy against the runtime, Pillow, libedgetpu and "
        f"its delegate, USB/PCIe Edge TPUs, free disk. Exit code {EXIT_NOT_READY} when a required item is missing.",
    )
    _connection(p, bundle=False)
    p.set_defaults(func=_doctor)

    p = sub.add_parser(
        "deploy",
        help="install a bundle as a new version and switch to it atomically (or --rollback)",
        description="Copy the bundle into a new version folder on the device, smoke-test it there, then switch the "
        "'current' link in one rename. A failed copy or smoke test leaves the running version untouched.",
    )
    p.add_argument("bundle", nargs="?", help="a bundle folder (not with --rollback)")
    _connection(p, bundle=False)
    p.add_argument("--app", help="application folder on the device (default: the bundle folder's name)")
    p.add_argument("--rollback", action="store_true", help="switch back to the previous version")
    p.add_argument("--no-smoke-test", action="store_true", help="switch without running the models once first")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_deploy)

    p = sub.add_parser("status", help="installed versions of an app on the device, and which one is current")
    _connection(p, bundle=False)
    p.add_argument("--app", required=True, help="application folder on the device")
    p.set_defaults(func=_status)

    p = subparsers.add_parser(
        "doctor",
        help="check this machine: Python, TensorFlow, tf_keras, LiteRT, numpy, compiler, Edge TPUs, Chromium",
        description=f"Check this machine; exit code {EXIT_NOT_READY} when a required item is missing.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_local_doctor)


def _bench(args) -> int:

    result = bench(
        args.bundle,
        args.host,
        data=args.data,
        models=args.model,
        ssh_config=args.ssh_config,
        python=args.python,
        remote_dir=args.remote_dir,
        cleanup=args.cleanup,
        overwrite=args.overwrite,
        warmup=args.warmup,
        runs=args.runs,
        min_time_s=args.min_time,
        num_threads=args.threads,
        max_images=args.max_images,
        timeout_s=args.timeout,
        progress=False if args.no_progress or args.json else None,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    d = result.device.summary()
    tpu = "Edge TPU: " + ("yes" if d["edgetpu"] else "none") + (", delegate loads" if d["edgetpu_delegate"] else "")
    print(
        f"device {result.host}: Python {d['python']}, {d['runtime']} {d['runtime_version']}, {d['machine']}, {d['cpu']}; {tpu}"
    )
    if d["temperature_c"]:
        print("temperature: " + ", ".join(f"{k} {v:.1f} C" for k, v in d["temperature_c"].items()))
    frame = result.to_frame().dropna(axis=1, how="all")
    print(frame.to_string(index=False))
    print(
        f"round trip {result.wall_s:.1f} s ({result.copied} file(s) copied, {result.reused} reused"
        f"{', device folder removed' if result.cleaned_up else ''})"
    )
    return 0


def _print_doctor(report, as_json: bool) -> int:
    if as_json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else EXIT_NOT_READY


def _doctor(args) -> int:

    report = device_doctor(args.host, ssh_config=args.ssh_config, python=args.python, remote_dir=args.remote_dir)
    return _print_doctor(report, args.json)


def _local_doctor(args) -> int:

    return _print_doctor(local_doctor(), args.json)


def _deploy(args) -> int:

    if args.rollback:
        if args.bundle is not None and args.app is None:
            args.app = bundle_folder_name(Path(args.bundle))
        if not args.app:
            raise ConfigError("--rollback needs --app NAME (or the bundle folder whose name is the app)")
        result = rollback(
            args.host, args.app, ssh_config=args.ssh_config, python=args.python, remote_dir=args.remote_dir
        )
    else:
        if args.bundle is None:
            raise ConfigError("edgelab device deploy needs a BUNDLE folder (or --rollback)")
        result = deploy(
            args.bundle,
            args.host,
            app=args.app,
            ssh_config=args.ssh_config,
            python=args.python,
            remote_dir=args.remote_dir,
            smoke_test=not args.no_smoke_test,
            progress=False if args.no_progress or args.json else None,
        )
    if args.json:
        print_json(result.to_dict())
    elif args.rollback:
        print(f"{result.host}: {result.app} rolled back to {result.current} (previous: {result.previous})")
    elif result.changed:
        print(
            f"{result.host}: {result.app} now runs {result.current} (previous: {result.previous}; "
            f"{result.copied} file(s) copied, {result.reused} reused)"
        )
    else:
        print(f"{result.host}: {result.app} already runs {result.current}")
    return 0


def _status(args) -> int:

    status = deployed(args.host, args.app, ssh_config=args.ssh_config, python=args.python, remote_dir=args.remote_dir)
    if args.json:
        print_json(status)
    else:
        print(f"current: {status.get('current')}  previous: {status.get('previous')}")
        print("versions: " + (", ".join(status.get("versions", [])) or "none"))
    return 0
