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

import os
from collections.abc import Sequence

import cv2
import numpy as np

from bebias.data.video_io.common import VideoInfo, _as_indices, _check_exists, check_out, scaled_size
from bebias.data.video_io.files import _capture, _probe_file, _read_file_all, _read_file_frames, _scan_file, write_video
from bebias.data.video_io.folders import (FRAME_TEMPLATES, _imread_rgb, _open_folder, _read_folder_frames,
                                         is_frame_folder, write_frame_folder)
from bebias.errors import VideoReadError

__all__ = [
    "FRAME_TEMPLATES",
    "VideoInfo",
    "VideoReadError",
    "check_out",
    "frame_count",
    "header",
    "is_frame_folder",
    "probe_video",
    "read_frames",
    "read_video",
    "scaled_size",
    "scan_video",
    "write_frame_folder",
    "write_video",
]


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


def scan_video(path: str | os.PathLike, template: str | None = None) -> VideoInfo:
    """Decode every frame of a video, one at a time, keeping none (``bebias data info
    --check``): its exact frame count (a lying header does not matter) and size, in the
    memory of one frame.

    Raises:
        VideoReadError: missing path, unreadable/empty video, a frame that fails to decode
            or changes size, bad frame folder or image.
    """
    path = os.fspath(path)
    _check_exists(path)
    if not os.path.isdir(path):
        return _scan_file(path)
    ff = _open_folder(path, template)
    first = None
    for i in range(ff.num_frames):
        shape = _imread_rgb(ff.file(i)).shape
        first = first or shape
        if shape != first:
            raise VideoReadError(f"frame size {shape[1]}x{shape[0]} differs from {first[1]}x{first[0]}", ff.file(i))
    return VideoInfo(ff.num_frames, None, first[0], first[1])


def read_frames(
    path: str | os.PathLike, indices: Sequence[int], template: str | None = None, out: np.ndarray | None = None,
    short: int | None = None,
) -> np.ndarray:
    """Decode only the frames at ``indices`` (0-based).

    ``indices`` may be unsorted and repeat (looped clips); each distinct frame is decoded
    once. Video files are decoded up to ``max(indices)`` only, starting with a seek to
    ``min(indices)`` where seeking is known to be frame-exact for the codec (see
    ``video_io.files._SEEK_EXACT_*``), else from the start with ``grab()``; only requested frames are
    converted. Frame folders read only the requested images.

    Args:
        path: video file or frame folder.
        indices: frame indices in ``[0, num_frames)``.
        template: frame-folder template, None to auto-detect; ignored for files.
        out: optional uint8 ``(len(indices), H, W, 3)`` array to decode into (e.g. a slot
            of a shared-memory batch); ``ValueError`` if the video's frames have another size.
        short: bring each frame's short side down to this many pixels as it is decoded
            (INTER_AREA, aspect kept; :func:`scaled_size`); H, W are then the scaled size.
            None keeps the native size.

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
        return _read_folder_frames(_open_folder(path, template), idx, out, short)
    return _read_file_frames(path, idx, out, short)
