"""Drawing primitives of the synthetic scenes (:mod:`edgelab.data.scenes`): sky, noise, ridges,
water, canopies, facades, roads, on float32 canvases. The class painters in ``scenes`` compose them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------------------------
# Drawing helpers. Canvases are float32 (3, H, W) in [0, 255]: channels first, because numpy
# broadcasts a (H, W) mask over a leading axis of 3 far faster than over a trailing one. Colours
# are (3, 1, 1). y is (H, 1) and x is (1, W), pixel centres in [0, 1], so every shape is drawn in
# relative coordinates and any image size works.
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def unit_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    y.flags.writeable = False
    x.flags.writeable = False
    return y, x


def rgb(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(3, 1, 1)


def jitter(rng: np.random.Generator, base, gain: float = 0.12, spread: float = 10.0) -> np.ndarray:
    """A colour near ``base``: an overall brightness change plus a small per-channel shift."""
    col = np.asarray(base, np.float32).reshape(3, 1, 1) * np.float32(rng.uniform(1 - gain, 1 + gain))
    col = col + rng.normal(0.0, spread, (3, 1, 1)).astype(np.float32)
    return np.clip(col, 0, 255)


def pick(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


@lru_cache(maxsize=256)
def _lerp_matrix(n: int, g: int) -> np.ndarray:
    """(n, g) matrix that linearly interpolates g grid values onto n pixel centres."""
    pos = (np.arange(n, dtype=np.float64) + 0.5) / n * (g - 1)
    lo = np.minimum(pos.astype(np.int64), g - 2)
    frac = pos - lo
    m = np.zeros((n, g), np.float32)
    m[np.arange(n), lo] = 1 - frac
    m[np.arange(n), lo + 1] = frac
    m.flags.writeable = False
    return m


def value_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[float, float], octaves: int = 2) -> np.ndarray:
    """Smooth value noise (H, W) in about [-1, 1]: random grids upscaled bilinearly, over octaves.

    The upscaling is two small matrix products, much cheaper than an image resize per octave.
    """
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        gy = max(2, int(np.round(cells[0] * 2**octave)) + 1)
        gx = max(2, int(np.round(cells[1] * 2**octave)) + 1)
        grid = rng.random((gy, gx), dtype=np.float32) * np.float32(2 * amp) - np.float32(amp)
        out += _lerp_matrix(h, gy) @ grid @ _lerp_matrix(w, gx).T
        total += amp
        amp *= 0.5
    out *= np.float32(1.7 / total)  # stretch back towards [-1, 1] after averaging
    return out


def noise1d(rng: np.random.Generator, x: np.ndarray, cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth 1D noise over x (shape (1, W)) in about [-1, 1]."""
    out = np.zeros_like(x)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave + 1
        out += amp * np.interp(x, np.linspace(0, 1, n), rng.uniform(-1, 1, n)).astype(np.float32)
        total += amp
        amp *= 0.5
    return out / np.float32(total)


def put(img: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    """Paint ``color`` ((3, 1, 1) or (3, H, W)) where ``mask`` (broadcastable to (H, W)) is true."""
    img[...] = np.where(mask, color, img)


def _blend(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend ``color`` over ``img`` with ``alpha`` (H, W) in [0, 1]."""
    img += (color - img) * alpha


def paint_sky(img, rng, y, x, horizon: float, overcast: float = 0.3) -> np.ndarray:
    """Fill the canvas with a sky whose gradient ends at ``horizon``; returns the horizon colour."""
    h, w = img.shape[1:]
    p = rng.random()
    if p < overcast:
        top, bottom = jitter(rng, (150, 158, 170), 0.15), jitter(rng, (212, 214, 218), 0.08)
    elif p < 0.9:
        top, bottom = jitter(rng, (62, 118, 196), 0.15), jitter(rng, (172, 202, 232), 0.08)
    else:  # low sun
        top, bottom = jitter(rng, (84, 100, 160), 0.15), jitter(rng, (236, 186, 140), 0.08)
    t = np.clip(y / max(horizon, 0.05), 0, 1)
    img[...] = top + (bottom - top) * t
    if rng.random() < 0.6:  # clouds
        n = value_noise(rng, h, w, (2.5, 4.0), 3)
        alpha = np.clip((n - rng.uniform(-0.3, 0.4)) * 1.5, 0, 0.9)
        _blend(img, alpha, jitter(rng, (238, 238, 240), 0.06, 4))
    return bottom


def _ridge(rng, x, base: float, height: float, peaks: int, rough: float) -> tuple[np.ndarray, np.ndarray]:
    """Top edge (1, W) of a mountain range: the max of triangular peaks, plus fractal roughness.

    Returns the edge and its smooth part (used for shading whole faces).
    """
    px = rng.uniform(-0.15, 1.15, (peaks, 1)).astype(np.float32)
    ph = rng.uniform(0.45, 1.0, (peaks, 1)).astype(np.float32) * np.float32(height)
    slope = rng.uniform(0.9, 2.6, (peaks, 1)).astype(np.float32) * np.float32(height)
    smooth = np.max(ph - np.abs(x - px) * slope, axis=0, keepdims=True)
    rough_part = np.float32(rough * height) * noise1d(rng, x, 6, 4)
    return base - np.maximum(smooth + rough_part, 0.0), base - smooth


def paint_mountains(img, rng, y, x, base, height, rock, snow: float, haze_col, haze: float) -> np.ndarray:
    """Draw one ridged mountain range; ``snow`` is the snow-covered fraction of its height.

    Returns the range's mask (H, W).
    """
    h, w = img.shape[1:]
    top, smooth = _ridge(rng, x, base, height, int(rng.integers(2, 6)), rng.uniform(0.12, 0.3))
    mask = y >= top
    # Shade each face by the slope of the peak above it (light from one side), fading downhill.
    slope = np.gradient(smooth[0]) * w if w > 1 else np.zeros(w, np.float32)
    light = np.float32(rng.choice((-1.0, 1.0)))
    face = np.clip(slope * light * 0.6, -0.3, 0.25).astype(np.float32)[None, :]
    fade = np.clip(1 - (y - top) / max(height, 1e-3), 0.3, 1)
    tex = value_noise(rng, h, w, (8, 5), 3)  # taller than wide: rock bands and gullies
    shade = face * fade + 0.15 * tex
    col = rock * (1 + shade)
    if snow > 0:
        peak = float(top.min())
        line = peak + snow * (base - peak)
        gully = value_noise(rng, h, w, (2, 12), 2)
        snowy = mask & (y < line + 0.15 * (base - peak) * gully)
        snow_col = jitter(rng, (236, 240, 246), 0.05, 4) * (1 + 0.6 * face * fade + 0.04 * tex)
        col = np.where(snowy, snow_col, col)
    if haze > 0:
        col += (haze_col - col) * np.float32(haze)
    put(img, mask, col)
    return mask


def ice_field(img, rng, y, x, top: float) -> np.ndarray:
    """A white-blue ice field below a gently undulating edge, with crevasses and blue ice."""
    h, w = img.shape[1:]
    edge = top + 0.04 * noise1d(rng, x, 3, 3)
    mask = y >= edge
    depth = np.clip(y - edge, 0, None) + 0.02  # grows towards the viewer
    tex = value_noise(rng, h, w, (5, 8), 3)
    col = jitter(rng, (214, 228, 240), 0.08, 6) * (1 + 0.1 * tex)
    blue = value_noise(rng, h, w, (2, 3), 2)
    _blend(col, np.clip((blue - rng.uniform(0.0, 0.5)) * 1.8, 0, 0.75), jitter(rng, (120, 176, 214), 0.1, 8))
    # Crevasses: thin wavy stripes that crowd towards the horizon.
    warp = value_noise(rng, h, w, (3, 4), 2)
    angle = rng.uniform(-0.6, 0.6)
    phase = (
        x * np.float32(math.cos(angle) * rng.uniform(5, 12))
        + np.float32(rng.uniform(1.5, 3.5)) * np.log(depth)
        + 0.8 * warp
    )
    crev = np.abs(np.sin(np.float32(np.pi) * phase)) < rng.uniform(0.05, 0.14)
    col = np.where(crev, jitter(rng, (64, 108, 150), 0.15, 8), col)
    put(img, mask, col)
    return mask


def paint_water(img, rng, y, x, top: float, color, sky_col, icy: bool = False) -> np.ndarray:
    """Open water below ``top``: perspective waves, whitecaps, sun glints, maybe floating ice."""
    h, w = img.shape[1:]
    mask = y >= top
    t = np.clip((y - top) / max(1 - top, 1e-3), 0, 1)  # 0 at the horizon, 1 at the bottom
    near_horizon = np.exp(-t * np.float32(rng.uniform(3, 8)))
    col = color + (sky_col - color) * (0.45 * near_horizon)  # (3, H, 1)
    warp = value_noise(rng, h, w, (3, 5), 2)
    freq = np.float32(rng.uniform(1.2, 2.6))
    waves = np.sin(
        np.float32(2 * np.pi) * (freq / (t + 0.06) + np.float32(rng.uniform(1.0, 3.0)) * warp + 4 * x * warp)
    )
    col = col * (1 + np.float32(rng.uniform(0.05, 0.14)) * waves)
    caps = (waves > 0.93) & (value_noise(rng, h, w, (4, 6), 2) > rng.uniform(0.2, 0.7))
    col = np.where(caps, jitter(rng, (225, 232, 238), 0.05, 5), col)
    if rng.random() < 0.6:  # sun glints in a column under the sun
        band = np.exp(-(((x - rng.uniform(0.1, 0.9)) / np.float32(rng.uniform(0.05, 0.2))) ** 2)) * (1 - t)
        glint = (waves > 0.6) & (rng.random((h, w), dtype=np.float32) < band * 0.9)
        col = np.where(glint, rgb(250, 250, 245), col)
    if icy:  # floating ice floes
        floes = value_noise(rng, h, w, (3, 6), 3) > rng.uniform(0.35, 0.6)
        col = np.where(floes, jitter(rng, (222, 234, 242), 0.06, 5) * (1 - 0.1 * t), col)
    put(img, mask, col)
    return mask


def _canopies(rng, h: int, w: int, count: int, y_range, r_range) -> np.ndarray:
    """A layer of overlapping crown blobs; returns brightness (H, W) in [0, 1], 0 where empty."""
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    cx = rng.uniform(-0.05, 1.05, count) * w
    cy = rng.uniform(*y_range, count)
    r = rng.uniform(*r_range, count) * min(h, w)
    aspect = rng.uniform(0.7, 1.5, count)
    shade = rng.integers(60, 256, count)
    for i in np.argsort(cy):  # far (higher) crowns first, nearer ones overlap them
        rx, ry, yc = r[i], r[i] * aspect[i], cy[i] * h
        draw.ellipse((cx[i] - rx, yc - ry, cx[i] + rx, yc + ry), fill=int(shade[i]))
    return np.asarray(layer, np.float32) * np.float32(1 / 255)


def paint_trees(img, rng, y, x, count: int, y_range, r_range, trunks: bool) -> None:
    """Trees: brown trunks and green (now and then autumn) crowns with leafy texture."""
    h, w = img.shape[1:]
    if trunks:
        bark = jitter(rng, (72, 54, 38), 0.25, 8) * (1 + 0.2 * value_noise(rng, 1, w, (1, 25), 1))
        for _ in range(int(rng.integers(3, 10))):
            left = int(rng.uniform(0, 1) * w)
            width = max(1, int(rng.uniform(0.008, 0.045) * w))
            top = int(np.clip(rng.uniform(*y_range), 0, 1) * h)
            img[:, top:, left : left + width] = bark[:, :, left : left + width]
    crowns = _canopies(rng, h, w, count, y_range, r_range)
    if rng.random() < 0.12:  # autumn
        dark, light = jitter(rng, (90, 60, 20), 0.2), jitter(rng, (210, 150, 50), 0.15)
    else:
        dark, light = jitter(rng, (22, 52, 20), 0.3, 6), jitter(rng, (96, 150, 60), 0.2, 10)
    leaf = value_noise(rng, h, w, (12, 12), 2)
    col = dark + (light - dark) * np.clip(crowns * 0.8 + 0.25 * leaf, 0, 1)
    put(img, crowns > 0, col)


def window_grid(rng, u, v, cols: float, rows: float, fill: float, lit: float) -> tuple[np.ndarray, np.ndarray]:
    """Window grid on a facade with coordinates ``u`` (across) and ``v`` (up); returns (mask, lit)."""
    fu, fv = u * np.float32(cols), v * np.float32(rows)
    iu, iv = np.floor(fu), np.floor(fv)
    mask = ((fu - iu) < fill) & ((fv - iv) < fill * rng.uniform(0.6, 1.0))
    # A cheap hash gives each window its own state (some lit, most dark).
    cell = np.sin(iu * np.float32(12.9898) + iv * np.float32(78.233) + np.float32(rng.uniform(0, 100))) * np.float32(
        4375.8545
    )
    return mask, (cell - np.floor(cell)) < lit


def building_palette(rng) -> np.ndarray:
    palette = ((150, 150, 152), (170, 120, 95), (205, 190, 160), (120, 140, 160), (190, 185, 178), (110, 85, 70))
    return jitter(rng, pick(rng, palette), 0.18, 10)


def facade_row(img, rng, y, x, top_range, ground: float, haze_col=None) -> None:
    """A row of frontal building blocks with window grids, drawn block by block on sub-views."""
    h, w = img.shape[1:]
    r1 = min(h, int(np.round(ground * h)))
    left = rng.uniform(-0.2, 0.0)
    while left < 1.0:
        width = rng.uniform(0.18, 0.6)
        top = rng.uniform(*top_range)
        r0, c0, c1 = (
            max(0, int(np.round(top * h))),
            max(0, int(np.round(left * w))),
            min(w, int(np.round((left + width) * w))),
        )
        if r1 > r0 and c1 > c0:
            wall = building_palette(rng)
            if haze_col is not None:
                wall = wall * 0.8 + haze_col * 0.2
            sub = img[:, r0:r1, c0:c1]
            sub[...] = wall * (1 + 0.06 * value_noise(rng, r1 - r0, c1 - c0, (4, 3), 1))
            u, v = x[:, c0:c1] - np.float32(left), y[r0:r1] - np.float32(top)
            win, lit = window_grid(
                rng, u, v, rng.uniform(10, 30), rng.uniform(14, 32), rng.uniform(0.45, 0.75), rng.uniform(0.05, 0.4)
            )
            glass = jitter(rng, (45, 58, 75), 0.3, 8)
            sub[...] = np.where(win, np.where(lit, jitter(rng, (200, 205, 200), 0.15, 10), glass), sub)
            sub[:, :, : max(1, w // 150)] = wall * 0.6  # a darker edge between neighbours
        if rng.random() < 0.4:  # a gap now and then
            left += rng.uniform(0.0, 0.1)
        left += width


def road_strip(img, rng, y, x, top: float) -> None:
    """A frontal strip of road: asphalt, a kerb line and dashed lane marks."""
    h, w = img.shape[1:]
    r0 = min(h, int(np.round(top * h)))
    if r0 >= h:
        return
    sub = img[:, r0:, :]
    sub[...] = jitter(rng, (92, 92, 96), 0.2, 5) * (1 + 0.08 * value_noise(rng, h - r0, w, (2, 12), 2))
    sub[:, : max(1, int(0.02 * h))] = jitter(rng, (175, 172, 165), 0.1)  # kerb
    lane = top + (1 - top) * rng.uniform(0.4, 0.7)
    marks = (np.abs(y[r0:] - lane) < 0.012) & (
        np.mod(x * np.float32(rng.uniform(4, 8)) + np.float32(rng.uniform(0, 1)), 1) < 0.55
    )
    put(sub, marks, jitter(rng, (230, 230, 222), 0.05))
