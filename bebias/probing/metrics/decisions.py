"""Decision-level probe metrics: top-1 and its relatives on one test set, paired drops,
cue-conflict rates and agreement between two prediction sets (the headline score is in
:mod:`bebias.probing.metrics.reliance`). Inputs are per-video class probabilities (N, K), row-aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bebias.probing.metrics.stats import _labels, _probs, _top1, chance_agreements, per_class
from bebias.stats import NAN, estimate, row_bincount, row_means
from bebias.stats import mean_estimate as _mean_estimate


def accuracy_block(probs: np.ndarray, labels: np.ndarray, num_classes: int | None = None, seed: int = 0, *,
                   classes: Sequence[str] | None = None, n_boot: int = 1000, alpha: float = 0.05) -> dict[str, Any]:
    """Accuracy of one set of predictions, with bootstrap intervals.

    * ``top1`` = (1/N) Σ_i 1[argmax_c p_i[c] = y_i];
    * ``top5`` = (1/N) Σ_i 1[y_i among the k most probable classes], k = min(5, K)
      (ties in probability ranked by class index, like ``argmax``);
    * ``mean_class`` = mean over the classes present in ``labels`` of their top-1
      (balanced accuracy: each class weighs the same however many videos it has);
    * ``per_class`` = ``{class: top1 within the class}`` (:func:`per_class`);
    * ``n`` = N.

    All in [0, 1]. Each of top1/top5/mean_class is an :class:`Estimate`; mean_class is
    re-computed on every resample (so classes can drop out of a replicate, as they would
    in a different test set).

    Args:
        probs: (N, K) class probabilities (or any scores: only their order is used).
        labels: (N,) true class indices.
        num_classes: K; must equal ``probs.shape[1]`` (default: that).
        seed: bootstrap seed.
        classes: optional K class names for ``per_class``.
    """
    p = _probs(probs)
    K = p.shape[1]
    if num_classes is not None and num_classes != K:
        raise ValueError(f"num_classes = {num_classes} but probs has {K} columns")
    y = _labels(labels, p.shape[0], K)
    boot = {"n_boot": n_boot, "seed": seed, "alpha": alpha}
    c1 = _top1(p, y)
    k = min(5, K)
    topk = np.argsort(-p, axis=1, kind="stable")[:, :k]
    c5 = (topk == y[:, None]).any(1).astype(np.float64)

    def mean_class(idx: np.ndarray) -> np.ndarray:
        """(B, n) replicates -> (B,) mean over the classes present of their top-1."""
        yy = y[idx]
        count = row_bincount(yy, K)
        hits = row_bincount(yy, K, weights=c1[idx])
        present = count > 0
        return row_means(np.divide(hits, count, out=np.zeros(count.shape), where=present), present)

    return {
        "n": int(p.shape[0]),
        "top1": _mean_estimate(c1, **boot),
        "top5": _mean_estimate(c5, **boot),
        "mean_class": estimate(mean_class, p.shape[0], batched=True, **boot),
        "per_class": per_class(c1, y, num_classes=K, classes=classes),
    }


def _top1_result(probs: np.ndarray, labels: np.ndarray, name: str, classes: Sequence[str] | None,
                 boot: dict[str, Any]) -> dict[str, Any]:
    p = _probs(probs, name)
    y = _labels(labels, p.shape[0], p.shape[1])
    c = _top1(p, y)
    return {**_mean_estimate(c, **boot), "n": int(p.shape[0]),
            "per_class": per_class(c, y, num_classes=p.shape[1], classes=classes)}


def static_frame_accuracy(static_probs: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_boot: int = 1000,
                          alpha: float = 0.05, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Top-1 against the true (motion) class on the static-frame variant (one frame
    repeated T times): (1/N) Σ_i 1[ŷ(static_i) = y_i], in [0, 1].

    The variant has no motion at all, so anything above chance comes from static cues --
    the background *or* the actor's appearance. Returns the :class:`Estimate` fields plus
    ``n`` and ``per_class``."""
    return _top1_result(static_probs, labels, "static_probs", classes,
                        {"n_boot": n_boot, "seed": seed, "alpha": alpha})


def background_only_accuracy(bg_only_probs: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_boot: int = 1000,
                             alpha: float = 0.05, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Top-1 against the true (motion) class on the background-only variant (the actor
    removed, HAT): (1/N) Σ_i 1[ŷ(bg-only_i) = y_i], in [0, 1].

    Only the scene is left, so above-chance accuracy means the background predicts the
    label -- which it can only do on a test set where background and class are correlated
    (e.g. the benchmark's ``iid`` split; on ``conflict`` it is ~0 for any model). A label-free
    view is the agreement with the original decisions (the ``sufficiency`` component of
    :func:`~bebias.probing.metrics.reliance.background_reliance`). Returns the :class:`Estimate`
    fields plus ``n`` and ``per_class``."""
    return _top1_result(bg_only_probs, labels, "bg_only_probs", classes,
                        {"n_boot": n_boot, "seed": seed, "alpha": alpha})


def drop(orig_probs: np.ndarray, var_probs: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_boot: int = 1000,
         alpha: float = 0.05, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy drop from the original videos to a variant, paired by video.

    ``value`` = top1(original) - top1(variant) = (1/N) Σ_i (c_i - c'_i), with c_i, c'_i
    the 0/1 top-1 correctness of video i and of its variant; in [-1, 1] (fractions of
    videos; negative = the variant is easier). The interval resamples videos, i.e. the
    pairs (c_i, c'_i) jointly, so it is much tighter than two independent intervals when
    the two are correlated.

    Returns:
        the :class:`Estimate` fields, ``n``, ``original`` and ``variant`` (the two top-1
        values) and ``per_class`` (the drop within each true class).
    """
    po = _probs(orig_probs, "orig_probs")
    pv = _probs(var_probs, "var_probs", po.shape[0])
    if pv.shape[1] != po.shape[1]:
        raise ValueError(f"orig_probs has {po.shape[1]} classes but var_probs has {pv.shape[1]}")
    y = _labels(labels, po.shape[0], po.shape[1])
    co, cv = _top1(po, y), _top1(pv, y)
    d = co - cv
    n = int(po.shape[0])
    return {**_mean_estimate(d, n_boot=n_boot, seed=seed, alpha=alpha), "n": n,
            "original": float(co.mean()) if n else NAN, "variant": float(cv.mean()) if n else NAN,
            "per_class": per_class(d, y, num_classes=po.shape[1], classes=classes)}


def conflict_rates(probs: np.ndarray, labels: np.ndarray, bg_labels: np.ndarray, *, seed: int = 0,
                   n_boot: int = 1000, alpha: float = 0.05, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Which cue wins when motion and background point to different classes.

    For background swaps ``labels`` is the foreground's (motion) class y and ``bg_labels``
    the donor's class y_bg; for ConflFG (Li et al.) y = y_dynamic, y_bg = y_static. Only
    the videos with y_i != y_bg,i are cue conflicts; the others are excluded (there is no
    conflict to resolve) and counted in ``n_excluded``. Over the M kept videos:

    * ``background_follow``     = (1/M) Σ 1[ŷ_i = y_bg,i];
    * ``foreground_follow``     = (1/M) Σ 1[ŷ_i = y_i];
    * ``motion_over_background`` = (1/M) Σ 1[p_i[y_i] > p_i[y_bg,i]] (strict: a tie counts
      for neither). Unlike the two rates it does not need either class to be the top-1,
      so it still separates the cues when the model predicts a third class.

    All in [0, 1]; background_follow + foreground_follow <= 1 (the rest went to a third
    class).

    Returns:
        ``n`` (= M), ``n_excluded``, the three :class:`Estimate`\\ s and ``per_class``:
        ``{"background_follow": {class: rate}, "foreground_follow": {...}}`` by true class.
    """
    p = _probs(probs)
    K = p.shape[1]
    y = _labels(labels, p.shape[0], K)
    yb = _labels(bg_labels, p.shape[0], K, "bg_labels")
    keep = y != yb
    p, y, yb = p[keep], y[keep], yb[keep]
    pred = p.argmax(1)
    rows = np.arange(p.shape[0])
    bf = (pred == yb).astype(np.float64)
    ff = (pred == y).astype(np.float64)
    mob = (p[rows, y] > p[rows, yb]).astype(np.float64)
    boot = {"n_boot": n_boot, "seed": seed, "alpha": alpha}
    return {
        "n": int(keep.sum()), "n_excluded": int((~keep).sum()),
        "background_follow": _mean_estimate(bf, **boot),
        "foreground_follow": _mean_estimate(ff, **boot),
        "motion_over_background": _mean_estimate(mob, **boot),
        "per_class": {"background_follow": per_class(bf, y, num_classes=K, classes=classes),
                      "foreground_follow": per_class(ff, y, num_classes=K, classes=classes)},
    }


def contrasted_accuracy(swap_probs: np.ndarray, static_probs: np.ndarray, labels: np.ndarray, *, seed: int = 0,
                        n_boot: int = 1000, alpha: float = 0.05,
                        classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Contrasted accuracy (Li et al., ICCV 2023): right because of the motion.

    ``value`` = (1/N) Σ_i 1[ŷ(SCUBA_i) = y_i  and  ŷ(SCUFO_i) != y_i], in [0, 1], where
    SCUBA_i is video i's moving foreground on a new background (``swap-background``) and
    SCUFO_i one frame of it repeated (``swap-background-static``, the same background). A
    video counts only if the model is right with the motion and NOT right from the same
    frames without it, so a model that is right from static appearance gets no credit.

    Returns:
        the :class:`Estimate` fields (paired bootstrap: both variants of a video resampled
        together), ``n``, ``scuba_top1`` and ``scufo_top1`` (plain top-1 on each; lower is
        better for SCUFO) and ``per_class``.
    """
    ps = _probs(swap_probs, "swap_probs")
    pt = _probs(static_probs, "static_probs", ps.shape[0])
    y = _labels(labels, ps.shape[0], ps.shape[1])
    cs, ct = _top1(ps, y), _top1(pt, y)
    ca = cs * (1.0 - ct)
    n = int(ps.shape[0])
    return {**_mean_estimate(ca, n_boot=n_boot, seed=seed, alpha=alpha), "n": n,
            "scuba_top1": float(cs.mean()) if n else NAN, "scufo_top1": float(ct.mean()) if n else NAN,
            "per_class": per_class(ca, y, num_classes=ps.shape[1], classes=classes)}


# --------------------------------------------------------------------------------------
# decisions vs decisions
# --------------------------------------------------------------------------------------

def _kappas(pa: np.ndarray, pb: np.ndarray, k: int) -> np.ndarray:
    """Cohen's kappa of every row pair of two (B, n) label arrays, (B,); NaN where chance
    agreement is 1 (both constant on the same class: agreement carries no information)."""
    po = (pa == pb).mean(axis=1)
    pe = chance_agreements(pa, pb, k)
    ok = pe < 1.0 - 1e-12
    return np.where(ok, (po - pe) / np.where(ok, 1.0 - pe, 1.0), NAN)


def prediction_agreement(probs_a: np.ndarray, probs_b: np.ndarray, *, seed: int = 0, n_boot: int = 1000,
                         alpha: float = 0.05) -> dict[str, Any]:
    """How often a model makes the same decision on two versions of each video.

    * ``agreement`` = p_o = (1/N) Σ_i 1[ŷ_a,i = ŷ_b,i], in [0, 1];
    * ``kappa`` = (p_o - p_e) / (1 - p_e), Cohen's kappa, with p_e = Σ_c q_a(c) q_b(c)
      and q(c) the fraction of videos predicted as c: the agreement expected if the two
      decisions were independent with the same class frequencies. 1 = same decisions,
      0 = no more than chance, < 0 = systematically different. NaN when p_e = 1.

    No labels: this compares the model with itself, so it means the same on any split.
    Returns ``n``, ``agreement`` and ``kappa`` (:class:`Estimate`\\ s, paired bootstrap).
    """
    a = _probs(probs_a, "probs_a")
    b = _probs(probs_b, "probs_b", a.shape[0])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"probs_a has {a.shape[1]} classes but probs_b has {b.shape[1]}")
    K = a.shape[1]
    ya, yb = a.argmax(1), b.argmax(1)
    boot = {"n_boot": n_boot, "seed": seed, "alpha": alpha}
    return {"n": int(a.shape[0]), "agreement": _mean_estimate((ya == yb).astype(np.float64), **boot),
            "kappa": estimate(lambda i: _kappas(ya[i], yb[i], K), a.shape[0], batched=True, **boot)}


def shuffle_sensitivity(orig_probs: np.ndarray, shuf_probs: np.ndarray, labels: np.ndarray | None = None, *,
                        seed: int = 0, n_boot: int = 1000, alpha: float = 0.05,
                        classes: Sequence[str] | None = None) -> dict[str, Any]:
    """How often shuffling the frames changes the decision: P(ŷ(shuffled) != ŷ(original)).

    ``value`` = (1/N) Σ_i 1[argmax p_shuf,i != argmax p_orig,i], in [0, 1]. Shuffling
    keeps every frame (background, appearance) and destroys only the temporal order, so a
    model that reads motion direction changes its mind often; one that reads scenery
    hardly ever. Label-free; with ``labels`` a ``per_class`` breakdown (by true class) is
    added. Returns the :class:`Estimate` fields and ``n``.
    """
    po = _probs(orig_probs, "orig_probs")
    ps = _probs(shuf_probs, "shuf_probs", po.shape[0])
    if ps.shape[1] != po.shape[1]:
        raise ValueError(f"orig_probs has {po.shape[1]} classes but shuf_probs has {ps.shape[1]}")
    changed = (po.argmax(1) != ps.argmax(1)).astype(np.float64)
    out: dict[str, Any] = {**_mean_estimate(changed, n_boot=n_boot, seed=seed, alpha=alpha), "n": int(po.shape[0])}
    if labels is not None:
        y = _labels(labels, po.shape[0], po.shape[1])
        out["per_class"] = per_class(changed, y, num_classes=po.shape[1], classes=classes)
    return out
