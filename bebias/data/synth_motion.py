"""Motion of the benchmark's object: poses per frame, v2's per-instance variation, and how far
the object moves per sampled frame at the model's input.

v1 (``bebias.data.synth._trajectory``) moves every instance of a class nearly alike:
constant-velocity translations along the class's axis, spins at 12-16 deg/frame. With
``SynthConfig.motion_variation`` (v2) every instance draws its own

- **speed** (translations: 1-2x the floor's speed) and **modulation** (speed x (1 + a sin(2 pi t / P + phi)),
  a < 0.5, P 12-24 frames) for translations, spins and orbits; the zoom's period varies;
- **heading**: translations deviate up to 20 deg from the class's axis (classes stay 25 deg apart);
  they wrap around the frame (the object leaves on one side and comes back on the other),
  so a fast motion fits a long video;
- **spins without aliasing**: the turn between two sampled frames (``view_stride`` frames
  apart) never exceeds 60 deg (the stripes repeat every 180 deg; the zoom's period is at least
  4 sampled frames).

``min_motion`` is a floor on the mean displacement of the object's vertices between two
sampled frames, in pixels of the model's ``view_size`` input: a drawn motion below it is
sped up until it meets it (a deterministic rescaling, no extra draws).
All arithmetic is scalar :mod:`math` or exactly rounded, as in the rest of the generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    cx: float  # centre, pixels (x right, y down)
    cy: float
    angle: float  # radians; positive = clockwise on screen (y points down)
    scale: float


DIRECTIONS: dict[str, tuple[int, int]] = {
    "right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1),
    "up-right": (1, -1), "down-left": (-1, 1), "up-left": (-1, -1), "down-right": (1, 1)}
HEADING_JITTER_DEG = 20.0
SPIN_DEG = (10.0, 20.0)  # per frame, before the floor
ORBIT_DEG = (12.0, 18.0)
MAX_SAMPLED_TURN_DEG = 60.0
ZOOM_MAX_AMP = 0.6  # the object stays inside the frame at 1.6x its size  # per sampled frame: far from the stripes' 180 deg period


def _warp(t: float, a: float, period: float, phase: float) -> float:
    """Integral over [0, t] of 1 + a sin(2 pi u / period + phase): modulated time."""
    return t + a * period / (2 * math.pi) * (math.cos(phase) - math.cos(2 * math.pi * t / period + phase))


def vertices(pose: Pose, angles: Sequence[float], radii: Sequence[float]) -> list[tuple[float, float]]:
    return [(pose.cx + r * pose.scale * math.cos(a + pose.angle), pose.cy + r * pose.scale * math.sin(a + pose.angle))
            for a, r in zip(angles, radii)]


def mean_motion(poses: Sequence[Pose], angles: Sequence[float], radii: Sequence[float], stride: int) -> float:
    """Mean displacement (frame px) of the polygon's vertices between frames t and t + stride,
    over every such pair of the video (poses unwrapped)."""
    vs = [vertices(p, angles, radii) for p in poses]
    d = [math.hypot(b[0] - a[0], b[1] - a[1]) for t in range(len(vs) - stride) for a, b in zip(vs[t], vs[t + stride])]
    return sum(d) / len(d) if d else 0.0


def wrap(poses: Sequence[Pose], S: int, r_out: float) -> list[Pose]:
    """Centres wrapped onto the torus [-r_out, S + r_out)^2: the object leaves the frame
    entirely before it comes back on the other side, so only one copy is ever visible."""
    L = S + 2 * r_out
    return [Pose((p.cx + r_out) % L - r_out, (p.cy + r_out) % L - r_out, p.angle, p.scale) for p in poses]


def varied_trajectory(rng: np.random.Generator, motion: str, T: int, S: int, R: float,
                      angles: Sequence[float], radii: Sequence[float], floor: float, stride: int,
                      ) -> tuple[list[Pose], bool]:
    """Per-frame poses (unwrapped) with per-instance variation, and whether they wrap.

    ``floor``: minimal :func:`mean_motion` in frame px per ``stride`` frames (0: none).
    """
    theta0 = rng.random() * 2 * math.pi
    a = 0.5 * rng.random()  # modulation depth
    period = 12.0 + 12.0 * rng.random()
    phase = rng.random() * 2 * math.pi
    sign = 1.0 if rng.random() < 0.5 else -1.0  # orbit direction
    u = rng.random()  # speed draw in [1, 2) x the base
    cx, cy = rng.random() * S, rng.random() * S
    jitter = math.radians(HEADING_JITTER_DEG) * (2 * rng.random() - 1)
    zamp, zper, zph = 0.3 + 0.15 * rng.random(), 10.0 + 10.0 * rng.random(), rng.random() * 2 * math.pi
    orbit_r = S * (0.11 + 0.06 * rng.random())
    m = R * 1.2 + 2.0
    max_turn = math.radians(MAX_SAMPLED_TURN_DEG) / (stride * (1.0 + a))  # rad/frame at the peak speed

    build: Callable[[float], list[Pose]]
    wraps = motion in DIRECTIONS
    if wraps:
        dx, dy = DIRECTIONS[motion]
        head = math.atan2(dy, dx) + jitter
        hx, hy = math.cos(head), math.sin(head)
        base = (floor / stride if floor > 0 else 0.75) * (1.0 + u)  # px/frame: 1-2x the floor

        def build(k: float) -> list[Pose]:
            return [Pose(cx + hx * base * k * _warp(t, a, period, phase), cy + hy * base * k * _warp(t, a, period, phase),
                         theta0, 1.0) for t in range(T)]
    elif motion in ("rotate-cw", "rotate-ccw"):
        w = math.radians(SPIN_DEG[0] + (SPIN_DEG[1] - SPIN_DEG[0]) * u) * (1 if motion == "rotate-cw" else -1)
        px, py = m + (S - 2 * m) * cx / S, m + (S - 2 * m) * cy / S

        def build(k: float) -> list[Pose]:
            wk = math.copysign(min(abs(w) * k, max_turn), w)
            return [Pose(px, py, theta0 + wk * _warp(t, a, period, phase), 1.0) for t in range(T)]
    elif motion == "orbit":
        w = math.radians(ORBIT_DEG[0] + (ORBIT_DEG[1] - ORBIT_DEG[0]) * u) * sign
        lo = m + orbit_r
        px, py = lo + (S - 2 * lo) * cx / S, lo + (S - 2 * lo) * cy / S

        def build(k: float) -> list[Pose]:
            wk = math.copysign(min(abs(w) * k, max_turn), w)
            return [Pose(px + orbit_r * math.cos(theta0 + wk * _warp(t, a, period, phase)),
                         py + orbit_r * math.sin(theta0 + wk * _warp(t, a, period, phase)), theta0, 1.0)
                    for t in range(T)]
    elif motion == "zoom":
        mz = R * 1.2 * (1 + ZOOM_MAX_AMP) + 2.0  # room for the largest amplitude the floor may need
        px, py = mz + (S - 2 * mz) * cx / S, mz + (S - 2 * mz) * cy / S

        def build(k: float) -> list[Pose]:
            per = max(zper / k, 4.0 * stride)  # >= 4 sampled frames per period: no aliasing
            amp = min(zamp * k * per / zper, ZOOM_MAX_AMP)  # past that cap the amplitude grows instead
            return [Pose(px, py, theta0, 1.0 + amp * math.sin(2 * math.pi * t / per + zph)) for t in range(T)]
    else:
        raise AssertionError(motion)
    k = 1.0
    poses = build(k)
    for _ in range(6):  # speed up to the floor (spins and zooms stop at their anti-aliasing caps)
        got = mean_motion(poses, angles, radii, stride)
        if floor <= 0 or got >= floor or got <= 0:
            break
        k *= floor / got * 1.0001
        poses = build(k)
    return poses, wraps
