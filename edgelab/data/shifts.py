"""Camera and weather shifts for the synthetic scenes: what a deployed camera meets after training.

Each shift turns a finished uint8 scene into the same scene under another condition, drawing its
randomness from the image's own stream (so the shifted image is the unshifted one, changed):

- ``night``: a dark exposure (8-25% of the light) with a cold cast and the sensor noise that comes with it;
- ``fog``: a veil of bright haze over half to three quarters of the contrast, thicker at the top;
- ``blur``: a defocus blur 2-3.5% of the image side wide;
- ``snow``: falling flakes (bright dots) over a flatter, brighter scene;
- ``channel_swap``: red and blue exchanged (a camera that delivers BGR);
- ``noise``: strong Gaussian sensor noise (standard deviation 18-30 levels);
- ``jpeg``: JPEG compression at quality 4-10.

Used by :func:`edgelab.data.scenes.generate_scenes`, :func:`edgelab.synthetic_dataset` and
``edgelab data make-scenes --shift``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from ..errors import ConfigError, did_you_mean

#: the shifts, in the order notebooks and tables show them
SHIFTS: tuple[str, ...] = ("night", "fog", "blur", "snow", "channel_swap", "noise", "jpeg")


def check_shift(shift: str | None) -> str | None:
    """``shift`` if it names a shift (or is None).

    Raises:
        ConfigError: an unknown name.
    """
    if shift is None:
        return None
    if not isinstance(shift, str) or shift not in SHIFTS:
        raise ConfigError(
            f"Expected shift to be one of {list(SHIFTS)} or None. Received: shift={shift!r}."
            + did_you_mean(str(shift), SHIFTS)
        )
    return shift


def apply_shift(image: np.ndarray, shift: str | None, rng: np.random.Generator) -> np.ndarray:
    """The uint8 (H, W, 3) ``image`` under ``shift`` (None: unchanged)."""
    shift = check_shift(shift)
    if shift is None:
        return image
    h, w = image.shape[:2]
    img = image.astype(np.float32)
    if shift == "channel_swap":
        return np.ascontiguousarray(image[..., ::-1])
    if shift == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(4, 11)))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB"), np.uint8).copy()
    if shift == "night":
        gain = rng.uniform(0.08, 0.25)
        cast = np.array([0.8, 0.9, 1.15], np.float32) * np.float32(rng.uniform(0.9, 1.1))
        img = img * np.float32(gain) * cast + rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(
            rng.uniform(2.0, 5.0)
        )
    elif shift == "fog":
        depth = np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None, None]  # thicker towards the sky
        veil = np.float32(rng.uniform(0.5, 0.75)) * depth
        colour = np.float32(rng.uniform(190, 225)) + rng.uniform(-6, 6, 3).astype(np.float32)
        img = img * (1 - veil) + colour * veil
    elif shift == "blur":
        radius = rng.uniform(0.02, 0.035) * min(h, w)
        blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius))
        return np.asarray(blurred, np.uint8).copy()
    elif shift == "snow":
        img = img * np.float32(0.75) + np.float32(rng.uniform(45, 70))  # flat white light
        count = int(rng.uniform(0.02, 0.05) * h * w)
        ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
        big = rng.random(count) < 0.3  # some flakes nearer the camera: 2x2
        for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1)):
            keep = big if (dy or dx) else np.ones(count, bool)
            img[np.minimum(ys[keep] + dy, h - 1), np.minimum(xs[keep] + dx, w - 1)] = rng.uniform(225, 255)
    elif shift == "noise":
        img = img + rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(rng.uniform(18, 30))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
