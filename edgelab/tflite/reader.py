"""Read a ``.tflite`` file's bytes, check they look like TFLite, and name it in errors (a leaf module).

Every edgelab entry point that reads a model goes through :func:`load_model_bytes`; the inspector,
the validator, the interpreter loader and the delegate check share these few functions. Plain
Python; LiteRT's flatbuffer schema (``ai_edge_litert.schema_py_generated``) only when it is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._files import not_a_regular_file
from ..errors import ConfigError, ModelFileError

__all__ = [
    "EDGETPU_CUSTOM_OP",
    "FILE_IDENTIFIER",
    "corrupt_model_error",
    "has_edgetpu_custom_op",
    "load_model_bytes",
    "model_subject",
    "schema_module",
    "text_of",
]

#: The flatbuffer identifier of a TFLite model, at bytes 4-8.
FILE_IDENTIFIER = b"TFL3"

#: The custom op ``edgetpu_compiler`` puts in a compiled model.
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"


def schema_module() -> Any:
    """LiteRT's generated flatbuffer schema (``ai_edge_litert.schema_py_generated``).

    Raises:
        ImportError: LiteRT is not installed (a device image with only tflite_runtime).
    """
    # deferred: LiteRT is optional on a device (tflite_runtime images lack it); callers decide
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def model_subject(path: str | None, size: int, capital: bool = False) -> str:
    """How errors name a model: ``model file '/x/m.tflite'`` or ``model bytes (1024 bytes)``."""
    text = f"model file '{path}'" if path is not None else f"model bytes ({size} bytes)"
    return text[0].upper() + text[1:] if capital else text


def _not_tflite_hint(data: bytes) -> str:
    """Name what a non-TFLite file probably is, for the error message."""
    if data[:4] == b"PK\x03\x04":
        return " It looks like a zip archive (a .keras model?): convert it to TFLite first."
    if data[:4] == b"\x89HDF":
        return " It looks like an HDF5 file (a Keras .h5 model?): convert it to TFLite first."
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:512]):
        return " It looks like a text file."
    return ""


def load_model_bytes(
    source: str | os.PathLike | bytes | bytearray | memoryview, purpose: str | None = None
) -> tuple[bytes, str | None]:
    """Bytes of a model given as a path or as content, checked to look like TFLite.

    The one check every edgelab entry point runs before it reads a ``.tflite``.

    Args:
        source: Path to a ``.tflite`` file, or the model's bytes.
        purpose: What the caller wants the model for, worded to follow "Expected a TFLite model"
            in error messages (``"to compile"``, ``"for the bundle"``).

    Returns:
        ``(data, path)``; ``path`` is None when the model came as bytes.

    Raises:
        ModelFileError: missing, a directory, unreadable, empty, too small or without the
            ``TFL3`` identifier; the message names the file and what was wrong.
        ConfigError: ``source`` is neither a path nor bytes.
    """
    expected = f"Expected a TFLite model (.tflite){' ' + purpose if purpose else ''}. Received: "
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path = bytes(source), None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        where = model_subject(path, 0)
        p = Path(path)
        kind = not_a_regular_file(path)
        if kind is not None and kind != "a directory":  # never read: a FIFO blocks, /dev/zero never ends
            raise ModelFileError(f"{expected}{where}, which is {kind}, not a regular file.")
        if not p.exists():
            raise ModelFileError(f"{expected}{where}, which does not exist (file not found).")
        if p.is_dir():
            raise ModelFileError(f"{expected}{where}, which is a directory (a SavedModel? convert it to TFLite first).")
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{expected}{where}, which cannot be read: {exc.strerror or exc}.") from None
    else:
        raise ConfigError(
            f"Expected a .tflite path or the model's bytes{' ' + purpose if purpose else ''}. "
            f"Received: source of type {type(source).__name__}"
        )
    where = model_subject(path, len(data))
    if not data:
        raise ModelFileError(f"{expected}{where}, which is empty (0 bytes): no TFLite identifier b'TFL3'.")
    if len(data) < 8:
        raise ModelFileError(
            f"{expected}{where}, which is too small to be a TFLite model (it needs the identifier "
            "b'TFL3' at bytes 4-8)."
        )
    if data[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(
            f"{expected}{where}, which is not a TFLite model: expected the identifier b'TFL3' at "
            f"bytes 4-8, found {data[4:8]!r}.{_not_tflite_hint(data)}"
        )
    return data, path


def corrupt_model_error(path: str | None, data: bytes, exc: Exception) -> ModelFileError:
    """The error for a flatbuffer the schema reader could not parse (``exc`` says why)."""
    detail = str(exc) or type(exc).__name__
    return ModelFileError(
        f"{model_subject(path, len(data), capital=True)} is corrupt or truncated: the TFLite flatbuffer "
        f"could not be parsed ({detail})."
    )


def has_edgetpu_custom_op(model: str | os.PathLike | bytes) -> bool:
    """True when a ``.tflite`` (path or bytes) was compiled by ``edgetpu_compiler``.

    Reads only the operator-code table (fast, unlike :func:`inspect_model`); without LiteRT's
    flatbuffer schema, searches the bytes for ``edgetpu-custom-op``.

    Raises:
        ModelFileError: the input is unreadable or not a TFLite flatbuffer.
    """
    data, path = load_model_bytes(model)
    try:
        schema = schema_module()
    except ImportError:  # a device without the schema: the op name is stored as plain text
        return EDGETPU_CUSTOM_OP.encode() in data
    try:
        flat = schema.Model.GetRootAsModel(data, 0)
        codes = {text_of(flat.OperatorCodes(i).CustomCode()) for i in range(flat.OperatorCodesLength())}
    except Exception as exc:  # a truncated flatbuffer raises assorted struct/index errors
        raise corrupt_model_error(path, data, exc) from exc
    return EDGETPU_CUSTOM_OP in codes


def text_of(value: Any) -> str:
    """A flatbuffer string field as text (bytes decoded, None as "")."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
