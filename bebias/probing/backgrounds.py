"""Still backgrounds for the swap variants: SCUBA's content-free sinusoidal stripes and
random crops of a pool of images (e.g. Places365 photos), plus the seed and rounding
helpers every test-set generator shares. Pure and deterministic: the same seed gives the
same pixels on any machine. Output: (h, w, 3) uint8 RGB."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Union

import cv2
import numpy as np

from bebias.errors import BebiasError

__all__ = ["Seed", "Image", "stripes_background", "background_from_images"]

#: a seed for ``numpy.random.default_rng`` (int or sequence of ints), or a Generator
Seed = Union[int, Sequence[int], np.random.Generator]
#: an image given as an array ((H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA uint8) or a file path
Image = Union[np.ndarray, str, os.PathLike]


def rng_of(seed: Seed | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def round_u8(x: np.ndarray) -> np.ndarray:
    """Round half up and clip to [0, 255] (half up, not numpy's half-to-even, so the
    rule is the obvious one and the same on every platform)."""
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def stripes_background(h: int, w: int, rng: Seed) -> np.ndarray:
    """Synthetic sinusoidal stripes (SCUBA's content-free background).

    ``c(p) = a + (b - a) * (1 + sin(2 pi <p, n> / period + phase)) / 2`` with a random
    orientation n (angle in [0, pi)), period in pixels in ``[min(h, w) / 16, min(h, w) / 3]``
    (at least 3 px), phase in [0, 2 pi) and two random RGB colours a, b, drawn in that
    order from ``rng``.

    The sine of a sum is expanded as ``sin u cos v + cos u sin v`` with scalar ``math``
    calls per row and per column, so only exactly rounded array operations follow: the
    same seed gives the same pixels on any machine (vectorised ``np.sin`` can differ in
    the last bit between SIMD implementations).

    Returns:
        (h, w, 3) uint8 RGB.
    """
    rng = rng_of(rng)
    if h < 1 or w < 1:
        raise ValueError(f"background size must be positive, got {h}x{w}")
    theta = float(rng.random()) * math.pi
    lo = max(3.0, min(h, w) / 16.0)
    hi = max(lo, min(h, w) / 3.0)
    period = lo + (hi - lo) * float(rng.random())
    phase = float(rng.random()) * 2.0 * math.pi
    a = rng.integers(0, 256, 3).astype(np.float64)
    b = rng.integers(0, 256, 3).astype(np.float64)
    k = 2.0 * math.pi / period
    u = [k * x * math.cos(theta) for x in range(w)]  # phase along x
    v = [k * y * math.sin(theta) + phase for y in range(h)]  # along y, plus the offset
    su, cu = np.array([math.sin(t) for t in u]), np.array([math.cos(t) for t in u])
    sv, cos_v = np.array([math.sin(t) for t in v]), np.array([math.cos(t) for t in v])
    s = su[None, :] * cos_v[:, None] + cu[None, :] * sv[:, None]  # sin(u + v), (h, w)
    t = (1.0 + s) / 2.0
    return round_u8(a + (b - a) * t[..., None])


def _load_image(img: Image) -> np.ndarray:
    """An image argument -> (H, W, 3) uint8 RGB."""
    if isinstance(img, (str, os.PathLike)):
        arr = cv2.imread(os.fspath(img), cv2.IMREAD_COLOR)
        if arr is None:
            raise BebiasError("cannot read the background image", img)
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"background images must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[..., :3])  # RGBA: alpha dropped
    raise ValueError(f"a background image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")


def _fit_image(img: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Scale ``img`` so it covers h x w (aspect kept), then crop h x w at a random offset."""
    H, W = img.shape[:2]
    if H < 1 or W < 1:
        raise ValueError("empty background image")
    scale = max(h / H, w / W)
    nh, nw = max(h, math.ceil(H * scale - 1e-9)), max(w, math.ceil(W * scale - 1e-9))
    if (nh, nw) != (H, W):
        # area averaging when shrinking (no aliasing), bilinear when enlarging
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
    y0 = int(rng.integers(nh - h + 1))  # both offsets always drawn: a fixed number of draws
    x0 = int(rng.integers(nw - w + 1))
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


def pick_image(images: Sequence[Image], h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    if len(images) == 0:
        raise ValueError("no background images given")
    i = int(rng.integers(len(images)))
    return _fit_image(_load_image(images[i]), h, w, rng), i


def background_from_images(paths_or_arrays: Sequence[Image], h: int, w: int, rng: Seed) -> np.ndarray:
    """A random still background from a pool of images (e.g. Places365 photos).

    One image is drawn uniformly, scaled with OpenCV so it covers h x w with its aspect
    ratio kept (area averaging when shrinking, bilinear when enlarging) and cropped to
    h x w at a uniformly random offset.

    Args:
        paths_or_arrays: images as uint8 arrays ((H, W) grey, (H, W, 3) RGB, (H, W, 4)
            RGBA) or file paths (read with OpenCV, converted to RGB).
        h, w: output size in pixels.
        rng: Generator or seed.

    Returns:
        (h, w, 3) uint8 RGB.
    """
    return pick_image(paths_or_arrays, h, w, rng_of(rng))[0]
