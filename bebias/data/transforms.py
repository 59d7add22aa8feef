"""Clip transforms on video tensors, built on ``torchvision.transforms.v2``.

A clip enters as uint8 (T, H, W, 3) numpy (what the decoders return) and leaves as float32
(3, T, H, W), normalised: the layout 3D CNNs take. v2 transforms draw their random
parameters once per call, so a crop, flip or colour jitter is identical across the frames
of a clip (a per-frame jitter would itself be a motion cue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from bebias.limits import OptionError, check_int, check_memory, clip_bytes

#: Kinetics-400 statistics, as used by torchvision's video models.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

ClipTransform = Callable[[np.ndarray], torch.Tensor]

#: the most frames one clip may span, (frames - 1) x stride + 1: over 5 minutes at 30 fps,
#: far beyond any clip model's input; a larger span is a typo (--stride 1000000000)
MAX_CLIP_SPAN = 10_000


def check_clip_span(frames: object, stride: object) -> int:
    """``frames`` and ``stride`` integers >= 1 whose clip spans at most :data:`MAX_CLIP_SPAN`
    frames; returns the span ``(frames - 1) * stride + 1``, else :class:`~bebias.limits.OptionError`."""
    check_int("--frames", frames)
    check_int("--stride", stride)
    span = (frames - 1) * stride + 1  # type: ignore[operator]
    if span > MAX_CLIP_SPAN:  # a short video loops its clip: the frames would repeat, not span
        raise OptionError(f"a clip of --frames {frames} x --stride {stride} spans {span} frames, more "
                          f"than {MAX_CLIP_SPAN} (over 5 minutes at 30 fps); lower --stride or --frames")
    return span


@dataclass(frozen=True)
class ClipSpec:
    """What a model takes: ``frames`` frames ``stride`` apart, ``size`` x ``size`` pixels,
    normalised with ``mean``/``std`` (per channel, for values in [0, 1])."""

    frames: int = 16
    stride: int = 1
    size: int = 64
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    #: evaluation: short side (pixels) the frames are resized to before the ``size`` centre
    #: crop (e.g. torchvision's 128 -> 112); 0 = ``size`` itself
    resize: int = 0

    def __post_init__(self) -> None:
        """Refuse (:class:`~bebias.limits.OptionError`, also a ``ValueError``) a spec no clip can
        have: counts below 1, a clip longer than :data:`MAX_CLIP_SPAN` frames, one clip larger
        than this machine's memory, or not three finite means and three stds > 0."""
        check_clip_span(self.frames, self.stride)
        check_int("--size", self.size)
        check_int("resize", self.resize, 0)
        check_memory(clip_bytes(self.frames, max(self.size, self.resize)),
                     f"one clip of --frames {self.frames} x --size {max(self.size, self.resize)}")
        for name, v in (("mean", self.mean), ("std", self.std)):
            if (not isinstance(v, (tuple, list)) or len(v) != 3
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                raise OptionError(f"--{name} must be 3 numbers (R,G,B), got {v!r}")
        # a zero (or NaN) std divides every pixel into inf/NaN: the model would score nothing
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)) or min(self.std) <= 0:
            raise OptionError(f"--mean must be finite and --std > 0 (got mean {list(self.mean)}, "
                              f"std {list(self.std)})")

    def to_dict(self) -> dict:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if not self.resize:
            del d["resize"]  # specs written before the field existed stay byte-identical
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ClipSpec":
        """A spec from its :meth:`to_dict` form (lists for mean/std); unknown keys or bad
        values raise :class:`ValueError` with the reason."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown input-spec key(s) {', '.join(unknown)}; keys: {', '.join(sorted(known))}")
        kw = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v for k, v in d.items()}
        return cls(**kw)  # __post_init__ checks the values


def to_video_tensor(frames: np.ndarray) -> tv_tensors.Video:
    """(T, H, W, 3) uint8 numpy -> (T, 3, H, W) uint8 ``tv_tensors.Video`` (no copy)."""
    return tv_tensors.Video(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))


# ITU-R 601 luma weights as torchvision uses them (rgb_to_grayscale, contrast, saturation)
_LUMA = np.array([0.2989, 0.587, 0.114], np.float32)
_TO_GRAY = np.tile(_LUMA, (3, 1))  # 3x3: every output channel = luma


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """``x * factor``, saturated to [0, 255]. ``img``: uint8 (N, W, 3) (frames stacked along N)."""
    return cv2.convertScaleAbs(img, alpha=factor)


def adjust_contrast(img: np.ndarray, factor: float, frames: int) -> np.ndarray:
    """Blend each frame with its mean luma: ``factor * x + (1 - factor) * mean`` (torchvision's
    contrast for videos, whose mean is per frame). ``img``: uint8 (T*H, W, 3)."""
    per_frame = img.reshape(frames, -1, 1, 3)  # each frame an (H*W) x 1 three-channel image
    means = np.array([cv2.mean(f)[:3] for f in per_frame], np.float32) @ _LUMA  # (T,) mean luma per frame
    # per frame the op is a map of the 256 grey levels: one lookup table each
    levels = factor * np.arange(256, dtype=np.float32)[None] + ((1.0 - factor) * means)[:, None]
    luts = np.clip(np.rint(levels), 0, 255).astype(np.uint8)  # (T, 256)
    out = np.empty_like(per_frame)
    for t in range(frames):
        cv2.LUT(per_frame[t], luts[t], dst=out[t])
    return out.reshape(img.shape)


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend each pixel with its luma: ``factor * x + (1 - factor) * luma(x)`` (one 3x3 colour
    matrix). ``img``: uint8 (N, W, 3)."""
    return cv2.transform(img, factor * np.eye(3, dtype=np.float32) + (1.0 - factor) * _TO_GRAY)


def adjust_hue(img: np.ndarray, factor: float) -> np.ndarray:
    """Rotate the hue by ``factor`` turns (in [-0.5, 0.5]) in OpenCV's 8-bit full-range HSV
    (hue in 0..255, so the shift wraps around exactly). ``img``: uint8 (N, W, 3) RGB."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] += np.uint8(round(factor * 256) % 256)  # uint8 arithmetic wraps: a rotation
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def to_grayscale(img: np.ndarray) -> np.ndarray:
    """Luma in all three channels. ``img``: uint8 (N, W, 3)."""
    return cv2.transform(img, _TO_GRAY)


class ColorJitter:
    """``v2.ColorJitter`` for a uint8 clip, one draw per clip: factors uniform in
    [1 - x, 1 + x] (hue in [-h, h]) as ``v2.ColorJitter`` draws them, applied in a random
    order. The clip is (T*H, W, 3): frames stacked as one image, so each op is one OpenCV
    call over the whole clip.

    ``__call__`` takes its randomness as ``u``: 8 uniforms in [0, 1) (4 that order the ops,
    4 for the factors), so the caller decides where they come from.
    """

    DRAWS = 8

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float) -> None:
        self.ranges = [(max(0.0, 1 - brightness), 1 + brightness), (max(0.0, 1 - contrast), 1 + contrast),
                       (max(0.0, 1 - saturation), 1 + saturation), (-hue, hue)]

    def __call__(self, img: np.ndarray, frames: int, u: Sequence[float]) -> np.ndarray:
        order = sorted(range(4), key=lambda k: u[k])  # a uniformly random permutation
        for i in order:
            img = self.apply(img, i, u[4 + i], frames)
        return img

    def apply(self, img: np.ndarray, op: int, u: float, frames: int) -> np.ndarray:
        """Op ``op`` (0 brightness, 1 contrast, 2 saturation, 3 hue) with the factor at
        uniform ``u`` of its range; an empty range leaves ``img`` as it is."""
        lo, hi = self.ranges[op]
        if hi - lo <= 0:
            return img
        f = lo + (hi - lo) * u
        if op == 0:
            return adjust_brightness(img, f)
        if op == 1:
            return adjust_contrast(img, f, frames)
        if op == 2:
            return adjust_saturation(img, f)
        return adjust_hue(img, f)


#: uniforms one random resized crop consumes: 10 attempts x (area, log aspect, top, left)
CROP_DRAWS = 40


def random_resized_crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                            u: Sequence[float]) -> tuple[int, int, int, int]:
    """``v2.RandomResizedCrop``'s box draw as a pure function of ``CROP_DRAWS`` uniforms ``u``.

    Up to 10 attempts: area fraction ~ U(scale), aspect ratio log-uniform in ``ratio``; the
    first box that fits is placed uniformly; else the centre crop clamped to ``ratio``.
    Returns (top, left, box height, box width) in pixels.
    """
    area = height * width
    lr0, lr1 = math.log(ratio[0]), math.log(ratio[1])
    for k in range(10):
        a, r, ut, ul = u[4 * k: 4 * k + 4]
        target = area * (scale[0] + (scale[1] - scale[0]) * a)
        aspect = math.exp(lr0 + (lr1 - lr0) * r)
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return min(int(ut * (height - h + 1)), height - h), min(int(ul * (width - w + 1)), width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(frames: np.ndarray, top: int, left: int, height: int, width: int, size: int) -> np.ndarray:
    """Crop every frame of uint8 (T, H, W, 3) to the box and resize it to uint8 (T, size, size, 3)
    with PyTorch's antialiased bilinear kernel (torchvision's resize; its uint8 path is faster
    than OpenCV's area resampling and does not alias when shrinking, unlike OpenCV's bilinear)."""
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + height, left:left + width]))
    x = torch.nn.functional.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


class TrainTransform:
    """The training augmentation of one clip: numpy (T, H, W, 3) uint8 -> float32 (3, T, size, size),
    or with ``normalize=False`` uint8 (3, T, size, size) to normalise later with :func:`normalize`.

    Random resized crop (:func:`random_resized_crop_box`, torchvision's draw), optional
    horizontal flip, colour jitter (:class:`ColorJitter`) with probability ``p_jitter``,
    grayscale with probability ``p_gray``, then ``(x / 255 - mean) / std``: one draw of each
    per clip, so every frame gets the same. All its randomness is ONE ``torch.rand`` call
    on torch's global generator (which the dataset seeds per item).

    The colour work runs in OpenCV on the uint8 clip, each op one call over all frames:
    with the crop, about 4x faster than composing torchvision's tensor kernels on the
    small clips CPU pre-training uses (8 x 32 x 32), which matters because the data worker
    competes with the model for the same cores (the trainers also leave the normalisation to
    the training step, on the whole batch on its device: a quarter of the bytes cross the
    worker boundary, and on a GPU it is free). The colour ops agree with torchvision's to
    about one grey level (OpenCV rounds where torchvision truncates; tests/test_transforms.py).
    """

    def __init__(self, spec: ClipSpec, *, scale: tuple[float, float] = (0.3, 1.0), hflip: bool = True,
                 jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8,
                 p_gray: float = 0.2, ratio: tuple[float, float] = (3 / 4, 4 / 3), normalize: bool = True) -> None:
        self.spec, self.size, self.hflip, self.p_jitter, self.p_gray = spec, spec.size, hflip, p_jitter, p_gray
        self.scale, self.ratio, self.normalize = scale, ratio, normalize
        self.jitter = ColorJitter(*jitter)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        T, H, W, _ = frames.shape
        u = torch.rand(CROP_DRAWS + 3 + ColorJitter.DRAWS, dtype=torch.float64).tolist()
        top, left, h, w = random_resized_crop_box(H, W, self.scale, self.ratio, u[:CROP_DRAWS])
        flip, jit, gray = u[CROP_DRAWS: CROP_DRAWS + 3]
        img = resized_crop(frames, top, left, h, w, self.size).reshape(T * self.size, self.size, 3)
        if self.hflip and flip < 0.5:
            img = cv2.flip(img, 1)  # mirrors each row, so each frame
        if jit < self.p_jitter:
            img = self.jitter(img, T, u[CROP_DRAWS + 3:])
        if gray < self.p_gray:
            img = to_grayscale(img)
        x = torch.from_numpy(np.ascontiguousarray(img)).view(T, self.size, self.size, 3).permute(3, 0, 1, 2)
        return normalize(x, self.spec) if self.normalize else x.contiguous()  # (3, T, size, size)


#: FingerRec/BE's colour jitter (brightness, contrast, saturation, hue): src/Contrastive/data/config.py:74
OFFICIAL_JITTER = (0.5, 0.5, 0.25, 0.5)


def official_resize(size: int) -> int:
    """The short side FingerRec/BE resizes to before its random crop: 256 for 224 crops, 128
    for 112 (src/Contrastive/data/config.py:57-61); other sizes in the same ratio 8/7."""
    return int(round(size * 256 / 224))


def rotate_frames(frames: np.ndarray, angle: float, top: int = 0, left: int = 0,
                  height: int | None = None, width: int | None = None) -> np.ndarray:
    """Rotate every frame of uint8 (T, H, W, 3) by ``angle`` degrees counter-clockwise about
    its centre, as PIL's ``Image.rotate(angle)`` (nearest neighbour, same frame size, black
    corners), and return the window ``[top:top+height, left:left+width]`` of the result,
    (T, height, width, 3) (default: the whole frame). Computing only the window is exact
    (nearest neighbour reads each output pixel on its own)."""
    T, H, W, C = frames.shape
    height, width = H if height is None else height, W if width is None else width
    # output pixel -> source pixel (pixel centres at integers, so PIL's centre (W/2, H/2) is ((W-1)/2, (H-1)/2))
    inv = cv2.invertAffineTransform(cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), angle, 1.0))
    inv[:, 2] += inv[:, :2] @ np.array([left, top], np.float64)  # start at the window's corner
    out = np.empty((T, height, width, C), np.uint8)
    for t in range(T):
        cv2.warpAffine(frames[t], inv, (width, height), dst=out[t],
                       flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


class OfficialTransform:
    """FingerRec/BE's training augmentation of one clip (src/Contrastive/data/config.py:66-79,
    the classes in src/Contrastive/augment/video_transformations/video_transform_PIL_or_np.py),
    numpy (T, H, W, 3) uint8 -> float32 (3, T, size, size), or uint8 with ``normalize=False``:

    1. rotation by an angle ~ U(-``degrees``, ``degrees``) (PIL ``rotate``: nearest, black
       corners), on the decoded frame;
    2. short side resized to :func:`official_resize` (256 for 224 crops), the other side
       ``int(256 * long / short)``, bilinear with antialiasing as PIL's; skipped when the
       short side already has that length (their ``resize_clip``; their ``'nearest'``
       default maps to PIL's BILINEAR);
    3. a ``size`` x ``size`` crop at a uniformly random position;
    4. colour jitter with ``jitter`` = (0.5, 0.5, 0.25, 0.5), factors drawn as theirs. Their
       ``ColorJitter.__call__`` applies each op to the *original* frame and keeps the last
       result (``jittered_img = func(img)`` in the loop over the shuffled ops), so exactly
       ONE of brightness / contrast / saturation / hue, uniformly chosen, changes the clip:
       that is what this does too (probability 1, no grayscale, no flip).

    One draw of each per clip, so every frame gets the same. All randomness is ONE
    ``torch.rand`` call on torch's global generator (which the dataset seeds per item).
    The crop size and resize length scale with ``spec.size``; the colour ops are the ones
    :class:`TrainTransform` uses (within a grey level of torchvision's PIL kernels).
    """

    DRAWS = 5  # angle, crop top, crop left, which colour op, its factor

    def __init__(self, spec: ClipSpec, *, degrees: float = 10.0,
                 jitter: tuple[float, float, float, float] = OFFICIAL_JITTER, normalize: bool = True) -> None:
        self.spec, self.size, self.degrees, self.normalize = spec, spec.size, degrees, normalize
        self.resize = official_resize(spec.size)
        self.jitter = ColorJitter(*jitter)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        T, H, W, _ = frames.shape
        S = self.size
        u = torch.rand(self.DRAWS, dtype=torch.float64).tolist()
        angle = self.degrees * (2 * u[0] - 1)
        short = min(H, W)
        if short == self.resize:  # no resize: rotate only the crop window
            top, left = int(u[1] * (H - S + 1)), int(u[2] * (W - S + 1))
            img = rotate_frames(frames, angle, top, left, S, S)
        else:
            rh, rw = (self.resize, int(self.resize * W / H)) if H <= W else (int(self.resize * H / W), self.resize)
            x = torch.from_numpy(rotate_frames(frames, angle)).permute(0, 3, 1, 2)
            x = torch.nn.functional.interpolate(x, size=(rh, rw), mode="bilinear", antialias=True,
                                                align_corners=False)
            top, left = int(u[1] * (rh - S + 1)), int(u[2] * (rw - S + 1))
            img = x[:, :, top:top + S, left:left + S].permute(0, 2, 3, 1).contiguous().numpy()
        img = img.reshape(T * S, S, 3)
        img = self.jitter.apply(img, min(int(u[3] * 4), 3), u[4], T)  # the one op that survives their loop
        x = torch.from_numpy(np.ascontiguousarray(img)).view(T, S, S, 3).permute(3, 0, 1, 2)
        return normalize(x, self.spec) if self.normalize else x.contiguous()  # (3, T, size, size)


#: the augmentations ``train_transform`` offers (``--augment``)
AUGMENTS = ("default", "official")


def normalize(clips: torch.Tensor, spec: ClipSpec) -> torch.Tensor:
    """uint8 (or [0, 255] float) clips (..., 3, T, H, W) -> float32 ``(x / 255 - mean) / std``,
    on the clips' device."""
    std = torch.tensor(spec.std, device=clips.device)
    a = (1.0 / (255.0 * std)).view(3, 1, 1, 1)
    b = (-torch.tensor(spec.mean, device=clips.device) / std).view(3, 1, 1, 1)
    return torch.addcmul(b, clips.float(), a)


def normalize_frames(frames: torch.Tensor, spec: ClipSpec) -> torch.Tensor:
    """uint8 frames (..., T, H, W, 3), as decoded -> contiguous float32 model input
    (..., 3, T, H, W), ``(x / 255 - mean) / std``, on the frames' device: the layout change
    and the normalisation in one pass over the output."""
    x = frames.movedim(-1, -4)
    std = torch.tensor(spec.std, device=frames.device)
    a = (1.0 / (255.0 * std)).view(3, 1, 1, 1)
    b = (-torch.tensor(spec.mean, device=frames.device) / std).view(3, 1, 1, 1)
    return torch.addcmul(b, x.float(), a, out=torch.empty(x.shape, dtype=torch.float32, device=frames.device))


def train_transform(spec: ClipSpec, *, scale: tuple[float, float] = (0.3, 1.0), hflip: bool = True,
                    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8,
                    p_gray: float = 0.2, normalize: bool = True, augment: str = "default") -> ClipTransform:
    """Random resized crop, optional horizontal flip, colour jitter and grayscale, normalise
    (:class:`TrainTransform`); one draw of each per clip, so every frame gets the same.

    ``hflip`` must be off when left/right is part of the label (the embedded benchmark's
    "left"/"right" and rotation classes; Something-Something-style data).

    ``augment="official"``: FingerRec/BE's augmentation instead (:class:`OfficialTransform`:
    rotation, resize, random crop, their colour jitter; no flip); the other arguments but
    ``normalize`` do not apply to it.
    """
    if augment == "official":
        return OfficialTransform(spec, normalize=normalize)
    if augment != "default":
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    return TrainTransform(spec, scale=scale, hflip=hflip, jitter=jitter, p_jitter=p_jitter, p_gray=p_gray,
                          normalize=normalize)


class EvalTransform:
    """Deterministic: resize the short side (torchvision's antialiased bilinear on uint8),
    centre crop ``spec.size``, then normalise.

    numpy (T, H, W, 3) uint8 -> float32 (3, T, size, size).

    With ``normalize=False`` the clip stays uint8 in the decoder's layout, (T, size, size, 3),
    for :func:`normalize_frames` on the model's device (a quarter of the bytes through the
    loader, and the layout change and float work where the model runs, as training does).
    The pixels are the same as the normalised path's. In that mode the transform writes
    into a given buffer (:meth:`into`), and a :class:`~bebias.data.dataset.ClipDataset`
    decodes a video whose frames already have the output size (:meth:`passes_through`)
    straight into the batch, as it does raw clips.
    """

    def __init__(self, spec: ClipSpec, resize: int | None = None, normalize: bool = True) -> None:
        self.spec, self.normalize = spec, normalize
        self.short = resize or spec.resize or spec.size
        self.ops = v2.Compose([v2.Resize(self.short, antialias=True), v2.CenterCrop(spec.size)])

    @property
    def writes_frames(self) -> bool:
        """Whether the output is uint8 (T, size, size, 3) frames (``normalize=False``)."""
        return not self.normalize

    def passes_through(self, h: int, w: int) -> bool:
        """Whether frames of h x w pixels come out unchanged (already resized and cropped)."""
        return h == w == self.spec.size == self.short

    def into(self, frames: np.ndarray, out: np.ndarray) -> None:
        """Resize and crop (T, H, W, 3) uint8 ``frames`` into ``out``, (T, size, size, 3) uint8."""
        if self.passes_through(*frames.shape[1:3]):
            if out is not frames:
                np.copyto(out, frames)
            return
        y = self.ops(to_video_tensor(frames)).as_subclass(torch.Tensor)  # (T, 3, size, size)
        torch.from_numpy(out).copy_(y.permute(0, 2, 3, 1))

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        if not self.normalize:
            S = self.spec.size
            out = np.empty((len(frames), S, S, 3), np.uint8)
            self.into(frames, out)
            return torch.from_numpy(out)
        out = self.ops(to_video_tensor(frames)).as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()
        return normalize(out, self.spec)


def eval_transform(spec: ClipSpec, resize: int | None = None, normalize: bool = True) -> ClipTransform:
    """:class:`EvalTransform`: resize the short side to ``resize`` (default ``spec.resize``,
    else ``spec.size``), centre crop ``spec.size``; normalised unless ``normalize=False``
    (then uint8 (T, size, size, 3) frames for :func:`normalize_frames`)."""
    return EvalTransform(spec, resize, normalize)
