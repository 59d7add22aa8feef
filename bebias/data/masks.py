"""Foreground masks that come with the data: a ``mask`` column of a CSV manifest, or
``--masks DIR`` next to a dataset root.

A video's mask is one of:

- an ``.npz`` (key ``masks``, or its only array) or ``.npy`` file holding a (T, H, W) array
  over the video's frames (bool; integers: non-zero is foreground; floats: > 0.5);
- a folder of images, one per frame in natural order (``0.png, 1.png, ... 10.png``);
- one image, or a (H, W) / (1, H, W) array: a static mask, the same for every frame.

Non-zero (or, for 8-bit images with values above 1, > 127, so that JPEG noise is not
foreground) is foreground. Arrays are read with ``allow_pickle=False``. A mask at another
size than the decoded frames is resized (nearest neighbour) when the aspect ratios agree.

Pure core: :func:`mask_frames` (array + frame indices + size -> masks); the file readers
around it raise :class:`~bebias.errors.BebiasError` naming the file.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import IO

import cv2
import numpy as np

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.errors import BebiasError

__all__ = ["IMAGE_EXTS", "ARRAY_EXTS", "read_mask", "clip_masks", "mask_frames", "find_mask", "attach_masks"]

IMAGE_EXTS: tuple[str, ...] = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
ARRAY_EXTS: tuple[str, ...] = (".npz", ".npy")
#: aspect ratios of mask and frames may differ by this much (rounding of a downscaled mask)
ASPECT_TOLERANCE = 0.02
#: a mask may be at most this many times the video's frame size (each side)
MAX_SCALE = 4
#: the most bytes of a mask array read whole (a clip's frames are read alone, whatever the size)
MAX_MASK_BYTES = 2**30


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _binary(a: np.ndarray, path: str) -> np.ndarray:
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.floating):
        return a > 0.5
    if np.issubdtype(a.dtype, np.integer):
        return a > 0
    raise BebiasError(f"mask array has dtype {a.dtype}; expected bool, integers or floats", path)


def _read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BebiasError("cannot read this mask image", path)
    if img.ndim == 3:
        img = img.max(axis=2)  # any non-zero channel is foreground
    return img > (127 if img.max() > 1 else 0)


def _regular(path: str) -> None:
    """A FIFO or device file as a mask would block (or never end) the read: refuse it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise BebiasError(f"cannot read this mask file ({e.strerror or e})", path) from None
    if not stat.S_ISREG(mode):
        raise BebiasError("mask is not a regular file (nor a folder of images)", path)


def _npy_header(f: IO[bytes], path: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``f`` from its header alone (no data
    read, nothing unpickled); refuses what no mask is: another rank, an empty dimension, a
    dtype other than bool / integers / floats."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version} (expected 1.0 or 2.0)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise BebiasError(f"cannot read this mask file ({type(e).__name__}: {e})", path) from None
    if dtype.hasobject:  # never unpickled
        raise BebiasError("cannot read this mask file (an object array, which would need pickle)", path)
    if len(shape) not in (2, 3):
        raise BebiasError(f"mask array has shape {tuple(shape)}; expected (T, H, W) or (H, W)", path)
    if min(shape) == 0:
        raise BebiasError(f"mask array has shape {tuple(shape)}, an empty dimension", path)
    if not (dtype == bool or np.issubdtype(dtype, np.integer)
                               or np.issubdtype(dtype, np.floating)):
        raise BebiasError(f"mask array has dtype {dtype}; expected bool, integers or floats", path)
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _npz_member(z: zipfile.ZipFile, path: str) -> str:
    names = [n for n in z.namelist() if n.endswith(".npy")]
    keys = [n[:-4] for n in names]
    if "masks" in keys:
        return "masks.npy"
    if len(keys) == 1:
        return names[0]
    raise BebiasError(f"mask archive holds {len(keys)} arrays ({', '.join(keys[:5])}) and none is named 'masks'", path)


def _check_size(shape: tuple[int, ...], video_size: tuple[int, int] | None, path: str) -> None:
    """A mask far larger than its video's frames is not its mask (and would be read for nothing)."""
    h, w = shape[-2:]
    if video_size is not None and (h > MAX_SCALE * video_size[0] or w > MAX_SCALE * video_size[1]):
        raise BebiasError(f"mask is {w}x{h}, more than {MAX_SCALE}x the video's {video_size[1]}x{video_size[0]}",
                          path)


def _select(shape: tuple[int, ...], frames: np.ndarray | None, path: str) -> np.ndarray | None:
    """The frames of the array to read: None for all of them (a static mask: one frame)."""
    if frames is None or len(shape) == 2 or shape[0] == 1:
        return None
    if len(frames) and int(frames.max()) >= shape[0]:
        raise BebiasError(f"mask has {shape[0]} frames but the clip needs frame {int(frames.max())}", path)
    return frames


def _read_array(path: str, frames: np.ndarray | None = None, video_size: tuple[int, int] | None = None
                ) -> np.ndarray:
    """The array of a ``.npy`` / ``.npz`` mask, binarised: all of it, or only ``frames``
    (indexed along the first axis; the result then has ``len(frames)`` frames; a static
    mask is returned whole). The header is checked before any data is read; a ``.npy`` is
    memory-mapped and an ``.npz`` member streamed up to the last frame needed, so a
    declared (1e6, 1e4, 1e4) array or a deflate bomb never reaches memory."""
    _regular(path)
    try:
        if path.lower().endswith(".npy"):
            with open(path, "rb") as f:
                shape, _, dtype = _npy_header(f, path)
            _check_size(shape, video_size, path)
            sel = _select(shape, frames, path)
            if sel is None:
                _check_bytes(shape, dtype, path)
            a = np.load(path, mmap_mode="r", allow_pickle=False)
            return _binary(np.asarray(a if sel is None else a[sel]), path)
        with zipfile.ZipFile(path) as z, z.open(_npz_member(z, path)) as f:
            shape, fortran, dtype = _npy_header(f, path)
            _check_size(shape, video_size, path)
            sel = _select(shape, frames, path)
            if sel is None or fortran:  # all of it (a Fortran-order array cannot be read frame by frame)
                _check_bytes(shape, dtype, path)
                n = int(np.prod(shape)) * dtype.itemsize
                a = np.frombuffer(_read_exactly(f, n, path), dtype).reshape(shape, order="F" if fortran else "C")
                return _binary(a if sel is None else a[sel], path)
            return _stream_frames(f, shape, dtype, sel, path)
    except BebiasError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise BebiasError(f"cannot read this mask file ({type(e).__name__}: {e})", path) from None


def _check_bytes(shape: tuple[int, ...], dtype: np.dtype, path: str) -> None:
    n = int(np.prod(shape)) * dtype.itemsize
    if n > MAX_MASK_BYTES:
        raise BebiasError(f"mask array of shape {shape} is {n / 2**30:.1f} GiB, more than the "
                          f"{MAX_MASK_BYTES / 2**30:.0f} GiB read whole", path)


def _read_exactly(f: IO[bytes], n: int, path: str) -> bytes:
    buf = f.read(n)
    if len(buf) != n:
        raise BebiasError("mask file is truncated (its header declares more data than it holds)", path)
    return buf


def _stream_frames(f: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, frames: np.ndarray, path: str
                   ) -> np.ndarray:
    """Frames ``frames`` of a C-order (T, H, W) array streamed from ``f`` (past its header):
    decompressed one frame at a time up to the last one needed, binarised as they come."""
    _, h, w = shape
    step = h * w * dtype.itemsize
    wanted: dict[int, list[int]] = {}
    for k, t in enumerate(frames.tolist()):
        wanted.setdefault(t, []).append(k)
    out = np.zeros((len(frames), h, w), bool)
    for t in range(max(wanted, default=-1) + 1):
        buf = _read_exactly(f, step, path)
        if t in wanted:
            m = _binary(np.frombuffer(buf, dtype).reshape(h, w), path)
            for k in wanted[t]:
                out[k] = m
    return out


def read_mask(path: str, frames: Sequence[int] | np.ndarray | None = None,
              video_size: tuple[int, int] | None = None) -> np.ndarray:
    """The mask at ``path`` as bool, (T, H, W) or (H, W) for a static mask.

    ``frames`` (absolute frame indices): read only those, and return (len(frames), H, W)
    -- or the static mask, whole. ``video_size`` (H, W): the video's frame size; a mask
    more than :data:`MAX_SCALE` times larger is refused before it is read. Arrays are
    checked from their header (rank, dtype, an empty dimension, the frames needed) before
    any data is read; read whole (``frames=None``), at most :data:`MAX_MASK_BYTES`.

    Raises:
        BebiasError: missing, unreadable, not a regular file, empty folder, wrong rank or
            dtype, too few frames, too large.
    """
    sel = None if frames is None else np.asarray(frames, np.int64).reshape(-1)
    if os.path.isdir(path):
        names = sorted((n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS)), key=_natural_key)
        if not names:
            raise BebiasError(f"mask folder has no images ({', '.join(IMAGE_EXTS)})", path)
        sel = _select((len(names), 1, 1), sel, path)
        todo = names if sel is None else [names[t] for t in sel.tolist()]
        images: dict[str, np.ndarray] = {}
        for n in dict.fromkeys(todo):  # each image once (a looped clip repeats frames)
            _regular(os.path.join(path, n))
            images[n] = _read_image(os.path.join(path, n))
            _check_size(images[n].shape, video_size, os.path.join(path, n))
        if len({f.shape for f in images.values()}) > 1:
            raise BebiasError("mask images differ in size", path)
        return np.stack([images[n] for n in todo])
    if not os.path.exists(path):
        raise BebiasError("no such mask file or folder", path)
    if path.lower().endswith(IMAGE_EXTS):
        _regular(path)
        img = _read_image(path)
        _check_size(img.shape, video_size, path)
        return img
    if not path.lower().endswith(ARRAY_EXTS):
        raise BebiasError(f"unknown mask format; expected {', '.join(ARRAY_EXTS)}, an image or a folder of images",
                          path)
    return _read_array(path, sel, video_size)


def clip_masks(path: str, frames: Sequence[int] | np.ndarray, size: tuple[int, int],
               video_size: tuple[int, int] | None = None) -> np.ndarray:
    """The masks of a clip straight from the mask file at ``path``: only the frames
    ``frames`` (absolute indices) are read, then :func:`mask_frames` fits them to the
    decoded ``size`` (H, W). ``video_size``: the video's native (H, W) where known (else
    ``size``), bounding the mask's. Returns (len(frames), *size) bool."""
    frames = np.asarray(frames, np.int64)
    m = read_mask(path, frames, video_size or size)  # the clip's frames, or a static mask (broadcast)
    return mask_frames(m, np.arange(len(frames)), size, path)


def mask_frames(mask: np.ndarray, frames: np.ndarray, size: tuple[int, int], path: str = "") -> np.ndarray:
    """The masks of a clip: ``mask`` (T, H, W) or (H, W) bool over the whole video,
    ``frames`` the clip's absolute frame indices, ``size`` the decoded (H, W).

    Returns (len(frames), *size) bool. Raises BebiasError when the mask has too few frames
    or an aspect ratio other than the frames'.
    """
    frames = np.asarray(frames, np.int64)
    if mask.ndim == 2 or mask.shape[0] == 1:
        m = np.broadcast_to(mask.reshape(1, *mask.shape[-2:]), (len(frames), *mask.shape[-2:]))
    else:
        if len(frames) and int(frames.max()) >= mask.shape[0]:
            raise BebiasError(f"mask has {mask.shape[0]} frames but the clip needs frame {int(frames.max())}", path)
        m = mask[frames]
    h, w = m.shape[1:]
    H, W = size
    if min(h, w, H, W) == 0:
        raise BebiasError(f"mask is {w}x{h}, the frames {W}x{H}: an empty dimension", path)
    if (h, w) == (H, W):
        return np.ascontiguousarray(m, dtype=bool)
    if abs((w / h) / (W / H) - 1.0) > ASPECT_TOLERANCE:
        raise BebiasError(f"mask is {w}x{h} but the video is {W}x{H} (another aspect ratio)", path)
    return np.stack([cv2.resize(f.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0 for f in m])


def _candidates(masks_dir: str, rel: str) -> list[str]:
    """Where ``--masks DIR`` may hold the mask of the video at ``rel`` (relative to the data
    root): its relative path without the extension, then shorter tails of it, each as an
    array file, an image or a folder of frames."""
    stem = os.path.splitext(rel)[0] if not rel.endswith(os.sep) else rel.rstrip(os.sep)
    parts = [p for p in stem.split(os.sep) if p not in ("", ".")]
    out = []
    for k in range(len(parts)):
        base = os.path.join(masks_dir, *parts[k:])
        out += [base + e for e in ARRAY_EXTS + IMAGE_EXTS] + [base]
    return out


def find_mask(masks_dir: str, video: str, root: str) -> str | None:
    """The mask under ``masks_dir`` of ``video`` (a path under ``root``), or None.

    ``DIR`` mirrors the data root (``DIR/UCF-101/Diving/v_Diving_g01_c01.npz``) or a tail of
    it (``DIR/Diving/v_Diving_g01_c01.npz``, ``DIR/v_Diving_g01_c01/`` of PNGs); the
    longest match wins.
    """
    root, video = os.path.abspath(root), os.path.abspath(video)
    rel = os.path.relpath(video, root) if os.path.commonpath([root, video]) == root else os.path.basename(video)
    for c in _candidates(masks_dir, rel):
        if os.path.isfile(c) or (os.path.isdir(c) and c != video):
            return c
    return None


def attach_masks(videos: LabeledVideos, masks_dir: str, root: str) -> LabeledVideos:
    """``videos`` with ``meta["mask"]`` set from ``--masks DIR`` where a mask is found
    (a record that already names one, from a manifest's ``mask`` column, keeps it).

    Raises BebiasError when DIR is not a folder or holds a mask for none of the videos.
    """
    if not os.path.isdir(masks_dir):
        raise BebiasError("--masks must be a folder of per-video masks", masks_dir)
    records: list[VideoRecord] = []
    found = 0
    for r in videos.records:
        if r.meta.get("mask"):
            records.append(r)
            continue
        p = find_mask(masks_dir, r.path, root)
        found += p is not None
        records.append(replace(r, meta={**r.meta, "mask": p}) if p else r)
    if found == 0 and not any(r.meta.get("mask") for r in videos.records) and records:
        example = os.path.join(masks_dir, os.path.splitext(os.path.basename(videos.records[0].path))[0])
        raise BebiasError(f"--masks: no mask for any of the {len(records)} videos (for {videos.records[0].path}, "
                          f"looked for e.g. {example}.npz, .npy, .png or a folder of frames)", masks_dir)
    return replace(videos, records=records)
