"""Shared pieces of the mask methods: argument checks, the background plate (temporal
median), Otsu's threshold, and per-frame morphology (clean-up, hole filling, small
components).

Arrays: clips ``(T, H, W, 3)`` uint8 RGB; masks ``(T, H, W)`` bool (True = foreground);
plates ``(H, W, 3)`` uint8.
"""

from __future__ import annotations

import cv2
import numpy as np


# --------------------------------------------------------------------------------------
# argument checks (shared with bebias.probing.testsets)
# --------------------------------------------------------------------------------------

def _check_clip(clip: np.ndarray, name: str = "clip") -> tuple[int, int, int]:
    """Validate a (T, H, W, 3) uint8 clip; return (T, H, W)."""
    if not isinstance(clip, np.ndarray) or clip.ndim != 4 or clip.shape[-1] != 3:
        shape = clip.shape if isinstance(clip, np.ndarray) else type(clip).__name__
        raise ValueError(f"{name} must be a (T, H, W, 3) array, got {shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {clip.dtype}")
    if clip.shape[0] < 1:
        raise ValueError(f"{name} has no frames")
    T, H, W, _ = clip.shape
    return T, H, W


def _check_mask(mask: np.ndarray, T: int, H: int, W: int, name: str = "mask") -> np.ndarray:
    """A (T, H, W) or (H, W) mask (bool, or 0/1 numbers) -> (T, H, W) bool (a new array)."""
    m = np.asarray(mask)
    if m.shape == (H, W):
        m = np.broadcast_to(m, (T, H, W))
    if m.shape != (T, H, W):
        raise ValueError(f"{name} must have shape ({T}, {H}, {W}) or ({H}, {W}), got {m.shape}")
    return m.astype(bool)  # astype copies: callers may modify the result


def _check_plate(plate: np.ndarray, H: int, W: int, name: str = "background") -> np.ndarray:
    p = np.asarray(plate)
    if p.shape != (H, W, 3) or p.dtype != np.uint8:
        raise ValueError(f"{name} must be a ({H}, {W}, 3) uint8 array, got {p.shape} {p.dtype}")
    return p


# --------------------------------------------------------------------------------------
# background plate
# --------------------------------------------------------------------------------------

def _masked_median(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 of the entries where ``valid``; exact on integers.

    Invalid entries are replaced by a sentinel above every value, the axis is sorted and
    the median of the ``n`` valid entries is read off the first n. Returns ``(median,
    n)``: median as float64 (the mean of the two middle values when n is even; NaN where
    n = 0), n as int64. ``valid`` broadcasts against ``values``.
    """
    v = values.astype(np.int32)
    valid = np.broadcast_to(valid, v.shape)
    s = np.sort(np.where(valid, v, np.iinfo(np.int32).max), axis=0)
    n = valid.sum(axis=0)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[None], axis=0)[0].astype(np.float64)
    hi = np.take_along_axis(s, np.maximum(n // 2, 0).clip(max=len(s) - 1)[None], axis=0)[0].astype(np.float64)
    med = np.where(n > 0, (lo + hi) / 2.0, np.nan)
    return med, n


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _plate_u8(med: np.ndarray) -> np.ndarray:
    """A float median plate (NaN where unknown) -> uint8, rounded half up, NaN -> 0."""
    return _round_half_up(np.nan_to_num(med)).astype(np.uint8)


def background_plate(clip: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The clean background as the temporal median of the clip.

    Args:
        clip: (T, H, W, 3) uint8 RGB.
        mask: optional (T, H, W) or (H, W) bool foreground mask. Where given, each pixel's
            median is taken over the frames in which it is **background** only, so an
            object that passes over a pixel in a minority of frames *or* sits on it in a
            majority of frames is still removed, as long as the pixel is uncovered once.
            A pixel that is foreground in **every** frame has no background sample: it
            falls back to the median over all frames (i.e. the foreground's own colour).

    Returns:
        (H, W, 3) uint8 plate. With an even number of samples the median is the mean of
        the two middle values, rounded half up. Exact for a static background: where a
        pixel shows the same value in more than half of its background frames, that
        value is returned.
    """
    T, H, W = _check_clip(clip)
    if mask is None:
        med, _ = _masked_median(clip, np.ones((T, 1, 1, 1), bool))
    else:
        bg = ~_check_mask(mask, T, H, W)
        med, n = _masked_median(clip, bg[..., None])
        never = n[..., 0] == 0  # (H, W): always foreground -> median over all frames
        if never.any():
            med_all, _ = _masked_median(clip[:, never], np.ones((T, 1, 1), bool))
            med[never] = med_all
    return _round_half_up(med).astype(np.uint8)


# --------------------------------------------------------------------------------------
# thresholds and per-frame morphology
# --------------------------------------------------------------------------------------

def _otsu_threshold(values: np.ndarray, hi: float, levels: int = 256) -> float:
    """Otsu's threshold of ``values`` in [0, hi] on a ``levels``-bin histogram: the cut
    maximising the between-class variance (upper edge of the last background bin)."""
    q = np.clip((values / hi * (levels - 1)).round().astype(np.int64), 0, levels - 1)
    p = np.bincount(q.ravel(), minlength=levels).astype(np.float64) / q.size
    centre = np.arange(levels, dtype=np.float64)
    w0 = np.cumsum(p)
    mu0 = np.cumsum(p * centre)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu0[-1] * w0 - mu0) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = -1.0
    t = int(np.argmax(between))
    return (t + 0.5) / (levels - 1) * hi


def _disk(radius: int) -> np.ndarray:
    """An elliptic structuring element of diameter 2 * radius + 1 pixels."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _clean(masks: np.ndarray, size: int) -> np.ndarray:
    """Opening (drops specks smaller than the kernel) then closing (fills pinholes), per
    frame, with a ``size`` x ``size`` ellipse (<= 1: unchanged)."""
    if size <= 1:
        return masks
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    out = np.empty_like(masks)
    for t, m in enumerate(masks.astype(np.uint8)):
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, ker, borderType=cv2.BORDER_REPLICATE)
        out[t] = cv2.morphologyEx(m, cv2.MORPH_CLOSE, ker, borderType=cv2.BORDER_REPLICATE) > 0
    return out


def _dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Per-frame dilation of (T, H, W) bool masks by a disk of ``radius`` pixels (0: copy)."""
    if radius <= 0:
        return masks.copy()
    ker = _disk(radius)
    return np.stack([cv2.dilate(m, ker) > 0 for m in masks.astype(np.uint8)])


def _close(masks: np.ndarray, radius: int) -> np.ndarray:
    """Per-frame closing of (T, H, W) bool masks by a disk of ``radius`` pixels (0: copy):
    joins parts of an outline split by gaps up to about 2 * radius pixels."""
    if radius <= 0:
        return masks.copy()
    ker = _disk(radius)
    return np.stack([cv2.morphologyEx(m, cv2.MORPH_CLOSE, ker) > 0 for m in masks.astype(np.uint8)])


def fill_holes(masks: np.ndarray) -> np.ndarray:
    """Per frame, the mask plus every background region that does not touch the frame's
    border (holes enclosed by foreground become foreground). (T, H, W) bool -> same."""
    out = np.empty(masks.shape, bool)
    T, H, W = masks.shape
    for t in range(T):
        pad = np.zeros((H + 2, W + 2), np.uint8)
        pad[1:-1, 1:-1] = masks[t]
        cv2.floodFill(pad, np.zeros((H + 4, W + 4), np.uint8), (0, 0), 2)  # the outside -> 2
        out[t] = pad[1:-1, 1:-1] != 2
    return out


def drop_small(masks: np.ndarray, min_area: float) -> np.ndarray:
    """Per frame, remove the 8-connected components of fewer than ``min_area`` pixels."""
    if min_area <= 1:
        return masks
    out = np.zeros(masks.shape, bool)
    for t, m in enumerate(masks.astype(np.uint8)):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        keep = np.zeros(n, bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
        out[t] = keep[lab]
    return out


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (any shape, e.g.
    (T, H, W): the IoU of the space-time volumes). Two empty masks give 1.0."""
    p, g = np.asarray(pred, bool), np.asarray(gt, bool)
    if p.shape != g.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {g.shape}")
    union = int(np.count_nonzero(p | g))
    return 1.0 if union == 0 else int(np.count_nonzero(p & g)) / union
