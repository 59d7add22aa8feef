"""Probe metrics: how much a video model's decisions rest on the background vs the motion.

Pure functions of numpy arrays: per-video class probabilities ``probs`` (N, K) of the
original videos and of their counterfactual variants (:mod:`bebias.probing.testsets`),
aligned row by row (row i of every array is video i), the true (motion) class ``labels``
(N,) and, for background swaps and cue conflicts, ``bg_labels`` (N,): the class the
background belongs to (a swap's donor class; ConflFG's static-foreground class). No
models, no files: the glue that produces these arrays lives elsewhere.

Every rate is a fraction in [0, 1] (a drop, a difference or a cosine is in [-1, 1]) and
comes as an :class:`Estimate` ``{value, ci_low, ci_high}`` with a percentile bootstrap
confidence interval over videos (:func:`bebias.stats.bootstrap_ci`). Paired metrics (a drop, contrasted
accuracy, the headline score) resample *videos*, keeping each video's original and
variants together, so the interval reflects the pairing.

Predictions are ``argmax`` over K with ties going to the lowest class index (numpy's
``argmax``, as in :func:`bebias.training.evaluate.classification_metrics`).

==============================  ==============================================================
metric                          definition (over videos i = 1..N)
==============================  ==============================================================
:func:`accuracy_block`          top-1, top-k (k = min(5, K)), mean-class accuracy, per class
:func:`drop`                    top1(original) - top1(variant), paired
:func:`conflict_rates`          on y != y_bg: P(ŷ = y_bg), P(ŷ = y), P(p[y] > p[y_bg])
:func:`contrasted_accuracy`     mean 1[ŷ(swap) = y and ŷ(swap-static) != y]  (SCUBA/SCUFO)
:func:`static_frame_accuracy`   top-1 on the static-frame variant
:func:`background_only_accuracy` top-1 on the background-only variant
:func:`shuffle_sensitivity`     P(ŷ(shuffled) != ŷ(original))
:func:`prediction_agreement`    P(ŷ_a = ŷ_b) and Cohen's kappa between two prediction sets
:func:`background_reliance`     the headline: clip((P(ŷ(swap) = ŷ(donor's bg-only)) - null) / (1 - null))
:func:`knn_predict`             cosine k-NN vote -> probs (N, K): the same metrics on features
:func:`variant_similarity`      mean cos(f(x_i), f(variant_i))
:func:`kowal_shared_score`      Σ_d E[(z_a-μ)(z_b-μ)] / Σ_d Var(z)  (Kowal et al. CVPR 2022)
:func:`motion_vs_background_sharing`  the shared score of same-motion and same-background pairs
:func:`per_class`               mean of a per-video quantity within each true class
==============================  ==============================================================
"""

from bebias.probing.metrics.decisions import (accuracy_block, background_only_accuracy, conflict_rates,
                                              contrasted_accuracy, drop, prediction_agreement,
                                              shuffle_sensitivity, static_frame_accuracy)
from bebias.probing.metrics.features import (knn_predict, kowal_shared_score, motion_vs_background_sharing,
                                             variant_similarity)
from bebias.probing.metrics.reliance import (RELIANCE_COMPONENTS, RELIANCE_DEFINITION, agreement_null,
                                             background_reliance, follow_component)
from bebias.probing.metrics.stats import per_class

__all__ = [
    "per_class", "accuracy_block", "drop", "conflict_rates",
    "contrasted_accuracy", "static_frame_accuracy", "background_only_accuracy", "shuffle_sensitivity",
    "prediction_agreement", "background_reliance", "knn_predict", "variant_similarity",
    "kowal_shared_score", "motion_vs_background_sharing", "RELIANCE_COMPONENTS", "RELIANCE_DEFINITION",
    "agreement_null", "follow_component",
]
