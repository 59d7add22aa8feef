"""Statistics shared by the probe metrics: input checks, the percentile bootstrap over
videos (:func:`bootstrap_ci`, :class:`Estimate`) and per-class means. Pure numpy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict, Union

import numpy as np

from bebias.limits import check_int, check_memory

NAN = float("nan")
#: a statistic of a resample: an int array of video indices (with repeats) -> a number
Statistic = Callable[[np.ndarray], float]
ClassKey = Union[str, int]


class Estimate(TypedDict):
    """A point estimate on all videos and its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------

def _probs(probs: Any, name: str = "probs", n: int | None = None) -> np.ndarray:
    a = np.asarray(probs, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"{name} must be (N, K) with K >= 1, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows but the other inputs have {n} (rows must be aligned)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _feats(feats: Any, name: str, n: int | None = None) -> np.ndarray:
    return _probs(feats, name, n)  # same checks: (N, C), finite


def _labels(labels: Any, n: int, k: int, name: str = "labels") -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be (N,) with N = {n}, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not (np.issubdtype(a.dtype, np.number) and np.all(a == np.round(a))):
            raise ValueError(f"{name} must hold integer class indices")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(f"{name} must lie in [0, {k}), got values in [{a.min()}, {a.max()}]")
    return a


def _keys(classes: Sequence[str] | None, k: int) -> list[ClassKey]:
    """Per-class dict keys: the class names when given, else the class indices."""
    if classes is None:
        return list(range(k))
    if len(classes) != k:
        raise ValueError(f"classes has {len(classes)} names but the inputs have K = {k}")
    return [str(c) for c in classes]


def _top1(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-video 0/1 correctness of the top-1 prediction (float, for means)."""
    return (probs.argmax(1) == labels).astype(np.float64)


# --------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------

def check_n_boot(n_boot: object, n: int = 1, name: str = "--n-boot") -> int:
    """``n_boot`` replicates over ``n`` videos, if an integer >= 1 whose (n_boot, n) int64
    index array (and the replicates' float64 means) fit in memory; else
    :class:`~bebias.limits.OptionError` (also a ``ValueError``)."""
    check_int(name, n_boot)
    check_memory(16 * n_boot * max(n, 1), f"{name} {n_boot} bootstrap replicates of {max(n, 1)} video(s)")
    return n_boot  # type: ignore[return-value]


def bootstrap_ci(values_or_fn: np.ndarray | Sequence[float] | Statistic, n: int | None = None, *,
                 n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval over videos.

    Replicate b draws ``idx_b`` = n indices uniformly with replacement from [0, n) with
    ``numpy.random.default_rng(seed)`` (one ``integers(0, n, n)`` call per replicate, so the
    same (n, n_boot, seed) gives the same resamples for any statistic), evaluates the
    statistic on it, and the interval is the (alpha/2, 1 - alpha/2) quantiles (numpy's
    linear interpolation) of the replicates.

    Args:
        values_or_fn: either per-video values (n,) -- the statistic is their mean -- or a
            function of an index array returning a number. Pass a function for anything
            that is not a plain mean of independent values: a ratio, a kappa, or a paired
            metric whose inputs must be resampled together (e.g.
            ``lambda i: top1(orig[i]) - top1(var[i])``), so video i's original and its
            variants always enter a replicate together.
        n: number of videos; required with a function, defaults to ``len(values)``.
        n_boot: number of replicates (>= 1).
        seed: seed of the resampling.
        alpha: 1 - confidence level (0.05: a 95 % interval).

    Returns:
        ``(ci_low, ci_high)``. Replicates where the statistic is undefined (NaN, e.g. a
        ratio whose denominator vanished in that resample) are dropped; ``(nan, nan)`` when
        n == 0 or every replicate is undefined.
    """
    if callable(values_or_fn):
        if n is None:
            raise TypeError("bootstrap_ci needs n (the number of videos) with a statistic function")
        fn = values_or_fn
    else:
        v = np.asarray(values_or_fn, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"values must be 1-D (one per video), got shape {v.shape}")
        if n is not None and n != v.shape[0]:
            raise ValueError(f"n = {n} but {v.shape[0]} values were given")
        n = v.shape[0]
        fn = None
    check_n_boot(n_boot, n)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if n <= 0:
        return NAN, NAN
    # one draw of all replicates: the same stream as one integers(0, n, n) call per replicate
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    if fn is None:  # a plain mean: every replicate at once
        stats = v[idx].mean(axis=1)
    else:
        stats = np.array([fn(i) for i in idx], np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return NAN, NAN
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def estimate(stat: Statistic, n: int, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> Estimate:
    """``stat`` on all n videos (``stat(arange(n))``) with its :func:`bootstrap_ci`.

    ``value`` is NaN when n == 0 (nothing to measure) or when the statistic is undefined.
    """
    value = float(stat(np.arange(n))) if n > 0 else NAN
    lo, hi = bootstrap_ci(stat, n, n_boot=n_boot, seed=seed, alpha=alpha)
    return {"value": value, "ci_low": lo, "ci_high": hi}


def _mean_estimate(values: np.ndarray, **boot: Any) -> Estimate:
    """:func:`estimate` of the mean of per-video values (the replicates vectorised)."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(v, **boot)
    return {"value": float(v.mean()) if v.size else NAN, "ci_low": lo, "ci_high": hi}


def per_class(values: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int], *,
              num_classes: int | None = None, classes: Sequence[str] | None = None) -> dict[ClassKey, float]:
    """Mean of a per-video quantity within each true class.

    ``result[c] = mean(values[i] for i with labels[i] == c)``, for the classes with at
    least one video (the others are left out: their mean is undefined). With 0/1
    correctness as ``values`` this is per-class top-1 (recall); with a per-video
    difference it is the per-class drop.

    Args:
        values: (N,) per-video numbers.
        labels: (N,) class indices.
        num_classes: K (default: ``len(classes)``, else ``max(labels) + 1``).
        classes: optional K class names, used as keys (else the integer class index).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    lab = np.asarray(labels)
    k = num_classes if num_classes is not None else (
        len(classes) if classes is not None else (int(lab.max()) + 1 if lab.size else 0))
    y = _labels(lab, v.shape[0], k)
    keys = _keys(classes, k)
    count = np.bincount(y, minlength=k)
    total = np.bincount(y, weights=v, minlength=k)
    return {keys[c]: float(total[c] / count[c]) for c in range(k) if count[c] > 0}
