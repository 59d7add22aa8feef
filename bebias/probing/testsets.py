"""Counterfactual test sets: variants of one video that pull background and motion apart.

Every function is pure and deterministic on uint8 numpy arrays, and takes the decoded
arrays (never a path to the video), so all variants of a video come from ONE decode:

* clip: ``(T, H, W, 3)`` uint8 RGB;
* mask: ``(T, H, W)`` bool, True = foreground (a ``(H, W)`` mask is broadcast over T);
* background plate: ``(H, W, 3)`` uint8 RGB.

Random choices come only from a ``numpy.random.Generator`` passed in (or one built by
``numpy.random.default_rng(seed)``): the same seed gives the same arrays.

Each variant returns a :class:`Variant` dict: ``frames`` (T, H, W, 3) uint8, ``mask``
(T, H, W) bool of where the original foreground now is (None when it was removed or
is unknown) and ``meta`` (JSON-able: variant name, background source, donor, frame
indices, seed).

===========================  =============================================================
variant                      what it keeps / removes (after)
===========================  =============================================================
swap-background              moving foreground on a new still background (SCUBA)
swap-background-static       one frame of the swap repeated T times (SCUFO)
static-frame                 one frame of the clip repeated T times: no motion
background-only              actor removed: the still background plate over T frames (no motion)
background-only-inpaint      actor removed: mask inpainted per frame (cv2 TELEA)
foreground-only              background replaced by the clip's mean colour (HAT)
foreground-only-noise        background replaced by a still uniform-noise image
shuffle / reverse            frame order destroyed / reversed
be                           Background Erasing at test time: (1-lam) x_j + lam x_k
conflict_foreground (pair)   a's moving foreground over b's plate and static foreground (ConflFG)
===========================  =============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import cv2
import numpy as np

from bebias.probing.backgrounds import (Image, Seed, background_from_images, pick_image, rng_of, round_u8,
                                       stripes_background)
from bebias.probing.masks import background_plate
from bebias.probing.masks.common import _check_clip, _check_mask, _check_plate

__all__ = [
    "Variant", "ConflictVariant", "VARIANTS", "MASK_VARIANTS", "make_variant",
    "swap_background", "stripes_background", "background_from_images", "static_frame",
    "background_only", "foreground_only", "shuffle", "reverse", "conflict_foreground",
    "be_distraction",
]


class Variant(TypedDict):
    """A counterfactual version of a clip.

    frames: (T, H, W, 3) uint8 RGB.
    mask: (T, H, W) bool, where the original foreground is now; None if removed/unknown.
    meta: JSON-able description (variant, background source, donor, frame indices, seed).
    """

    frames: np.ndarray
    mask: np.ndarray | None
    meta: dict[str, Any]


class ConflictVariant(Variant):
    """:func:`conflict_foreground`'s output, plus ``static_mask`` (T, H, W) bool: where the
    static foreground of the second video is visible (not covered by the moving one)."""

    static_mask: np.ndarray


# --------------------------------------------------------------------------------------
# new backgrounds
# --------------------------------------------------------------------------------------

def swap_background(clip: np.ndarray, mask: np.ndarray, new_background: np.ndarray) -> Variant:
    """SCUBA-style background swap: the clip's foreground pixels over a new still background.

    Args:
        clip: (T, H, W, 3) uint8.
        mask: (T, H, W) (or (H, W)) bool foreground.
        new_background: (H, W, 3) uint8 still image, the same under every frame.

    Returns:
        :class:`Variant`: frames equal to ``clip`` where ``mask`` and to ``new_background``
        elsewhere (exactly: a hard composite); mask = the input mask.
    """
    T, H, W = _check_clip(clip)
    m = _check_mask(mask, T, H, W)
    bg = _check_plate(new_background, H, W, "new_background")
    frames = np.where(m[..., None], clip, bg[None])
    return {"frames": frames, "mask": m, "meta": {"variant": "swap-background"}}


# --------------------------------------------------------------------------------------
# appearance without motion / motion without the actor / actor without the scene
# --------------------------------------------------------------------------------------

def static_frame(clip: np.ndarray, index: int | None = None, rng: Seed | None = None, *,
                 mask: np.ndarray | None = None) -> Variant:
    """SCUFO-style static clip: one frame repeated T times (appearance kept, motion removed).

    Args:
        clip: (T, H, W, 3) uint8.
        index: the frame, in [0, T). None: drawn from ``rng`` if given, else the middle
            frame T // 2.
        rng: Generator or seed, used only when ``index`` is None.
        mask: optional (T, H, W) foreground; the output mask is its frame ``index`` repeated.

    Returns:
        :class:`Variant` with ``meta["frame"]`` = the index used.
    """
    T, H, W = _check_clip(clip)
    if index is None:
        index = int(rng_of(rng).integers(T)) if rng is not None else T // 2
    index = int(index)
    if not 0 <= index < T:
        raise ValueError(f"frame index must lie in [0, {T}), got {index}")
    frames = np.repeat(clip[index][None], T, axis=0)
    m = None if mask is None else np.repeat(_check_mask(mask, T, H, W)[index][None], T, axis=0)
    return {"frames": frames, "mask": m, "meta": {"variant": "static-frame", "frame": index}}


def _dilate(m: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return m
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return np.stack([cv2.dilate(f.astype(np.uint8), ker) > 0 for f in m])


def background_only(clip: np.ndarray, mask: np.ndarray, fill: str = "still", *, dilate: int = 0,
                    radius: float = 3.0) -> Variant:
    """Background-only video: the actor removed.

    Why ``"still"`` is the default (the probe's ``background-only``): filling the actor's
    pixels frame by frame leaves a hole that moves WITH the actor -- anti-aliased edge pixels
    outside the mask, and a plate that no longer lines up once the camera pans -- so a model
    that reads only motion still recognises the action from it (measured on the embedded
    benchmark: a motion-only oracle kept 100% top-1 on ``"plate"`` fills, 90% even with the
    mask dilated by 2 px, and on ``"inpaint"``), and the background's sufficiency would be
    overstated. The still plate has no actor and no motion at all.

    Args:
        clip: (T, H, W, 3) uint8.
        mask: (T, H, W) (or (H, W)) bool foreground to remove.
        fill: ``"still"``: the background plate (below) repeated over the T frames: the
            scene without the actor and without any motion, camera motion included.
            ``"plate"``: masked pixels take the temporal-median background plate
            (:func:`~bebias.probing.masks.background_plate` over the frames where each pixel
            is background): exact for a static camera and background wherever the pixel is
            uncovered in most frames; a pixel covered in *every* frame has no background
            sample and keeps the median of the clip (the actor's colour) there -- its share
            of the frame is ``meta["unfilled_fraction"]``. ``"inpaint"``: each frame is
            inpainted on its own with OpenCV's TELEA method (no temporal information; works
            under camera motion, smears large holes).
        dilate: grow the mask by this many pixels first (removes anti-aliased halos).
            For ``"plate"`` and ``"inpaint"`` (HAT-style: scene and camera kept, the hole's
            motion too, see above).
        radius: TELEA neighbourhood radius in pixels.

    Returns:
        :class:`Variant` with mask None (the foreground is gone); ``meta["removed_fraction"]``
        = share of the (T, H, W) pixels that were filled.
    """
    T, H, W = _check_clip(clip)
    m = _dilate(_check_mask(mask, T, H, W), int(dilate))
    meta: dict[str, Any] = {"variant": "background-only", "fill": fill, "dilate": int(dilate),
                            "removed_fraction": float(m.mean())}
    if fill in ("still", "plate"):
        plate = background_plate(clip, m)
        frames = np.repeat(plate[None], T, axis=0) if fill == "still" else np.where(m[..., None], plate[None], clip)
        meta["unfilled_fraction"] = float(m.all(axis=0).mean())
    elif fill == "inpaint":
        frames = clip.copy()
        for t in range(T):
            if m[t].any():
                frames[t] = cv2.inpaint(np.ascontiguousarray(clip[t]), m[t].astype(np.uint8), float(radius),
                                        cv2.INPAINT_TELEA)
    else:
        raise ValueError(f"fill must be 'still', 'plate' or 'inpaint', got {fill!r}")
    return {"frames": frames, "mask": None, "meta": meta}


def foreground_only(clip: np.ndarray, mask: np.ndarray, fill: str = "mean", rng: Seed | None = None) -> Variant:
    """HAT-style foreground-only video: the actor kept, the scene replaced by a blank.

    Args:
        clip: (T, H, W, 3) uint8.
        mask: (T, H, W) (or (H, W)) bool foreground to keep.
        fill: ``"mean"``: the clip's mean colour (per channel over all pixels of all
            frames, rounded); ``"noise"``: one image of i.i.d. uniform noise in [0, 255],
            the **same in every frame** (noise redrawn per frame would be motion
            everywhere, a cue of its own).
        rng: Generator or seed for ``"noise"`` (None: seed 0).

    Returns:
        :class:`Variant`: ``clip`` where ``mask``, the fill elsewhere; mask = the input mask.
    """
    T, H, W = _check_clip(clip)
    m = _check_mask(mask, T, H, W)
    meta: dict[str, Any] = {"variant": "foreground-only", "fill": fill}
    if fill == "mean":
        colour = round_u8(clip.reshape(-1, 3).mean(axis=0, dtype=np.float64))
        filler = np.broadcast_to(colour, (H, W, 3))
        meta["colour"] = colour.tolist()
    elif fill == "noise":
        filler = rng_of(0 if rng is None else rng).integers(0, 256, (H, W, 3), dtype=np.uint8)
    else:
        raise ValueError(f"fill must be 'mean' or 'noise', got {fill!r}")
    frames = np.where(m[..., None], clip, filler[None])
    return {"frames": frames, "mask": m, "meta": meta}


# --------------------------------------------------------------------------------------
# time axis
# --------------------------------------------------------------------------------------

def shuffle(clip: np.ndarray, rng: Seed, *, mask: np.ndarray | None = None) -> Variant:
    """Frames in a random order, uniform over the T! - 1 non-identity permutations.

    An identity draw is redrawn (T = 2 has one other permutation; the expected number of
    draws is at most 2); T = 1 returns a copy. ``meta["perm"]``: out[t] = clip[perm[t]].
    """
    T, H, W = _check_clip(clip)
    rng = rng_of(rng)
    ident = np.arange(T)
    perm = rng.permutation(T)
    for _ in range(64):  # P(identity 64 times) <= 2^-64
        if T == 1 or not np.array_equal(perm, ident):
            break
        perm = rng.permutation(T)
    else:
        perm = np.roll(ident, 1)  # unreachable in practice; guarantees the contract
    m = None if mask is None else _check_mask(mask, T, H, W)[perm]
    return {"frames": clip[perm], "mask": m, "meta": {"variant": "shuffle", "perm": perm.tolist()}}


def reverse(clip: np.ndarray, *, mask: np.ndarray | None = None) -> Variant:
    """The clip played backwards: out[t] = clip[T - 1 - t]."""
    T, H, W = _check_clip(clip)
    m = None if mask is None else _check_mask(mask, T, H, W)[::-1].copy()
    return {"frames": clip[::-1].copy(), "mask": m, "meta": {"variant": "reverse"}}


# --------------------------------------------------------------------------------------
# pairs and BE
# --------------------------------------------------------------------------------------

def conflict_foreground(clip_a: np.ndarray, mask_a: np.ndarray, clip_b: np.ndarray, mask_b: np.ndarray,
                        rng: Seed, *, frame_index: int | None = None) -> ConflictVariant:
    """ConflictFG-style cue conflict: a's *moving* foreground and b's *static* foreground.

    Layers, bottom to top, in every frame t:

    1. b's background plate (temporal median over b's background frames);
    2. b's foreground as it is in ONE frame k of b (drawn from ``rng``), the same in every
       frame: b's appearance without its motion;
    3. a's foreground of frame t: a's motion (and appearance) on top, so where the two
       overlap the moving foreground wins.

    A model that follows motion predicts a's class; one that reads static appearance
    (the scene or a frozen actor) predicts b's.

    Args:
        clip_a, mask_a: (T, H, W, 3) uint8 and (T, H, W) bool, the moving video.
        clip_b, mask_b: (T', H, W, 3) uint8 and (T', H, W) bool, the static one (T' may differ).
        rng: Generator or seed (draws k).
        frame_index: override k, in [0, T').

    Returns:
        :class:`ConflictVariant` with T frames; mask = a's foreground, ``static_mask`` =
        where b's static foreground shows; ``meta["static_frame"]`` = k.
    """
    T, H, W = _check_clip(clip_a, "clip_a")
    Tb, Hb, Wb = _check_clip(clip_b, "clip_b")
    if (Hb, Wb) != (H, W):
        raise ValueError(f"clip_b must have clip_a's frame size {H}x{W}, got {Hb}x{Wb}")
    ma = _check_mask(mask_a, T, H, W, "mask_a")
    mb = _check_mask(mask_b, Tb, H, W, "mask_b")
    k = int(rng_of(rng).integers(Tb)) if frame_index is None else int(frame_index)
    if not 0 <= k < Tb:
        raise ValueError(f"frame_index must lie in [0, {Tb}), got {k}")
    still = background_plate(clip_b, mb)
    still[mb[k]] = clip_b[k][mb[k]]
    frames = np.where(ma[..., None], clip_a, still[None])
    static_mask = mb[k][None] & ~ma
    return {"frames": frames, "mask": ma, "static_mask": static_mask,
            "meta": {"variant": "conflict-foreground", "static_frame": k}}


def be_distraction(clip: np.ndarray, lam: float, frame_index: int, *, mask: np.ndarray | None = None) -> Variant:
    """Background Erasing applied at test time on uint8 frames.

    ``out_j = round((1 - lam) * x_j + lam * x_k)`` for every frame j, with k =
    ``frame_index``, computed as ``x_j + lam * (x_k - x_j)`` in float64 so that lam = 0
    and a static clip return the input exactly; rounded half up.

    Args:
        clip: (T, H, W, 3) uint8.
        lam: mixing weight in [0, 1].
        frame_index: k in [0, T).
        mask: optional foreground, passed through (the foreground stays where it was,
            a faint copy of frame k is added over everything).

    Returns:
        :class:`Variant` with ``meta`` ``{"lam", "frame"}``.
    """
    T, H, W = _check_clip(clip)
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    k = int(frame_index)
    if not 0 <= k < T:
        raise ValueError(f"frame_index must lie in [0, {T}), got {k}")
    x = clip.astype(np.float64)
    frames = round_u8(x + float(lam) * (x[k][None] - x))
    m = None if mask is None else _check_mask(mask, T, H, W)
    return {"frames": frames, "mask": m, "meta": {"variant": "be", "lam": float(lam), "frame": k}}


# --------------------------------------------------------------------------------------
# dispatcher
# --------------------------------------------------------------------------------------

#: single-video variants of :func:`make_variant`
VARIANTS: tuple[str, ...] = (
    "original", "swap-background", "swap-background-static", "static-frame", "background-only",
    "background-only-inpaint", "foreground-only", "foreground-only-noise", "shuffle", "reverse", "be",
)
#: the variants that need a foreground mask
MASK_VARIANTS: frozenset[str] = frozenset({
    "swap-background", "swap-background-static", "background-only", "background-only-inpaint",
    "foreground-only", "foreground-only-noise",
})


def _jsonable_seed(seed: int | Sequence[int]) -> int | list[int]:
    return int(seed) if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]


def _new_background(H: int, W: int, rng: np.random.Generator, donor: dict | None,
                    images: Sequence[Image] | None) -> tuple[np.ndarray, dict[str, Any]]:
    """The still background of a swap: the donor's plate, else a random image, else stripes."""
    if donor is not None:
        if "background" not in donor:
            raise ValueError("donor must hold a 'background' (H, W, 3) uint8 plate")
        bg = _check_plate(donor["background"], H, W, "donor['background']")
        info: dict[str, Any] = {"background": "donor"}
        scalar = (str, bool, int, float, np.integer, np.floating)
        for key, val in donor.items():  # record what identifies the donor (label, index, name...)
            if key != "background" and (val is None or isinstance(val, scalar)):
                info[f"donor_{key}"] = val.item() if isinstance(val, np.generic) else val
        return bg, info
    if images:
        bg, i = pick_image(images, H, W, rng)
        return bg, {"background": "image", "image_index": i}
    return stripes_background(H, W, rng), {"background": "stripes"}


def make_variant(name: str, clip: np.ndarray, mask: np.ndarray | None, *, seed: int | Sequence[int],
                 donor: dict | None = None, images: Sequence[Image] | None = None,
                 lam: float = 0.3) -> Variant:
    """One named single-video variant (:data:`VARIANTS`), every random choice from ``seed``.

    Args:
        name: one of :data:`VARIANTS`.
        clip: (T, H, W, 3) uint8 RGB.
        mask: (T, H, W) bool foreground; required by :data:`MASK_VARIANTS`, passed
            through (re-indexed) by the others, may be None there.
        seed: int or sequence of ints for ``numpy.random.default_rng`` (e.g. ``[suite
            seed, video index]``); recorded in ``meta["seed"]``.
        donor: background of ``swap-background*``: ``dict(background=(H, W, 3) uint8,
            label=..., ...)``; its scalar entries are recorded as ``meta["donor_<key>"]``.
        images: pool for ``swap-background*`` when no donor is given
            (:func:`background_from_images`); with neither, sinusoidal stripes.
        lam: BE mixing weight of ``be`` (its static frame is drawn from ``seed``).

    Returns:
        :class:`Variant`; ``meta["variant"]`` = ``name``. ``swap-background`` and
        ``swap-background-static`` with the same seed share the same background, and the
        static one is frame T // 2 of the swap: the SCUBA / SCUFO pair of one video.
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    T, H, W = _check_clip(clip)
    if name in MASK_VARIANTS and mask is None:
        raise ValueError(f"variant {name!r} needs a foreground mask")
    rng = np.random.default_rng(seed)
    extra: dict[str, Any] = {}
    if name == "original":
        out: Variant = {"frames": clip.copy(), "mask": None if mask is None else _check_mask(mask, T, H, W),
                        "meta": {}}
    elif name in ("swap-background", "swap-background-static"):
        bg, extra = _new_background(H, W, rng, donor, images)
        out = swap_background(clip, mask, bg)
        if name == "swap-background-static":
            still = static_frame(out["frames"], mask=out["mask"])
            extra["frame"] = still["meta"]["frame"]
            out = still
    elif name == "static-frame":
        out = static_frame(clip, mask=mask)
    elif name in ("background-only", "background-only-inpaint"):
        out = background_only(clip, mask, "still" if name == "background-only" else "inpaint")
    elif name in ("foreground-only", "foreground-only-noise"):
        out = foreground_only(clip, mask, "mean" if name == "foreground-only" else "noise", rng)
    elif name == "shuffle":
        out = shuffle(clip, rng, mask=mask)
    elif name == "reverse":
        out = reverse(clip, mask=mask)
    else:  # be
        out = be_distraction(clip, lam, int(rng.integers(T)), mask=mask)
    out["meta"] = {**out["meta"], **extra, "variant": name, "seed": _jsonable_seed(seed)}
    return out
