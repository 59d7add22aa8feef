"""Foreground masks and background plates from the pixels alone (no segmentation model).

All functions are pure and deterministic, on uint8 numpy arrays:

* clip: ``(T, H, W, 3)`` uint8 RGB;
* mask: ``(T, H, W)`` bool, True = foreground (a ``(H, W)`` mask is broadcast over T);
* background plate: ``(H, W, 3)`` uint8 RGB.

:func:`motion_masks` derives per-frame foreground masks from motion, by one of
:data:`METHODS`:

* ``"grabcut-refine"`` (the default, :data:`DEFAULT_METHOD`) and ``"grabcut"``: camera-
  compensated background subtraction seeds GrabCut over the whole clip, and (refine) a
  second, actor-free plate corrects the edges (:mod:`~bebias.probing.masks.grabcut`);
* ``"diff"`` (windowed frame differencing) and ``"mog2"`` (OpenCV's MOG2), the first
  methods, kept for comparison (:mod:`~bebias.probing.masks.classic`).

Their IoU against the embedded benchmark's ground truth, how the parameters were chosen
and what they do on real clips: ``docs/masks.md`` (numbers from ``bench/mask_quality.py``).

Modules: :mod:`.common` (checks, plates, morphology, IoU), :mod:`.camera` (camera
compensation), :mod:`.classic`, :mod:`.grabcut`, :mod:`.quality` (coverage, stability,
usability).
"""

from __future__ import annotations

import numpy as np

from bebias.probing.masks.camera import CAMERA_MODELS, camera_offsets, camera_transforms
from bebias.probing.masks.classic import CLASSIC_METHODS, classic_masks
from bebias.probing.masks.common import _check_clip, background_plate, fill_holes, mask_iou
from bebias.probing.masks.grabcut import GRABCUT_METHODS, grabcut_masks
from bebias.probing.masks.quality import mask_coverage, mask_is_usable, mask_quality, mask_stability

__all__ = [
    "METHODS", "DEFAULT_METHOD", "CAMERA_MODELS", "motion_masks", "background_plate", "camera_offsets",
    "camera_transforms", "fill_holes", "mask_iou", "mask_is_usable", "mask_coverage", "mask_stability",
    "mask_quality", "classic_masks", "grabcut_masks",
]

#: motion-mask methods of :func:`motion_masks`
METHODS: tuple[str, ...] = (*CLASSIC_METHODS, *GRABCUT_METHODS)
#: the method the probe uses where no ground truth is (``motion_method`` of a suite)
DEFAULT_METHOD = "grabcut-refine"


def motion_masks(clip: np.ndarray, method: str = DEFAULT_METHOD, **params) -> np.ndarray:
    """Per-frame foreground masks from motion alone.

    Args:
        clip: (T, H, W, 3) uint8 RGB, T >= 2.
        method: one of :data:`METHODS`.
        **params: the method's parameters: :func:`~bebias.probing.masks.classic.classic_masks`
            for ``"diff"`` / ``"mog2"``, :func:`~bebias.probing.masks.grabcut.grabcut_masks`
            for ``"grabcut"`` / ``"grabcut-refine"`` (an unknown name is a TypeError).

    Returns:
        (T, H, W) bool, True where the pixel is judged foreground in that frame.
        Deterministic: the same clip gives the same masks.
    """
    _check_clip(clip)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method in CLASSIC_METHODS:
        return classic_masks(clip, method, **params)
    return grabcut_masks(clip, refine=method == "grabcut-refine", **params)
