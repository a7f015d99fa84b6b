"""Built-in synthetic scenes in the six classes of Intel Image Classification.

Every image is drawn procedurally with numpy and Pillow (no TensorFlow): sky gradients and
horizons, water with waves and glints, tree canopies and trunks, building blocks with window grids,
ridged mountains with snow, ice fields, roads with lane marks and kerbs; then random lighting,
colour cast, blur and sensor noise. Geometry is in relative coordinates, so any image size works.

The classes overlap the way real photographs do, on purpose, so a small model does not reach 100%
and quantized variants have room to differ: glaciers often sit under snowy peaks and mountains
sometimes carry ice fields; streets are lined with buildings and building shots sometimes show the
road; icy seas hold floating ice and glacier lakes look like sea. A share of those classes is drawn
by code shared with the neighbouring class (the "bridges"), so some images are truly ambiguous.

Each image comes from its own random stream derived from ``(seed, class name, index)``, so an
image does not depend on how many others are generated alongside it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .._log import logger, tqdm
from ..errors import ConfigError, check_int, did_you_mean
from ..preprocess import parse_image_size  # re-exported: part of scenes.__all__

__all__ = ["CLASS_NAMES", "generate_scenes", "parse_image_size", "render_scene"]

#: Class names in the order of Intel Image Classification (label i is CLASS_NAMES[i]).
CLASS_NAMES: tuple[str, ...] = ("buildings", "forest", "glacier", "mountain", "sea", "street")

# How often each class borrows the look of its neighbour. The variants keep some class cues; the
# bridges below keep none.
_MIX = {
    "buildings_road": 0.35,  # a building shot with a strip of road and lane marks at the bottom
    "buildings_trees": 0.2,  # trees in front of the buildings
    "street_frontal": 0.25,  # a street seen across, shop fronts filling the frame
    "glacier_peaks": 0.65,  # snowy peaks behind the ice field
    "glacier_water": 0.3,  # a glacier lake with floating ice in the foreground
    "mountain_heavy_snow": 0.25,  # snow down to the valley
    "mountain_ice": 0.15,  # an ice field at the foot of the mountains
    "mountain_lake": 0.15,  # a lake in front of the mountains
    "sea_land": 0.35,  # hills or mountains on the horizon
    "sea_ice": 0.08,  # pale icy water with floating ice
    "forest_sky": 0.4,  # sky showing through the canopy
}

# Bridge scenes: drawn by the same code for two classes, so they are truly ambiguous, like the
# photographs in Intel's set that could carry either label. Each class draws a bridge with the
# given probability; with these values a classifier can at best get about half of them right,
# which puts the default small CNN on the default demo data (400 per class at 96x96, 70/15/15 split,
# 15 epochs) at 0.92-0.94 test accuracy for generator seeds 0, 1 and 2.
_BRIDGES = {
    "city": (("buildings", "street"), 0.12),  # frontal buildings over a strip of road
    "snowfield": (("glacier", "mountain"), 0.11),  # snowy peaks over a snow and ice plain
    "icy_water": (("glacier", "sea"), 0.07),  # icy water with floes under low white hills
}


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_classes(classes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        classes = (classes,)
    names = tuple(classes)
    if not names:
        raise ConfigError(f"Expected at least one class name from {list(CLASS_NAMES)}. Received: classes=()")
    for name in names:
        if name not in CLASS_NAMES:
            raise ConfigError(
                f"Expected class names from {list(CLASS_NAMES)}. Received: {name!r}." + did_you_mean(name, CLASS_NAMES)
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"Expected distinct class names. Received: classes={list(names)}")
    return names


# --------------------------------------------------------------------------------------------
# Drawing helpers. Canvases are float32 (3, H, W) in [0, 255]: channels first, because numpy
# broadcasts a (H, W) mask over a leading axis of 3 far faster than over a trailing one. Colours
# are (3, 1, 1). y is (H, 1) and x is (1, W), pixel centres in [0, 1], so every shape is drawn in
# relative coordinates and any image size works.
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    y.flags.writeable = False
    x.flags.writeable = False
    return y, x


def _rgb(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(3, 1, 1)


def _jitter(rng: np.random.Generator, base, gain: float = 0.12, spread: float = 10.0) -> np.ndarray:
    """A colour near ``base``: an overall brightness change plus a small per-channel shift."""
    col = np.asarray(base, np.float32).reshape(3, 1, 1) * np.float32(rng.uniform(1 - gain, 1 + gain))
    col = col + rng.normal(0.0, spread, (3, 1, 1)).astype(np.float32)
    return np.clip(col, 0, 255)


def _pick(rng: np.random.Generator, options: Sequence) -> object:
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


def _noise(rng: np.random.Generator, h: int, w: int, cells: tuple[float, float], octaves: int = 2) -> np.ndarray:
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


def _noise1d(rng: np.random.Generator, x: np.ndarray, cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth 1D noise over x (shape (1, W)) in about [-1, 1]."""
    out = np.zeros_like(x)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave + 1
        out += amp * np.interp(x, np.linspace(0, 1, n), rng.uniform(-1, 1, n)).astype(np.float32)
        total += amp
        amp *= 0.5
    return out / np.float32(total)


def _put(img: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    """Paint ``color`` ((3, 1, 1) or (3, H, W)) where ``mask`` (broadcastable to (H, W)) is true."""
    img[...] = np.where(mask, color, img)


def _blend(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend ``color`` over ``img`` with ``alpha`` (H, W) in [0, 1]."""
    img += (color - img) * alpha


def _sky(img, rng, y, x, horizon: float, overcast: float = 0.3) -> np.ndarray:
    """Fill the canvas with a sky whose gradient ends at ``horizon``; returns the horizon colour."""
    h, w = img.shape[1:]
    p = rng.random()
    if p < overcast:
        top, bottom = _jitter(rng, (150, 158, 170), 0.15), _jitter(rng, (212, 214, 218), 0.08)
    elif p < 0.9:
        top, bottom = _jitter(rng, (62, 118, 196), 0.15), _jitter(rng, (172, 202, 232), 0.08)
    else:  # low sun
        top, bottom = _jitter(rng, (84, 100, 160), 0.15), _jitter(rng, (236, 186, 140), 0.08)
    t = np.clip(y / max(horizon, 0.05), 0, 1)
    img[...] = top + (bottom - top) * t
    if rng.random() < 0.6:  # clouds
        n = _noise(rng, h, w, (2.5, 4.0), 3)
        alpha = np.clip((n - rng.uniform(-0.3, 0.4)) * 1.5, 0, 0.9)
        _blend(img, alpha, _jitter(rng, (238, 238, 240), 0.06, 4))
    return bottom


def _ridge(rng, x, base: float, height: float, peaks: int, rough: float) -> tuple[np.ndarray, np.ndarray]:
    """Top edge (1, W) of a mountain range: the max of triangular peaks, plus fractal roughness.

    Returns the edge and its smooth part (used for shading whole faces).
    """
    px = rng.uniform(-0.15, 1.15, (peaks, 1)).astype(np.float32)
    ph = rng.uniform(0.45, 1.0, (peaks, 1)).astype(np.float32) * np.float32(height)
    slope = rng.uniform(0.9, 2.6, (peaks, 1)).astype(np.float32) * np.float32(height)
    smooth = np.max(ph - np.abs(x - px) * slope, axis=0, keepdims=True)
    rough_part = np.float32(rough * height) * _noise1d(rng, x, 6, 4)
    return base - np.maximum(smooth + rough_part, 0.0), base - smooth


def _mountains(img, rng, y, x, base, height, rock, snow: float, haze_col, haze: float) -> np.ndarray:
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
    tex = _noise(rng, h, w, (8, 5), 3)  # taller than wide: rock bands and gullies
    shade = face * fade + 0.15 * tex
    col = rock * (1 + shade)
    if snow > 0:
        peak = float(top.min())
        line = peak + snow * (base - peak)
        gully = _noise(rng, h, w, (2, 12), 2)
        snowy = mask & (y < line + 0.15 * (base - peak) * gully)
        snow_col = _jitter(rng, (236, 240, 246), 0.05, 4) * (1 + 0.6 * face * fade + 0.04 * tex)
        col = np.where(snowy, snow_col, col)
    if haze > 0:
        col += (haze_col - col) * np.float32(haze)
    _put(img, mask, col)
    return mask


def _ice_field(img, rng, y, x, top: float) -> np.ndarray:
    """A white-blue ice field below a gently undulating edge, with crevasses and blue ice."""
    h, w = img.shape[1:]
    edge = top + 0.04 * _noise1d(rng, x, 3, 3)
    mask = y >= edge
    depth = np.clip(y - edge, 0, None) + 0.02  # grows towards the viewer
    tex = _noise(rng, h, w, (5, 8), 3)
    col = _jitter(rng, (214, 228, 240), 0.08, 6) * (1 + 0.1 * tex)
    blue = _noise(rng, h, w, (2, 3), 2)
    _blend(col, np.clip((blue - rng.uniform(0.0, 0.5)) * 1.8, 0, 0.75), _jitter(rng, (120, 176, 214), 0.1, 8))
    # Crevasses: thin wavy stripes that crowd towards the horizon.
    warp = _noise(rng, h, w, (3, 4), 2)
    angle = rng.uniform(-0.6, 0.6)
    phase = (
        x * np.float32(math.cos(angle) * rng.uniform(5, 12))
        + np.float32(rng.uniform(1.5, 3.5)) * np.log(depth)
        + 0.8 * warp
    )
    crev = np.abs(np.sin(np.float32(np.pi) * phase)) < rng.uniform(0.05, 0.14)
    col = np.where(crev, _jitter(rng, (64, 108, 150), 0.15, 8), col)
    _put(img, mask, col)
    return mask


def _water(img, rng, y, x, top: float, color, sky_col, icy: bool = False) -> np.ndarray:
    """Open water below ``top``: perspective waves, whitecaps, sun glints, maybe floating ice."""
    h, w = img.shape[1:]
    mask = y >= top
    t = np.clip((y - top) / max(1 - top, 1e-3), 0, 1)  # 0 at the horizon, 1 at the bottom
    near_horizon = np.exp(-t * np.float32(rng.uniform(3, 8)))
    col = color + (sky_col - color) * (0.45 * near_horizon)  # (3, H, 1)
    warp = _noise(rng, h, w, (3, 5), 2)
    freq = np.float32(rng.uniform(1.2, 2.6))
    waves = np.sin(
        np.float32(2 * np.pi) * (freq / (t + 0.06) + np.float32(rng.uniform(1.0, 3.0)) * warp + 4 * x * warp)
    )
    col = col * (1 + np.float32(rng.uniform(0.05, 0.14)) * waves)
    caps = (waves > 0.93) & (_noise(rng, h, w, (4, 6), 2) > rng.uniform(0.2, 0.7))
    col = np.where(caps, _jitter(rng, (225, 232, 238), 0.05, 5), col)
    if rng.random() < 0.6:  # sun glints in a column under the sun
        band = np.exp(-(((x - rng.uniform(0.1, 0.9)) / np.float32(rng.uniform(0.05, 0.2))) ** 2)) * (1 - t)
        glint = (waves > 0.6) & (rng.random((h, w), dtype=np.float32) < band * 0.9)
        col = np.where(glint, _rgb(250, 250, 245), col)
    if icy:  # floating ice floes
        floes = _noise(rng, h, w, (3, 6), 3) > rng.uniform(0.35, 0.6)
        col = np.where(floes, _jitter(rng, (222, 234, 242), 0.06, 5) * (1 - 0.1 * t), col)
    _put(img, mask, col)
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


def _trees(img, rng, y, x, count: int, y_range, r_range, trunks: bool) -> None:
    """Trees: brown trunks and green (now and then autumn) crowns with leafy texture."""
    h, w = img.shape[1:]
    if trunks:
        bark = _jitter(rng, (72, 54, 38), 0.25, 8) * (1 + 0.2 * _noise(rng, 1, w, (1, 25), 1))
        for _ in range(int(rng.integers(3, 10))):
            left = int(rng.uniform(0, 1) * w)
            width = max(1, int(rng.uniform(0.008, 0.045) * w))
            top = int(np.clip(rng.uniform(*y_range), 0, 1) * h)
            img[:, top:, left : left + width] = bark[:, :, left : left + width]
    crowns = _canopies(rng, h, w, count, y_range, r_range)
    if rng.random() < 0.12:  # autumn
        dark, light = _jitter(rng, (90, 60, 20), 0.2), _jitter(rng, (210, 150, 50), 0.15)
    else:
        dark, light = _jitter(rng, (22, 52, 20), 0.3, 6), _jitter(rng, (96, 150, 60), 0.2, 10)
    leaf = _noise(rng, h, w, (12, 12), 2)
    col = dark + (light - dark) * np.clip(crowns * 0.8 + 0.25 * leaf, 0, 1)
    _put(img, crowns > 0, col)


def _windows(rng, u, v, cols: float, rows: float, fill: float, lit: float) -> tuple[np.ndarray, np.ndarray]:
    """Window grid on a facade with coordinates ``u`` (across) and ``v`` (up); returns (mask, lit)."""
    fu, fv = u * np.float32(cols), v * np.float32(rows)
    iu, iv = np.floor(fu), np.floor(fv)
    mask = ((fu - iu) < fill) & ((fv - iv) < fill * rng.uniform(0.6, 1.0))
    # A cheap hash gives each window its own state (some lit, most dark).
    cell = np.sin(iu * np.float32(12.9898) + iv * np.float32(78.233) + np.float32(rng.uniform(0, 100))) * np.float32(
        4375.8545
    )
    return mask, (cell - np.floor(cell)) < lit


def _building_palette(rng) -> np.ndarray:
    palette = ((150, 150, 152), (170, 120, 95), (205, 190, 160), (120, 140, 160), (190, 185, 178), (110, 85, 70))
    return _jitter(rng, _pick(rng, palette), 0.18, 10)


def _facade_row(img, rng, y, x, top_range, ground: float, haze_col=None) -> None:
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
            wall = _building_palette(rng)
            if haze_col is not None:
                wall = wall * 0.8 + haze_col * 0.2
            sub = img[:, r0:r1, c0:c1]
            sub[...] = wall * (1 + 0.06 * _noise(rng, r1 - r0, c1 - c0, (4, 3), 1))
            u, v = x[:, c0:c1] - np.float32(left), y[r0:r1] - np.float32(top)
            win, lit = _windows(
                rng, u, v, rng.uniform(10, 30), rng.uniform(14, 32), rng.uniform(0.45, 0.75), rng.uniform(0.05, 0.4)
            )
            glass = _jitter(rng, (45, 58, 75), 0.3, 8)
            sub[...] = np.where(win, np.where(lit, _jitter(rng, (200, 205, 200), 0.15, 10), glass), sub)
            sub[:, :, : max(1, w // 150)] = wall * 0.6  # a darker edge between neighbours
        if rng.random() < 0.4:  # a gap now and then
            left += rng.uniform(0.0, 0.1)
        left += width


def _road_strip(img, rng, y, x, top: float) -> None:
    """A frontal strip of road: asphalt, a kerb line and dashed lane marks."""
    h, w = img.shape[1:]
    r0 = min(h, int(np.round(top * h)))
    if r0 >= h:
        return
    sub = img[:, r0:, :]
    sub[...] = _jitter(rng, (92, 92, 96), 0.2, 5) * (1 + 0.08 * _noise(rng, h - r0, w, (2, 12), 2))
    sub[:, : max(1, int(0.02 * h))] = _jitter(rng, (175, 172, 165), 0.1)  # kerb
    lane = top + (1 - top) * rng.uniform(0.4, 0.7)
    marks = (np.abs(y[r0:] - lane) < 0.012) & (
        np.mod(x * np.float32(rng.uniform(4, 8)) + np.float32(rng.uniform(0, 1)), 1) < 0.55
    )
    _put(sub, marks, _jitter(rng, (230, 230, 222), 0.05))


# --------------------------------------------------------------------------------------------
# One painter per class
# --------------------------------------------------------------------------------------------


def _paint_buildings(img, rng, y, x) -> None:
    sky_col = _sky(img, rng, y, x, rng.uniform(0.3, 0.6))
    ground = 1.02 if rng.random() >= _MIX["buildings_road"] else rng.uniform(0.72, 0.88)
    _facade_row(img, rng, y, x, (-0.05, 0.25), ground, haze_col=sky_col)  # back row
    _facade_row(img, rng, y, x, (0.1, 0.5), ground)  # front row
    if ground < 1.0:
        _road_strip(img, rng, y, x, ground)
    if rng.random() < _MIX["buildings_trees"]:
        g = min(ground, 1.0)
        _trees(img, rng, y, x, int(rng.integers(3, 9)), (g - 0.25, g), (0.05, 0.12), True)


def _paint_forest(img, rng, y, x) -> None:
    h, w = img.shape[1:]
    sky_line = rng.uniform(0.1, 0.45) if rng.random() < _MIX["forest_sky"] else -0.1
    if sky_line > 0:
        _sky(img, rng, y, x, sky_line + 0.2)
    depth = np.clip((y - sky_line) * 2, 0, 1)
    under = _jitter(rng, (26, 44, 24), 0.35, 6) * (0.7 + 0.3 * depth) * (1 + 0.3 * _noise(rng, h, w, (8, 8), 2))
    _put(img, y >= sky_line, under)
    if rng.random() < 0.4:  # forest floor
        floor = int(rng.uniform(0.75, 0.9) * h)
        img[:, floor:] = _jitter(rng, (88, 74, 44), 0.25, 8) * (1 + 0.25 * _noise(rng, h - floor, w, (3, 8), 2))
    crowns_top = max(sky_line, 0.0)
    _trees(img, rng, y, x, int(rng.integers(30, 70)), (crowns_top - 0.1, crowns_top + 0.5), (0.05, 0.16), True)
    if rng.random() < 0.6:  # a nearer, larger layer of foliage
        _trees(img, rng, y, x, int(rng.integers(8, 20)), (0.0, 1.0), (0.08, 0.2), False)


def _paint_glacier(img, rng, y, x) -> None:
    ice_top = rng.uniform(0.3, 0.6)
    sky_col = _sky(img, rng, y, x, ice_top, overcast=0.45)
    if rng.random() < _MIX["glacier_peaks"]:
        rock = _jitter(rng, (110, 112, 118), 0.2, 8)
        _mountains(
            img,
            rng,
            y,
            x,
            ice_top + 0.03,
            rng.uniform(0.12, 0.35),
            rock,
            rng.uniform(0.55, 1.0),
            sky_col,
            rng.uniform(0.0, 0.3),
        )
    _ice_field(img, rng, y, x, ice_top)
    if rng.random() < _MIX["glacier_water"]:
        water_top = rng.uniform(max(ice_top + 0.1, 0.55), 0.85)
        _water(img, rng, y, x, water_top, _jitter(rng, (110, 160, 180), 0.15, 8), sky_col, icy=True)


def _paint_mountain(img, rng, y, x) -> None:
    h, w = img.shape[1:]
    horizon = rng.uniform(0.45, 0.75)
    sky_col = _sky(img, rng, y, x, horizon - 0.2)
    heavy = rng.random() < _MIX["mountain_heavy_snow"]
    snow = rng.uniform(0.5, 0.95) if heavy else (rng.uniform(0.1, 0.45) if rng.random() < 0.6 else 0.0)
    layers = int(rng.integers(1, 4))
    for i in range(layers):  # far ranges are hazier, near ranges darker and more textured
        far = (layers - 1 - i) / (layers - 1) if layers > 1 else 0.0
        height = rng.uniform(0.25, 0.5) * (1 - 0.3 * far)
        rock = _jitter(rng, _pick(rng, ((120, 110, 100), (95, 100, 105), (110, 95, 80))), 0.25, 10)
        _mountains(img, rng, y, x, horizon + 0.12 * i, height, rock, snow * (1 - 0.3 * i / layers), sky_col, 0.45 * far)
    p = rng.random()
    fg_top = horizon + 0.12 * (layers - 1) + rng.uniform(0.02, 0.1)
    if p < _MIX["mountain_ice"]:
        _ice_field(img, rng, y, x, fg_top)
    elif p < _MIX["mountain_ice"] + _MIX["mountain_lake"]:
        _water(img, rng, y, x, fg_top, _jitter(rng, (60, 100, 120), 0.2, 10), sky_col)
    else:  # grassy or rocky foothills
        edge = fg_top + 0.05 * _noise1d(rng, x, 3, 3)
        ground = _jitter(rng, _pick(rng, ((70, 100, 50), (110, 100, 80), (90, 110, 70))), 0.25, 10)
        _put(img, y >= edge, ground * (1 + 0.2 * _noise(rng, h, w, (6, 10), 3)))


def _paint_sea(img, rng, y, x) -> None:
    h, w = img.shape[1:]
    horizon = rng.uniform(0.3, 0.6)
    sky_col = _sky(img, rng, y, x, horizon)
    icy = rng.random() < _MIX["sea_ice"]
    if rng.random() < _MIX["sea_land"]:
        land = _jitter(rng, _pick(rng, ((70, 90, 70), (100, 105, 115), (120, 110, 95))), 0.2, 8)
        _mountains(
            img,
            rng,
            y,
            x,
            horizon + 0.005,
            rng.uniform(0.05, 0.2),
            land,
            rng.uniform(0.3, 0.8) if icy else 0.0,
            sky_col,
            rng.uniform(0.2, 0.6),
        )
    if icy:
        color = _jitter(rng, (130, 170, 195), 0.12, 8)
    else:
        color = _jitter(rng, _pick(rng, ((24, 66, 118), (36, 130, 150), (80, 104, 126), (20, 90, 130))), 0.2, 8)
    _water(img, rng, y, x, horizon, color, sky_col, icy=icy)
    if rng.random() < 0.35:  # beach with a foam line
        shore = rng.uniform(0.72, 0.92) + 0.05 * _noise1d(rng, x, 2, 3)
        _put(img, y >= shore, _jitter(rng, (204, 184, 146), 0.15, 8) * (1 + 0.08 * _noise(rng, h, w, (8, 12), 2)))
        _put(img, np.abs(y - shore) < 0.01, _rgb(238, 240, 240))


def _paint_street(img, rng, y, x) -> None:
    if rng.random() < _MIX["street_frontal"]:
        # Seen across the road: shop fronts over a wide band of street.
        _sky(img, rng, y, x, rng.uniform(0.2, 0.5))
        ground = rng.uniform(0.55, 0.7)
        _facade_row(img, rng, y, x, (0.0, 0.35), ground)
        _road_strip(img, rng, y, x, ground)
        return
    h, w = img.shape[1:]
    vx, vy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.5)
    _sky(img, rng, y, x, vy)
    dy = y - np.float32(vy)
    spread = np.float32(rng.uniform(0.6, 1.4))
    dx = np.abs(x - np.float32(vx)) + np.float32(1e-4)
    road_w = np.maximum(dy, 0) * spread  # half width of the road at each row
    walk_w = road_w * np.float32(rng.uniform(1.2, 1.45))
    # Facades on both sides in perspective: distance along the street is 1/|x - vx| and height on a
    # facade is -dy/|x - vx|, so a regular grid in those coordinates is a perspective window grid.
    depth = 1.0 / dx
    up = -dy / dx
    bottom = spread * np.float32(rng.uniform(1.2, 1.45))
    seg = np.floor(depth * np.float32(rng.uniform(0.15, 0.4)))  # one building per segment
    seg_hash = np.sin(seg * np.float32(91.7) + np.float32(rng.uniform(0, 100))) * np.float32(4375.85)
    seg_rand = seg_hash - np.floor(seg_hash)  # (1, W)
    top_slope = 0.6 + 1.8 * seg_rand
    one_side = (x < vx) if rng.random() < 0.5 else (x >= vx)
    sides = one_side if rng.random() < 0.2 else True  # sometimes one side only
    facade = sides & (up < top_slope) & (up > -bottom) & (dx > rng.uniform(0.03, 0.1))
    wall_a, wall_b = _building_palette(rng), _building_palette(rng)
    wall = wall_a + (wall_b - wall_a) * seg_rand
    win, lit = _windows(rng, depth, up, rng.uniform(1.5, 4.0), rng.uniform(5, 10), rng.uniform(0.4, 0.7), 0.3)
    win &= (up > -bottom * 0.6) & (depth < 12)
    glass = np.where(lit, _rgb(200, 200, 190), _jitter(rng, (45, 55, 70), 0.3, 8))
    _put(img, facade, np.where(win, glass, wall))
    # Sidewalk, road, kerb lines, lane marks.
    ground = dy > 0
    _put(img, ground & (dx < walk_w) & ~facade, _jitter(rng, (160, 158, 150), 0.12, 6))
    asphalt = _jitter(rng, (90, 90, 94), 0.2, 5) * (1 + 0.08 * _noise(rng, h, w, (4, 12), 2))
    _put(img, ground & (dx < road_w), asphalt)
    _put(img, ground & (np.abs(dx - road_w) < 0.012 * dy + 0.002), _jitter(rng, (190, 188, 180), 0.1))
    dash = np.mod(np.float32(rng.uniform(0.08, 0.2)) / (dy + np.float32(1e-3)) + np.float32(rng.uniform(0, 1)), 1) < 0.5
    lane_col = _rgb(232, 230, 220) if rng.random() < 0.7 else _rgb(230, 190, 60)
    _put(img, ground & (np.abs(x - vx) < 0.02 * dy + 0.002) & dash, lane_col)
    if rng.random() < 0.5:  # a few cars
        for _ in range(int(rng.integers(1, 4))):
            cy = vy + rng.uniform(0.08, 0.5)
            size = (cy - vy) * rng.uniform(0.5, 0.8)
            cx = vx + rng.uniform(-0.8, 0.8) * (cy - vy) * float(spread)
            r0, r1 = int((cy - size * 0.6) * h), int(cy * h)
            c0, c1 = max(0, int((cx - size / 2) * w)), int((cx + size / 2) * w)
            paint = _pick(rng, ((160, 30, 30), (30, 40, 60), (200, 200, 205), (40, 40, 40)))
            img[:, max(0, r0) : max(0, r1), c0 : max(c0, c1)] = _jitter(rng, paint, 0.2)
    if rng.random() < 0.3:
        _trees(img, rng, y, x, int(rng.integers(3, 8)), (vy - 0.15, vy + 0.15), (0.04, 0.1), True)


# Bridge scenes (see _BRIDGES): each is drawn the same way whichever class asked for it.


def _bridge_city(img, rng, y, x) -> None:
    """Buildings seen from across the street: facades over a strip of road."""
    sky_col = _sky(img, rng, y, x, rng.uniform(0.2, 0.5))
    ground = rng.uniform(0.6, 0.85)
    if rng.random() < 0.5:
        _facade_row(img, rng, y, x, (-0.05, 0.2), ground, haze_col=sky_col)
    _facade_row(img, rng, y, x, (0.05, 0.4), ground)
    _road_strip(img, rng, y, x, ground)


def _bridge_snowfield(img, rng, y, x) -> None:
    """Snow-covered peaks over a plain of ice or snow."""
    h, w = img.shape[1:]
    horizon = rng.uniform(0.4, 0.65)
    sky_col = _sky(img, rng, y, x, horizon - 0.1, overcast=0.45)
    rock = _jitter(rng, (105, 105, 112), 0.2, 8)
    _mountains(
        img, rng, y, x, horizon, rng.uniform(0.2, 0.45), rock, rng.uniform(0.5, 0.95), sky_col, rng.uniform(0.0, 0.3)
    )
    plain_top = horizon + rng.uniform(0.0, 0.08)
    if rng.random() < 0.5:
        _ice_field(img, rng, y, x, plain_top)
    else:
        edge = plain_top + 0.04 * _noise1d(rng, x, 3, 3)
        snow = _jitter(rng, (228, 234, 242), 0.08, 5) * (1 + 0.06 * _noise(rng, h, w, (4, 8), 3))
        _put(img, y >= edge, snow)


def _bridge_icy_water(img, rng, y, x) -> None:
    """Pale water with ice floes under low white hills."""
    horizon = rng.uniform(0.35, 0.6)
    sky_col = _sky(img, rng, y, x, horizon, overcast=0.45)
    rock = _jitter(rng, (110, 112, 118), 0.2, 8)
    _mountains(
        img,
        rng,
        y,
        x,
        horizon + 0.005,
        rng.uniform(0.04, 0.15),
        rock,
        rng.uniform(0.6, 1.0),
        sky_col,
        rng.uniform(0.1, 0.4),
    )
    _water(img, rng, y, x, horizon, _jitter(rng, (120, 165, 190), 0.12, 8), sky_col, icy=True)


_BRIDGE_PAINTERS: dict[str, Callable[..., None]] = {
    "city": _bridge_city,
    "snowfield": _bridge_snowfield,
    "icy_water": _bridge_icy_water,
}


def _paint(name: str, img: np.ndarray, rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> None:
    """Draw a bridge scene with its probability, else the class's own scene."""
    u = rng.random()
    for bridge, (classes, p) in _BRIDGES.items():
        if name in classes:
            if u < p:
                _BRIDGE_PAINTERS[bridge](img, rng, y, x)
                return
            u -= p
    _PAINTERS[name](img, rng, y, x)


_PAINTERS: dict[str, Callable[..., None]] = {
    "buildings": _paint_buildings,
    "forest": _paint_forest,
    "glacier": _paint_glacier,
    "mountain": _paint_mountain,
    "sea": _paint_sea,
    "street": _paint_street,
}


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-like blur of a (3, H, W) canvas: repeated [a, 1-2a, a] passes, PIL for wide radii."""
    passes = math.ceil(sigma**2 / 0.5)  # each pass with a <= 0.25 adds variance 2a <= 0.5
    if passes > 4:
        pil = Image.fromarray(np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8).transpose(1, 2, 0)))
        return np.asarray(pil.filter(ImageFilter.GaussianBlur(sigma)), np.float32).transpose(2, 0, 1)
    a = np.float32(sigma**2 / (2 * passes))
    for axis in (1, 2):
        for _ in range(passes):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            out = img * (1 - 2 * a)
            out[tuple(hi)] += a * img[tuple(lo)]
            out[tuple(lo)] += a * img[tuple(hi)]
            first, last = [slice(None)] * 3, [slice(None)] * 3
            first[axis], last[axis] = slice(0, 1), slice(-1, None)
            out[tuple(first)] += a * img[tuple(first)]  # edge pixels reflect onto themselves
            out[tuple(last)] += a * img[tuple(last)]
            img = out
    return img


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera and light: exposure, contrast, colour cast, optional blur, sensor noise -> uint8 HWC."""
    h, w = img.shape[1:]
    gain = rng.uniform(0.75, 1.2)
    contrast = rng.uniform(0.8, 1.2)
    cast = rng.uniform(0.92, 1.08, (3, 1, 1)).astype(np.float32)
    mean = float(img.mean())
    img *= np.float32(contrast * gain) * cast
    img += np.float32(mean * (1 - contrast) * gain) * cast
    if rng.random() < 0.5:
        img = _blur(img, rng.uniform(0.4, 1.2) * min(h, w) / 150)
    img += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(1.0, 6.0))
    img += 0.5  # round, not truncate, on the cast below
    np.clip(img, 0, 255, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def render_scene(
    class_name: str, rng: np.random.Generator, image_size: int | tuple[int, int] = (150, 150)
) -> np.ndarray:
    """Draw one scene of ``class_name``.

    Args:
        class_name: One of :data:`CLASS_NAMES`.
        rng: The random stream that decides everything about the image.
        image_size: ``(height, width)`` or one int for a square image.

    Returns:
        uint8 array of shape (height, width, 3).
    """
    (name,) = _check_classes((class_name,))
    h, w = parse_image_size(image_size)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"Expected rng to be a numpy Generator, e.g. np.random.default_rng(0). Received: rng={rng!r}")
    y, x = _grid(h, w)
    img = np.empty((3, h, w), np.float32)
    _paint(name, img, rng, y, x)
    return _finish(img, rng)


def _image_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """The random stream of one image: a function of (seed, stream name, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(stream.encode()), index]))


def generate_scenes(
    per_class: int,
    image_size: int | tuple[int, int] = 150,
    seed: int = 0,
    classes: Sequence[str] = CLASS_NAMES,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a class-balanced set of synthetic scenes in memory.

    Classes are interleaved (image i has label ``i % len(classes)``), so any prefix whose length is a
    multiple of the class count is balanced too. Image ``k`` of a class is the same whatever
    ``per_class`` is.

    Args:
        per_class: Images per class (>= 1).
        image_size: ``(height, width)`` or one int for square images.
        seed: Non-negative int; the same seed gives byte-identical images.
        classes: Class names to draw, from :data:`CLASS_NAMES`; labels index this sequence.
        progress: Show a progress bar (None: on unless EDGELAB_PROGRESS=0).

    Returns:
        ``(images, labels)``: uint8 (N, H, W, 3) and int64 (N,), N = per_class * len(classes).
    """
    per_class = check_int("per_class", per_class)
    seed = check_int("seed", seed, minimum=0)
    names = _check_classes(classes)
    h, w = parse_image_size(image_size)
    n = per_class * len(names)
    images = np.empty((n, h, w, 3), np.uint8)
    labels = np.tile(np.arange(len(names), dtype=np.int64), per_class)
    for i in tqdm(range(n), desc="scenes", unit="img", progress=progress):
        name = names[int(labels[i])]
        images[i] = render_scene(name, _image_rng(seed, name, i // len(names)), (h, w))
    logger.info("generated %d synthetic scenes (%dx%d, seed %d)", n, h, w, seed)
    return images, labels
