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

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from bebias.data.synth_actor import Actor, make_object, render_object, trajectory
from bebias.data.synth_backgrounds import background_plate
from bebias.data.synth_camera import CAMERA_MODELS, draw_camera, margin, view_of
from bebias.data.synth_motion import mean_motion, varied_trajectory, wrap
from bebias.errors import BebiasError
from bebias.limits import MAX_VIDEOS_PER_CLASS, MAX_WORKERS, check_int, check_memory, check_seed
from bebias.seeds import plain  # the benchmark's frozen seed scheme: its pixels are pinned

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
#: with reversal twins: ``train`` plus every video's time-reversed copy, for pre-training only
PRETRAIN = "pretrain"
MAX_CLASSES = len(MOTIONS)
#: the class of each motion played backwards (orbit and zoom are their own reversal)
REVERSED: tuple[int, ...] = tuple(MOTIONS.index(m) for m in (
    "left", "right", "down", "up", "rotate-ccw", "rotate-cw", "orbit", "zoom",
    "down-left", "up-right", "down-right", "up-left"))
#: bytes one entry of a split's video list takes (VideoSpec and its share of the lists; 220 measured)
VIDEO_SPEC_BYTES = 256

_RADIUS = (0.18, 0.24)  # object radius as a fraction of the frame size (polygon vertices at 0.6-1.0 of it)


#: the named settings of ``SynthConfig.version``: every v2 property is a parameter and v1's
#: value is one of its settings (docs/benchmark.md, "Benchmark v2")
VERSIONS: dict[str, dict] = {
    "v1": {"frames": 32, "test_videos_per_class": 64, "conflict_videos_per_class": None, "reversal_twins": False,
           "plates_per_family": 0, "actor_pool": 0, "motion_variation": False, "min_motion": 0.0,
           "camera_model": "pan-jitter"},
    "v2": {"frames": 48, "test_videos_per_class": 64, "conflict_videos_per_class": 256, "reversal_twins": True,
           "plates_per_family": 4, "actor_pool": 32, "motion_variation": True, "min_motion": 1.5,
           "camera_model": "measured"},
}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the benchmark (fixed a priori; see docs/benchmark.md).

    Fields left at ``None`` take the value of the named setting ``version`` (:data:`VERSIONS`);
    any of them can be set on its own.

    Attributes:
        version: ``"v1"`` (the original benchmark, byte-identical to its pinned hash) or ``"v2"``.
        classes: number of motion classes K (= number of scene families), 2..12.
        videos_per_class: videos per class in ``train`` and ``train-unbiased``.
        test_videos_per_class: videos per class in ``iid`` (and in ``conflict`` unless
            ``conflict_videos_per_class`` says otherwise).
        frames: frames per video.
        size: frame height = width, in pixels.
        bias: rho, P(family == class) in ``train`` and ``iid``.
        camera: class-independent camera motion of the background (off: a static shot).
        seed: master seed.
        conflict_videos_per_class: videos per class in ``conflict`` (v1: ``test_videos_per_class``).
        reversal_twins: add the ``pretrain`` split: ``train`` plus every video's time-reversed
            copy as a separate instance (only temporal order tells a twin from its original).
        plates_per_family: background plates per scene family shared by the videos of that
            family (0: every video draws its own plate, v1).
        actor_pool: objects ("actors") shared by all videos independently of class and plate
            (0: every video draws its own, v1).
        motion_variation: per-instance speed, heading and modulation (``bebias.data.synth_motion``).
        min_motion: floor on the object's mean motion between two sampled frames, pixels at
            the model's input (``view_size`` px, every ``view_stride`` frames); 0: none.
        camera_model: ``pan-jitter`` (v1) or ``measured`` (pan, slow zoom and shake at the level
            of real clips, ``bebias.data.synth_camera``).
        view_size, view_stride: the model input that ``min_motion`` and the spins' anti-aliasing
            bound refer to (the default model's 32 px, stride 2).
    """

    classes: int = 8
    videos_per_class: int = 256
    test_videos_per_class: int | None = None
    frames: int | None = None
    size: int = 64
    bias: float = 0.9
    camera: bool = True
    seed: int = 0
    version: str = "v1"
    conflict_videos_per_class: int | None = None
    reversal_twins: bool | None = None
    plates_per_family: int | None = None
    actor_pool: int | None = None
    motion_variation: bool | None = None
    min_motion: float | None = None
    camera_model: str | None = None
    view_size: int = 32
    view_stride: int = 2

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise BebiasError(f"version must be one of {', '.join(VERSIONS)}, got {self.version!r}")
        for k, v in VERSIONS[self.version].items():  # frozen: resolve the named setting in place
            if getattr(self, k) is None:
                object.__setattr__(self, k, v)
        if self.conflict_videos_per_class is None:
            object.__setattr__(self, "conflict_videos_per_class", self.test_videos_per_class)
        if not 2 <= self.classes <= MAX_CLASSES:
            raise BebiasError(f"--classes must be in 2..{MAX_CLASSES}, got {self.classes}")
        if not 0.0 <= self.bias <= 1.0:
            raise BebiasError(f"--bias must be in [0, 1], got {self.bias}")
        if self.frames < 2:
            raise BebiasError(f"--frames must be >= 2, got {self.frames}")
        if self.size < 32 or self.size % 2:
            raise BebiasError(f"--size must be an even number >= 32 pixels (video codecs need even sizes), "
                              f"got {self.size}")
        if self.plates_per_family < 0 or self.actor_pool < 0:
            raise BebiasError("plates_per_family and actor_pool must be >= 0 (0: every video its own)")
        if self.camera_model not in CAMERA_MODELS:
            raise BebiasError(f"camera_model must be one of {', '.join(CAMERA_MODELS)}, got {self.camera_model!r}")
        if self.min_motion < 0 or self.view_size < 1 or self.view_stride < 1:
            raise BebiasError("min_motion must be >= 0, view_size and view_stride >= 1")
        if self.min_motion > 0 and not self.motion_variation:
            raise BebiasError("min_motion needs motion_variation: v1's trajectories cross the frame once and "
                              "cannot be sped up (v2's wrap around it)")
        if self.reversal_twins and any(REVERSED[c] >= self.classes for c in range(self.classes)):
            ok = [k for k in range(2, MAX_CLASSES + 1) if all(REVERSED[c] < k for c in range(k))]
            raise BebiasError(f"reversal_twins needs every class's reversed motion among the classes: --classes "
                              f"in {', '.join(map(str, ok))}, got {self.classes}")
        check_int("--videos-per-class", self.videos_per_class, 1, MAX_VIDEOS_PER_CLASS)
        check_int("--test-videos-per-class", self.test_videos_per_class, 1, MAX_VIDEOS_PER_CLASS)
        check_int("conflict_videos_per_class", self.conflict_videos_per_class, 1, MAX_VIDEOS_PER_CLASS)
        check_seed("--seed", self.seed)
        # the split's list of videos (~220 bytes each, measured) and one video's render buffers
        largest = self.classes * max(self.videos_per_class, self.test_videos_per_class,
                                     self.conflict_videos_per_class)
        check_memory(largest * VIDEO_SPEC_BYTES, f"the list of {largest} videos of a split")
        check_memory(self.render_bytes, f"rendering one video of --frames {self.frames} x --size {self.size}")

    @property
    def render_bytes(self) -> int:
        """Bytes :func:`render_video` allocates at least: the background plate (side P = the
        frame plus the camera's pan margin on each side; a photo plate is cut from a 1.5:1
        float64 RGB image) and the uint8 frames with their bool masks."""
        pad = int(math.ceil(self.size / 128.0 * (self.frames - 1))) + 2 if self.camera else 0
        return int(1.5 * (self.size + 2 * pad) ** 2 * 3 * 8) + self.video_bytes

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

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this configuration has: the four of v1, plus ``pretrain`` with reversal twins."""
        return SPLITS + (PRETRAIN,) if self.reversal_twins else SPLITS

    @property
    def pretrain_split(self) -> str:
        """The split self-supervised pre-training reads: ``pretrain`` with twins, else ``train``."""
        return PRETRAIN if self.reversal_twins else "train"

    def split_bias(self, split: str) -> float:
        """P(family == class) in ``split``."""
        split = check_split(split, self)
        if split == PRETRAIN:
            return float("nan")  # twins of matched videos are reversed motions: no single rho
        return {"train": self.bias, "iid": self.bias, "train-unbiased": 1.0 / self.classes,
                "conflict": 0.0}[split]

    def split_size(self, split: str) -> int:
        if split == PRETRAIN:
            return 2 * self.videos_per_class * self.classes
        per = {"iid": self.test_videos_per_class, "conflict": self.conflict_videos_per_class}.get(
            split, self.videos_per_class)
        return per * self.classes

    def to_dict(self) -> dict:
        return asdict(self)


def check_split(split: str, cfg: SynthConfig | None = None) -> str:
    """``split`` if ``cfg`` (default: any configuration's four splits) has it, else a user error."""
    have = cfg.splits if cfg is not None else SPLITS
    if split not in have:
        extra = f" ({PRETRAIN!r} exists with reversal_twins)" if split == PRETRAIN else ""
        raise BebiasError(f"unknown split {split!r} of the synthetic benchmark; choose from {', '.join(have)}{extra}")
    return split


@dataclass(frozen=True)
class VideoSpec:
    """Who a video is: its split, index, motion class and background family; with pools, which
    plate of its family and which actor it shows; in ``pretrain``, which ``train`` video it
    renders (``source``) and whether time runs backwards (``reverse``, a reversal twin)."""

    split: str
    index: int
    label: int
    family: int
    plate: int = -1  # -1: the video's own plate (no pool)
    actor: int = -1  # -1: the video's own actor (no pool)
    source: int = -1  # pretrain only: the index in train
    reverse: bool = False

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

    ``pretrain`` (reversal twins): the ``train`` videos, then their time-reversed twins in the
    same order (the twin of ``i`` is ``N + i``, labelled with the reversed motion's class).
    With pools, :func:`assign_pools` gives each video a plate and an actor.
    """
    check_split(split, cfg)
    if split == PRETRAIN:
        train = split_specs(cfg, "train")
        N = len(train)
        return ([replace(s, split=PRETRAIN, source=s.index) for s in train]
                + [replace(s, split=PRETRAIN, index=N + s.index, label=REVERSED[s.label], source=s.index, reverse=True)
                   for s in train])
    K = cfg.classes
    n = cfg.split_size(split) // K
    rho = cfg.split_bias(split)
    rng = np.random.default_rng(plain(cfg.seed, SPLITS.index(split), 0xC0FFEE))
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
    specs = [VideoSpec(split, i, pairs[j][0], pairs[j][1]) for i, j in enumerate(order)]
    return assign_pools(cfg, specs) if cfg.plates_per_family or cfg.actor_pool else specs


def assign_pools(cfg: SynthConfig, specs: list[VideoSpec]) -> list[VideoSpec]:
    """Plates and actors from the pools, so that neither names an instance: the videos of
    each family are shuffled and taken two by two (three for an odd one out), and each such
    group shares one plate of the family (the family's plates in turn) and one actor (the
    pool's actors in turn, one family after the other from a random first actor). Every (plate, actor) pair a split uses
    is therefore used by at least two of its videos; a family with at least as many groups
    as the pool has actors shows every actor; the shuffle makes actors independent of class.
    Its own generator: v1's draws are untouched."""
    rng = np.random.default_rng(plain(cfg.seed, SPLITS.index(specs[0].split), 0x9001))
    groups: list[tuple[int, list[int]]] = []  # (family, video indices)
    for f in range(cfg.classes):
        members = [s.index for s in specs if s.family == f]
        members = [members[int(j)] for j in rng.permutation(len(members))]
        g = [members[i: i + 2] for i in range(0, len(members), 2)]
        if len(g) > 1 and len(g[-1]) == 1:  # the odd one out joins the last pair
            last = g.pop()
            g[-1] = g[-1] + last
        groups += [(f, m) for m in g]
    plate: dict[int, int] = {}
    actor: dict[int, int] = {}
    seen: dict[int, int] = {}  # groups of each family so far
    # each family's groups take the pool's actors in turn, the families one after another from a
    # random first actor: balanced over the split, and a family of >= pool groups shows them all
    count = Counter(f for f, _ in groups)
    start = np.cumsum([0] + [count[f] for f in range(cfg.classes - 1)]) + int(rng.integers(max(cfg.actor_pool, 1)))
    for gi in rng.permutation(len(groups)):
        f, members = groups[int(gi)]
        j = seen.get(f, 0)
        for i in members:
            plate[i] = j % cfg.plates_per_family if cfg.plates_per_family else -1
            actor[i] = int(start[f] + j) % cfg.actor_pool if cfg.actor_pool else -1
        seen[f] = j + 1
    return [replace(s, plate=plate[s.index], actor=actor[s.index]) for s in specs]


# --------------------------------------------------------------------------------------
# A whole video
# --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _pool_plate(seed: int, family: int, plate: int, P: int, unit: float) -> np.ndarray:
    """Plate ``plate`` of ``family``'s pool: (P, P, 3) float64, read-only (shared by videos)."""
    out = background_plate(np.random.default_rng(plain(seed, 0xB1A7E, family, plate)), FAMILIES[family], P, unit)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class _Scene:
    plate: np.ndarray  # (P, P, 3) float64
    views: list  # per frame (y, x, zoom), bebias.data.synth_camera
    speed: float  # camera pan, px/frame


@dataclass(frozen=True)
class _Layout:
    """Everything about a video but its pixels."""

    scene: _Scene
    obj: Actor
    poses: list  # per frame, as rendered (wrapped)
    motion_px: float  # mean object motion per sampled frame at the model's input (poses unwrapped)


def _layout(cfg: SynthConfig, spec: VideoSpec) -> _Layout:
    """Plate, camera, actor and trajectory of a ``train``/``train-unbiased``/``iid``/``conflict``
    video, drawn from its own generator in v1's order (plate, camera, actor, motion)."""
    T, S = cfg.frames, cfg.size
    unit = S / 64.0
    rng = np.random.default_rng(plain(cfg.seed, SPLITS.index(spec.split), spec.index, 1))
    M = margin(cfg.camera_model, T, unit, cfg.camera)
    P = S + 2 * M
    if spec.plate >= 0:
        plate = _pool_plate(cfg.seed, spec.family, spec.plate, P, unit)
    else:
        plate = background_plate(rng, FAMILIES[spec.family], P, unit)
    views, speed = draw_camera(rng, cfg.camera_model, T, unit, M) if cfg.camera else ([(0.0, 0.0, 1.0)] * T, 0.0)
    arng = np.random.default_rng(plain(cfg.seed, 0xAC7, spec.actor)) if spec.actor >= 0 else rng
    R = S * (_RADIUS[0] + (_RADIUS[1] - _RADIUS[0]) * arng.random())
    obj = make_object(arng, R, unit)
    scale = S / cfg.view_size  # frame px per input px
    if cfg.motion_variation:
        poses, wraps = varied_trajectory(rng, MOTIONS[spec.label], T, S, R, obj.angles, obj.radii,
                                         cfg.min_motion * scale, cfg.view_stride)
    else:
        poses, wraps = trajectory(rng, MOTIONS[spec.label], T, S, R), False
    motion_px = mean_motion(poses, obj.angles, obj.radii, cfg.view_stride) / scale
    if wraps:
        poses = wrap(poses, S, max(obj.radii) + obj.outline + 1.0)
    return _Layout(_Scene(plate, views, speed), obj, poses, motion_px)


def _source(spec: VideoSpec) -> VideoSpec:
    """The ``train`` video a ``pretrain`` video renders (a twin: with its original motion class)."""
    return replace(spec, split="train", index=spec.source, label=REVERSED[spec.label] if spec.reverse else spec.label,
                   source=-1, reverse=False)


def render_frames(cfg: SynthConfig, spec: VideoSpec, frames: Sequence[int] | None = None,
                  scene_of: VideoSpec | None = None) -> SynthVideo:
    """Render frames ``frames`` (default: all) of a video: a pure function of its arguments.

    ``scene_of``: show this video's actor and motion on ANOTHER video's plate and camera (the
    actor-swap oracle of pre-training); its ``background`` is that other scene's.
    """
    T, S = cfg.frames, cfg.size
    src = _source(spec) if spec.split == PRETRAIN else spec
    lay = _layout(cfg, src)
    scene = _layout(cfg, _source(scene_of) if scene_of.split == PRETRAIN else scene_of).scene \
        if scene_of is not None else lay.scene
    # outline in black or white, whichever contrasts more with the scene: keeps the object
    # visible on every background without tying its look to the class
    lum = float(scene.plate.mean())
    obj = replace(lay.obj, outline_colour=(0.0, 0.0, 0.0) if lum > 110 else (255.0, 255.0, 255.0))
    idx = list(range(T)) if frames is None else [int(t) for t in frames]
    at = [T - 1 - t if spec.reverse else t for t in idx]  # a reversal twin plays its source backwards
    out = np.empty((len(idx), S, S, 3), dtype=np.uint8)
    masks = np.zeros((len(idx), S, S), dtype=bool)
    for k, t in enumerate(at):
        frame = view_of(scene.plate, scene.views[t], S)
        render_object(frame, masks[k], obj, lay.poses[t])
        out[k] = np.rint(frame).astype(np.uint8)
    background = np.rint(view_of(scene.plate, scene.views[T - 1 if spec.reverse else 0], S)).astype(np.uint8)
    meta = {"class_name": MOTIONS[spec.label], "family_name": FAMILIES[spec.family],
            "camera_speed": round(scene.speed, 4) if cfg.camera else 0.0, "motion_px": round(lay.motion_px, 4),
            "plate": spec.plate, "actor": spec.actor}
    return SynthVideo(out, masks, spec, background, meta)


def render_video(cfg: SynthConfig, spec: VideoSpec) -> SynthVideo:
    """Render one video of the benchmark: a pure function of ``(cfg, spec)``."""
    return render_frames(cfg, spec)


def oracle_partner(cfg: SynthConfig, specs: list[VideoSpec], index: int) -> VideoSpec:
    """The video whose plate and camera the actor-swap oracle puts video ``index``'s actor on:
    fixed per (seed, split, index), another video of another scene family where the split has one."""
    rng = np.random.default_rng(plain(cfg.seed, cfg.splits.index(specs[index].split), index, 0x0AC1E))
    n = len(specs)
    start = int(rng.integers(n))
    for k in range(n):
        j = (start + k) % n
        if j != index and specs[j].family != specs[index].family:
            return specs[j]
    return specs[(index + 1) % n]


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
        spec = self.specs(split)[index]
        if split == PRETRAIN:  # the train video itself, or a reversed view of it: no second copy
            base = self.video("train", spec.source)
            if spec.reverse:
                bg = render_frames(self.cfg, spec, frames=[]).background  # under the twin's first view
                v = SynthVideo(base.frames[::-1], base.masks[::-1], spec, bg,
                               {**base.meta, "class_name": MOTIONS[spec.label], "reversed": True})
            else:
                v = SynthVideo(base.frames, base.masks, spec, base.background, base.meta)
        else:
            v = render_video(self.cfg, spec)
        if self._cache is not None:
            self._cache[(split, index)] = v
        return v

    def actor_swap(self, split: str, index: int, frames: Sequence[int]) -> np.ndarray:
        """(len(frames), S, S, 3) uint8: video ``index``'s actor and motion on the plate and
        camera of :func:`oracle_partner` (rendered on demand, not cached)."""
        specs = self.specs(split)
        return render_frames(self.cfg, specs[index], frames, scene_of=oracle_partner(self.cfg, specs, index)).frames

    def prerender(self, split: str, workers: int = 1) -> None:
        """Render every video of ``split`` now (in ``workers`` processes) into the cache, so
        that forked DataLoader workers share the frames instead of each rendering its own."""
        check_int("workers", workers, 0, MAX_WORKERS)
        if self._cache is None:
            return
        if split == PRETRAIN:
            self.prerender("train", workers)
        todo = [s for s in self.specs(split) if (split, s.index) not in self._cache]
        check_memory(len(todo) * self.cfg.video_bytes, f"rendering the {len(todo)} videos of split {split!r} "
                     f"(--frames {self.cfg.frames} x --size {self.cfg.size}) in memory",
                     "; write them to disk with `bebias data synth` and give --data that folder")
        if workers > 1 and len(todo) > 16 and split != PRETRAIN:
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
    for split in cfg.splits:
        sp = split_specs(cfg, split)
        rows.append({"split": split, "videos": len(sp), "classes": cfg.classes,
                     "target_bias": round(cfg.split_bias(split), 4), "measured_bias": round(measured_bias(sp), 4)})
    return rows

