"""Probe metrics (bebias.probing.metrics): every number checked against a hand computation."""

import math

import numpy as np
import pytest

from bebias.probing.metrics import (accuracy_block, background_only_accuracy,
                                    conflict_rates, contrasted_accuracy, drop, knn_predict,
                                    kowal_shared_score, motion_vs_background_sharing, per_class,
                                    prediction_agreement, shuffle_sensitivity, static_frame_accuracy,
                                    variant_similarity)
from bebias.stats import bootstrap_ci, estimate

B = {"n_boot": 200}  # bootstrap size for the small cases: keeps the file fast


def onehot(pred, k: int = 3) -> np.ndarray:
    """(N, K) probabilities whose argmax is ``pred``: 0.6 on it, the rest shared equally."""
    pred = np.asarray(pred)
    p = np.full((len(pred), k), 0.4 / (k - 1))
    p[np.arange(len(pred)), pred] = 0.6
    return p


def contains(est, value=None):
    v = est["value"] if value is None else value
    return est["ci_low"] - 1e-12 <= v <= est["ci_high"] + 1e-12


def width(est):
    return est["ci_high"] - est["ci_low"]


# --------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------

def test_bootstrap_hand_computed_two_videos():
    # values (0, 1): a resample's mean is 0 (prob 1/4), 0.5 (1/2) or 1 (1/4). Quantiles 0.3
    # and 0.7 (alpha = 0.6) both fall inside the 0.5 mass -> (0.5, 0.5); at alpha = 0.05
    # the 2.5 % / 97.5 % quantiles fall inside the 0 and 1 masses -> (0, 1)
    assert bootstrap_ci([0.0, 1.0], n_boot=4000, alpha=0.6) == (0.5, 0.5)
    assert bootstrap_ci([0.0, 1.0], n_boot=4000, alpha=0.05) == (0.0, 1.0)
    # constant values: every resample has the same mean
    assert bootstrap_ci([0.25] * 7, n_boot=50) == (0.25, 0.25)


def test_bootstrap_deterministic_and_values_equal_function():
    v = np.random.default_rng(3).random(40)
    a = bootstrap_ci(v, seed=7, **B)
    assert a == bootstrap_ci(v, seed=7, **B)  # same seed, same interval
    assert a != bootstrap_ci(v, seed=8, **B)
    # an array is the statistic "mean": the same resamples as the explicit function
    assert a == bootstrap_ci(lambda i: float(v[i].mean()), 40, seed=7, **B)


def test_bootstrap_contains_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = ((rng.random(n) < 0.3).astype(float) for n in (30, 3000))
    lo_s, hi_s = bootstrap_ci(small, **B)
    lo_l, hi_l = bootstrap_ci(large, **B)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4  # width ~ 1/sqrt(n): 100x the data, ~10x narrower


def test_bootstrap_edge_cases():
    assert all(math.isnan(x) for x in bootstrap_ci([], **B))
    with pytest.raises(TypeError):
        bootstrap_ci(lambda i: 0.0)  # a function needs n
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], 3)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], alpha=1.5)
    # undefined replicates are dropped: a statistic that is NaN unless index 0 is drawn
    lo, hi = bootstrap_ci(lambda i: 1.0 if (i == 0).any() else float("nan"), 3, **B)
    assert (lo, hi) == (1.0, 1.0)
    e = estimate(lambda i: float(len(i)), 0, **B)
    assert math.isnan(e["value"]) and math.isnan(e["ci_low"])


# --------------------------------------------------------------------------------------
# classification metrics
# --------------------------------------------------------------------------------------

def test_accuracy_block_hand_computed():
    y = [0, 0, 1, 1, 2]
    p = onehot([0, 1, 1, 1, 0])  # correct: 1 0 1 1 0
    r = accuracy_block(p, y, 3, seed=0, classes=["a", "b", "c"], **B)
    assert r["n"] == 5
    assert r["top1"]["value"] == pytest.approx(3 / 5)
    # per class: a 1/2, b 2/2, c 0/1; mean-class = (0.5 + 1 + 0) / 3
    assert r["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert r["mean_class"]["value"] == pytest.approx(0.5)
    assert r["top5"]["value"] == 1.0  # k = min(5, K = 3) = 3: every class is in the top 3
    for key in ("top1", "top5", "mean_class"):
        assert contains(r[key])
    assert accuracy_block(p, y, 3, seed=0, **B)["per_class"] == {0: 0.5, 1: 1.0, 2: 0.0}  # no names: indices
    assert accuracy_block(p, y, 3, seed=0, **B) == accuracy_block(p, y, 3, seed=0, **B)  # deterministic


def test_accuracy_block_top5_with_six_classes():
    # K = 6, k = 5. The true class (0) is ranked 1st, 5th, 6th and 2nd -> top-5 = 3/4, top-1 = 1/4
    scores = np.array([[6, 5, 4, 3, 2, 1],
                       [2, 6, 5, 4, 3, 1],
                       [1, 6, 5, 4, 3, 2],
                       [5, 6, 4, 3, 2, 1]], float)
    r = accuracy_block(scores / scores.sum(1, keepdims=True), [0, 0, 0, 0], **B)
    assert r["top5"]["value"] == pytest.approx(0.75)
    assert r["top1"]["value"] == pytest.approx(0.25)
    assert r["per_class"] == {0: 0.25}
    assert r["mean_class"]["value"] == pytest.approx(0.25)  # one class present


def test_accuracy_block_rejects_bad_inputs():
    with pytest.raises(ValueError):
        accuracy_block(onehot([0, 1]), [0, 3])  # label out of range
    with pytest.raises(ValueError):
        accuracy_block(onehot([0, 1]), [0, 1, 1])  # not aligned
    with pytest.raises(ValueError):
        accuracy_block(onehot([0, 1]), [0, 1], num_classes=4)


def test_per_class_hand_computed():
    # class 0: (1 + 3) / 2 = 2; class 2: 5; class 1 absent -> left out
    assert per_class([1.0, 3.0, 5.0], [0, 0, 2], num_classes=3) == {0: 2.0, 2: 5.0}
    assert per_class([1.0, 3.0, 5.0], [0, 0, 2], classes=["x", "y", "z"]) == {"x": 2.0, "z": 5.0}


def test_drop_hand_computed_and_paired():
    y = [0, 1, 2, 0, 1, 2]
    orig = onehot(y)                      # 6/6 correct
    var = onehot([0, 1, 0, 0, 2, 2])      # correct 1 1 0 1 0 1 = 4/6
    r = drop(orig, var, y, **B)
    assert r["original"] == 1.0 and r["variant"] == pytest.approx(4 / 6)
    assert r["value"] == pytest.approx(1 - 4 / 6)  # 1/3
    # per class: class 0 (0 + 0)/2, class 1 (0 + 1)/2, class 2 (1 + 0)/2
    assert r["per_class"] == {0: 0.0, 1: 0.5, 2: 0.5}
    assert contains(r)
    # paired: a variant identical to the original has drop exactly 0 in every resample,
    # although each accuracy on its own is uncertain
    half = onehot([0, 0, 0, 0, 0, 0])  # correct on the two class-0 videos only
    same = drop(half, half, y, **B)
    assert (same["value"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert width(accuracy_block(half, y, **B)["top1"]) > 0.3


def test_drop_ci_shrinks_with_more_videos():
    rng = np.random.default_rng(1)

    def case(n):
        y = rng.integers(0, 3, n)
        var_pred = np.where(rng.random(n) < 0.3, (y + 1) % 3, y)  # 30 % of the decisions flipped
        return drop(onehot(y), onehot(var_pred), y, **B)
    small, large = case(20), case(2000)
    assert contains(small) and contains(large)
    assert width(large) < width(small) / 4


def test_conflict_rates_hand_computed_and_exclusions():
    y = [0, 0, 1, 1, 2, 2]
    yb = [1, 0, 2, 1, 0, 1]  # rows 1 and 3 have y == y_bg: excluded
    p = np.array([[0.2, 0.5, 0.3],     # y 0, bg 1: ŷ = 1 = bg;       p[y] .2 < p[bg] .5
                  [1.0, 0.0, 0.0],     # excluded
                  [0.1, 0.6, 0.3],     # y 1, bg 2: ŷ = 1 = y;        p[y] .6 > p[bg] .3
                  [0.0, 0.0, 1.0],     # excluded
                  [0.5, 0.1, 0.4],     # y 2, bg 0: ŷ = 0 = bg;       p[y] .4 < p[bg] .5
                  [0.6, 0.15, 0.25]])  # y 2, bg 1: ŷ = 0, neither;   p[y] .25 > p[bg] .15
    r = conflict_rates(p, y, yb, **B)
    assert (r["n"], r["n_excluded"]) == (4, 2)
    assert r["background_follow"]["value"] == pytest.approx(2 / 4)
    assert r["foreground_follow"]["value"] == pytest.approx(1 / 4)
    assert r["motion_over_background"]["value"] == pytest.approx(2 / 4)
    # by true class: background-follow class 0: 1/1, class 1: 0/1, class 2: (1 + 0)/2
    assert r["per_class"]["background_follow"] == {0: 1.0, 1: 0.0, 2: 0.5}
    assert r["per_class"]["foreground_follow"] == {0: 0.0, 1: 1.0, 2: 0.0}
    for key in ("background_follow", "foreground_follow", "motion_over_background"):
        assert contains(r[key])
    # a tie p[y] == p[bg] counts for neither side
    tie = conflict_rates([[0.4, 0.4, 0.2]], [0], [1], **B)
    assert tie["motion_over_background"]["value"] == 0.0
    # every video excluded: n = 0, rates undefined, not an error
    none = conflict_rates(onehot([0, 1]), [0, 1], [0, 1], **B)
    assert (none["n"], none["n_excluded"]) == (0, 2) and math.isnan(none["background_follow"]["value"])


def test_contrasted_accuracy_hand_computed():
    y = [0, 1, 2, 0, 1]
    swap = onehot([0, 1, 2, 1, 1])     # SCUBA correct: 1 1 1 0 1
    static = onehot([0, 2, 0, 0, 0])   # SCUFO correct: 1 0 0 1 0
    r = contrasted_accuracy(swap, static, y, **B)
    # 1[SCUBA right and SCUFO not]: 0 1 1 0 1 -> 3/5
    assert r["value"] == pytest.approx(3 / 5)
    assert r["scuba_top1"] == pytest.approx(4 / 5) and r["scufo_top1"] == pytest.approx(2 / 5)
    assert r["per_class"] == {0: 0.0, 1: 1.0, 2: 1.0}
    assert contains(r)


def test_static_and_background_only_accuracy_hand_computed():
    y = [0, 1, 2, 1]
    p = onehot([0, 0, 0, 1])  # correct 1 0 0 1 -> 2/4
    for fn in (static_frame_accuracy, background_only_accuracy):
        r = fn(p, y, **B)
        assert r["value"] == pytest.approx(0.5) and r["n"] == 4
        assert r["per_class"] == {0: 1.0, 1: 0.5, 2: 0.0}
        assert contains(r)


def test_shuffle_sensitivity_hand_computed():
    # decisions 0 1 2 0 vs 0 2 2 1: changed on videos 1 and 3 -> 2/4
    r = shuffle_sensitivity(onehot([0, 1, 2, 0]), onehot([0, 2, 2, 1]), **B)
    assert r["value"] == pytest.approx(0.5) and "per_class" not in r
    r = shuffle_sensitivity(onehot([0, 1, 2, 0]), onehot([0, 2, 2, 1]), [0, 1, 2, 0], **B)
    assert r["per_class"] == {0: 0.5, 1: 1.0, 2: 0.0}


def test_prediction_agreement_kappa_hand_computed():
    # a = 0 0 1 1, b = 0 1 1 1: p_o = 3/4; class frequencies a (1/2, 1/2), b (1/4, 3/4)
    # p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    r = prediction_agreement(onehot([0, 0, 1, 1]), onehot([0, 1, 1, 1]), **B)
    assert r["agreement"]["value"] == pytest.approx(0.75)
    assert r["kappa"]["value"] == pytest.approx(0.5)
    # both constant on one class: p_e = 1, kappa undefined
    assert math.isnan(prediction_agreement(onehot([2, 2]), onehot([2, 2]), **B)["kappa"]["value"])


# --------------------------------------------------------------------------------------
# the headline score
# --------------------------------------------------------------------------------------

def _synthetic_models(n: int = 120, k: int = 4, seed: int = 0):
    """Per-variant predictions of a background-only and a motion-only model on an iid split
    (the background's class = the label)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    yb = (y + rng.integers(1, k, n)) % k  # donors of another class
    rand = lambda: rng.integers(0, k, n)  # noqa: E731 - chance-level decisions
    bg_model = {"orig_probs": onehot(y, k), "background_only_probs": onehot(y, k), "swap_probs": onehot(yb, k),
                "static": onehot(y, k)}
    motion_model = {"orig_probs": onehot(y, k), "background_only_probs": onehot(rand(), k),
                    "swap_probs": onehot(y, k), "static": onehot(rand(), k)}
    return y, yb, bg_model, motion_model


def test_static_and_scuba_metrics_separate_the_models():
    """The SCUBA/SCUFO and static metrics, which stay outside the headline score
    (tests/test_reliance.py has the score on simulated runs)."""
    y, yb, bg_model, motion_model = _synthetic_models()
    ca_bg = contrasted_accuracy(bg_model["swap_probs"], bg_model["static"], y, **B)["value"]
    ca_motion = contrasted_accuracy(motion_model["swap_probs"], motion_model["static"], y, **B)["value"]
    assert ca_bg == 0.0 and ca_motion > 0.5
    assert static_frame_accuracy(bg_model["static"], y, **B)["value"] == 1.0
    assert conflict_rates(bg_model["swap_probs"], y, yb, **B)["background_follow"]["value"] == 1.0
    assert conflict_rates(motion_model["swap_probs"], y, yb, **B)["foreground_follow"]["value"] == 1.0
    rng = np.random.default_rng(5)  # on a conflict split background-only *accuracy* is 0 for a scene reader
    family = (y + rng.integers(1, 4, len(y))) % 4
    assert background_only_accuracy(onehot(family, 4), y, **B)["value"] == 0.0


# --------------------------------------------------------------------------------------
# representation level
# --------------------------------------------------------------------------------------

def test_knn_predict_hand_computed_votes_and_ties():
    gallery = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    p = knn_predict(np.array([[1.0, 0.05]]), gallery, labels, k=3)
    # 2 votes for class 0, 1 for class 1 -> (2/3, 1/3) up to the < 1e-3 similarity term
    assert p.shape == (1, 2) and np.allclose(p.sum(1), 1.0)
    assert np.allclose(p[0], [2 / 3, 1 / 3], atol=1e-3)
    # k = 2 on a two-item gallery: one vote each, the tie goes to the more similar class
    g2, l2 = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    q = np.array([[1.0, 0.5], [0.5, 1.0]])
    p2 = knn_predict(q, g2, l2, k=2)
    assert np.allclose(p2, 0.5, atol=1e-3)
    assert list(p2.argmax(1)) == [0, 1]  # without the tie-break both would be class 0
    # k larger than the gallery is capped; num_classes pads unseen classes with 0
    p3 = knn_predict(q, g2, l2, k=10, num_classes=3)
    assert p3.shape == (2, 3) and np.all(p3[:, 2] == 0.0)


def test_knn_predict_separable_toy_set_and_leave_one_out():
    rng = np.random.default_rng(0)
    k_cls, per = 3, 30
    centres = np.eye(k_cls) * 5.0
    labels = np.repeat(np.arange(k_cls), per)
    feats = centres[labels] + rng.normal(0, 0.5, (len(labels), k_cls))
    query_labels = np.repeat(np.arange(k_cls), 10)
    query = centres[query_labels] + rng.normal(0, 0.5, (len(query_labels), k_cls))
    p = knn_predict(query, feats, labels, k=10)
    assert (p.argmax(1) == query_labels).all()
    assert accuracy_block(p, query_labels, **B)["top1"]["value"] == 1.0  # the same metrics apply
    # leave-one-out on the gallery itself: each item is classified by the others
    loo = knn_predict(feats, feats, labels, k=1, leave_one_out=True)
    assert (loo.argmax(1) == labels).all()
    # with itself in the gallery and k = 1 every item is trivially its own neighbour
    odd = np.array([[1.0, 0.0], [0.99, 0.01]])
    assert knn_predict(odd, odd, np.array([0, 1]), k=1).argmax(1).tolist() == [0, 1]
    assert knn_predict(odd, odd, np.array([0, 1]), k=1, leave_one_out=True).argmax(1).tolist() == [1, 0]


def test_variant_similarity_hand_computed():
    orig = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    var = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    # cosines 1, 0, -1 -> mean 0; per class (labels 0 0 1): (1 + 0)/2, -1
    r = variant_similarity(orig, var, [0, 0, 1], **B)
    assert r["value"] == pytest.approx(0.0) and r["n"] == 3
    assert r["per_class"] == pytest.approx({0: 0.5, 1: -1.0})
    assert contains(r)


def test_kowal_hand_computed():
    # pooled (0, 2, 1, 3): mu 1.5, Var = (2.25 + .25 + .25 + 2.25)/4 = 1.25
    # E[(a - mu)(b - mu)] = ((-1.5)(-0.5) + (0.5)(1.5))/2 = 0.75 -> s = 0.75 / 1.25 = 0.6
    assert kowal_shared_score([[0.0], [2.0]], [[1.0], [3.0]]) == pytest.approx(0.6)
    # a second dimension: pooled (1, -1, -1, 1), mu 0, Var 1, E[ab] = (1 * -1 + -1 * 1)/2 = -1
    # s = (0.75 - 1) / (1.25 + 1) = -1/9   (sums over d, not a mean of per-d ratios)
    assert kowal_shared_score([[0.0, 1.0], [2.0, -1.0]], [[1.0, -1.0], [3.0, 1.0]]) == pytest.approx(-1 / 9)
    # perfectly anti-correlated pairs: pooled (1, 3, 3, 1), mu 2, Var 1, E = -1 -> -1
    assert kowal_shared_score([[1.0], [3.0]], [[3.0], [1.0]]) == pytest.approx(-1.0)


def test_kowal_identical_and_independent():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 16)) * rng.random(16)  # dimensions of unequal scale
    assert kowal_shared_score(z, z) == pytest.approx(1.0)
    a, b = rng.normal(size=(20000, 8)), rng.normal(size=(20000, 8))
    assert abs(kowal_shared_score(a, b)) < 0.02
    assert math.isnan(kowal_shared_score(np.ones((3, 2)), np.ones((3, 2))))  # no variance


def test_motion_vs_background_sharing_hand_computed():
    z = [[0.0], [2.0]]
    # same motion: the kowal case above, 0.6. Same background (3, 1): pooled (0, 2, 3, 1), mu 1.5,
    # Var 1.25, E[(a - mu)(b - mu)] = ((-1.5)(1.5) + (0.5)(-0.5)) / 2 = -1.25 -> -1
    r = motion_vs_background_sharing(z, [[1.0], [3.0]], [[3.0], [1.0]], **B)
    assert r["n"] == 2
    assert r["motion"]["value"] == pytest.approx(0.6)
    assert r["background"]["value"] == pytest.approx(-1.0)
    assert r["difference"]["value"] == pytest.approx(1.6)


def test_motion_vs_background_sharing():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 6))
    same_motion = z + rng.normal(0, 0.5, z.shape)  # shares most of its variance with z
    same_bg = rng.normal(size=z.shape)             # independent of z
    r = motion_vs_background_sharing(z, same_motion, same_bg, **B)
    # Var(z) = 1, Var(same_motion) = 1.25: pooled Var ≈ 1.125, Cov = 1 -> motion ≈ 1/1.125 = 0.89
    assert r["motion"]["value"] == pytest.approx(1 / 1.125, abs=0.06)
    assert abs(r["background"]["value"]) < 0.1
    d = r["difference"]
    assert d["value"] == pytest.approx(r["motion"]["value"] - r["background"]["value"])
    assert d["ci_low"] > 0.5 and contains(d)
    assert r["n"] == 400


# --------------------------------------------------------------------------------------
# the probe's assembly of the metrics (bebias.probing.assemble.compute_metrics)
# --------------------------------------------------------------------------------------

def test_compute_metrics_headline_hand_computed():
    """Rows in any order, paired by video; a variant missing for a video (an unusable mask)
    leaves that video out of the paired numbers that need it, and only those."""
    from bebias.probing.assemble import compute_metrics
    from bebias.probing.suite import ALL_VARIANTS, ProbeSuite

    y = [0, 1, 2, 0]
    family = [1, 2, 0, 1]  # a conflict split: the scene never belongs to the label
    donor = [3, 2, 0, 1]   # the video each swap takes its background from ...
    donor_bg = [family[j] for j in donor]  # ... and that background's class (1 0 1 2), != y
    table = {  # variant -> (decisions per video, background class per video); None = not run
        "original": ([0, 1, 2, 1], family),
        "swap-background": ([1, 1, 0, 2], donor_bg),
        "swap-background-static": ([1, 0, 2, 2], donor_bg),
        "static-frame": ([0, 0, 0, 0], family),
        "background-only": ([0, 2, 0, None], family),  # video 3: no usable mask
        "shuffle": ([0, 2, 2, 1], family),
    }
    rows = [(v, name, pred[v], bg[v]) for name, (pred, bg) in table.items() for v in range(4) if pred[v] is not None]
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    arrays = {"video": np.array([r[0] for r in rows]), "variant": np.array([ALL_VARIANTS.index(r[1]) for r in rows]),
              "label": np.array([y[r[0]] for r in rows]), "bg": np.array([r[3] for r in rows]),
              "donor": np.array([donor[r[0]] if r[1].startswith("swap") else -1 for r in rows]),
              "probs": onehot([r[2] for r in rows]), "feats": np.zeros((len(rows), 0))}
    m = compute_metrics(arrays, ["a", "b", "c"], ProbeSuite(n_boot=200))
    h = m["headline"]
    assert h["original_top1"] == pytest.approx(3 / 4)
    # SCUBA right and SCUFO wrong: SCUBA is right on video 1 only, where SCUFO says 0 -> 1/4
    assert h["contrasted_accuracy"] == pytest.approx(1 / 4)
    assert h["static_frame_accuracy"] == pytest.approx(2 / 4)     # videos 0 and 3 (label 0)
    assert h["background_only_accuracy"] == pytest.approx(1 / 3)  # on the 3 videos that have it
    assert h["shuffle_sensitivity"] == pytest.approx(1 / 4)       # video 1 changed
    assert h["swap_background_follow"] == pytest.approx(2 / 4)    # videos 0, 3 name the donor's class
    # the headline: the swaps whose donor has a background-only clip, videos 1, 2, 3 (video
    # 0's donor is video 3: none), with s = 1 0 2, b = bo(donor) = bo(2) bo(0) bo(1) = 0 0 2,
    # o = 1 2 1
    # background_follow: s = b on videos 2, 3 -> 2/3; null = (1*2 + 1*0 + 1*1)/9 = 1/3
    #   -> score (2/3 - 1/3) / (2/3) = 1/2
    # motion_follow: s = o on video 1 -> 1/3; q_o = (0, 2, 1)/3 -> null (0 + 2 + 1)/9 = 1/3
    # sufficiency on videos 0-2: o = 0 1 2, bo = 0 2 0 -> 1/3; null (2 + 0 + 1)/9 = 1/3
    rel = m["background_reliance"]
    assert rel["variants"] == ["original", "swap-background", "background-only"]
    assert (rel["n"], rel["n_without_reference"]) == (3, 1)
    c = rel["components"]
    assert (c["background_follow"]["value"], c["background_follow"]["null"]) == pytest.approx((2 / 3, 1 / 3))
    assert (c["motion_follow"]["value"], c["motion_follow"]["null"]) == pytest.approx((1 / 3, 1 / 3))
    suff = c["sufficiency"]
    assert (suff["value"], suff["null"], suff["n"]) == pytest.approx((1 / 3, 1 / 3, 3))
    assert h["background_reliance"] == pytest.approx(1 / 2) == rel["value"]
    # per variant: accuracy on its own videos, drop paired with the same videos' originals
    assert m["accuracy"]["background-only"]["n"] == 3
    assert m["drop"]["static-frame"]["value"] == pytest.approx(3 / 4 - 2 / 4)
    assert m["drop"]["background-only"]["value"] == pytest.approx(1 - 1 / 3)  # originals 0-2 all right
    assert m["agreement"]["shuffle"]["agreement"]["value"] == pytest.approx(3 / 4)
    # the originals as a cue conflict against their own scene: video 3 follows it (1 = family)
    assert m["conflict"]["original"]["background_follow"]["value"] == pytest.approx(1 / 4)
    assert m["similarity"] == {}  # no features
    # the order of the rows does not matter
    back = np.argsort(order)
    again = compute_metrics({k: v[back] for k, v in arrays.items()}, ["a", "b", "c"], ProbeSuite(n_boot=200))
    assert again["headline"] == h
