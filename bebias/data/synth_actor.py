"""The benchmark's foreground object ("actor"): its shape, colours and stripes, v1's motion
(:func:`trajectory`; v2's per-instance variation is in ``bebias.data.synth_motion``), and
its anti-aliased rendering with exactly rounded operations only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bebias.data.synth_backgrounds import two_colours
from bebias.data.synth_motion import DIRECTIONS, Pose

_SUPERSAMPLE = 3  # sub-pixel samples per axis: anti-aliased edges, smooth sub-pixel motion



def trajectory(rng: np.random.Generator, motion: str, T: int, S: int, R: float) -> list[Pose]:
    """Per-frame poses of the object for ``motion``; the object stays fully inside the frame."""
    theta0 = rng.random() * 2 * math.pi
    m = R * 1.2 + 2.0  # centre margin: object radius + outline + 1 px
    dirs = DIRECTIONS
    if motion in dirs:
        dx, dy = dirs[motion]
        span = S - 2 * m
        travel = span * (0.7 + 0.25 * rng.random())  # along each moving axis
        v = travel / (T - 1)

        def axis_start(d: int) -> float:
            lo = m + rng.random() * (span - travel) if d != 0 else m + rng.random() * span
            return lo if d >= 0 else S - lo  # moving left/up: start near the right/bottom

        x0, y0 = axis_start(dx), axis_start(dy)
        return [Pose(x0 + dx * v * t, y0 + dy * v * t, theta0, 1.0) for t in range(T)]
    cx = m + rng.random() * (S - 2 * m)
    cy = m + rng.random() * (S - 2 * m)
    if motion in ("rotate-cw", "rotate-ccw"):
        w = math.radians(12.0 + 4.0 * rng.random()) * (1 if motion == "rotate-cw" else -1)
        return [Pose(cx, cy, theta0 + w * t, 1.0) for t in range(T)]
    if motion == "orbit":
        r = S * (0.11 + 0.04 * rng.random())
        cx = m + r + rng.random() * (S - 2 * (m + r))
        cy = m + r + rng.random() * (S - 2 * (m + r))
        w = math.radians(12.0 + 6.0 * rng.random()) * (1 if rng.random() < 0.5 else -1)  # either direction
        p0 = rng.random() * 2 * math.pi
        return [Pose(cx + r * math.cos(p0 + w * t), cy + r * math.sin(p0 + w * t), theta0, 1.0) for t in range(T)]
    if motion == "zoom":
        amp = 0.35 + 0.1 * rng.random()
        period = 10.0 + 6.0 * rng.random()
        ph = rng.random() * 2 * math.pi
        mz = R * 1.2 * (1 + amp) + 2.0
        cx = mz + rng.random() * (S - 2 * mz)
        cy = mz + rng.random() * (S - 2 * mz)
        return [Pose(cx, cy, theta0, 1.0 + amp * math.sin(2 * math.pi * t / period + ph)) for t in range(T)]
    raise AssertionError(motion)


def _inside(px: np.ndarray, py: np.ndarray, vx: list[float], vy: list[float]) -> np.ndarray:
    """Even-odd point-in-polygon test of the grid of points (px[j], py[i]); only exactly
    rounded operations. ``px`` (1, W) and ``py`` (H, 1) -> (H, W) bool (each edge's crossing
    abscissa is computed once per row: the same numbers as on a full meshgrid)."""
    inside = np.zeros(np.broadcast_shapes(px.shape, py.shape), dtype=bool)
    n = len(vx)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n):
            j = (i - 1) % n
            xi, yi, xj, yj = vx[i], vy[i], vx[j], vy[j]
            if yj == yi:
                continue  # a horizontal edge is crossed by no row
            rows = (yi > py) != (yj > py)
            inside ^= rows & (px < (xj - xi) * (py - yi) / (yj - yi) + xi)
    return inside


@dataclass(frozen=True)
class Actor:
    angles: tuple[float, ...]
    radii: tuple[float, ...]  # pixels
    colour_a: tuple[float, ...]
    colour_b: tuple[float, ...]
    stripe_period: float  # pixels
    stripe_angle: float
    outline: float  # outline width, pixels
    outline_colour: tuple[float, ...]


def make_object(rng: np.random.Generator, R: float, unit: float) -> Actor:
    n = int(rng.integers(3, 8))
    angles = tuple(2 * math.pi * (k + 0.6 * (rng.random() - 0.5)) / n for k in range(n))
    radii = tuple(R * (0.6 + 0.4 * rng.random()) for _ in range(n))
    a, b = two_colours(rng)
    return Actor(angles, radii, tuple(a), tuple(b), (4.0 + 3.0 * rng.random()) * unit,
                   rng.random() * math.pi, 1.25 * unit, (0.0, 0.0, 0.0))


def polygon(obj: Actor, pose: Pose, grow: float) -> tuple[list[float], list[float]]:
    vx, vy = [], []
    for a, r in zip(obj.angles, obj.radii):
        rr = (r + grow) * pose.scale
        vx.append(pose.cx + rr * math.cos(a + pose.angle))
        vy.append(pose.cy + rr * math.sin(a + pose.angle))
    return vx, vy


def render_object(frame: np.ndarray, mask: np.ndarray, obj: Actor, pose: Pose) -> None:
    """Composite the object onto ``frame`` ((S,S,3) float64, in place) with supersampled
    anti-aliasing, and set ``mask`` ((S,S) bool) where >= half of a pixel is covered."""
    S = frame.shape[0]
    ovx, ovy = polygon(obj, pose, obj.outline)
    x0, x1 = max(int(math.floor(min(ovx))) - 1, 0), min(int(math.ceil(max(ovx))) + 2, S)
    y0, y1 = max(int(math.floor(min(ovy))) - 1, 0), min(int(math.ceil(max(ovy))) + 2, S)
    if x0 >= x1 or y0 >= y1:
        return
    k = _SUPERSAMPLE
    sub = (np.arange(k, dtype=np.float64) + 0.5) / k
    py = (np.arange(y0, y1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    px = (np.arange(x0, x1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    PY, PX = py[:, None], px[None, :]  # the ((y1-y0)k, (x1-x0)k) grid of sub-pixel sample points
    h, w = y1 - y0, x1 - x0
    # coverage = fraction of a pixel's k*k samples inside the polygon (exact: small integer counts)
    outer = _inside(PX, PY, ovx, ovy).reshape(h, k, w, k).sum(axis=(1, 3), dtype=np.int32) / (k * k)
    inner = _inside(PX, PY, *polygon(obj, pose, 0.0)).reshape(h, k, w, k).sum(axis=(1, 3), dtype=np.int32) / (k * k)
    # stripes live in the object's frame, so they rotate and scale with it (sampled at pixel centres)
    cy = (np.arange(y0, y1, dtype=np.float64) + 0.5)[:, None]  # pixel centres, broadcast to (h, w)
    cx = (np.arange(x0, x1, dtype=np.float64) + 0.5)[None, :]
    ang = pose.angle + obj.stripe_angle
    u = ((cx - pose.cx) * math.cos(ang) + (cy - pose.cy) * math.sin(ang)) / (obj.stripe_period * pose.scale)
    stripe = (np.floor(u) % 2.0)[..., None]
    col = np.asarray(obj.colour_a) * (1.0 - stripe) + np.asarray(obj.colour_b) * stripe
    region = frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = (region * (1.0 - outer[..., None]) + col * inner[..., None]
                           + np.asarray(obj.outline_colour) * (outer - inner)[..., None])
    mask[y0:y1, x0:x1] |= outer >= 0.5
