"""Clip sampling: which frame indices of a video make a clip.

Pure functions of (number of frames, clip length T, stride s, rng). A clip spans
``(T - 1) * s + 1`` frames; a video shorter than that is **looped** (indices wrap around)
rather than dropped, so every listed video contributes.
"""

from __future__ import annotations

import numpy as np


def clip_span(frames: int, stride: int) -> int:
    """Number of source frames a clip of ``frames`` frames at ``stride`` covers."""
    return (frames - 1) * stride + 1


def clip_at(num_frames: int, start: int, frames: int, stride: int) -> np.ndarray:
    """Indices (T,) int64 of the clip starting at ``start``, wrapping past the end (looping)."""
    if num_frames <= 0:
        raise ValueError("a video with no frames has no clips")
    return (start + stride * np.arange(frames, dtype=np.int64)) % num_frames


def random_clip(num_frames: int, frames: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """Training: a clip at a uniformly random start (start 0 and looping if the video is short)."""
    last = num_frames - clip_span(frames, stride)
    start = int(rng.integers(0, last + 1)) if last > 0 else 0
    return clip_at(num_frames, start, frames, stride)


def uniform_clips(num_frames: int, frames: int, stride: int, num_clips: int) -> np.ndarray:
    """Testing: ``num_clips`` clips with evenly spaced starts covering the video, (N, T).

    With ``num_clips == 1`` this is the centre clip.
    """
    last = max(num_frames - clip_span(frames, stride), 0)
    if num_clips == 1:
        starts = [last // 2]
    else:
        starts = [int(round(i * last / (num_clips - 1))) for i in range(num_clips)]
    return np.stack([clip_at(num_frames, s, frames, stride) for s in starts])


def center_clip(num_frames: int, frames: int, stride: int) -> np.ndarray:
    """Testing: the centre clip, (T,)."""
    return uniform_clips(num_frames, frames, stride, 1)[0]


def shifted_clip(num_frames: int, frames: int, stride: int, start: int, rng: np.random.Generator,
                 min_gap: int = 2) -> np.ndarray:
    """Another clip of the same video whose start differs from ``start`` by >= ``min_gap`` frames.

    Used for BE's intra-video negative. If the video is too short for a different random
    start, the clip is shifted by a third of its span (the official recipe's fallback),
    wrapping around.
    """
    last = num_frames - clip_span(frames, stride)
    choices = [s for s in range(max(last, 0) + 1) if abs(s - start) >= min_gap]
    if choices:
        s = choices[int(rng.integers(len(choices)))]
    else:
        s = start + max(clip_span(frames, stride) // 3, min_gap)
    return clip_at(num_frames, s, frames, stride)
