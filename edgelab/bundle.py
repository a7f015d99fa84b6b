"""Deploy bundles: a folder with the model(s), labels and a standalone classify script.

A bundle needs nothing from edgelab on the device: ``classify.py`` uses numpy, Pillow and a TFLite
runtime (LiteRT, tflite_runtime or Coral's pycoral), and reads ``bundle.json`` for the input size,
the normalisation and the model files. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from ._config import Options, check_bool, set_field
from ._files import read_labels, sha256_file
from ._log import logger
from .drift.reference import FALSE_ALARM_RATE, model_reference
from .errors import ConfigError, ModelFileError
from .precision import Precision
from .preprocess import INPUT_MEAN, INPUT_STD, parse_image_size
from .tflite.inspection import TensorInfo, has_edgetpu_custom_op, inspect_model, load_model_bytes

BUNDLE_FORMAT = "edgelab-bundle"
BUNDLE_FORMAT_VERSION = 1
REFERENCE_FILE = "reference.json"
MANIFEST_FILE = "manifest.json"

# File-name tokens -> precision, most specific first ("qat_int8" before "int8").
_PRECISION_TOKENS = (
    ("edgetpu", Precision.EDGETPU),
    ("qat_int8", Precision.QAT_INT8),
    ("qat", Precision.QAT_INT8),
    ("int16x8", Precision.INT16X8),
    ("int8", Precision.INT8),
    ("dynamic", Precision.DYNAMIC),
    ("fp16", Precision.FP16),
    ("float16", Precision.FP16),
    ("fp32", Precision.FP32),
    ("float32", Precision.FP32),
    ("float", Precision.FP32),
)


def precision_from_name(name: str) -> Precision | None:
    """Guess a precision from a file name (``scenes_int8_edgetpu.tflite`` -> edgetpu), or None."""
    stem = Path(name).name.lower().removesuffix(".tflite")
    tokens = re.split(r"[^a-z0-9]+", stem)
    joined = "_" + "_".join(tokens) + "_"
    for token, precision in _PRECISION_TOKENS:
        if f"_{token}_" in joined:
            return precision
    return None


def _io_dict(tensor: TensorInfo) -> dict[str, Any]:
    per_tensor = tensor.quantized and not tensor.per_channel  # classify.py applies one scale
    return {
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "scale": tensor.scale if per_tensor else None,
        "zero_point": tensor.zero_point if per_tensor else None,
    }


def read_model_io(path: Path) -> dict[str, Any] | None:
    """Input/output shape, dtype and quantization of a .tflite, without TensorFlow.

    Returns None when LiteRT's flatbuffer schema is not installed.

    Raises:
        ModelFileError: the file cannot be read or parsed as TFLite.
    """
    try:
        info = inspect_model(path)
    except ImportError:
        return None
    if not info.inputs or not info.outputs:
        raise ModelFileError(
            f"Expected a TFLite model with an input and an output for the bundle. Received: "
            f"model file '{path}' with {len(info.inputs)} inputs and {len(info.outputs)} outputs."
        )
    return {"input": _io_dict(info.inputs[0]), "output": _io_dict(info.outputs[0])}


def _normalise_models(models: Mapping[str, Any] | Sequence[Any]) -> list[tuple[str, Path]]:
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    if isinstance(models, Mapping):
        items = [(str(name), Path(p)) for name, p in models.items()]
    else:
        items = [(Path(p).stem, Path(p)) for p in models]
    if not items:
        raise ConfigError("Expected at least one model for the bundle. Received: models=[]")
    files = [p.name for _, p in items]
    dupes = sorted({f for f in files if files.count(f) > 1})
    if dupes:
        raise ConfigError(f"Expected model files with distinct names. Received duplicates: {dupes}")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"Expected distinct model names. Received: {names}")
    for _, path in items:
        load_model_bytes(path, purpose="for the bundle")
    return items


def _model_entry(name: str, path: Path, num_labels: int) -> dict[str, Any]:
    io = read_model_io(path)
    precision = precision_from_name(path.name)
    edgetpu = has_edgetpu_custom_op(path)
    if edgetpu:
        precision = Precision.EDGETPU
    entry: dict[str, Any] = {
        "name": name,
        "file": path.name,
        "precision": precision.value if precision else None,
        "edgetpu": edgetpu,
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    if io is not None:
        entry["input"], entry["output"] = io["input"], io["output"]
        out_shape = io["output"]["shape"]
        if out_shape and out_shape[-1] != num_labels:
            raise ConfigError(
                f"Expected {path.name} to output one score per label ({num_labels} labels). "
                f"Received an output of shape {out_shape}"
            )
    return entry


def _input_size(entries: list[dict[str, Any]], image_size: tuple[int, int] | None) -> list[int] | None:
    sizes = {tuple(e["input"]["shape"][1:3]) for e in entries if len(e.get("input", {}).get("shape", [])) == 4}
    if image_size is not None:
        mismatched = sorted(
            e["file"]
            for e in entries
            if len(e.get("input", {}).get("shape", [])) == 4 and tuple(e["input"]["shape"][1:3]) != image_size
        )
        if mismatched:
            raise ConfigError(
                f"Expected image_size to match the models' input (height, width). Received: "
                f"image_size={image_size}, but {mismatched} take {sorted(sizes)}"
            )
        return list(image_size)
    if len(sizes) == 1:
        return list(next(iter(sizes)))
    if sizes:
        logger.info("Bundle models take different input sizes %s; classify.py reads each model's", sorted(sizes))
    return None


@dataclass(frozen=True)
class BundleConfig(Options):
    """How :func:`export_bundle` writes a bundle; checked once, when made.

    Args:
        image_size: (height, width) of the model input; default: read from the model file(s).
        overwrite: Write into a non-empty folder, replacing the bundle's files (other files stay).
        version: The bundle's version (default: the first 12 hex digits of a hash of the model files,
            the labels and the reference, so the same content always has the same version).
        metrics: Numbers to record in the manifest (for instance the test accuracy at export).
        false_alarm_rate: The drift check's false-alarm rate per window (default 0.01).
    """

    image_size: int | tuple[int, int] | None = None
    overwrite: bool = False
    version: str | None = None
    metrics: Mapping[str, Any] | None = None
    false_alarm_rate: float | None = None

    def __post_init__(self) -> None:
        if self.image_size is not None:
            set_field(self, "image_size", parse_image_size(self.image_size))
        set_field(self, "overwrite", check_bool("overwrite", self.overwrite))
        version = self.version
        if version is not None and (
            not isinstance(version, str) or not re.fullmatch(r"[A-Za-z0-9._+-]{1,64}", version)
        ):
            raise ConfigError(f"Expected version to be 1-64 letters, digits or . _ + -. Received: version={version!r}")
        if self.metrics is not None:
            if not isinstance(self.metrics, Mapping):
                raise ConfigError(f"Expected metrics to be a mapping of names to numbers. Received: {self.metrics!r}")
            set_field(self, "metrics", dict(self.metrics))


def export_bundle(
    models: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike],
    labels: Sequence[str] | str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    reference: Any = None,
    config: BundleConfig | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Path:
    """Write a deploy bundle: model file(s), ``labels.txt``, ``bundle.json``, ``manifest.json``, the
    device scripts (``classify.py``, ``drift_check.py``, ...) and ``README.md``.

    Args:
        models: ``{name: path}`` (e.g. ``{"int8": ..., "edgetpu": ...}``) or a list of paths (names
            are the file stems). The first model is the bundle's default.
        labels: class names in output order, or a labels.txt path.
        out_dir: the bundle folder (created).
        reference: data to summarise in ``reference.json`` for the drift check (``classify.py
            --drift``, ``edgelab drift``): a :class:`edgelab.Dataset` (its validation and test images),
            a folder of images, or uint8 pixels (N, H, W, 3). The statistics of the inputs and of the
            default CPU model's outputs take a few kilobytes. None: no reference.
        config: a :class:`BundleConfig`: ``image_size``, ``overwrite``, ``version``, ``metrics``,
            ``false_alarm_rate``.
        progress: show progress bars (None: on unless EDGELAB_PROGRESS=0).
        **options: fields of :class:`BundleConfig` (``overwrite=True``, ``version="1.2"``, ...),
            replacing ``config``'s.

    Returns:
        The bundle folder.

    Raises:
        ConfigError: bad labels, image size or version, a label count that differs from the model
            output, or a non-empty ``out_dir`` without ``overwrite=True``.
        ModelFileError: a model is missing or not a TFLite file.
    """
    cfg = BundleConfig.resolve(config, options)
    image_size, overwrite, version, metrics = cfg.image_size, cfg.overwrite, cfg.version, cfg.metrics
    items = _normalise_models(models)
    names = read_labels(labels)
    size = None if image_size is None else parse_image_size(image_size)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Expected out_dir to be a folder. Received a file: out_dir={str(out)!r}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"Expected an empty or new folder for the bundle. Received: out_dir={str(out)!r}, which is "
            "not empty (pass overwrite=True, or --overwrite, to replace the bundle in it)"
        )

    entries = [_model_entry(name, path, len(names)) for name, path in items]
    ref_json, metrics_all = _reference(reference, items, entries, names, cfg.false_alarm_rate, progress)
    metrics_all.update(dict(metrics or {}))
    meta = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "version": version or _content_version(entries, names, ref_json),
        "edgelab_version": __version__,
        "labels": "labels.txt",
        "num_classes": len(names),
        "default_model": entries[0]["name"],
        "input": {
            "size": _input_size(entries, size),  # [height, width]
            "layout": "NHWC",
            "color": "RGB",
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
            "normalize": "(pixel - mean) / std, then quantize with the model's input scale/zero point",
        },
        "models": entries,
        "reference": REFERENCE_FILE if ref_json is not None else None,
        "manifest": MANIFEST_FILE,
    }

    out.mkdir(parents=True, exist_ok=True)
    stale = _previous_model_files(out) - {e["file"] for e in entries}
    # Build in a temporary folder beside the target, then move files in: a failed export never
    # leaves a half-written bundle.
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=out) as tmp:
        staging = Path(tmp)
        for (_, path), entry in zip(items, entries):
            shutil.copyfile(path, staging / entry["file"])
        (staging / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        template = resources.files("edgelab") / "bundle_template"
        for item in template.iterdir():  # every device-side file of the template
            if item.is_file() and item.name != "README.md" and not item.name.endswith((".pyc", ".pyo")):
                (staging / item.name).write_bytes(item.read_bytes())
        (staging / "README.md").write_text(
            (template / "README.md").read_text(encoding="utf-8") + _bundle_section(meta), encoding="utf-8"
        )
        if ref_json is not None:
            (staging / REFERENCE_FILE).write_text(json.dumps(ref_json, separators=(",", ":")) + "\n", encoding="utf-8")
        (staging / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        manifest = _manifest(staging, meta, metrics_all)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for item in staging.iterdir():
            os.replace(item, out / item.name)
    if ref_json is None:
        stale.add(REFERENCE_FILE)
    for name in stale:
        (out / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # a file system without modes: the script still runs with python
        (out / "classify.py").chmod(0o755)
    logger.info("Wrote bundle %s with %d model(s)", out, len(entries))
    return out


def _reference(
    data: Any,
    items: list[tuple[str, Path]],
    entries: list[dict[str, Any]],
    names: Sequence[str],
    false_alarm_rate: float | None,
    progress: bool | None,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The drift reference of ``data`` (None without data) and the metrics measured on it."""
    if data is None:
        return None, {}

    cpu = [(path, entry) for (_, path), entry in zip(items, entries) if not entry["edgetpu"]]
    if not cpu:
        raise ConfigError(
            "Expected a CPU model (not compiled for the Edge TPU) in the bundle to summarise the reference's "
            f"model outputs. Received only Edge TPU models: {[e['file'] for e in entries]}"
        )
    path, entry = cpu[0]
    reference, metrics = model_reference(
        path, data, names, false_alarm_rate=false_alarm_rate or FALSE_ALARM_RATE, progress=progress
    )
    reference["model"] = entry["file"]
    return reference, metrics


def _content_version(entries: list[dict[str, Any]], names: Sequence[str], reference: dict[str, Any] | None) -> str:

    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry['name']}:{entry['sha256']}\n".encode())
    digest.update("\n".join(names).encode())
    if reference is not None:
        digest.update(json.dumps(reference, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _manifest(staging: Path, meta: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Every file of the bundle with its hash and size, the metrics at export, the reference."""

    files = {
        p.name: {"sha256": sha256_file(p), "size_bytes": p.stat().st_size}
        for p in sorted(staging.iterdir())
        if p.is_file() and p.name != MANIFEST_FILE
    }
    return {
        "format": "edgelab-bundle-manifest",
        "version": meta["version"],
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "edgelab_version": __version__,
        "default_model": meta["default_model"],
        "files": files,
        "metrics": metrics,
        "reference": meta["reference"],
    }


def _previous_model_files(out: Path) -> set[str]:
    """Model files an earlier bundle in ``out`` listed (replaced or removed on overwrite)."""
    try:
        old = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
        return {str(m["file"]) for m in old.get("models", []) if "/" not in str(m.get("file", "/"))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def _bundle_section(meta: dict[str, Any]) -> str:
    size = meta["input"]["size"]
    lines = [
        "",
        "## This bundle",
        "",
        f"- {meta['num_classes']} classes (`labels.txt`); input "
        + (f"{size[0]}x{size[1]} RGB" if size else "size per model (see bundle.json)"),
        f"- default model: `{meta['default_model']}`",
        "",
        "| name | file | precision | Edge TPU | size |",
        "|---|---|---|---|---|",
    ]
    for m in meta["models"]:
        lines.append(
            f"| {m['name']} | `{m['file']}` | {m['precision'] or '?'} | "
            f"{'yes' if m['edgetpu'] else 'no'} | {m['size_bytes'] / 1024:.0f} KiB |"
        )
    return "\n".join(lines) + "\n"
