"""Clip transforms on video tensors, built on ``torchvision.transforms.v2``.

A clip enters as uint8 (T, H, W, 3) numpy (what the decoders return) and leaves as float32
(3, T, H, W), normalised: the layout 3D CNNs take. v2 transforms draw their random
parameters once per call, so a crop, flip or colour jitter is identical across the frames
of a clip (a per-frame jitter would itself be a motion cue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

#: Kinetics-400 statistics, as used by torchvision's video models.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

ClipTransform = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class ClipSpec:
    """What a model takes: ``frames`` frames ``stride`` apart, ``size`` x ``size`` pixels,
    normalised with ``mean``/``std`` (per channel, for values in [0, 1])."""

    frames: int = 16
    stride: int = 1
    size: int = 64
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def to_video_tensor(frames: np.ndarray) -> tv_tensors.Video:
    """(T, H, W, 3) uint8 numpy -> (T, 3, H, W) uint8 ``tv_tensors.Video`` (no copy)."""
    return tv_tensors.Video(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))


class _Pipeline:
    """numpy clip -> v2 transforms on (T,3,H,W) -> normalised float (3,T,H,W)."""

    def __init__(self, ops: Sequence[Callable], mean: Sequence[float], std: Sequence[float]) -> None:
        self.v2 = v2.Compose([*ops, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        out = self.v2(to_video_tensor(frames))
        return out.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


def adjust_hue(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Rotate the hue of a uint8 clip (T, 3, H, W) by ``factor`` turns (in [-0.5, 0.5]).

    OpenCV's 8-bit full-range HSV (hue in 0..255, so the shift wraps around exactly), the
    whole clip as one image: about 12x faster than ``torchvision``'s float HSV round trip on
    small clips, where that one op took most of a training item's augmentation time, and
    within 0.25 grey levels of it on average (at most 4, from 8-bit S and V).
    """
    T, _, H, W = video.shape
    rgb = video.as_subclass(torch.Tensor).permute(0, 2, 3, 1).reshape(T * H, W, 3).contiguous().numpy()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] += np.uint8(round(factor * 256) % 256)  # uint8 arithmetic wraps: a rotation
    out = torch.from_numpy(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)).reshape(T, H, W, 3).permute(0, 3, 1, 2)
    return tv_tensors.wrap(out.contiguous(), like=video) if isinstance(video, tv_tensors.Video) else out.contiguous()


class ColorJitter:
    """``v2.ColorJitter`` for uint8 clips (T, 3, H, W), one draw per clip: brightness, contrast
    and saturation by torchvision's functional ops, hue by :func:`adjust_hue`; factors drawn
    as ``v2.ColorJitter`` draws them (uniform in [1 - x, 1 + x], hue in [-h, h]), applied in
    a random order, from torch's global RNG."""

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float) -> None:
        self.ranges = [(max(0.0, 1 - brightness), 1 + brightness), (max(0.0, 1 - contrast), 1 + contrast),
                       (max(0.0, 1 - saturation), 1 + saturation), (-hue, hue)]
        self.ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, adjust_hue]

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        order = torch.randperm(4).tolist()
        factors = [float(torch.empty(1).uniform_(lo, hi)) for lo, hi in self.ranges]
        for i in order:
            lo, hi = self.ranges[i]
            if hi - lo > 0:
                video = self.ops[i](video, factors[i])
        return video


class TrainTransform:
    """The training augmentation of one clip: numpy (T, H, W, 3) uint8 -> float32 (3, T, size, size).

    Random resized crop (``v2.RandomResizedCrop``'s parameter draw), optional horizontal
    flip, colour jitter (:class:`ColorJitter`) with probability ``p_jitter``, grayscale with
    probability ``p_gray``, then ``(x / 255 - mean) / std``: one draw of each per clip,
    from torch's global RNG. It calls torchvision's functional kernels on plain tensors
    rather than composing ``v2`` transform objects: on the small clips CPU pre-training
    uses (8 x 32 x 32), the containers' per-call dispatch cost more than the pixel work,
    and the data worker competes with the model for the same cores.
    """

    def __init__(self, spec: ClipSpec, *, scale: tuple[float, float] = (0.3, 1.0), hflip: bool = True,
                 jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8,
                 p_gray: float = 0.2) -> None:
        self.size, self.hflip, self.p_jitter, self.p_gray = spec.size, hflip, p_jitter, p_gray
        self.crop = v2.RandomResizedCrop(spec.size, scale=scale, antialias=True)
        self.jitter = ColorJitter(*jitter)
        # (x / 255 - mean) / std = x * a + b, per channel
        self.a = (1.0 / (255.0 * torch.tensor(spec.std))).view(3, 1, 1, 1)
        self.b = (-torch.tensor(spec.mean) / torch.tensor(spec.std)).view(3, 1, 1, 1)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        c = self.crop.make_params([x])
        x = F.resized_crop(x, c["top"], c["left"], c["height"], c["width"], [self.size, self.size], antialias=True)
        if self.hflip and torch.rand(1).item() < 0.5:
            x = F.horizontal_flip(x)
        if self.p_jitter > 0 and torch.rand(1).item() < self.p_jitter:
            x = self.jitter(x)
        if self.p_gray > 0 and torch.rand(1).item() < self.p_gray:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        return torch.addcmul(self.b, x.permute(1, 0, 2, 3).contiguous().float(), self.a)  # (3, T, size, size)


def train_transform(spec: ClipSpec, *, scale: tuple[float, float] = (0.3, 1.0), hflip: bool = True,
                    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8,
                    p_gray: float = 0.2) -> ClipTransform:
    """Random resized crop, optional horizontal flip, colour jitter and grayscale, normalise
    (:class:`TrainTransform`); one draw of each per clip, so every frame gets the same.

    ``hflip`` must be off when left/right is part of the label (the embedded benchmark's
    "left"/"right" and rotation classes; Something-Something-style data).
    """
    return TrainTransform(spec, scale=scale, hflip=hflip, jitter=jitter, p_jitter=p_jitter, p_gray=p_gray)


def eval_transform(spec: ClipSpec, resize: int | None = None) -> ClipTransform:
    """Deterministic: resize the short side to ``resize`` (default ``size``), centre crop, normalise."""
    return _Pipeline([v2.Resize(resize or spec.size, antialias=True), v2.CenterCrop(spec.size)], spec.mean, spec.std)


def denormalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Invert the normalisation of (..., 3, T, H, W) clips back to [0, 1]."""
    m = torch.tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=clip.dtype).view(3, 1, 1, 1)
    return clip * s + m
