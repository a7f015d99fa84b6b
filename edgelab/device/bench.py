"""``edgelab device bench``: measure a bundle where it runs, and bring the numbers back.

The round trip: ask the device what it has (device_info.py, sent on stdin), copy the bundle and the
labelled test images to a per-bundle folder there (reusing what is already there by hash), run the
bundle's own code on the device's own stack (``classify.py --bench``: cold start, warm-up, p50/p99
per model, the top-1 class of every test image), run the same files on this machine on the same
images, and report accuracy and the top-1 agreement between the two.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .._config import Options, check_bool, set_field, split_options
from .._files import read_labels, sha256_file
from .._log import warn_user_fmt
from ..bundle import export_bundle
from ..compare.timing import TimingOptions
from ..data.decoding import load_image
from ..data.scanning import scan
from ..errors import (
    ConfigError,
    DatasetError,
    DeviceError,
    DeviceRuntimeError,
    DeviceTimeoutError,
    PartialResultWarning,
    check_int,
    check_number,
)
from ..records import Record, rounded
from ..tflite.runtime import TFLiteModel
from . import ssh, sync
from .info import DeviceInfo, probe

if TYPE_CHECKING:
    import pandas as pd

#: The device folder everything goes under, relative to the login's home unless absolute.
REMOTE_DIR = ssh.REMOTE_DIR

#: How :func:`bench` times each model on the device unless told otherwise (threads: the runtime's default).
DEVICE_TIMING = TimingOptions(warmup=10, runs=50, min_time_s=0.5, num_threads=None)
#: Columns of :meth:`DeviceBench.to_frame`, in order.
ROW_KEYS = (
    "model",
    "file",
    "status",
    "runtime",
    "p50_ms",
    "p99_ms",
    "cold_ms",
    "accuracy",
    "agreement",
    "host_accuracy",
    "near_ties",
    "images",
    "runs",
    "reason",
)


@dataclass(frozen=True)
class DeviceBench(Record):
    """One device benchmark: the device, one row per model, and what the round trip took.

    Attributes:
        device: The device report (:class:`DeviceInfo`).
        rows: Per model: ``model``, ``file``, ``status``, ``runtime``, ``p50_ms``, ``p99_ms``, ``cold_ms``,
            ``accuracy`` and ``agreement`` (with test images; agreement = share of images whose top-1 class on
            the device equals edgelab's host run of the same file), ``host_accuracy``, ``near_ties`` (images
            whose two best scores here are within two output steps: the only ones another runtime can flip,
            so ``agreement >= 1 - near_ties / images``), ``images``, ``runs``.
        wall_s: Seconds of the whole round trip (probe, copy, run, host run, cleanup).
        copied: Files copied (the others were already on the device).
        reused: Files reused from an earlier copy.
        remote_dir: The per-bundle folder on the device.
    """

    #: ``to_dict``: the ``edgelab device bench --json`` document (each row's keys in ``ROW_KEYS`` order).
    RECORD_KEYS = (
        ("device", lambda bench: bench.device.summary()),
        ("rows", lambda bench: [{k: r.get(k) for k in ROW_KEYS if k in r} for r in bench.rows]),
        "wall_s",
        "copied",
        "reused",
        "remote_dir",
        "cleaned_up",
    )

    device: DeviceInfo
    rows: tuple[dict[str, Any], ...]
    wall_s: float = field(metadata=rounded(3))
    copied: int
    reused: int
    remote_dir: str
    cleaned_up: bool = False
    host: str = field(default="", repr=False)

    def row(self, model: str) -> dict[str, Any]:
        for row in self.rows:
            if model in (row.get("model"), row.get("file")):
                return row
        raise ConfigError(
            f"Expected a model of this benchmark {[r.get('model') for r in self.rows]}. Received: {model!r}"
        )

    def to_frame(self) -> pd.DataFrame:
        # deferred: pandas (the device side runs without it)
        import pandas as pd

        return pd.DataFrame([{k: r.get(k) for k in ROW_KEYS} for r in self.rows], columns=list(ROW_KEYS))

    def __repr__(self) -> str:
        parts = []
        for r in self.rows:
            if r.get("status") != "ok":
                parts.append(f"{r.get('model')}: failed")
                continue
            text = f"{r.get('model')}: p50 {r['p50_ms']:.3f} ms"
            if r.get("agreement") is not None:
                text += f", accuracy {r['accuracy']:.4f}, agreement {r['agreement']:.4f}"
            parts.append(text)
        return f"DeviceBench({self.host!r}, {self.device.runtime_label()}; {'; '.join(parts)})"


@dataclass(frozen=True)
class TestImages:
    """Labelled images for the device: files, their label index in the bundle's labels."""

    paths: tuple[Path, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def labelled_images(data: str | Path, labels: Sequence[str], max_images: int | None = None) -> TestImages:
    """The test images of a dataset folder (Intel layout: seg_test; class folders: all), by bundle label.

    Raises:
        DatasetError: the folder has no usable images, or a class the bundle does not know.
    """

    result = scan(data, progress=False)
    if not result.usable:
        raise DatasetError(f"Expected labelled images in {data}. Received: a folder without usable images")
    origins = np.asarray(result.origins)
    keep = origins == "test" if (origins == "test").any() else np.ones(len(origins), bool)
    unknown = sorted(set(result.class_names) - set(labels))
    if unknown:
        raise DatasetError(
            f"Expected the classes of {data} among the bundle's labels {list(labels)}. Received: {unknown}"
        )
    index = {name: i for i, name in enumerate(labels)}
    paths = [p for p, k in zip(result.paths, keep) if k]
    mapped = np.asarray([index[result.class_names[lab]] for lab, k in zip(result.labels, keep) if k], np.int64)
    if max_images is not None and len(paths) > max_images:
        # Every class keeps its share: take images round-robin over the classes, in file order.
        by_class = [np.flatnonzero(mapped == c) for c in np.unique(mapped)]
        picked: list[int] = []
        k = 0
        while len(picked) < max_images:
            for members in by_class:
                if k < len(members) and len(picked) < max_images:
                    picked.append(int(members[k]))
            k += 1
        order = np.asarray(sorted(picked))
        paths = [paths[i] for i in order]
        mapped = mapped[order]
    return TestImages(tuple(paths), mapped)


def bundle_meta(bundle: Path) -> tuple[dict[str, Any], list[str]]:
    if not (bundle / "bundle.json").is_file():
        raise ConfigError(
            f"Expected a bundle folder (with bundle.json, from edgelab export-bundle). Received: {str(bundle)!r}"
        )
    try:
        meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        labels = list(read_labels(bundle / meta.get("labels", "labels.txt")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Expected a readable bundle in {bundle}. Received: {exc}") from None
    return meta, labels


def bundle_folder_name(bundle: Path) -> str:
    """A device folder name for a bundle: its folder name, made safe."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in bundle.resolve().name).strip(".")
    return name or "bundle"


def _host_predictions(model_path: Path, images: TestImages) -> tuple[np.ndarray, int]:
    """edgelab's own run of the same file on the same image files (decoded at the model's input size).

    Returns the top-1 classes and the number of near-ties: images whose two best scores differ by less
    than two output steps (2 x the output scale of an integer model; 1e-5 for a float one), the only
    images another runtime's rounding can flip.
    """

    model = TFLiteModel(model_path)
    height, width = model.image_shape[:2]
    pixels = np.stack([load_image(p, (height, width)) for p in images.paths])
    scores = model.predict(pixels, progress=False).reshape(len(pixels), -1)
    scale = model.output_quantization[0] if np.dtype(model.output_dtype).kind in "iu" else 0.0
    margin = 2 * scale if scale else 1e-5
    top2 = np.sort(scores, axis=1)[:, -2:]
    ties = int(np.sum(top2[:, 1] - top2[:, 0] < margin)) if scores.shape[1] > 1 else 0
    return scores.argmax(axis=1), ties


@dataclass(frozen=True)
class BenchOptions(Options):
    """How :func:`bench` runs a bundle on the device; checked once, when made.

    Args:
        max_images: Use at most this many test images (every class keeps its share; None: all).
        overwrite: Replace files that were changed on the device since edgelab copied them.
        cleanup: Delete the per-bundle folder on the device afterwards.
        timeout_s: The device run's deadline; the device stops by itself after it.
    """

    max_images: int | None = None
    overwrite: bool = False
    cleanup: bool = False
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        set_field(self, "max_images", check_int("max_images", self.max_images, allow_none=True))
        set_field(self, "overwrite", check_bool("overwrite", self.overwrite))
        set_field(self, "cleanup", check_bool("cleanup", self.cleanup))
        set_field(
            self, "timeout_s", check_number("timeout_s", self.timeout_s, minimum=0, min_open=True, unit="seconds")
        )


def bench(
    bundle: str | Path,
    host: str | ssh.SSHTarget,
    *,
    data: str | Path | None = None,
    models: Sequence[str] | None = None,
    config: BenchOptions | None = None,
    timing: TimingOptions | None = None,
    progress: bool | None = None,
    **options: Any,
) -> DeviceBench:
    """Copy ``bundle`` (and test images) to the device ``host``, run it there, and compare with this machine.

    ``bench(bundle, "pi@raspberrypi", ssh_config="cfg", runs=30, cleanup=True)`` is
    ``bench(bundle, Device("pi@raspberrypi", "cfg"), config=BenchOptions(cleanup=True), timing=TimingOptions(runs=30))``
    (with :data:`DEVICE_TIMING`'s other values).

    Args:
        bundle: A bundle folder (:func:`edgelab.export_bundle`).
        host: An ssh_config alias, ``user@host[:port]``, or a :class:`Device` (which carries the
            ``ssh_config``, the device's ``python`` and the ``remote_dir`` there).
        data: Labelled test images (Intel layout or class folders): accuracy and top-1 agreement.
        models: Model names or files of the bundle (default: every model).
        config: A :class:`BenchOptions`: ``max_images``, ``overwrite`` (replace files changed on the
            device), ``cleanup`` (delete the per-bundle folder afterwards), ``timeout_s`` (the device
            run's deadline).
        timing: A :class:`edgelab.TimingOptions` for each model on the device (default: 10 untimed
            inferences, then at least 50 timed ones and 0.5 s, on the runtime's default threads).
        progress: Progress bars (None: where someone watches).
        **options: Fields of :class:`Device` (``ssh_config``, ``python``, ``connect_timeout_s``,
            ``remote_dir``), of :class:`BenchOptions` and of :class:`edgelab.TimingOptions`
            (``runs=30``, ``min_time_s=0.2``, ``num_threads=4``, ...), replacing ``host``'s,
            ``config``'s and ``timing``'s.

    Raises:
        ConfigError: an option is out of range or not one of those above (with a did-you-mean hint).
        HostKeyError, DeviceAuthError, DeviceUnreachableError: ssh could not get in (nothing ran there).
        DeviceRuntimeError: the device has no usable TFLite runtime, numpy or Pillow.
        DeviceDiskFullError, DeviceFileConflictError, DeviceTimeoutError, DeviceError: see the message.
    """
    started = time.perf_counter()
    connection, running, timing_options = split_options(options, Device, BenchOptions, TimingOptions)
    device = ssh.as_target(host, connection, Device)
    timed = TimingOptions.resolve(timing, timing_options, default=DEVICE_TIMING)
    run = BenchOptions.resolve(config, running)
    max_images, timeout_s, remote_dir = run.max_images, run.timeout_s, device.remote_dir
    folder = Path(bundle).expanduser()
    meta, labels = bundle_meta(folder)
    names = {m.get("name") for m in meta.get("models", [])} | {m.get("file") for m in meta.get("models", [])}
    if models:
        unknown = [m for m in models if m not in names]
        if unknown:
            raise ConfigError(f"Expected models of the bundle {sorted(n for n in names if n)}. Received: {unknown}")
    images = labelled_images(data, labels, max_images) if data is not None else None

    info = probe(device, remote_dir)  # the first contact: host key, login, Python, runtime
    problem = info.cannot_run_bundle()
    if problem:
        raise DeviceRuntimeError(f"{device.host} cannot run the bundle: {problem}")

    files = sync.local_files(folder)
    target = ssh.remote_path(remote_dir, "bench", bundle_folder_name(folder))
    with tempfile.TemporaryDirectory(prefix="edgelab-bench-") as tmp:
        if images is not None:
            pairs = []
            for path, label in zip(images.paths, images.labels):
                name = f"{sha256_file(path)[:20]}{path.suffix.lower()}"
                files[f"bench-data/{name}"] = path
                pairs.append([name, int(label)])
            manifest = Path(tmp, "manifest.json")
            manifest.write_text(json.dumps(pairs), encoding="utf-8")
            files["bench-data/manifest.json"] = manifest
        copied = sync.push(device, files, target, overwrite=run.overwrite, progress=progress, timeout_s=timeout_s)

    args = ["-B", "classify.py", "--bench", "--warmup", str(timed.warmup), "--runs", str(timed.runs)]
    args += ["--max-runs", str(timed.run_cap), "--min-time", str(timed.min_time_s)]
    args += ["--deadline", str(timeout_s)]
    if models:
        args += ["--models", ",".join(models)]
    if timed.num_threads:
        args += ["--threads", str(timed.num_threads)]
    if images is not None:
        args += ["--manifest", "bench-data/manifest.json"]
    # $PPID: the ssh session; the device side stops as soon as it is gone (Ctrl-C here), even before it started
    args_text = " ".join(shlex.quote(a) for a in args)
    remote = f'cd {shlex.quote(target)} && exec {shlex.quote(device.python)} {args_text} --parent-pid "$PPID"'

    try:
        done = ssh.run(device, remote, what="the benchmark", timeout_s=timeout_s + 60)
    except DeviceTimeoutError:
        raise DeviceTimeoutError(
            f"the benchmark on {device.host} took longer than {timeout_s:.0f} s (the device stops it by itself)"
        ) from None
    result = ssh.parse_result(done.stdout)
    if result is None:
        detail = ssh._last_line(done.stderr.decode("utf-8", "replace")) or f"exit code {done.returncode}"
        raise DeviceError(f"the benchmark on {device.host} gave no result: {detail}")
    if result.get("error"):
        raise DeviceError(f"the benchmark on {device.host} failed: {result['error']}")

    rows = []
    for row in result.get("rows", []):
        row = dict(row)
        if images is not None and row.get("status") == "ok":
            device_pred = np.asarray(row.pop("predictions"), np.int64)
            row["images"] = len(images)
            row["accuracy"] = float(np.mean(device_pred == images.labels))
            if not row.get("edgetpu"):
                host_pred, ties = _host_predictions(folder / row["file"], images)
                row["agreement"] = float(np.mean(device_pred == host_pred))
                row["near_ties"] = ties
                row["host_accuracy"] = float(np.mean(host_pred == images.labels))
            if row.get("unreadable"):
                warn_user_fmt(
                    PartialResultWarning, "%d test image(s) could not be read on the device", len(row["unreadable"])
                )
        row.pop("predictions", None)
        rows.append(row)
    cleaned = sync.remove(device, target) if run.cleanup else False
    return DeviceBench(
        info,
        tuple(rows),
        time.perf_counter() - started,
        copied.copied,
        copied.reused,
        target,
        cleaned,
        device.host,
    )


def bench_arrays(
    device: ssh.SSHTarget,
    models: dict[str, Path],
    class_names: Sequence[str],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    folder_name: str = "edgelab-comparison",
    **kwargs: Any,
) -> DeviceBench:
    """Bench model files on the device with in-memory test images (uint8 ``(N, H, W, 3)``, int labels).

    The files go into a bundle named ``folder_name`` and the images into class folders as PNG (lossless,
    so the device reads the very pixels this machine evaluates), then :func:`bench` runs as usual.
    """

    pixels = np.asarray(images)
    if pixels.ndim != 4 or pixels.dtype != np.uint8 or len(pixels) != len(labels):
        raise ConfigError(
            f"Expected uint8 images (N, H, W, 3) and N labels. Received: {pixels.dtype} {pixels.shape}, {len(labels)} labels"
        )
    with tempfile.TemporaryDirectory(prefix="edgelab-device-") as tmp:
        bundle = export_bundle(models, list(class_names), out_dir=Path(tmp, folder_name))
        data = Path(tmp, "data")
        for k, (image, label) in enumerate(zip(pixels, np.asarray(labels))):
            target = data / str(class_names[int(label)]) / f"{k:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
        return bench(bundle, device, data=data, **kwargs)


@dataclass(frozen=True)
class Device(ssh.SSHTarget):
    """One device reached over OpenSSH: ``host`` is an ssh_config alias or ``user@host[:port]``.

    Checked once, when made; :func:`bench`, :func:`deploy`, :func:`rollback`, :func:`deployed` and
    :func:`device_doctor` take it in place of a host name, or its fields as keyword arguments.

    Attributes:
        host: What the user gave.
        ssh_config: A client config file passed with ``ssh -F`` (None: ``~/.ssh/config``).
        python: The device's interpreter (a command on its PATH or a path).
        connect_timeout_s: Seconds to open the connection.
        remote_dir: The folder edgelab works in on the device (relative to the login's home unless absolute).
    """

    def bench_variants(
        self,
        models: dict[str, Path],
        class_names: Sequence[str],
        images: Any,
        labels: Any,
        *,
        remote_dir: str | None = None,
        progress: Any = None,
    ) -> dict[str, Any]:
        """For ``run_comparison(..., device=...)``: ``{"device": summary, "models": {name: columns}}``.

        The columns are ``device_p50_ms``, ``device_accuracy`` and ``device_agreement``; the files go to
        ``remote_dir`` on the device (None: the device's own ``remote_dir``).
        """
        where = {"remote_dir": remote_dir} if remote_dir is not None else {}
        result = bench_arrays(self, models, class_names, images, labels, progress=progress, **where)
        return {
            "device": {"host": self.host, **result.device.summary(), "wall_s": round(result.wall_s, 2)},
            "models": {
                str(row.get("model")): {
                    "device_p50_ms": row.get("p50_ms"),
                    "device_accuracy": row.get("accuracy"),
                    "device_agreement": row.get("agreement"),
                }
                for row in result.rows
                if row.get("status") == "ok"
            },
        }
