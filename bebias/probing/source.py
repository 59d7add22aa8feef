"""The data side of a probe: decoded clips, their masks, background plates and the variants
generated from them -- shared by ``bebias probe`` (:mod:`bebias.probing.run`) and
``bebias testset`` (:mod:`bebias.probing.materialize`), so that a materialised test set
holds exactly the frames the probe feeds a model.

* :class:`ProbeSource`: one split of ``--data``; decodes the centre clip of a video ONCE
  (cached), gets its foreground mask (ground truth where the data has one, else motion
  masks) and the clean background plates of donors;
* :func:`video_variants`: every requested variant of one video from that one decode,
  seeded by :func:`variant_seed`, with the donor choices of the probe.

Arrays: clips ``(T, H, W, 3)`` uint8 RGB, masks ``(T, H, W)`` bool, plates ``(H, W, 3)`` uint8.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bebias import seeds
from bebias.errors import BebiasError
from bebias.probing.masks import mask_iou, mask_is_usable, mask_quality, motion_masks
from bebias.probing.suite import ProbeSuite
from bebias.probing.testsets import MASK_VARIANTS, conflict_foreground, make_variant


__all__ = [
    "NEEDS_MASK", "MASK_SOURCES", "ProbeVideo", "ProbeSource", "variant_seed", "resize_to", "video_variants",
    "new_video_log", "count_excluded",
]

#: variants that need the video's foreground mask (and a usable one)
NEEDS_MASK: frozenset[str] = frozenset(MASK_VARIANTS | {"conflict-foreground"})
#: mask sources as recorded (code = index; "" = the row's variant used no mask); new
#: methods are appended, so the codes in earlier outputs keep their meaning
MASK_SOURCES: tuple[str, ...] = ("", "ground-truth", "motion:diff", "motion:mog2", "motion:grabcut",
                                 "motion:grabcut-refine", "given")


def variant_seed(seed: int, index: int, key: str) -> list[int]:
    """The seed of one (video, variant): 4 words of ``bebias.seeds.derive(seed, "variant", index, key)``."""
    return seeds.words(seed, "variant", index, key)


def resize_to(img: np.ndarray, h: int, w: int, nearest: bool = False) -> np.ndarray:
    """An (H, W[, C]) image at (h, w): INTER_AREA, or INTER_NEAREST for masks; unchanged if the size matches."""
    if img.shape[:2] == (h, w):
        return img
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(img, (w, h), interpolation=interp)


@dataclass
class ProbeVideo:
    """One decoded clip and its mask."""

    clip: np.ndarray  # (T, H, W, 3) uint8
    mask: np.ndarray | None  # (T, H, W) bool; None when no variant needs one and there is no ground truth
    source: str  # MASK_SOURCES entry ("" = none)
    usable: bool
    gt: np.ndarray | None  # (T, H, W) bool ground truth, where the data has one
    #: the mask's quality signals (bebias.probing.masks.mask_quality): coverage (foreground
    #: fraction) and stability (mean IoU of consecutive frames); NaN without a mask
    quality: dict[str, float]


class ProbeSource:
    """One split of ``--data`` as the probe needs it; caches a few decoded videos (donors).

    Args:
        data: a :class:`bebias.data.open.Data`.
        spec: anything with ``frames`` and ``stride`` (a :class:`~bebias.data.transforms.ClipSpec`):
            the centre clip of that geometry is decoded, at the video's native size.
        suite: the :class:`~bebias.probing.suite.ProbeSuite` (its mask settings are used).
        need_mask: False spares the motion masks where there is no ground truth.
        cache: decoded videos kept.
    """

    def __init__(self, data, spec, suite: ProbeSuite, need_mask: bool = True, cache: int = 32) -> None:
        self.data, self.spec, self.suite, self.need_mask = data, spec, suite, need_mask
        self.records = data.videos.records
        #: ``synthetic`` | ``benchmark`` | ``dataset`` (:attr:`bebias.data.open.Data.data_kind`)
        self.data_kind: str = data.data_kind
        self._cache: OrderedDict[int, ProbeVideo] = OrderedDict()
        self._size = cache
        self.labels = np.array([r.label for r in self.records], np.int64)
        self.scene: np.ndarray
        #: where the scene classes come from (None: unknown; then a swap's donor differs in motion class only)
        self.scene_labels: str | None
        self.scene, self.scene_labels = data.scenes()

    @property
    def has_gt(self) -> bool:
        """Whether any video has a recorded mask: the benchmark's, or one given with the data."""
        return bool(getattr(self.data.decoder, "has_masks", False)) or self.given_masks > 0

    @property
    def given_masks(self) -> int:
        """How many videos come with a given mask (a manifest's ``mask`` column, ``--masks DIR``)."""
        return sum(1 for r in self.records if r.meta.get("mask"))

    def bg_key(self, i: int) -> int:
        """The class the video's own background points to: its scene class where known (the
        benchmark's family, a manifest's ``bg_label``), else its motion class."""
        return int(self.scene[i]) if self.scene[i] >= 0 else int(self.labels[i])

    def own_bg(self, i: int) -> int:
        """The video's scene class, -1 where unknown."""
        return int(self.scene[i])

    def gt_masks(self, i: int, idx: np.ndarray) -> np.ndarray | None:
        """(len(idx), H, W) bool ground-truth masks of video i's frames idx, as the data
        records them (:meth:`bebias.data.decoders.Decoder.masks`, an optional method); None
        without ground truth."""
        masks = getattr(self.data.decoder, "masks", None)
        return masks(self.records[i], idx) if masks is not None else None

    def video(self, i: int) -> ProbeVideo:
        """Decode the centre clip once (cached) and get its mask. Raises BebiasError if unreadable."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        from bebias.data.decoders import decode_short
        from bebias.data.masks import mask_frames
        from bebias.data.sampling import center_clip

        rec = self.records[i]
        idx = center_clip(self.data.decoder.num_frames(rec), self.spec.frames, self.spec.stride)
        # brought down as decoded: an 8-frame 4K clip is never held at its native size
        clip = np.ascontiguousarray(self.data.decoder.read(rec, idx, short=decode_short(self.spec)))
        gt = self.gt_masks(i, idx)
        if gt is not None and gt.shape[1:] != clip.shape[1:3]:  # recorded at the native size
            gt = mask_frames(gt, np.arange(len(gt)), clip.shape[1:3], rec.path)
        mode = self.suite.mask
        given = rec.meta.get("mask")
        if gt is not None and mode in ("auto", "ground-truth"):
            mask, source = gt, "ground-truth"
        elif not self.need_mask:  # no variant uses it: spare the motion masks
            mask, source = None, ""
        elif given and mode in ("auto", "ground-truth"):  # the user's mask beats a motion mask
            from bebias.data.masks import clip_masks

            mask = clip_masks(given, (rec.start or 0) + np.asarray(idx), clip.shape[1:3],
                              self.data.decoder.frame_size(rec))
            source = "given"
        elif mode == "ground-truth":  # some videos have a given mask, this one not: no mask
            mask, source = None, ""
        else:
            method = self.suite.motion_method if mode in ("auto", "ground-truth") else mode
            mask = motion_masks(clip, method) if len(clip) >= 2 else np.zeros(clip.shape[:3], bool)
            source = f"motion:{method}"
        usable = mask is not None and mask_is_usable(mask, self.suite.min_mask_fraction, self.suite.max_mask_fraction,
                                                     self.suite.min_mask_stability)
        quality = mask_quality(mask) if mask is not None else {"coverage": float("nan"), "stability": float("nan")}
        v = ProbeVideo(clip, mask, source, usable, gt, quality)
        self._cache[i] = v
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return v

    def plate(self, i: int, h: int, w: int) -> np.ndarray:
        """The clean background of video i at (h, w), (h, w, 3) uint8: the data's recorded
        plate (:meth:`bebias.data.decoders.Decoder.plate`: the benchmark's), else the
        temporal median of its clip outside its (usable) mask."""
        plate = getattr(self.data.decoder, "plate", None)
        bg = plate(self.records[i]) if plate is not None else None
        if bg is None:
            from bebias.probing.masks import background_plate

            v = self.video(i)
            bg = background_plate(v.clip, v.mask if v.usable else None)  # unusable: the plain temporal median
        return np.ascontiguousarray(resize_to(bg, h, w))


def new_video_log() -> tuple[dict, dict]:
    """Empty ``(vids, state)`` for :func:`video_variants`: what it records per video
    (``vids``: index, mask source code, usable, IoU vs ground truth, foreground fraction
    (the mask's coverage), its stability, failed_index / failed_error) and per variant
    (``state["excluded"]``: variant -> reason -> count)."""
    vids = {"index": [], "source": [], "usable": [], "iou": [], "fraction": [], "stability": [], "failed_index": [],
            "failed_error": []}
    return vids, {"excluded": {}}


def video_variants(i: int, src: ProbeSource, selected: Sequence[int], variants: Sequence[str], suite: ProbeSuite,
                   seed: int, vids: dict, state: dict, *, pass_masks: bool = False
                   ) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield ``(frames, meta)`` for every variant of video i, from ONE decode; record the video.

    ``frames``: (T, H, W, 3) uint8. ``meta``: ``variant``, ``bg`` (background class, -1
    unknown), ``source`` (mask source, "" for a variant that uses none), ``donor`` (video
    index, -1 none) and ``mask``: (T, H, W) bool, where the original foreground is in
    ``frames``, or None (removed or unknown). A variant that needs no mask gets none (as in
    the probe) unless ``pass_masks``: then the video's usable mask is passed through it
    (re-indexed like the frames; the frames are the same either way).

    An unreadable video is recorded in ``vids["failed_*"]`` and yields nothing; a variant
    left out (mask unusable, no donor) is counted in ``state["excluded"]``.
    """
    try:
        v = src.video(i)
    except BebiasError as e:
        vids["failed_index"].append(i)
        vids["failed_error"].append(str(e))
        return
    T, H, W = v.clip.shape[:3]
    iou = float("nan")
    if v.gt is not None:
        motion = v.mask if v.source.startswith("motion:") else (
            motion_masks(v.clip, suite.motion_method) if T >= 2 else np.zeros((T, H, W), bool))
        iou = mask_iou(motion, v.gt)
    vids["index"].append(i)
    vids["source"].append(MASK_SOURCES.index(v.source))
    vids["usable"].append(bool(v.usable))
    vids["iou"].append(iou)
    vids["fraction"].append(v.quality["coverage"])
    vids["stability"].append(v.quality["stability"])
    y = int(src.labels[i])
    donors: dict[str, int | None] = {}
    scene_less: set[str] = set()  # donor keys with no video of another motion and scene class
    passed = v.mask if (pass_masks and v.usable) else None  # for the variants that need no mask

    own = src.own_bg(i)

    def donor(key: str, need_mask: bool) -> int | None:
        """A video whose background belongs to another class than i's motion and, where scene
        classes are known, to another scene class than i's own (the swap changes the scene);
        None if there is none (counted as ``no_other_scene_donor``) or none is readable."""
        if key in donors:
            return donors[key]
        if own >= 0:
            cands = [j for j in selected if j != i and src.bg_key(j) not in (y, own)]
            if not cands:
                donors[key] = None
                scene_less.add(key)
                return None
        else:  # scene classes unknown: another motion class, else any other video
            cands = [j for j in selected if j != i and src.bg_key(j) != y] or [j for j in selected if j != i]
        rng = np.random.default_rng(variant_seed(seed, i, f"donor:{key}"))
        found = None
        for p in rng.permutation(len(cands)):
            j = cands[int(p)]
            try:
                if need_mask:
                    if not src.video(j).usable:
                        continue
                else:
                    src.plate(j, H, W)
            except BebiasError:
                continue
            found = j
            break
        donors[key] = found
        return found

    for name in variants:
        meta = {"variant": name, "bg": src.own_bg(i), "source": "", "donor": -1}
        if name in NEEDS_MASK:
            if not v.usable:
                count_excluded(state, name, "mask_unusable")
                continue
            meta["source"] = v.source
        if name in ("swap-background", "swap-background-static"):
            vseed = variant_seed(seed, i, "swap-background")  # SCUBA and SCUFO share the background
            if suite.swap_background == "donor":
                j = donor("swap", need_mask=False)
                if j is None:
                    count_excluded(state, name, "no_other_scene_donor" if "swap" in scene_less else "no_donor")
                    continue
                out = make_variant(name, v.clip, v.mask, seed=vseed,
                                   donor={"background": src.plate(j, H, W), "index": j, "label": src.bg_key(j)})
                meta["bg"], meta["donor"] = src.bg_key(j), j
            else:
                out = make_variant(name, v.clip, v.mask, seed=vseed,
                                   images=list(suite.images) if suite.swap_background == "images" else None)
                meta["bg"] = -1
        elif name == "conflict-foreground":
            j = donor("conflict-foreground", need_mask=True)
            if j is None:
                count_excluded(state, name, "no_other_scene_donor" if name in scene_less else "no_donor")
                continue
            b = src.video(j)
            clip_b, mask_b = b.clip, b.mask
            if clip_b.shape[1:3] != (H, W):
                clip_b = np.stack([resize_to(f, H, W) for f in clip_b])
                mask_b = np.stack([resize_to(m.astype(np.uint8), H, W, nearest=True) > 0 for m in mask_b])
            out = conflict_foreground(v.clip, v.mask, clip_b, mask_b, variant_seed(seed, i, name))
            meta["bg"], meta["donor"] = src.bg_key(j), j
        else:
            out = make_variant(name, v.clip, v.mask if name in NEEDS_MASK else passed,
                               seed=variant_seed(seed, i, name), lam=suite.be_lambda)
            if name.startswith("foreground-only"):
                meta["bg"] = -1  # the background is gone
        meta["mask"] = out["mask"]
        yield out["frames"], meta


def count_excluded(state: dict, variant: str, reason: str) -> None:
    """Count a variant of one video left out, by reason (``state["excluded"][variant][reason]``)."""
    state["excluded"].setdefault(variant, {}).setdefault(reason, 0)
    state["excluded"][variant][reason] += 1
