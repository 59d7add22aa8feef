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
import zipfile
from dataclasses import replace

import cv2
import numpy as np

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.errors import BebiasError

__all__ = ["IMAGE_EXTS", "ARRAY_EXTS", "read_mask", "mask_frames", "find_mask", "attach_masks"]

IMAGE_EXTS: tuple[str, ...] = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
ARRAY_EXTS: tuple[str, ...] = (".npz", ".npy")
#: aspect ratios of mask and frames may differ by this much (rounding of a downscaled mask)
ASPECT_TOLERANCE = 0.02


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


def _read_array(path: str) -> np.ndarray:
    try:
        if path.lower().endswith(".npy"):
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if "masks" in keys:
                return z["masks"]
            if len(keys) == 1:
                return z[keys[0]]
            raise BebiasError(f"mask archive holds {len(keys)} arrays ({', '.join(keys[:5])}) and none is named "
                              "'masks'", path)
    except BebiasError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        # ValueError: also an object array that would need pickle -- refused, never loaded
        raise BebiasError(f"cannot read this mask file ({type(e).__name__}: {e})", path) from None


def read_mask(path: str) -> np.ndarray:
    """The mask at ``path`` as bool, (T, H, W) or (H, W) for a static mask.

    Raises:
        BebiasError: missing, unreadable, empty folder, wrong rank or dtype.
    """
    if os.path.isdir(path):
        names = sorted((n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS)), key=_natural_key)
        if not names:
            raise BebiasError(f"mask folder has no images ({', '.join(IMAGE_EXTS)})", path)
        frames = [_read_image(os.path.join(path, n)) for n in names]
        if len({f.shape for f in frames}) > 1:
            raise BebiasError("mask images differ in size", path)
        return np.stack(frames)
    if not os.path.exists(path):
        raise BebiasError("no such mask file or folder", path)
    if path.lower().endswith(IMAGE_EXTS):
        return _read_image(path)
    if not path.lower().endswith(ARRAY_EXTS):
        raise BebiasError(f"unknown mask format; expected {', '.join(ARRAY_EXTS)}, an image or a folder of images",
                          path)
    a = _read_array(path)
    if a.ndim not in (2, 3):
        raise BebiasError(f"mask array has shape {tuple(a.shape)}; expected (T, H, W) or (H, W)", path)
    return _binary(a, path)


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
