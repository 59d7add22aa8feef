"""The headline background-reliance score, on an anchored scale, with its parts.

Definition (docs/reliance.md has the reasoning and a worked example). On every
background-swapped clip i -- video i's moving actor pasted, pixel-exact, on the background
plate of a donor video d(i) -- the model's decision ŝ_i is compared with two references
the SAME model made in the SAME probe run:

* the **background reference** b_i = ŷ(background-only of d(i)): what the donor's
  background alone (the still plate, no actor, no motion) makes the model say;
* the **motion reference** m_i = ŷ(original i): what it says on the actor's own clip.

Components, each a rate over the N swapped clips with its **null**: the value the same
decisions give when they carry no information about each other, i.e. the mean over
permutations of the swap decisions among the videos, computed exactly as
``null = Σ_c q_s(c) q_r(c)`` (q = the fraction of this run's decisions that are class c):

* ``background_follow`` = (1/N) Σ_i 1[ŝ_i = b_i];
* ``motion_follow``     = (1/N) Σ_i 1[ŝ_i = m_i];
* ``sufficiency``       = (1/N') Σ_i 1[ŷ(original i) = ŷ(background-only i)] on the N'
  videos that have both (reported only: on a split where scene and class are correlated a
  pure motion model agrees with a scene-reading one, so it is not in the score).

**Score** = clip((background_follow - null_bg) / (1 - null_bg), 0, 1): the share of swapped
clips, beyond chance, that the model decides as their new background alone is decided.
0 = the new background moves decisions to its own no more often than chance (a motion
model, a random one); 1 = every swapped clip is decided as its background alone.
``no_signal`` is True when NEITHER follow rate's lower CI bound exceeds its null: the swap
decisions track neither cue (random decisions); the score is then near 0 and says nothing.

The references are the model's own decisions, not labels, so a model that reads the scene
with any class mapping (not only the "usual scene" one) scores 1, and the score means the
same on a biased ``iid`` split and on ``conflict``.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from bebias.probing.metrics.stats import _probs, chance_agreements
from bebias.stats import NAN, Estimate, estimate
from bebias.stats import mean_estimate as _mean_estimate

#: the parts reported next to the score, in report order
RELIANCE_COMPONENTS: tuple[str, ...] = ("background_follow", "motion_follow", "sufficiency")
#: one line, written into metrics.json next to the numbers
RELIANCE_DEFINITION = ("score = clip((background_follow - null) / (1 - null), 0, 1); background_follow = "
                       "P(decision on the swapped clip = decision on the donor's background-only clip), "
                       "null = the same rate with the swap decisions permuted among videos")


class Component(TypedDict):
    """A rate over videos (value, bootstrap CI, n) and its null: the rate's mean over
    permutations of one side's decisions among the videos."""

    value: float
    ci_low: float
    ci_high: float
    null: float
    n: int


def agreement_null(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mean of (1/n) Σ_i 1[a_π(i) = b_i] over all permutations π: Σ_c q_a(c) q_b(c).

    Exact (not sampled): position i receives a_π(i) = c with probability q_a(c), so the
    expectation is Σ_i q_a(b_i) / n. NaN for n = 0."""
    n = a.shape[0]
    if n == 0:
        return NAN
    return float((np.bincount(a, minlength=k) / n) @ (np.bincount(b, minlength=k) / n))


def follow_component(pa: np.ndarray, pb: np.ndarray, *, seed: int = 0, n_boot: int = 1000,
                     alpha: float = 0.05) -> Component:
    """P(argmax pa_i = argmax pb_i) over rows, its bootstrap CI and its null
    (:func:`agreement_null`). ``pa``, ``pb``: (n, K) probabilities, row-aligned."""
    a, b = pa.argmax(1), pb.argmax(1)
    est = _mean_estimate((a == b).astype(np.float64), n_boot=n_boot, seed=seed, alpha=alpha)
    return {**est, "null": agreement_null(a, b, pa.shape[1]), "n": int(a.shape[0])}


def excess(rate: float, null: float) -> float:
    """(rate - null) / (1 - null) clipped to [0, 1]; NaN when null = 1 (both sides one
    constant class: agreement is certain and carries no information)."""
    if not np.isfinite(rate) or not np.isfinite(null) or null >= 1.0 - 1e-12:
        return NAN
    return float(min(1.0, max(0.0, (rate - null) / (1.0 - null))))


def _excesses(rate: np.ndarray, null: np.ndarray) -> np.ndarray:
    """:func:`excess` elementwise, (B,) and (B,) -> (B,) (the same floating-point steps)."""
    ok = np.isfinite(rate) & np.isfinite(null) & (null < 1.0 - 1e-12)
    x = (rate - null) / np.where(ok, 1.0 - null, 1.0)
    return np.where(ok, np.minimum(1.0, np.maximum(0.0, x)), NAN)


def background_reliance(orig_probs: np.ndarray, swap_probs: np.ndarray, donor_background_probs: np.ndarray, *,
                        sufficiency_probs: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
                        n_boot: int = 1000, alpha: float = 0.05) -> dict[str, Any]:
    """The headline score (module docstring), in [0, 1], higher = decisions rest on the background.

    Args:
        orig_probs: (N, K) class probabilities on the original of video i (row i).
        swap_probs: (N, K) on video i's background swap.
        donor_background_probs: (N, K) on the background-only clip of the video whose
            background plate the swap of video i uses.
        sufficiency_probs: optional ``(original, background-only)`` (N', K) pairs of the
            videos that have both (need not be the score's videos), for ``sufficiency``.
        seed, n_boot, alpha: the bootstrap over videos.

    Returns:
        the score's :class:`Estimate` fields (the interval resamples the swapped clips,
        the null recomputed in every replicate), ``n``, ``no_signal`` (bool),
        ``components`` (``{name: Component or None}``) and ``definition`` (one line).

    Raises:
        ValueError: the inputs are not (N, K) and row-aligned.
    """
    o = _probs(orig_probs, "orig_probs")
    s = _probs(swap_probs, "swap_probs", o.shape[0])
    d = _probs(donor_background_probs, "donor_background_probs", o.shape[0])
    n, K = o.shape
    for name, a in (("swap_probs", s), ("donor_background_probs", d)):
        if a.shape[1] != K:
            raise ValueError(f"{name} has {a.shape[1]} classes but orig_probs has {K}")
    boot = {"seed": seed, "n_boot": n_boot, "alpha": alpha}
    comps: dict[str, Component | None] = {
        "background_follow": follow_component(s, d, **boot),
        "motion_follow": follow_component(s, o, **boot),
        "sufficiency": None,
    }
    if sufficiency_probs is not None:
        so = _probs(sufficiency_probs[0], "sufficiency original probs")
        sb = _probs(sufficiency_probs[1], "sufficiency background-only probs", so.shape[0])
        if so.shape[1] != K or sb.shape[1] != K:
            raise ValueError(f"sufficiency_probs must have K = {K} columns")
        comps["sufficiency"] = follow_component(so, sb, **boot)
    ys, yd = s.argmax(1), d.argmax(1)

    def score(idx: np.ndarray) -> np.ndarray:
        """(B, n) replicates -> (B,) scores: :func:`excess` of the follow rate over its null."""
        a, b = ys[idx], yd[idx]
        return _excesses((a == b).mean(axis=1), chance_agreements(a, b, K))

    head: Estimate = estimate(score, n, batched=True, **boot)

    def beats_null(c: Component | None) -> bool:
        return c is not None and np.isfinite(c["ci_low"]) and np.isfinite(c["null"]) and c["ci_low"] > c["null"]

    no_signal = not (beats_null(comps["background_follow"]) or beats_null(comps["motion_follow"]))
    return {**head, "n": int(n), "no_signal": bool(no_signal), "components": comps,
            "definition": RELIANCE_DEFINITION}
