"""Camera compensation: where every frame's pixels come from in a reference frame.

Two models, both chained outwards from the middle frame T // 2 through consecutive pairs:

* **integer translation** (:func:`camera_offsets`): a robust (truncated-L1) block match of
  consecutive frames, shifts up to ``max_shift`` pixels per axis and per frame. Exact
  for a pan by whole pixels, as in the embedded benchmark, and immune to periodic
  backgrounds (checkers, stripes) on which feature or flow matching alias.
* **similarity** (:func:`camera_transforms` with ``model="auto"``): corners
  (``cv2.goodFeaturesToTrack``) tracked by pyramidal Lucas-Kanade and fitted by RANSAC
  (``cv2.estimateAffinePartial2D``: rotation, uniform scale, sub-pixel translation), for
  zooms, rolls and sub-pixel pans. Per pair of frames, the candidate with the lower
  truncated-L1 alignment cost is kept, so a whole-pixel pan keeps its exact integer
  estimate.

Neither models parallax: a scene at several depths seen by a moving camera leaves the
near parts moving after compensation (they become "foreground").

Transforms are 2 x 3 affine matrices ``A`` mapping a point of the reference frame (x, y)
to the point of frame t that shows the same scene point: ``clip[t](A_t p) ~ clip[ref](p)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from bebias.probing.masks.common import _check_clip

_SHIFT_CAP = 30  # truncation of the per-pixel matching cost (sum over RGB of |diff|): robust to the object

CAMERA_MODELS: tuple[str, ...] = ("auto", "translation", "none")


# --------------------------------------------------------------------------------------
# integer translations (the "diff" and "mog2" methods use these directly)
# --------------------------------------------------------------------------------------

def _best_shift(a: np.ndarray, b: np.ndarray, r: int) -> tuple[int, int]:
    """The integer (dy, dx), |dy|, |dx| <= r, such that ``b[y + dy, x + dx] ~ a[y, x]``.

    Cost: mean over the central (H - 2r) x (W - 2r) region of ``min(sum_c |a - b|, cap)``
    (every pixel: subsampling the grid aliases with periodic backgrounds such as a checker).
    Truncation makes it robust: the moving object costs at most ``cap`` per pixel
    whatever the shift, so the background (usually most of the frame) decides. Costs
    are integers; ties go to the smallest shift (|dy| + |dx|), so a static camera and a
    flat background give (0, 0).
    """
    H, W, _ = a.shape
    h, w = H - 2 * r, W - 2 * r
    ac = np.ascontiguousarray(a[r:H - r, r:W - r])
    cost = np.empty((2 * r + 1, 2 * r + 1), np.int64)
    for y in range(2 * r + 1):  # cost[r + dy, r + dx]: b[r + dy: H - r + dy, r + dx: W - r + dx] against ac
        for x in range(2 * r + 1):
            d = cv2.absdiff(b[y:y + h, x:x + w], ac)  # (H', W', 3) uint8 |a - b|, exact
            total = d[..., 0].astype(np.uint16)
            total += d[..., 1]
            total += d[..., 2]
            cost[y, x] = int(np.minimum(total, _SHIFT_CAP).sum(dtype=np.int64))
    cands = sorted(((dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)),
                   key=lambda s: (abs(s[0]) + abs(s[1]), s))
    best = cost.min()
    return next(s for s in cands if cost[s[0] + r, s[1] + r] == best)


def camera_offsets(clip: np.ndarray, max_shift: int = 3) -> np.ndarray:
    """Integer camera translation of every frame relative to the middle frame.

    Consecutive frames are block-matched (:func:`_best_shift`, shifts up to ``max_shift``
    pixels per axis and per frame) and the shifts are chained outwards from frame T // 2.

    Args:
        clip: (T, H, W, 3) uint8.
        max_shift: search radius in pixels between consecutive frames; 0 (or a frame too
            small for the search) returns zeros.

    Returns:
        (T, 2) int64 ``(dy, dx)`` per frame, such that ``clip[t][y + dy, x + dx]`` shows
        the scene point that ``clip[T // 2][y, x]`` shows.
    """
    T, H, W = _check_clip(clip)
    off = np.zeros((T, 2), np.int64)
    r = int(max_shift)
    if r <= 0 or min(H, W) - 2 * r < 4:
        return off
    ref = T // 2
    for t in range(ref + 1, T):
        off[t] = off[t - 1] + _best_shift(clip[t - 1], clip[t], r)
    for t in range(ref - 1, -1, -1):
        off[t] = off[t + 1] + _best_shift(clip[t + 1], clip[t], r)
    return off


def _shift_index(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices i + d clamped to [0, n) and whether they were inside."""
    i = np.arange(n) + d
    return np.clip(i, 0, n - 1), (i >= 0) & (i < n)


def _align(clip: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aligned[t][y, x] = clip[t][y + dy_t, x + dx_t] (edge-replicated outside the frame),
    and valid (T, H, W): whether that source pixel was inside the frame."""
    T, H, W = clip.shape[:3]
    out = np.empty_like(clip)
    valid = np.empty((T, H, W), bool)
    for t, (dy, dx) in enumerate(off):
        iy, vy = _shift_index(H, int(dy))
        ix, vx = _shift_index(W, int(dx))
        out[t] = clip[t][np.ix_(iy, ix)]
        valid[t] = vy[:, None] & vx[None, :]
    return out, valid


def _unalign(masks: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_align` for masks: out[t][y, x] = masks[t][y - dy, x - dx] (False outside)."""
    T, H, W = masks.shape
    out = np.zeros_like(masks)
    for t, (dy, dx) in enumerate(off):
        iy, vy = _shift_index(H, -int(dy))
        ix, vx = _shift_index(W, -int(dx))
        out[t] = masks[t][np.ix_(iy, ix)] & vy[:, None] & vx[None, :]
    return out


# --------------------------------------------------------------------------------------
# general transforms (translation or similarity), aligned onto a canvas
# --------------------------------------------------------------------------------------

_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _compose(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The 2 x 3 affine ``p o a`` (apply ``a``, then ``p``)."""
    return (np.vstack([p, [0.0, 0.0, 1.0]]) @ np.vstack([a, [0.0, 0.0, 1.0]]))[:2]


def _warp_cost(a: np.ndarray, b: np.ndarray, m: np.ndarray, border: int) -> float:
    """Mean over a's central region (``border`` pixels in) of ``min(sum_c |a(p) - b(m p)|, cap)``."""
    H, W = a.shape[:2]
    bw = cv2.warpAffine(b, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    d = np.minimum(np.abs(a.astype(np.int16) - bw.astype(np.int16)).sum(axis=-1), _SHIFT_CAP)
    return float(d[border:H - border, border:W - border].mean())


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The similarity ``m`` with ``b(m p) ~ a(p)`` from tracked corners and RANSAC (1 px
    reprojection threshold), or None with fewer than 8 tracked corners or 6 inliers."""
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    H, W = ga.shape
    pts = cv2.goodFeaturesToTrack(ga, 200, 0.01, max(3, min(H, W) // 20), blockSize=5)
    if pts is None or len(pts) < 8:
        return None
    nxt, status, _ = cv2.calcOpticalFlowPyrLK(ga, gb, pts, None, winSize=(15, 15), maxLevel=2)
    ok = status.ravel() == 1
    if ok.sum() < 8:
        return None
    m, inliers = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0,
                                             maxIters=2000, confidence=0.995, refineIters=10)
    if m is None or inliers is None or int(inliers.sum()) < 6:
        return None
    return m


def _pair_transform(a: np.ndarray, b: np.ndarray, max_shift: int, model: str) -> np.ndarray:
    """The 2 x 3 transform ``m`` with ``b(m p) ~ a(p)`` for consecutive frames a, b."""
    H, W = a.shape[:2]
    r = int(max_shift)
    if model == "none" or r <= 0 or min(H, W) - 2 * r < 4:
        shift = _IDENTITY.copy()
    else:
        dy, dx = _best_shift(a, b, r)
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    if model != "auto":
        return shift
    sim = _similarity(a, b)
    if sim is None:
        return shift
    border = max(r, 2)
    # ties keep the integer shift (exact for whole-pixel pans)
    return sim if _warp_cost(a, b, sim, border) < _warp_cost(a, b, shift, border) else shift


def camera_transforms(clip: np.ndarray, max_shift: int = 3, model: str = "auto") -> np.ndarray:
    """Camera motion of every frame relative to the middle frame.

    Args:
        clip: (T, H, W, 3) uint8 RGB.
        max_shift: integer-translation search radius, pixels per axis and per frame.
        model: ``"auto"`` (per pair, the better of the integer translation and a tracked
            similarity), ``"translation"`` (integer only) or ``"none"`` (static camera).

    Returns:
        (T, 2, 3) float64 affine matrices ``A_t``: ``clip[t](A_t p)`` shows the scene
        point that ``clip[T // 2](p)`` shows (p = (x, y) in pixels). ``A_{T // 2}`` is the identity.
    """
    T, H, W = _check_clip(clip)
    if model not in CAMERA_MODELS:
        raise ValueError(f"camera model must be one of {', '.join(CAMERA_MODELS)}, got {model!r}")
    out = np.repeat(_IDENTITY[None], T, axis=0)
    ref = T // 2
    for t in range(ref + 1, T):
        out[t] = _compose(_pair_transform(clip[t - 1], clip[t], max_shift, model), out[t - 1])
    for t in range(ref - 1, -1, -1):
        out[t] = _compose(_pair_transform(clip[t + 1], clip[t], max_shift, model), out[t + 1])
    return out


def canvas_pad(transforms: np.ndarray, H: int, W: int, max_pad: float = 0.5) -> tuple[int, int]:
    """Margins (py, px), pixels, that a canvas around the reference frame needs to hold
    every frame's view, each at most ``max_pad`` times the frame's height / width."""
    corners = np.array([[0.0, W - 1.0, 0.0, W - 1.0], [0.0, 0.0, H - 1.0, H - 1.0], [1.0, 1.0, 1.0, 1.0]])
    pts = np.concatenate([cv2.invertAffineTransform(a) @ corners for a in transforms], axis=1)
    px = int(np.ceil(max(0.0, -pts[0].min(), pts[0].max() - (W - 1))))
    py = int(np.ceil(max(0.0, -pts[1].min(), pts[1].max() - (H - 1))))
    return min(py, int(max_pad * H)), min(px, int(max_pad * W))


def to_canvas(clip: np.ndarray, transforms: np.ndarray, pad: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every frame warped onto the reference frame's canvas (the frame plus ``pad``).

    Returns ``(aligned, valid, maps)``: (T, H + 2 py, W + 2 px, 3) uint8 (bilinear; edge-
    replicated outside the frame, exact for whole-pixel shifts), (T, H', W') bool: whether
    the canvas pixel was inside frame t, and the (T, 2, 3) maps canvas -> frame t.
    """
    T, H, W = clip.shape[:3]
    py, px = pad
    size = (W + 2 * px, H + 2 * py)
    shift = np.array([[1.0, 0.0, -px], [0.0, 1.0, -py]])  # canvas -> reference frame
    maps = np.stack([_compose(a, shift) for a in transforms])
    ones = np.ones((H, W), np.uint8)
    aligned = np.stack([cv2.warpAffine(f, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_REPLICATE) for f, m in zip(clip, maps)])
    valid = np.stack([cv2.warpAffine(ones, m, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0 for m in maps])
    return aligned, valid, maps


def from_canvas(masks: np.ndarray, maps: np.ndarray, H: int, W: int) -> np.ndarray:
    """Canvas masks back into each frame's own coordinates: (T, H', W') -> (T, H, W) bool
    (bilinear, >= 0.5; what the canvas does not hold is background)."""
    return np.stack([cv2.warpAffine(m.astype(np.float32), a, (W, H), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0) >= 0.5
                     for m, a in zip(masks, maps)])
