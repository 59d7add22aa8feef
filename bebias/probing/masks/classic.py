"""The first two motion-mask methods, "diff" and "mog2" (kept for comparison; see
docs/masks.md for their IoU against the benchmark's ground truth).

* ``"diff"``: windowed frame differencing. For each frame t the energy of a pixel is the
  **median** over the frames s of a window around t of ``sum_c |x_t - x_s|``: a pixel the
  object covers at t but not in most of the window scores high, while the "ghost" that
  plain two-frame differencing leaves where the object *was* scores low (the median
  ignores the minority of frames in which the object covered it). The energy is blurred
  (Gaussian, sigma = blur / 3, FAME's kernel) and thresholded at the clip's Otsu
  threshold, never below ``min_diff``.
* ``"mog2"``: OpenCV's ``BackgroundSubtractorMOG2`` run forward over the clip. It is first
  warmed up on the clip's temporal-median plate (fed ``warmup`` times) so that the first
  frames are not all foreground, then it adapts slowly (``learning_rate``) so that an
  object that stops for a few frames is not absorbed into the background. (OpenCV's
  defaults learn fast at the start -- rate 1 / (2 n) after n frames -- so the object is
  absorbed into the background within a few frames of a short clip.)

Both are preceded, by default, by the integer camera compensation of
:func:`~bebias.probing.masks.camera.camera_offsets` (the masks are computed on the aligned
clip and mapped back) and end with a small morphological clean-up (opening then closing
with a ``clean`` x ``clean`` ellipse). Objects that stay on the same pixels for most of
the clip (rotating or pulsating in place, or slower than their own size per clip) are
seen as background by both: their masks miss the object's interior.
"""

from __future__ import annotations

import cv2
import numpy as np

from bebias.probing.masks.camera import _align, _unalign, camera_offsets
from bebias.probing.masks.common import _check_clip, _clean, _masked_median, _otsu_threshold, _round_half_up

CLASSIC_METHODS: tuple[str, ...] = ("diff", "mog2")


def _diff_masks(x: np.ndarray, valid: np.ndarray, window: int, blur: int, min_diff: float) -> np.ndarray:
    T = len(x)
    xi = x.astype(np.int16)
    energy = np.zeros(x.shape[:3], np.float32)
    for t in range(T):
        s = [j for j in range(max(0, t - window), min(T, t + window + 1)) if j != t]
        d = np.abs(xi[s] - xi[t]).sum(axis=-1, dtype=np.int16)  # (n, H, W), sum over RGB in [0, 765]
        med, _ = _masked_median(d, valid[s])  # frames whose pixel fell outside the view do not vote
        energy[t] = np.nan_to_num(med, nan=0.0)
    if blur > 1:
        energy = np.stack([cv2.GaussianBlur(e, (blur, blur), blur / 3.0, borderType=cv2.BORDER_REPLICATE)
                           for e in energy])
    # one threshold for the clip (frames with little motion do not get a noise-level cut),
    # never below min_diff (a static clip gives empty masks, not noise)
    thr = max(_otsu_threshold(energy, 765.0), float(min_diff))
    return energy > thr


def _mog2_masks(x: np.ndarray, valid: np.ndarray, warmup: int, learning_rate: float,
                var_threshold: float) -> np.ndarray:
    plate, _ = _masked_median(x, valid[..., None])
    plate = _round_half_up(np.nan_to_num(plate)).astype(np.uint8)
    sub = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold, detectShadows=False)
    for _ in range(warmup):  # learn the background first (automatic learning rate)
        sub.apply(plate)
    return np.stack([sub.apply(np.ascontiguousarray(f), learningRate=learning_rate) > 0 for f in x])


def classic_masks(
    clip: np.ndarray,
    method: str = "diff",
    *,
    max_shift: int = 3,
    offsets: np.ndarray | None = None,
    window: int = 8,
    blur: int = 5,
    min_diff: float = 24.0,
    warmup: int = 10,
    learning_rate: float = 0.01,
    var_threshold: float = 16.0,
    clean: int = 3,
) -> np.ndarray:
    """Per-frame foreground masks from motion alone (see the module docstring).

    Args:
        clip: (T, H, W, 3) uint8 RGB, T >= 2.
        method: ``"diff"`` (windowed frame differencing) or ``"mog2"`` (OpenCV MOG2).
        max_shift: camera compensation search radius, pixels per frame (0: off).
        offsets: precomputed :func:`camera_offsets` of this clip, (T, 2) int (computing
            both methods' masks of one clip then estimates the camera once); overrides
            ``max_shift``.
        window: ``"diff"``: frames on each side of t compared with frame t.
        blur: ``"diff"``: odd Gaussian kernel size in pixels applied to the energy (<= 1: none).
        min_diff: ``"diff"``: lowest threshold on the energy, in sum-over-RGB grey levels
            (0..765), so a clip without motion yields empty masks.
        warmup: ``"mog2"``: times the temporal-median plate is fed before the clip.
        learning_rate: ``"mog2"``: learning rate while running over the clip (in [0, 1]).
        var_threshold: ``"mog2"``: squared Mahalanobis distance above which a pixel is foreground.
        clean: morphological clean-up kernel size in pixels (<= 1: none).

    Returns:
        (T, H, W) bool, True where the pixel is judged foreground in that frame.
        Deterministic: the same clip gives the same masks.
    """
    T, H, W = _check_clip(clip)
    if method not in CLASSIC_METHODS:
        raise ValueError(f"method must be one of {', '.join(CLASSIC_METHODS)}, got {method!r}")
    if T < 2:
        raise ValueError(f"motion masks need T >= 2 frames, got {T}")
    if blur > 1 and blur % 2 == 0:
        raise ValueError(f"blur must be an odd kernel size, got {blur}")
    if offsets is None:
        off = camera_offsets(clip, max_shift)
    else:
        off = np.asarray(offsets)
        if off.shape != (T, 2) or not np.issubdtype(off.dtype, np.integer):
            raise ValueError(f"offsets must be a ({T}, 2) integer array, got {off.shape} {off.dtype}")
    x, valid = _align(clip, off)
    if method == "diff":
        m = _diff_masks(x, valid, max(int(window), 1), int(blur), min_diff)
    else:
        m = _mog2_masks(x, valid, int(warmup), float(learning_rate), float(var_threshold))
    return _unalign(_clean(m, int(clean)), off)
