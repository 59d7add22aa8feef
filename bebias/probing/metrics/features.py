"""Representation-level probe metrics on pooled features (N, D): k-NN readout, cosine
similarity to a variant, and Kowal et al.'s shared-information score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bebias.probing.metrics.stats import _feats, _labels, per_class
from bebias.stats import NAN, estimate
from bebias.stats import mean_estimate as _mean_estimate


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(query_feats: np.ndarray, gallery_feats: np.ndarray, gallery_labels: np.ndarray, k: int = 10, *,
                num_classes: int | None = None, leave_one_out: bool = False) -> np.ndarray:
    """Cosine k-nearest-neighbour classifier that returns class probabilities.

    For each query, the k gallery items of highest cosine similarity vote for their
    label; the class with the most votes wins, and a tie in votes goes to the class whose
    tied neighbours are more similar in total. Returned as probabilities (N, K) so every
    metric above applies unchanged to frozen features:

        p[c] ∝ v_c + ε · w_c,   w_c = Σ_{neighbours j of class c} (1 + cos_j) / 2,   ε = 10⁻³ / k

    with v_c the number of votes for c. Since 0 <= w_c <= v_c <= k, the similarity term
    is < 10⁻³ and never overturns a vote difference; p is the vote share to within 10⁻³.

    Args:
        query_feats: (N, C) features.
        gallery_feats: (M, C) features (zero vectors have similarity 0 to everything).
        gallery_labels: (M,) class indices.
        k: neighbours (capped at the gallery size).
        num_classes: K (default ``max(gallery_labels) + 1``).
        leave_one_out: the query set IS the gallery (N = M, same order): each query's own
            row is excluded from its neighbours.

    Returns:
        (N, K) float64, rows summing to 1.
    """
    q = _feats(query_feats, "query_feats")
    g = _feats(gallery_feats, "gallery_feats")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query features have {q.shape[1]} dimensions but the gallery's have {g.shape[1]}")
    lab = np.asarray(gallery_labels)
    K = num_classes if num_classes is not None else (int(lab.max()) + 1 if lab.size else 0)
    gl = _labels(lab, g.shape[0], K, "gallery_labels")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if leave_one_out and q.shape[0] != g.shape[0]:
        raise ValueError("leave_one_out needs the query set to be the gallery (same N)")
    m = g.shape[0] - (1 if leave_one_out else 0)
    if m < 1:
        raise ValueError("the gallery is empty")
    kk = min(k, m)
    eps = 1e-3 / kk
    qn, gn = _unit(q), _unit(g)
    out = np.zeros((q.shape[0], K))
    for start in range(0, q.shape[0], 1024):  # chunks of queries: bounded (1024, M) memory
        sim = qn[start:start + 1024] @ gn.T
        rows = np.arange(sim.shape[0])
        if leave_one_out:
            sim[rows, rows + start] = -np.inf
        nn = np.argsort(-sim, axis=1, kind="stable")[:, :kk]  # stable: ties by gallery index
        s = np.take_along_axis(sim, nn, axis=1)
        cls = gl[nn]
        score = np.zeros((sim.shape[0], K))
        np.add.at(score, (np.repeat(rows, kk), cls.ravel()), 1.0 + eps * (1.0 + s.ravel()) / 2.0)
        out[start:start + sim.shape[0]] = score / score.sum(1, keepdims=True)
    return out


def variant_similarity(orig_feats: np.ndarray, var_feats: np.ndarray, labels: np.ndarray | None = None, *,
                       seed: int = 0, n_boot: int = 1000, alpha: float = 0.05,
                       classes: Sequence[str] | None = None) -> dict[str, Any]:
    """How close each video's representation stays to its own variant's.

    ``value`` = (1/N) Σ_i cos(f_i, f'_i), f_i the features of video i and f'_i those of
    its variant; in [-1, 1] (1 = the variant is invisible to the representation, e.g.
    BE's training objective for the BE distraction). With ``labels``, ``per_class`` too.
    Returns the :class:`Estimate` fields and ``n``.
    """
    a = _feats(orig_feats, "orig_feats")
    b = _feats(var_feats, "var_feats", a.shape[0])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"orig_feats has {a.shape[1]} dimensions but var_feats has {b.shape[1]}")
    cos = (_unit(a) * _unit(b)).sum(1)
    out: dict[str, Any] = {**_mean_estimate(cos, n_boot=n_boot, seed=seed, alpha=alpha), "n": int(a.shape[0])}
    if labels is not None:
        lab = np.asarray(labels)
        K = len(classes) if classes is not None else (int(lab.max()) + 1 if lab.size else 0)
        out["per_class"] = per_class(cos, lab, num_classes=K, classes=classes)
    return out


def _shared(za: np.ndarray, zb: np.ndarray) -> float:
    pooled = np.concatenate([za, zb])
    mu = pooled.mean(0)
    total_var = float(((pooled - mu) ** 2).mean(0).sum())
    if total_var <= 0.0:
        return NAN
    return float(((za - mu) * (zb - mu)).mean(0).sum() / total_var)


def kowal_shared_score(z_a: np.ndarray, z_b: np.ndarray) -> float:
    """Shared-information score of paired representations (Kowal et al., CVPR 2022).

        s = Σ_d E_i[(z_a,i,d - μ_d)(z_b,i,d - μ_d)] / Σ_d Var_d(z)

    where row i of ``z_a`` and ``z_b`` (N, D) is a pair of videos that share one factor
    (e.g. only the motion, or only the background), and μ_d and Var_d (population
    variance) are taken over the 2N pooled vectors. The numerator is the covariance of
    the pair's features summed over dimensions, so s is the fraction of the feature
    variance that the shared factor explains: 1 when every pair is identical, ≈ 0 when
    the two members are independent; s ∈ [-1, 1] (Cauchy-Schwarz). NaN when the pooled
    features do not vary.
    """
    a = _feats(z_a, "z_a")
    b = _feats(z_b, "z_b", a.shape[0])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"z_a has {a.shape[1]} dimensions but z_b has {b.shape[1]}")
    if a.shape[0] == 0:
        return NAN
    return _shared(a, b)


def motion_vs_background_sharing(z: np.ndarray, z_same_motion: np.ndarray, z_same_background: np.ndarray, *,
                                 seed: int = 0, n_boot: int = 1000, alpha: float = 0.05) -> dict[str, Any]:
    """Does a representation encode the motion or the background? (Kowal et al.)

    Row i of ``z_same_motion`` is a video that shares ONLY the motion (class) with video i
    (another background), row i of ``z_same_background`` one that shares ONLY the
    background (another motion). Then

    * ``motion``     = :func:`kowal_shared_score` (z, z_same_motion);
    * ``background`` = :func:`kowal_shared_score` (z, z_same_background);
    * ``difference`` = motion - background, in [-2, 2]: > 0 = the representation carries
      more of the motion than of the background.

    All three are :class:`Estimate`\\ s from one paired bootstrap: a replicate resamples
    video i together with both of its partners. Returns them and ``n``.
    """
    a = _feats(z, "z")
    m = _feats(z_same_motion, "z_same_motion", a.shape[0])
    b = _feats(z_same_background, "z_same_background", a.shape[0])
    if not a.shape[1] == m.shape[1] == b.shape[1]:
        raise ValueError("z, z_same_motion and z_same_background must have the same feature dimension")
    n = a.shape[0]
    boot = {"n_boot": n_boot, "seed": seed, "alpha": alpha}
    return {"n": int(n),
            "motion": estimate(lambda i: _shared(a[i], m[i]), n, **boot),
            "background": estimate(lambda i: _shared(a[i], b[i]), n, **boot),
            "difference": estimate(lambda i: _shared(a[i], m[i]) - _shared(a[i], b[i]), n, **boot)}
