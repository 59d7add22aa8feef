"""Motion-seeded GrabCut masks: ``"grabcut"`` and ``"grabcut-refine"`` (the default).

Frame differencing alone ("diff", "mog2") sees only where pixels *change*: an actor that
covers the same pixels for most of the clip (slow, rotating, pulsating, or simply larger
than its own travel) is half missed, and the "ghost" it leaves where it was is half kept.
Here motion only *seeds* the mask and the actor's colours complete it:

1. **Working size.** A clip whose short side exceeds ``work_size`` pixels is downscaled
   (``INTER_AREA``) for everything below; the masks are scaled back at the end.
2. **Camera.** :func:`~bebias.probing.masks.camera.camera_transforms` (integer block-match
   translation, or a tracked similarity where it aligns better) puts every frame onto
   the middle frame's canvas (enlarged to hold every frame's view).
3. **Motion evidence.** The background plate is the temporal median of the aligned
   frames; a pixel's evidence is ``sum_c |x_t - plate|`` (grey levels, 0..765), blurred
   (Gaussian, ``blur`` px) and cut at the clip's Otsu threshold, never below ``min_diff``
   (a clip without motion has no seeds, hence an empty mask).
4. **GrabCut** (``cv2.grabCut``), once over all frames stacked into one image, so that the
   foreground and background colour models (5-component GMMs) are the clip's: seeds
   above the threshold are probable foreground; seeds above ``sure`` times it, eroded by
   ``erode`` px, are certain foreground; pixels further than ``margin`` px from the union
   over time of the (hole-filled) seeds are certain background; the rest is probable
   background, which GrabCut may turn into foreground where the colours say so: this is
   what recovers the part of an actor that did not move. A closing (``close`` px) joins
   an outline split by gaps, and the holes it encloses are filled, per frame.
   ``"grabcut"`` stops here.
5. **Refine** (``"grabcut-refine"``). A second plate is the median over the frames in
   which GrabCut calls each pixel background -- free of the actor wherever it uncovered
   the pixel at least ``min_bg`` times -- and there the mask becomes the per-pixel test
   ``sum_c |x_t - plate| > refine_diff``, dropping pixels below ``edge_ratio`` times the
   largest evidence of their 3 x 3 neighbourhood (a pixel on the actor's edge is
   foreground when the actor covers at least about that fraction of it, the rule of
   the benchmark's ground truth), and only within ``reach`` px of the GrabCut mask
   (texture noise and parallax elsewhere cannot add blobs). Where the pixel was never
   uncovered, GrabCut's answer stays. Then opening/closing (``clean``), the closing of
   step 4, holes filled.
6. Components smaller than ``min_area`` (fraction of the frame) are dropped, and the masks
   are mapped back to each frame's coordinates and size.

The defaults were chosen on the benchmark's seed 1, split ``train-unbiased``
(``bench/mask_quality.py --tune``), and measured on other seeds' ``conflict`` split
(docs/masks.md: mean IoU 0.92-0.94 against the ground truth, camera pan on).

Deterministic: OpenCV's random generator is re-seeded (``cv2.setRNGSeed(0)``) before the
GrabCut call (its GMMs start from k-means), which also resets the generator that
``cv2.randu`` etc. draw from in the calling thread.

What it cannot do (docs/masks.md shows it on real clips): an actor that does not move
at all in the clip leaves no seed and is background; several movers are all foreground;
parallax under a moving camera makes near static objects "move"; an actor coloured like
its background loses parts of itself to GrabCut.
"""

from __future__ import annotations

import cv2
import numpy as np

from bebias.probing.masks.camera import CAMERA_MODELS, camera_transforms, canvas_pad, from_canvas, to_canvas
from bebias.probing.masks.common import (_check_clip, _clean, _close, _dilate, _disk, _masked_median,
                                         _otsu_threshold, _plate_u8, drop_small, fill_holes)

GRABCUT_METHODS: tuple[str, ...] = ("grabcut", "grabcut-refine")

_MIN_SAMPLES = 10  # GrabCut's k-means needs samples of both classes (5 components each)


def _working_clip(clip: np.ndarray, work_size: int) -> np.ndarray:
    """The clip with its short side at most ``work_size`` pixels (INTER_AREA); <= 0: unchanged."""
    T, H, W = clip.shape[:3]
    if work_size <= 0 or min(H, W) <= work_size:
        return clip
    s = work_size / min(H, W)
    size = (max(1, round(W * s)), max(1, round(H * s)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clip])


def _plate_distance(x: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """(T, H, W) float32 ``sum_c |x_t - plate|`` in grey levels (0..765)."""
    return np.abs(x.astype(np.int16) - plate.astype(np.int16)).sum(axis=-1, dtype=np.int16).astype(np.float32)


def _evidence(x: np.ndarray, valid: np.ndarray, blur: int, min_diff: float) -> tuple[np.ndarray, float]:
    """Motion evidence of the aligned clip (distance to its median plate, 0 outside the
    frames' views, blurred) and its threshold: Otsu's, never below ``min_diff``."""
    med, _ = _masked_median(x, valid[..., None])
    d = _plate_distance(x, _plate_u8(med))
    d[~valid] = 0.0
    if blur > 1:
        d = np.stack([cv2.GaussianBlur(e, (blur, blur), blur / 3.0, borderType=cv2.BORDER_REPLICATE) for e in d])
    return d, max(_otsu_threshold(d, 765.0), float(min_diff))


def _grabcut(x: np.ndarray, labels: np.ndarray, iters: int) -> np.ndarray:
    """GrabCut over the T frames stacked vertically (one colour model per class for the
    whole clip), from a (T, H, W) map of GC_* labels; returns the (T, H, W) foreground."""
    T, H, W = labels.shape
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    n_fg = int(fg.sum())
    if n_fg < _MIN_SAMPLES or fg.size - n_fg < _MIN_SAMPLES:  # too few samples of one class for its GMM
        return fg
    img = np.ascontiguousarray(x.reshape(T * H, W, 3)[..., ::-1])  # OpenCV's BGR order
    lab = np.ascontiguousarray(labels.reshape(T * H, W))
    cv2.setRNGSeed(0)  # GrabCut's GMMs start from k-means on OpenCV's generator
    cv2.grabCut(img, lab, None, np.zeros((1, 65)), np.zeros((1, 65)), max(int(iters), 1), cv2.GC_INIT_WITH_MASK)
    return ((lab == cv2.GC_FGD) | (lab == cv2.GC_PR_FGD)).reshape(T, H, W)


def _grabcut_stage(x: np.ndarray, valid: np.ndarray, d: np.ndarray, thr: float, *, sure: float, erode: int,
                   margin: int, iters: int, close: int) -> np.ndarray:
    """Step 4 of the module docstring on the aligned clip: (T, H', W') bool."""
    seeds = (d > thr) & valid
    if not seeds.any():
        return seeds
    near = _dilate(fill_holes(seeds.any(axis=0)[None]), int(margin))[0]
    labels = np.full(seeds.shape, cv2.GC_PR_BGD, np.uint8)
    labels[:, ~near] = cv2.GC_BGD
    labels[seeds] = cv2.GC_PR_FGD
    if sure > 0:
        certain = (d > sure * thr).astype(np.uint8)
        if erode > 0:
            ker = _disk(int(erode))
            certain = np.stack([cv2.erode(c, ker) for c in certain])
        labels[certain > 0] = cv2.GC_FGD
    labels[~valid] = cv2.GC_BGD
    return fill_holes(_close(_grabcut(x, labels, iters), close)) & valid


def _refine_stage(x: np.ndarray, valid: np.ndarray, m1: np.ndarray, *, refine_diff: float, edge_ratio: float,
                  min_bg: int, reach: int, clean: int, close: int) -> np.ndarray:
    """Step 5 of the module docstring: the GrabCut mask m1 corrected against a plate
    taken from the frames m1 calls background."""
    med, n = _masked_median(x, (valid & ~m1)[..., None])
    d = _plate_distance(x, _plate_u8(med))
    m2 = d > refine_diff
    if edge_ratio > 0:
        ker = np.ones((3, 3), np.uint8)
        m2 &= d >= edge_ratio * np.stack([cv2.dilate(e, ker) for e in d])
    known = n[..., 0] >= max(int(min_bg), 1)
    m = np.where(known[None], m2, m1) & valid
    if reach >= 0:
        m &= _dilate(m1, int(reach))
    return fill_holes(_close(_clean(m, int(clean)), close)) & valid


def grabcut_masks(
    clip: np.ndarray,
    *,
    refine: bool = True,
    work_size: int = 64,
    max_shift: int = 3,
    camera: str = "auto",
    blur: int = 3,
    min_diff: float = 30.0,
    sure: float = 2.0,
    erode: int = 1,
    margin: int = 4,
    iters: int = 5,
    refine_diff: float = 40.0,
    edge_ratio: float = 0.5,
    min_bg: int = 3,
    reach: int = 8,
    clean: int = 1,
    close: int = 2,
    min_area: float = 0.002,
) -> np.ndarray:
    """Per-frame foreground masks: motion seeds completed by GrabCut (see the module docstring).

    Pixel quantities are at the working size. Args:
        clip: (T, H, W, 3) uint8 RGB, T >= 2.
        refine: run step 5 (``"grabcut-refine"``); False = ``"grabcut"``.
        work_size: short side, pixels, above which the clip is downscaled (<= 0: never).
        max_shift: camera translation search radius, pixels per axis and per frame.
        camera: ``"auto"``, ``"translation"`` or ``"none"`` (see :func:`camera_transforms`).
        blur: odd Gaussian kernel size of the evidence, pixels (<= 1: none).
        min_diff: lowest seed threshold, sum-over-RGB grey levels (0..765).
        sure: certain-foreground threshold, a multiple of the seed threshold (<= 0: none).
        erode: erosion radius of the certain foreground, pixels.
        margin: how far (pixels) beyond the seeds' union over time GrabCut may extend.
        iters: GrabCut iterations.
        refine_diff: step 5's per-pixel threshold, sum-over-RGB grey levels.
        edge_ratio: step 5's edge rule (fraction of the 3 x 3 maximum; 0: off).
        min_bg: frames in which a pixel must be background for step 5 to judge it.
        reach: how far (pixels) step 5 may extend the GrabCut mask (< 0: anywhere).
        clean: step 5's opening/closing kernel size, pixels (<= 1: none).
        close: radius (pixels) of the closing before every hole filling (0: none).
        min_area: smallest component kept, as a fraction of the frame's area.

    Returns:
        (T, H, W) bool, True = foreground. Deterministic.
    """
    T, H, W = _check_clip(clip)
    if T < 2:
        raise ValueError(f"motion masks need T >= 2 frames, got {T}")
    if blur > 1 and blur % 2 == 0:
        raise ValueError(f"blur must be an odd kernel size, got {blur}")
    if camera not in CAMERA_MODELS:
        raise ValueError(f"camera must be one of {', '.join(CAMERA_MODELS)}, got {camera!r}")
    x = _working_clip(clip, int(work_size))
    h, w = x.shape[1:3]
    transforms = camera_transforms(x, int(max_shift), camera)
    aligned, valid, maps = to_canvas(x, transforms, canvas_pad(transforms, h, w))
    d, thr = _evidence(aligned, valid, int(blur), min_diff)
    m = _grabcut_stage(aligned, valid, d, thr, sure=sure, erode=int(erode), margin=int(margin), iters=int(iters),
                       close=int(close))
    if refine and m.any():
        m = _refine_stage(aligned, valid, m, refine_diff=refine_diff, edge_ratio=edge_ratio, min_bg=int(min_bg),
                          reach=int(reach), clean=int(clean), close=int(close))
    m = drop_small(m, min_area * h * w)
    out = from_canvas(m, maps, h, w)
    if (h, w) != (H, W):
        out = np.stack([cv2.resize(f.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) >= 0.5
                        for f in out])
    return out
