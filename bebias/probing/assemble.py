"""From a probe's per-(video, variant) rows to its outputs: every metric of
:mod:`bebias.probing.metrics` (:func:`compute_metrics`), the videos block of ``metrics.json``
and ``predictions.csv``. Pure functions of arrays: no model, no files.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bebias.models.cam_measure import MEASURE, summarise
from bebias.probing import metrics as M
from bebias.probing.partial import CODE
from bebias.probing.source import MASK_SOURCES, ProbeSource
from bebias.probing.suite import ALL_VARIANTS, ProbeSuite

def jsonable(x: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def compute_metrics(rows: dict[str, np.ndarray], classes: Sequence[str], suite: ProbeSuite, seed: int = 0
                    ) -> dict[str, Any]:
    """Every probe metric from the per-(video, variant) arrays.

    ``rows``: ``video`` (R,) video index, ``variant`` (R,) code into :data:`ALL_VARIANTS`,
    ``label`` (R,) true class, ``bg`` (R,) background class (-1 unknown), ``probs`` (R, K),
    ``feats`` (R, C) (may have C = 0), ``donor`` (R,) the video whose background a swap uses
    (-1 none; without the key there is no headline score). Each variant is compared with the
    original of the SAME videos (rows aligned by video index). Returns the metric blocks of
    metrics.json.
    """
    boot = {"seed": seed, "n_boot": suite.n_boot, "alpha": suite.alpha}
    K = len(classes)
    cls = list(classes)
    code = rows["variant"]
    present = [v for v in ALL_VARIANTS if (code == CODE[v]).any()]

    def take(name: str, videos: np.ndarray | None = None) -> dict[str, np.ndarray]:
        sel = np.flatnonzero(code == CODE[name])
        if videos is not None:
            pos = {int(v): r for v, r in zip(rows["video"][sel], sel)}
            sel = np.array([pos[int(v)] for v in videos], np.int64)
        return {k: rows[k][sel] for k in ("video", "label", "bg", "probs", "feats", "donor") if k in rows}

    def common(*names: str) -> np.ndarray:
        vids = None
        for n in names:
            s = rows["video"][code == CODE[n]]
            vids = s if vids is None else vids[np.isin(vids, s)]
        return vids if vids is not None else np.zeros(0, np.int64)

    out: dict[str, Any] = {"headline": {}, "accuracy": {}, "drop": {}, "agreement": {}, "conflict": {},
                           "similarity": {}}
    for name in present:
        r = take(name)
        if len(r["video"]) == 0:
            continue
        out["accuracy"][name] = M.accuracy_block(r["probs"], r["label"], K, classes=cls, **boot)
        if (r["bg"] >= 0).all():
            out["conflict"][name] = M.conflict_rates(r["probs"], r["label"], r["bg"], classes=cls, **boot)
        if name == "original" or "original" not in present:
            continue
        o = take("original", r["video"])
        out["drop"][name] = M.drop(o["probs"], r["probs"], r["label"], classes=cls, **boot)
        out["agreement"][name] = M.prediction_agreement(o["probs"], r["probs"], **boot)
        if o["feats"].shape[1] > 0:
            out["similarity"][name] = M.variant_similarity(o["feats"], r["feats"], r["label"], classes=cls, **boot)

    def have(*names: str) -> bool:
        return all(n in present for n in names) and len(common(*names)) > 0

    h = out["headline"]
    if have("swap-background", "swap-background-static"):
        vv = common("swap-background", "swap-background-static")
        a, b = take("swap-background", vv), take("swap-background-static", vv)
        out["contrasted_accuracy"] = M.contrasted_accuracy(a["probs"], b["probs"], a["label"], classes=cls, **boot)
        h["contrasted_accuracy"] = out["contrasted_accuracy"]["value"]
    if have("static-frame"):
        s = take("static-frame")
        out["static_frame_accuracy"] = M.static_frame_accuracy(s["probs"], s["label"], classes=cls, **boot)
        h["static_frame_accuracy"] = out["static_frame_accuracy"]["value"]
    bo_name = next((n for n in ("background-only", "background-only-inpaint") if have(n)), None)
    if bo_name:
        s = take(bo_name)
        out["background_only_accuracy"] = {"variant": bo_name, **M.background_only_accuracy(
            s["probs"], s["label"], classes=cls, **boot)}
        h["background_only_accuracy"] = out["background_only_accuracy"]["value"]
    for name, key in (("shuffle", "shuffle_sensitivity"), ("reverse", "reverse_sensitivity")):
        if have("original", name):
            vv = common("original", name)
            o, s = take("original", vv), take(name, vv)
            out[key] = M.shuffle_sensitivity(o["probs"], s["probs"], o["label"], classes=cls, **boot)
            h[key] = out[key]["value"]
    if "swap-background" in out["conflict"]:
        h["swap_background_follow"] = out["conflict"]["swap-background"]["background_follow"]["value"]
    # the headline: each swap against its own original and its donor's background-only clip
    # (None when the run cannot define it: no donor swaps, or no donor has a background-only clip)
    out["background_reliance"] = None
    if bo_name and "donor" in rows and have("original", "swap-background") and have("original", bo_name):
        sw = take("swap-background", common("original", "swap-background"))
        bo = take(bo_name)
        at = {int(v): r for r, v in enumerate(bo["video"])}  # video index -> its background-only row
        ok = np.array([int(j) in at for j in sw["donor"]], bool)
        if ok.any():
            vv = common("original", bo_name)
            rel = M.background_reliance(take("original", sw["video"][ok])["probs"], sw["probs"][ok],
                                        bo["probs"][[at[int(j)] for j in sw["donor"][ok]]],
                                        sufficiency_probs=(take("original", vv)["probs"], take(bo_name, vv)["probs"]),
                                        **boot)
            # swaps left out: their donor has no background-only clip (unusable mask) or there is no donor
            out["background_reliance"] = {"variants": ["original", "swap-background", bo_name],
                                          "n_without_reference": int((~ok).sum()), **rel}
    h["background_reliance"] = out["background_reliance"]["value"] if out["background_reliance"] else None
    if "original" in out["accuracy"]:
        h["original_top1"] = out["accuracy"]["original"]["top1"]["value"]
    return out


def videos_block(vids: dict, selected: list[int], src: ProbeSource, suite: ProbeSuite) -> dict:
    usable = np.asarray(vids["usable"], bool)
    has_mask = np.asarray(vids["source"], np.int64) > 0
    iou = np.asarray(vids["iou"], np.float64)
    has_iou = np.isfinite(iou)
    frac = np.asarray(vids["fraction"], np.float64)
    stab = np.asarray(vids["stability"], np.float64)
    sources = [MASK_SOURCES[s] or "none" for s in vids["source"]]
    return {
        "in_split": len(src.records), "selected": len(selected), "probed": len(vids["index"]),
        "unreadable": [{"index": int(i), "path": src.records[int(i)].path, "error": e}
                       for i, e in zip(vids["failed_index"], vids["failed_error"])],
        "masks": {
            "mode": suite.mask,
            "sources": {s: sources.count(s) for s in sorted(set(sources))},
            "usable": int(usable.sum()), "not_usable": int((has_mask & ~usable).sum()),
            "usable_fraction_range": [suite.min_mask_fraction, suite.max_mask_fraction],
            "min_stability": suite.min_mask_stability,
            "mean_foreground_fraction": float(frac[has_mask].mean()) if has_mask.any() else None,
            # mean IoU of consecutive frames' masks (bebias.probing.masks.mask_quality)
            "mean_stability": float(np.nanmean(stab[has_mask])) if np.isfinite(stab[has_mask]).any() else None,
            # IoU of motion masks (suite.motion_method) vs the ground truth, where it exists
            "motion_iou": ({"method": suite.motion_method, "n": int(has_iou.sum()),
                            "mean": float(iou[has_iou].mean()), "min": float(iou[has_iou].min())}
                           if has_iou.any() else None),
        },
    }


def predictions_csv(rows: dict[str, np.ndarray], src: ProbeSource) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "path", "variant", "label", "bg_label", "pred", "p_label", "p_bg", "mask_source"])
    probs = rows["probs"]
    pred = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    for r in range(len(rows["video"])):
        i, y, b = int(rows["video"][r]), int(rows["label"][r]), int(rows["bg"][r])
        w.writerow([i, src.records[i].path, ALL_VARIANTS[int(rows["variant"][r])], y, "" if b < 0 else b,
                    int(pred[r]), f"{probs[r, y]:.6f}", "" if b < 0 else f"{probs[r, b]:.6f}",
                    MASK_SOURCES[int(rows["source"][r])]])
    return buf.getvalue()


def cam_block(vids: dict, layer: str, method: str, suite: ProbeSuite, seed: int = 0) -> dict[str, Any]:
    """The ``cam`` block of metrics.json (``bebias probe --cam``), from the per-video lists
    ``vids[k]`` for k in :data:`bebias.probing.partial.CAM_KEYS`.

    ``pred`` and ``true`` (the predicted and the true class's map): share, chance, ceiling
    and normalised score (:func:`bebias.models.cam_measure.summarise`), each a mean over
    the videos where it is defined, with a bootstrap CI over videos; ``true`` is None for a
    model without a head. ``actor_share`` and ``chance`` repeat ``pred``'s (the block's
    earlier keys).
    """
    boot = {"n_boot": suite.n_boot, "seed": seed, "alpha": suite.alpha}
    chance, ceiling = vids["cam_chance"], vids["cam_ceiling"]
    pred = summarise(vids["cam_share"], chance, ceiling, **boot)
    true_share = np.asarray(vids["cam_share_true"], np.float64)
    true = summarise(true_share, chance, ceiling, **boot) if np.isfinite(true_share).any() else None
    return {
        "actor_share": pred["share"], "chance": pred["chance"], "pred": pred, "true": true,
        "layer": layer, "method": method, "measure": MEASURE, "videos_without_share": pred["videos_left_out"],
    }


#: the variants whose background (and, for conflict-foreground, static foreground) comes from a donor video
DONOR_VARIANTS = ("swap-background", "swap-background-static", "conflict-foreground")


def swaps_block(src: ProbeSource, variants: Sequence[str], suite: ProbeSuite, excluded: dict) -> dict[str, Any]:
    """The ``swaps`` block of metrics.json: how donors were chosen, and per donor variant the
    videos left out because no probed video has a background of another motion class AND
    another scene class (``without_donor``; only where scene classes are known)."""
    used = [v for v in DONOR_VARIANTS if v in variants and (v == "conflict-foreground" or suite.swap_background
                                                             == "donor")]
    known = src.scene_labels is not None
    return {"scene_labels": src.scene_labels,
            "donor_rule": "another motion class and another scene class" if known else
                          "another motion class (scene classes unknown)",
            "without_donor": {v: int((excluded.get(v) or {}).get("no_other_scene_donor", 0)) for v in used}}
