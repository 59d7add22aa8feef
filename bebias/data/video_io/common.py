"""What the video readers and writers share: :class:`VideoInfo`, quieting OpenCV's own
log, index checks and the frame-array checks."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from bebias.errors import VideoReadError

# FFmpeg logs through its own av_log, straight to stderr, not through OpenCV's logger (which
# _quiet_opencv sets): "[matroska,webm @ 0x...] EBML header parsing failed" around our one
# line. OpenCV's FFmpeg backend reads OPENCV_FFMPEG_LOGLEVEL when it opens its first capture
# and passes it to av_log_set_level; -8 is AV_LOG_QUIET. A level the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402  (after the environment it reads)


@dataclass(frozen=True)
class VideoInfo:
    """Basic facts about a video.

    Attributes:
        num_frames: number of decodable frames (>= 1).
        fps: frames per second from the container, or None for frame folders / unknown.
        height: frame height in pixels.
        width: frame width in pixels.
    """

    num_frames: int
    fps: float | None
    height: int
    width: int


_log_lock = threading.Lock()
_log_depth = 0
_log_saved = 0


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings (e.g. "backend can't capture by name") while inside.

    Failures are reported as VideoReadError instead. Reference-counted so concurrent
    threads restore the user's level only when the last one leaves. FFmpeg's own av_log
    lines ("moov atom not found") are silenced by OPENCV_FFMPEG_LOGLEVEL (module top).
    """
    global _log_depth, _log_saved
    log = cv2.utils.logging
    with _log_lock:
        if _log_depth == 0:
            _log_saved = log.getLogLevel()
            if _log_saved > log.LOG_LEVEL_ERROR:
                log.setLogLevel(log.LOG_LEVEL_ERROR)
        _log_depth += 1
    try:
        yield
    finally:
        with _log_lock:
            _log_depth -= 1
            if _log_depth == 0:
                log.setLogLevel(_log_saved)


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise VideoReadError("video does not exist", path)


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _as_indices(indices: Sequence[int]) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise TypeError(f"indices must be a 1-D sequence of ints, got {indices!r}")
    return idx.astype(np.int64)


def _out_of_range(path: str, idx: np.ndarray, n: int) -> VideoReadError:
    bad = int(idx[(idx < 0) | (idx >= n)][0])
    return VideoReadError(f"frame index {bad} out of range: video has {n} frames", path)


def scaled_size(h: int, w: int, short: int | None) -> tuple[int, int]:
    """(H, W) of an h x w frame whose short side is brought down to ``short`` pixels
    (aspect kept); unchanged when it is not longer, or ``short`` is None."""
    if not short or min(h, w) <= short:
        return h, w
    s = short / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def shrink(img: np.ndarray, short: int | None) -> np.ndarray:
    """An (H, W[, 3]) image with its short side brought down to ``short`` (INTER_AREA)."""
    h, w = scaled_size(*img.shape[:2], short)
    return img if (h, w) == img.shape[:2] else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    """``ValueError`` unless ``out`` can take uint8 frames of ``shape``."""
    if out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out is {out.dtype} {out.shape}, the frames are uint8 {shape}")


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise ValueError(f"frames must be a (T,H,W,3) array, got {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty (T=0)")
