"""Background plates of the embedded benchmark, one per scene family: real photographs and
textures that ship with scikit-image, and procedural patterns (stripes, checker, blobs,
gradient). A plate is a (P, P, 3) float64 array in [0, 255], a pure function of the
generator's state, the family and the size, larger than the frame so the camera can pan."""

from __future__ import annotations

import functools
import importlib.util
import math
import os

import numpy as np

from bebias.errors import BebiasError


_PHOTOS = {  # family -> (scikit-image file, is_gray_texture)
    "astronaut": ("astronaut.png", False),
    "coffee": ("coffee.png", False),
    "chelsea": ("chelsea.png", False),
    "motorcycle": ("motorcycle_left.png", False),
    "brick": ("brick.png", True),
    "grass": ("grass.png", True),
    "gravel": ("gravel.png", True),
    "cameraman": ("camera.png", True),
}


def _skimage_data_dir() -> str:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise BebiasError("scikit-image is not installed; it ships the photographs the synthetic benchmark uses "
                          "(pip install scikit-image)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


@functools.lru_cache(maxsize=None)
def load_photo(family: str) -> np.ndarray:
    """The real photograph behind ``family``: (H, W, 3) uint8 RGB (gray textures replicated).

    PNG decoding is lossless, so the pixels are the same on every machine.
    """
    import cv2

    fname, _ = _PHOTOS[family]
    path = os.path.join(_skimage_data_dir(), fname)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BebiasError("cannot read the scikit-image sample photograph (reinstall scikit-image)", path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 3 and not _PHOTOS[family][1]:
        img = img[:, :, ::-1]  # OpenCV decodes to BGR
    img = np.ascontiguousarray(img)
    if img.dtype != np.uint8:  # 16-bit PNGs: keep the top byte
        img = (img >> 8).astype(np.uint8)
    return img


def _block_mean(img: np.ndarray, f: int) -> np.ndarray:
    """Integer-factor area downsampling: exact (sums of integers in float64)."""
    if f == 1:
        return img.astype(np.float64)
    H, W = img.shape[0] // f * f, img.shape[1] // f * f
    return img[:H, :W].reshape(H // f, f, W // f, f, 3).astype(np.float64).mean(axis=(1, 3))


def _photo_plate(rng: np.random.Generator, family: str, P: int) -> np.ndarray:
    img = load_photo(family)
    H, W = img.shape[:2]
    # downsample by a random integer factor so a PxP crop shows a scene-sized region
    factors = [f for f in (2, 3, 4) if min(H, W) // f >= P] or [1]
    f = factors[int(rng.integers(len(factors)))]
    small = _block_mean(img, f)
    if min(small.shape[:2]) < P:  # very large plates: nearest-neighbour upsampling (exact)
        rep = -(-P // min(small.shape[:2]))
        small = np.repeat(np.repeat(small, rep, axis=0), rep, axis=1)
    y = int(rng.integers(small.shape[0] - P + 1))
    x = int(rng.integers(small.shape[1] - P + 1))
    plate = small[y: y + P, x: x + P]
    if rng.random() < 0.5:
        plate = plate[:, ::-1]
    if _PHOTOS[family][1]:  # gray texture: tint with a random colour
        tint = 0.35 + 0.65 * rng.random(3)
        plate = plate * tint
    else:
        plate = plate * (0.8 + 0.4 * rng.random())
    return plate


def _coords(P: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.meshgrid(np.arange(P, dtype=np.float64), np.arange(P, dtype=np.float64), indexing="ij")
    return ys, xs


def two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.random(3) * 255.0
    b = rng.random(3) * 255.0
    return a, b


def _mix(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[None, None, :] * (1.0 - t[..., None]) + b[None, None, :] * t[..., None]


def _procedural_plate(rng: np.random.Generator, family: str, P: int, unit: float) -> np.ndarray:
    ys, xs = _coords(P)
    a, b = two_colours(rng)
    if family == "stripes":  # triangle-wave stripes at a random angle (exact arithmetic)
        ang = rng.random() * math.pi
        period = (6.0 + 8.0 * rng.random()) * unit
        t = (xs * math.cos(ang) + ys * math.sin(ang)) / period + rng.random()
        t = np.abs(2.0 * (t - np.floor(t + 0.5)))
        return _mix(t, a, b)
    if family == "checker":
        cell = (5.0 + 7.0 * rng.random()) * unit
        oy, ox = rng.random(2) * cell
        t = (np.floor((ys + oy) / cell) + np.floor((xs + ox) / cell)) % 2.0
        return _mix(t, a, b)
    if family == "blobs":  # smooth colour noise: bilinear upsampling of a coarse random grid
        g = int(rng.integers(3, 6))
        grid = rng.random((g + 1, g + 1, 3)) * 255.0
        u = ys / (P - 1) * g
        v = xs / (P - 1) * g
        i0 = np.minimum(np.floor(u), g - 1).astype(int)
        j0 = np.minimum(np.floor(v), g - 1).astype(int)
        fu, fv = (u - i0)[..., None], (v - j0)[..., None]
        return ((1 - fu) * (1 - fv) * grid[i0, j0] + (1 - fu) * fv * grid[i0, j0 + 1]
                + fu * (1 - fv) * grid[i0 + 1, j0] + fu * fv * grid[i0 + 1, j0 + 1])
    if family == "gradient":
        ang = rng.random() * 2 * math.pi
        t = xs * math.cos(ang) + ys * math.sin(ang)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        return _mix(t, a, b)
    raise AssertionError(family)


def background_plate(rng: np.random.Generator, family: str, P: int, unit: float) -> np.ndarray:
    """A (P, P, 3) float64 background plate in [0, 255] of scene ``family``."""
    if family in _PHOTOS:
        plate = _photo_plate(rng, family, P)
    else:
        plate = _procedural_plate(rng, family, P, unit)
    return np.clip(plate, 0.0, 255.0)
