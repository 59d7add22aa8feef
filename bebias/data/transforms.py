"""Clip transforms on video tensors, built on ``torchvision.transforms.v2``.

A clip enters as uint8 (T, H, W, 3) numpy (what the decoders return) and leaves as float32
(3, T, H, W), normalised: the layout 3D CNNs take. v2 transforms draw their random
parameters once per call, so a crop, flip or colour jitter is identical across the frames
of a clip (a per-frame jitter would itself be a motion cue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

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


def train_transform(spec: ClipSpec, *, scale: tuple[float, float] = (0.3, 1.0), hflip: bool = True,
                    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8,
                    p_gray: float = 0.2) -> ClipTransform:
    """Random resized crop, optional horizontal flip, colour jitter and grayscale, normalise.

    ``hflip`` must be off when left/right is part of the label (the embedded benchmark's
    "left"/"right" and rotation classes; Something-Something-style data).
    """
    ops: list[Callable] = [v2.RandomResizedCrop(spec.size, scale=scale, antialias=True)]
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    if p_jitter > 0:
        ops.append(v2.RandomApply([v2.ColorJitter(*jitter)], p=p_jitter))
    if p_gray > 0:
        ops.append(v2.RandomGrayscale(p=p_gray))
    return _Pipeline(ops, spec.mean, spec.std)


def eval_transform(spec: ClipSpec, resize: int | None = None) -> ClipTransform:
    """Deterministic: resize the short side to ``resize`` (default ``size``), centre crop, normalise."""
    return _Pipeline([v2.Resize(resize or spec.size, antialias=True), v2.CenterCrop(spec.size)], spec.mean, spec.std)


def denormalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Invert the normalisation of (..., 3, T, H, W) clips back to [0, 1]."""
    m = torch.tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=clip.dtype).view(3, 1, 1, 1)
    return clip * s + m
