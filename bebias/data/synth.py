"""The embedded biased-motion benchmark.

A video shows one foreground object whose **motion** is the class (translations, rotations,
an orbit, a zoom); its shape, colours and texture are random and independent of the class.
Behind it is a background from one of K **scene families** (real photographs that ship in
scikit-image, real textures, procedural patterns). The family is the bias: in the biased
training split it equals the class with probability ``bias``; in ``train-unbiased`` it is
independent of the class; in ``conflict`` it never equals the class. A small class-
independent camera pan/jitter moves the background so frame differencing does not isolate
the object for free. See ``docs/benchmark.md`` for the design reasoning and calibration.

Everything is a pure function of ``(SynthConfig, split, index)``: each video draws from its
own ``numpy.random.Generator`` seeded by ``(seed, split, index)``, and all geometry uses
exactly rounded IEEE operations (scalar trigonometry via :mod:`math`, no vectorised
transcendental functions, no BLAS), so the same seed gives identical arrays on any machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from bebias.data.synth_backgrounds import background_plate, two_colours
from bebias.errors import BebiasError
from bebias.limits import MAX_VIDEOS_PER_CLASS, MAX_WORKERS, check_int, check_memory, check_seed

#: motion classes, in label order; the first ``classes`` are used.
MOTIONS: tuple[str, ...] = (
    "right", "left", "up", "down", "rotate-cw", "rotate-ccw", "orbit", "zoom",
    "up-right", "down-left", "up-left", "down-right",
)
#: background scene families, in order; the first ``classes`` are used (family i is the
#: "usual scene" of class i).
FAMILIES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "motorcycle", "stripes", "brick", "checker", "grass",
    "blobs", "gravel", "gradient", "cameraman",
)
SPLITS: tuple[str, ...] = ("train", "train-unbiased", "iid", "conflict")
MAX_CLASSES = len(MOTIONS)
#: bytes one entry of a split's video list takes (VideoSpec and its share of the lists; 220 measured)
VIDEO_SPEC_BYTES = 256

_SUPERSAMPLE = 3  # sub-pixel samples per axis: anti-aliased edges, smooth sub-pixel motion
_RADIUS = (0.18, 0.24)  # object radius as a fraction of the frame size (polygon vertices at 0.6-1.0 of it)


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the benchmark (fixed a priori; see docs/benchmark.md).

    Attributes:
        classes: number of motion classes K (= number of scene families), 2..12.
        videos_per_class: videos per class in ``train`` and ``train-unbiased``.
        test_videos_per_class: videos per class in ``iid`` and ``conflict``.
        frames: frames per video (clips of 16 are cut from 32 so temporal crops differ).
        size: frame height = width, in pixels.
        bias: rho, P(family == class) in ``train`` and ``iid``.
        camera: class-independent camera pan + jitter of the background.
        seed: master seed.
    """

    classes: int = 8
    videos_per_class: int = 256
    test_videos_per_class: int = 64
    frames: int = 32
    size: int = 64
    bias: float = 0.9
    camera: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= MAX_CLASSES:
            raise BebiasError(f"--classes must be in 2..{MAX_CLASSES}, got {self.classes}")
        if not 0.0 <= self.bias <= 1.0:
            raise BebiasError(f"--bias must be in [0, 1], got {self.bias}")
        if self.frames < 2:
            raise BebiasError(f"--frames must be >= 2, got {self.frames}")
        if self.size < 32 or self.size % 2:
            raise BebiasError(f"--size must be an even number >= 32 pixels (video codecs need even sizes), "
                              f"got {self.size}")
        check_int("--videos-per-class", self.videos_per_class, 1, MAX_VIDEOS_PER_CLASS)
        check_int("--test-videos-per-class", self.test_videos_per_class, 1, MAX_VIDEOS_PER_CLASS)
        check_seed("--seed", self.seed)
        # the split's list of videos (~220 bytes each, measured) and one video's render buffers
        largest = self.classes * max(self.videos_per_class, self.test_videos_per_class)
        check_memory(largest * VIDEO_SPEC_BYTES, f"the list of {largest} videos of a split")
        check_memory(self.render_bytes, f"rendering one video of --frames {self.frames} x --size {self.size}")

    @property
    def render_bytes(self) -> int:
        """Bytes :func:`render_video` allocates at least: the background plate (side P = the
        frame plus the camera's pan margin on each side; a photo plate is cut from a 1.5:1
        float64 RGB image) and the uint8 frames with their bool masks."""
        margin = int(math.ceil(self.size / 128.0 * (self.frames - 1))) + 2 if self.camera else 0
        return int(1.5 * (self.size + 2 * margin) ** 2 * 3 * 8) + self.video_bytes

    @property
    def video_bytes(self) -> int:
        """Bytes one rendered video keeps in memory: (T, S, S, 3) uint8 frames, (T, S, S) bool masks."""
        return self.frames * self.size ** 2 * 4

    @property
    def class_names(self) -> list[str]:
        return list(MOTIONS[: self.classes])

    @property
    def family_names(self) -> list[str]:
        return list(FAMILIES[: self.classes])

    def split_bias(self, split: str) -> float:
        """P(family == class) in ``split``."""
        return {"train": self.bias, "iid": self.bias, "train-unbiased": 1.0 / self.classes,
                "conflict": 0.0}[check_split(split)]

    def split_size(self, split: str) -> int:
        per = self.test_videos_per_class if split in ("iid", "conflict") else self.videos_per_class
        return per * self.classes

    def to_dict(self) -> dict:
        return asdict(self)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise BebiasError(f"unknown split {split!r} of the synthetic benchmark; choose from {', '.join(SPLITS)}")
    return split


@dataclass(frozen=True)
class VideoSpec:
    """Who a video is: its split, index, motion class and background family."""

    split: str
    index: int
    label: int
    family: int

    @property
    def name(self) -> str:
        return f"{self.split}_{self.index:05d}"


@dataclass
class SynthVideo:
    """A rendered video.

    Attributes:
        frames: (T, S, S, 3) uint8 RGB.
        masks: (T, S, S) bool, ground-truth foreground (object incl. its outline).
        spec: class / family / split / index.
        background: (S, S, 3) uint8, the background plate under the first frame's camera
            position (the clean background, without the object).
    """

    frames: np.ndarray
    masks: np.ndarray
    spec: VideoSpec
    background: np.ndarray
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Split composition: which (class, family) pairs a split holds
# --------------------------------------------------------------------------------------

def split_specs(cfg: SynthConfig, split: str) -> list[VideoSpec]:
    """The videos of ``split``: per class, ``round(rho * n)`` videos on the class's own family
    and the rest spread as evenly as possible over the other K-1 families (stratified, so the
    measured bias equals rho up to rounding, and ``train-unbiased`` has exactly n/K videos
    per (class, family) cell when K divides n). Order is shuffled; deterministic in the seed.
    """
    check_split(split)
    K = cfg.classes
    n = cfg.split_size(split) // K
    rho = cfg.split_bias(split)
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), 0xC0FFEE])
    pairs: list[tuple[int, int]] = []
    for c in range(K):
        n_match = int(round(rho * n))
        rest = n - n_match
        others = [f for f in range(K) if f != c]
        counts = [rest // (K - 1)] * (K - 1)
        for j in rng.permutation(K - 1)[: rest % (K - 1)]:
            counts[int(j)] += 1
        fams = [c] * n_match + [f for f, m in zip(others, counts) for _ in range(m)]
        pairs += [(c, f) for f in fams]
    order = rng.permutation(len(pairs))
    return [VideoSpec(split, i, pairs[j][0], pairs[j][1]) for i, j in enumerate(order)]


# --------------------------------------------------------------------------------------
# Foreground object and its motion
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pose:
    cx: float  # centre, pixels (x right, y down)
    cy: float
    angle: float  # radians; positive = clockwise on screen (y points down)
    scale: float


def _trajectory(rng: np.random.Generator, motion: str, T: int, S: int, R: float) -> list[_Pose]:
    """Per-frame poses of the object for ``motion``; the object stays fully inside the frame."""
    theta0 = rng.random() * 2 * math.pi
    m = R * 1.2 + 2.0  # centre margin: object radius + outline + 1 px
    dirs = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1),
            "up-right": (1, -1), "down-left": (-1, 1), "up-left": (-1, -1), "down-right": (1, 1)}
    if motion in dirs:
        dx, dy = dirs[motion]
        span = S - 2 * m
        travel = span * (0.7 + 0.25 * rng.random())  # along each moving axis
        v = travel / (T - 1)

        def axis_start(d: int) -> float:
            lo = m + rng.random() * (span - travel) if d != 0 else m + rng.random() * span
            return lo if d >= 0 else S - lo  # moving left/up: start near the right/bottom

        x0, y0 = axis_start(dx), axis_start(dy)
        return [_Pose(x0 + dx * v * t, y0 + dy * v * t, theta0, 1.0) for t in range(T)]
    cx = m + rng.random() * (S - 2 * m)
    cy = m + rng.random() * (S - 2 * m)
    if motion in ("rotate-cw", "rotate-ccw"):
        w = math.radians(12.0 + 4.0 * rng.random()) * (1 if motion == "rotate-cw" else -1)
        return [_Pose(cx, cy, theta0 + w * t, 1.0) for t in range(T)]
    if motion == "orbit":
        r = S * (0.11 + 0.04 * rng.random())
        cx = m + r + rng.random() * (S - 2 * (m + r))
        cy = m + r + rng.random() * (S - 2 * (m + r))
        w = math.radians(12.0 + 6.0 * rng.random()) * (1 if rng.random() < 0.5 else -1)  # either direction
        p0 = rng.random() * 2 * math.pi
        return [_Pose(cx + r * math.cos(p0 + w * t), cy + r * math.sin(p0 + w * t), theta0, 1.0) for t in range(T)]
    if motion == "zoom":
        amp = 0.35 + 0.1 * rng.random()
        period = 10.0 + 6.0 * rng.random()
        ph = rng.random() * 2 * math.pi
        mz = R * 1.2 * (1 + amp) + 2.0
        cx = mz + rng.random() * (S - 2 * mz)
        cy = mz + rng.random() * (S - 2 * mz)
        return [_Pose(cx, cy, theta0, 1.0 + amp * math.sin(2 * math.pi * t / period + ph)) for t in range(T)]
    raise AssertionError(motion)


def _inside(px: np.ndarray, py: np.ndarray, vx: list[float], vy: list[float]) -> np.ndarray:
    """Even-odd point-in-polygon test; only exactly rounded operations."""
    inside = np.zeros(px.shape, dtype=bool)
    n = len(vx)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n):
            j = (i - 1) % n
            xi, yi, xj, yj = vx[i], vy[i], vx[j], vy[j]
            crosses = (yi > py) != (yj > py)
            if yj != yi:
                crosses &= px < (xj - xi) * (py - yi) / (yj - yi) + xi
            else:
                crosses[:] = False
            inside ^= crosses
    return inside


@dataclass(frozen=True)
class _Object:
    angles: tuple[float, ...]
    radii: tuple[float, ...]  # pixels
    colour_a: tuple[float, ...]
    colour_b: tuple[float, ...]
    stripe_period: float  # pixels
    stripe_angle: float
    outline: float  # outline width, pixels
    outline_colour: tuple[float, ...]


def _make_object(rng: np.random.Generator, R: float, unit: float) -> _Object:
    n = int(rng.integers(3, 8))
    angles = tuple(2 * math.pi * (k + 0.6 * (rng.random() - 0.5)) / n for k in range(n))
    radii = tuple(R * (0.6 + 0.4 * rng.random()) for _ in range(n))
    a, b = two_colours(rng)
    return _Object(angles, radii, tuple(a), tuple(b), (4.0 + 3.0 * rng.random()) * unit,
                   rng.random() * math.pi, 1.25 * unit, (0.0, 0.0, 0.0))


def _polygon(obj: _Object, pose: _Pose, grow: float) -> tuple[list[float], list[float]]:
    vx, vy = [], []
    for a, r in zip(obj.angles, obj.radii):
        rr = (r + grow) * pose.scale
        vx.append(pose.cx + rr * math.cos(a + pose.angle))
        vy.append(pose.cy + rr * math.sin(a + pose.angle))
    return vx, vy


def _render_object(frame: np.ndarray, mask: np.ndarray, obj: _Object, pose: _Pose) -> None:
    """Composite the object onto ``frame`` ((S,S,3) float64, in place) with supersampled
    anti-aliasing, and set ``mask`` ((S,S) bool) where >= half of a pixel is covered."""
    S = frame.shape[0]
    ovx, ovy = _polygon(obj, pose, obj.outline)
    x0, x1 = max(int(math.floor(min(ovx))) - 1, 0), min(int(math.ceil(max(ovx))) + 2, S)
    y0, y1 = max(int(math.floor(min(ovy))) - 1, 0), min(int(math.ceil(max(ovy))) + 2, S)
    if x0 >= x1 or y0 >= y1:
        return
    k = _SUPERSAMPLE
    sub = (np.arange(k, dtype=np.float64) + 0.5) / k
    py = (np.arange(y0, y1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    px = (np.arange(x0, x1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    PY, PX = np.meshgrid(py, px, indexing="ij")  # ((y1-y0)k, (x1-x0)k) sub-pixel sample points
    h, w = y1 - y0, x1 - x0
    # coverage = fraction of a pixel's k*k samples inside the polygon (exact: small integer counts)
    outer = _inside(PX, PY, ovx, ovy).reshape(h, k, w, k).sum(axis=(1, 3), dtype=np.int32) / (k * k)
    inner = _inside(PX, PY, *_polygon(obj, pose, 0.0)).reshape(h, k, w, k).sum(axis=(1, 3), dtype=np.int32) / (k * k)
    # stripes live in the object's frame, so they rotate and scale with it (sampled at pixel centres)
    cy, cx = np.meshgrid(np.arange(y0, y1, dtype=np.float64) + 0.5, np.arange(x0, x1, dtype=np.float64) + 0.5,
                         indexing="ij")
    ang = pose.angle + obj.stripe_angle
    u = ((cx - pose.cx) * math.cos(ang) + (cy - pose.cy) * math.sin(ang)) / (obj.stripe_period * pose.scale)
    stripe = (np.floor(u) % 2.0)[..., None]
    col = np.asarray(obj.colour_a) * (1.0 - stripe) + np.asarray(obj.colour_b) * stripe
    region = frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = (region * (1.0 - outer[..., None]) + col * inner[..., None]
                           + np.asarray(obj.outline_colour) * (outer - inner)[..., None])
    mask[y0:y1, x0:x1] |= outer >= 0.5


# --------------------------------------------------------------------------------------
# A whole video
# --------------------------------------------------------------------------------------

def render_video(cfg: SynthConfig, spec: VideoSpec) -> SynthVideo:
    """Render one video of the benchmark: a pure function of ``(cfg, spec)``."""
    T, S = cfg.frames, cfg.size
    unit = S / 64.0
    rng = np.random.default_rng([cfg.seed, SPLITS.index(spec.split), spec.index, 1])
    # camera: pan at up to 0.5 px/frame in a random direction + integer jitter of <= 1 px
    M = int(math.ceil(0.5 * unit * (T - 1))) + 2 if cfg.camera else 0
    P = S + 2 * M
    plate = background_plate(rng, FAMILIES[spec.family], P, unit)
    if cfg.camera:
        speed = 0.5 * unit * rng.random()
        heading = rng.random() * 2 * math.pi
        vx, vy = speed * math.cos(heading), speed * math.sin(heading)
        jit = rng.integers(-1, 2, size=(T, 2)) * (rng.random((T, 2)) < 0.5)
        offs = [(M + int(round(vy * t)) + int(jit[t, 0]), M + int(round(vx * t)) + int(jit[t, 1])) for t in range(T)]
    else:
        offs = [(0, 0)] * T
    R = S * (_RADIUS[0] + (_RADIUS[1] - _RADIUS[0]) * rng.random())
    obj = _make_object(rng, R, unit)
    poses = _trajectory(rng, MOTIONS[spec.label], T, S, R)
    # outline in black or white, whichever contrasts more with the scene: keeps the object
    # visible on every background without tying its look to the class
    lum = float(plate.mean())
    obj = replace(obj, outline_colour=(0.0, 0.0, 0.0) if lum > 110 else (255.0, 255.0, 255.0))
    frames = np.empty((T, S, S, 3), dtype=np.uint8)
    masks = np.zeros((T, S, S), dtype=bool)
    for t in range(T):
        oy, ox = offs[t]
        frame = plate[oy: oy + S, ox: ox + S].copy()
        _render_object(frame, masks[t], obj, poses[t])
        frames[t] = np.rint(frame).astype(np.uint8)
    oy, ox = offs[0]
    background = np.rint(plate[oy: oy + S, ox: ox + S]).astype(np.uint8)
    meta = {"class_name": MOTIONS[spec.label], "family_name": FAMILIES[spec.family],
            "camera_speed": round(math.hypot(*(vx, vy)), 4) if cfg.camera else 0.0}
    return SynthVideo(frames, masks, spec, background, meta)


class SynthBenchmark:
    """The benchmark in memory: split composition up front, videos rendered on demand.

    Rendered videos are cached (``cache=True``): at the defaults the four splits take about
    0.6 GB of frames + 0.15 GB of masks; a training run touches only its own split.
    """

    def __init__(self, cfg: SynthConfig | None = None, cache: bool = True) -> None:
        self.cfg = cfg or SynthConfig()
        self._specs: dict[str, list[VideoSpec]] = {}
        self._cache: dict[tuple[str, int], SynthVideo] | None = {} if cache else None

    def specs(self, split: str) -> list[VideoSpec]:
        if split not in self._specs:
            self._specs[split] = split_specs(self.cfg, split)
        return self._specs[split]

    def video(self, split: str, index: int) -> SynthVideo:
        if self._cache is not None and (split, index) in self._cache:
            return self._cache[(split, index)]
        v = render_video(self.cfg, self.specs(split)[index])
        if self._cache is not None:
            self._cache[(split, index)] = v
        return v

    def prerender(self, split: str, workers: int = 1) -> None:
        """Render every video of ``split`` now (in ``workers`` processes) into the cache, so
        that forked DataLoader workers share the frames instead of each rendering its own."""
        check_int("workers", workers, 0, MAX_WORKERS)
        if self._cache is None:
            return
        todo = [s for s in self.specs(split) if (split, s.index) not in self._cache]
        check_memory(len(todo) * self.cfg.video_bytes, f"rendering the {len(todo)} videos of split {split!r} "
                     f"(--frames {self.cfg.frames} x --size {self.cfg.size}) in memory",
                     "; write them to disk with `bebias data synth` and give --data that folder")
        if workers > 1 and len(todo) > 16:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers) as pool:
                videos = pool.map(render_video, [self.cfg] * len(todo), todo, chunksize=16)
                for s, v in zip(todo, videos):
                    self._cache[(split, s.index)] = v
        else:
            for s in todo:
                self.video(split, s.index)

    def __getstate__(self) -> dict:  # DataLoader workers re-render instead of copying the cache
        return {**self.__dict__, "_cache": {} if self._cache is not None else None}


def measured_bias(specs: list[VideoSpec]) -> float:
    """Fraction of videos whose background family equals their class."""
    return float(np.mean([s.family == s.label for s in specs])) if specs else float("nan")


def split_summary(cfg: SynthConfig) -> list[dict]:
    """Per split: videos, classes, target and measured bias (no rendering needed)."""
    rows = []
    for split in SPLITS:
        sp = split_specs(cfg, split)
        rows.append({"split": split, "videos": len(sp), "classes": cfg.classes,
                     "target_bias": round(cfg.split_bias(split), 4), "measured_bias": round(measured_bias(sp), 4)})
    return rows

