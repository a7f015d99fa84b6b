"""Decoding one image file to uint8 RGB at a given size, and why a file cannot be used.

Pillow does the work; every mode with a fixed range becomes 8-bit RGB (unsigned 16-bit scaled,
alpha composited on white, EXIF rotation applied); signed 16-bit, 32-bit integer and float pixels are
refused (:class:`PixelFormatError`), and devices, FIFOs, sockets and link loops are never opened. Before any pixel is decoded, the image's width x height is checked against
a decoded-pixels budget (:func:`max_pixels`: 50 megapixels unless ``EDGELAB_MAX_PIXELS`` or a
``max_pixels`` argument says otherwise), so a small file that would decode to gigabytes is refused.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._files import not_a_regular_file
from .._log import tqdm
from ..errors import (  # re-exported: every error class lives in edgelab.errors
    ConfigError,
    ImageTooLargeError,
    NotRegularFileError,
    PixelFormatError,
    check_int,
)
from ..preprocess import parse_image_size
from .skips import SkippedFile, SkipReason

__all__ = ["DEFAULT_MAX_PIXELS", "ImageTooLargeError", "load_image", "max_pixels"]

#: Default decoded-pixels budget per image (width x height): 50 megapixels, 150 MB as RGB. Phone
#: and DSLR photos fit; a 12000x12000 "pixel bomb" (a 280 KB 16-bit PNG) does not.
DEFAULT_MAX_PIXELS = 50_000_000

#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS` (0 = no limit beyond Pillow's own).
MAX_PIXELS_ENV = "EDGELAB_MAX_PIXELS"

# Decoding threads: Pillow releases the GIL while it decodes and resizes, so threads use every core.
WORKERS = max(1, min(4, os.cpu_count() or 1))

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_T = TypeVar("_T")
_R = TypeVar("_R")


# edgelab enforces its own decoded-pixels budget (smaller than Pillow's warning threshold by
# default) and reports larger images as "too large"; Pillow's warning would only repeat that on
# stderr, from a decoding thread.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Raw (file) modes of Pillow's mode "I" that are unsigned 16-bit: 16-bit PGM/PPM, some TIFFs.
_UNSIGNED_16_RAW = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def _check_file_kind(path: str | os.PathLike) -> None:
    kind = not_a_regular_file(path)
    if kind is not None:
        raise NotRegularFileError(f"{path} is {kind}, not a regular file")  # classify_error splits here


def _check_pixel_format(im: Image.Image, path: object) -> None:
    """Refuse pixels that 8-bit RGB cannot show faithfully (before decoding them).

    Unsigned 16-bit grayscale is scaled from [0, 65535]; signed 16-bit, 32-bit integer and float
    pixels have no fixed range, so any mapping to 0..255 would guess (an int32 TIFF of small
    values would decode to near-black).
    """
    mode = im.mode
    if mode == "F":
        what = "32-bit floating-point pixels (mode F)"
    elif mode.startswith("I;16") and mode.rstrip("BLN").endswith("S"):
        what = f"signed 16-bit pixels (mode {mode})"
    elif mode == "I":
        tiles = getattr(im, "tile", None) or []  # ImageFile only; set until the pixels are loaded
        raw = {t.args[0] if isinstance(t.args, tuple) else t.args for t in tiles}
        if raw and raw <= _UNSIGNED_16_RAW:
            return
        what = f"32-bit integer pixels (mode I, stored as {', '.join(sorted(map(str, raw))) or 'unknown'})"
    else:
        return
    raise PixelFormatError(
        f"{path} has {what}, which have no fixed range to map to 8-bit RGB; convert it to 8- or unsigned 16-bit first"
    )


def max_pixels(limit: int | None = None) -> int:
    """The decoded-pixels budget per image: ``limit`` if given, else ``EDGELAB_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`. 0 means no limit (Pillow still refuses above ~179 megapixels).

    Raises:
        ConfigError: a negative or non-integer limit (argument or environment variable).
    """
    source = "max_pixels"
    if limit is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        source = MAX_PIXELS_ENV
        try:
            limit = int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"Expected {MAX_PIXELS_ENV} to be an int >= 0. Received: {text!r}") from None
    return check_int(source, limit, minimum=0)


def _check_budget(im: Image.Image, path: object, limit: int) -> None:
    w, h = im.size
    if limit and w * h > limit:
        raise ImageTooLargeError(
            f"Expected an image of at most {limit:,} pixels (width x height; raise the limit with "
            f"{MAX_PIXELS_ENV} or max_pixels=). Received: {w}x{h} = {w * h:,} pixels in {path}"
        )


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int) grayscale -> 8-bit, [0, 65535] -> [0, 255] rounded, in integer blocks
    (a float64 copy of a large image would take 8 bytes per pixel)."""
    values = np.asarray(im)
    out = np.empty(values.shape, np.uint8)
    rows = max(1, (1 << 22) // max(1, values.shape[1] if values.ndim > 1 else 1))
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows]
        if block.dtype.kind == "i":
            block = np.clip(block, 0, 65535)
        # round(v / 257) for integers, without floats: no ties occur since 257 is odd.
        out[start : start + rows] = (block.astype(np.uint32) + 128) // 257
    return Image.fromarray(out, mode="L")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB.

    Transparent pixels are composited on white (what an image viewer shows), not left as the
    arbitrary colour stored under alpha 0. 16-bit (and 32-bit integer) grayscale is scaled from
    [0, 65535] to [0, 255]; Pillow's own conversion would clip everything above 255 to white.
    """
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_l(im).convert("RGB")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).round().astype(np.uint8), mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _apply_exif_orientation(im: Image.Image) -> Image.Image:
    # Phone photos store rotation in EXIF; ignoring it trains on sideways pictures.
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is not worth losing the image over
        return im
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(im)
    return im


def load_image(
    path: str | os.PathLike,
    image_size: int | Sequence[int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode one image file to an RGB uint8 array (H, W, 3).

    Handles JPEG, PNG, BMP, GIF (first frame), WebP and TIFF. Colour: grayscale, palette, CMYK and
    16-bit images become 8-bit RGB (16-bit values scaled from [0, 65535], not clipped). Alpha:
    transparent pixels are composited on white. EXIF rotation is applied.

    Args:
        path: The image file.
        image_size: ``(height, width)`` or one int to resize to. The image is *stretched* to that
            size (no crop, no padding: a non-square image changes its aspect ratio), with Pillow's
            bilinear filter, which antialiases when shrinking. None keeps the file's size.
        max_pixels: Decoded-pixels budget (width x height) for this file; None: :func:`max_pixels`.

    Raises:
        ImageTooLargeError: the image has more pixels than the budget (checked before decoding).
        OSError: (including ``PIL.UnidentifiedImageError``) when the file cannot be read or decoded.
    """
    size = None if image_size is None else parse_image_size(image_size)
    limit = resolve(max_pixels)
    _check_file_kind(path)
    with Image.open(path) as im:
        if size is not None and im.format == "JPEG":
            # DCT-domain downscaling: a large JPEG decodes several times faster, never below size.
            side = max(size)
            im.draft(im.mode, (side, side))
        _check_budget(im, path, limit)
        _check_pixel_format(im, path)
        im.load()
        rgb = _to_rgb(_apply_exif_orientation(im))
        if size is not None and rgb.size != (size[1], size[0]):
            rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).copy()


# max_pixels() is shadowed by load_image's argument name; keep a handle on the function.
resolve = max_pixels


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for an exception raised while reading an image."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, (ImageTooLargeError, Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return SkipReason.TOO_LARGE, detail.split(" Received: ")[-1]
    if isinstance(exc, NotRegularFileError):
        return SkipReason.NOT_REGULAR, detail.rpartition(" is ")[2].removesuffix(", not a regular file")
    if isinstance(exc, PixelFormatError):
        return SkipReason.PIXEL_FORMAT, detail.partition(" has ")[2].partition(", which")[0]
    if isinstance(exc, UnidentifiedImageError):
        return SkipReason.NOT_IMAGE, "Pillow cannot identify the file format"
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return SkipReason.UNREADABLE, detail
    lowered = detail.lower()
    if "truncat" in lowered or "broken data stream" in lowered:
        return SkipReason.TRUNCATED, detail
    return SkipReason.CORRUPT, detail


def check_file(path: Path, verify: bool, max_pixels: int | None = None) -> SkippedFile | None:
    """None when ``path`` reads as an image, else why not. ``verify`` decodes every pixel; the
    size budget is checked from the header either way."""
    try:
        _check_file_kind(path)
        if path.stat().st_size == 0:
            return SkippedFile(path, SkipReason.ZERO_BYTE, "0 bytes")
        limit = resolve(max_pixels)
        with Image.open(path) as im:
            _check_budget(im, path, limit)
            _check_pixel_format(im, path)
            if verify:
                im.load()
                _to_rgb(im)
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        reason, detail = classify_error(exc)
        return SkippedFile(path, reason, detail)
    return None


def zero_byte(path: Path) -> SkippedFile | None:
    """Why an empty regular file is left out (Pillow would call it "not an image"); else None."""
    try:
        if not_a_regular_file(path) is None and os.stat(path).st_size == 0:
            return SkippedFile(path, SkipReason.ZERO_BYTE, "0 bytes")
    except OSError:
        pass  # decoding says why
    return None


def try_load(
    path: Path, size: tuple[int, int], max_pixels: int | None = None
) -> tuple[np.ndarray | None, SkippedFile | None]:
    """``(pixels, None)`` or ``(None, why)`` for one file."""
    try:
        return load_image(path, size, max_pixels=max_pixels), None
    except Exception as exc:
        reason, detail = classify_error(exc)
        return None, SkippedFile(path, reason, detail)


def parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], desc: str, progress: bool | None) -> list[_R]:
    """``[fn(x) for x in items]`` on :data:`WORKERS` threads, in order, with a progress bar
    (images per second and time left)."""
    out: list[_R] = []
    if not items:
        return out
    with tqdm(total=len(items), desc=desc, unit="img", progress=progress) as bar:
        for result in threaded(fn, items):
            out.append(result)
            bar.update()
    return out


def threaded(fn: Callable[[_T], _R], items: Sequence[_T]) -> Iterator[_R]:
    """``fn`` over ``items`` on :data:`WORKERS` threads, in order. On an error or Ctrl-C the work
    not yet started is cancelled, so an interrupt stops within one image per thread."""
    pool = ThreadPoolExecutor(WORKERS)
    try:
        yield from pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
