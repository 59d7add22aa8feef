"""The percentile bootstrap over videos: one resampling scheme for every interval bebias
reports (the probe's metrics, the Grad-CAM actor share of ``bebias cam`` and ``bebias probe
--cam``, the report). Pure numpy, on the lowest floor, so that probing, models and
reporting all call it directly.

Replicate b of ``(n, n_boot, seed)`` is row b of :func:`resamples` -- n video indices
drawn uniformly with replacement from [0, n) by ``numpy.random.default_rng(seed)`` (the
stream of one ``integers(0, n, n)`` call per replicate) -- so every statistic of a probe
with the same (n, n_boot, seed) sees the same resamples, and the draw is made once.

A statistic is either a function of one replicate's (n,) index array returning a number
(:data:`Statistic`), or, with ``batched=True``, a function of a (B, n) matrix of
replicates returning their (B,) values (:data:`BatchStatistic`): the fast form, that the
probe's metrics use; a batched statistic must give on each row exactly what its
one-replicate form gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypedDict

import numpy as np

from bebias.limits import check_int, check_memory

NAN = float("nan")
#: a statistic of one resample: an (n,) int array of video indices (with repeats) -> a number
Statistic = Callable[[np.ndarray], float]
#: a statistic of B resamples at once: a (B, n) int array, one replicate per row -> (B,) float64
BatchStatistic = Callable[[np.ndarray], np.ndarray]
#: elements of the (rows, n) index block a batched statistic gets at a time (bounds its temporaries)
_BLOCK = 1 << 18
#: largest resample matrix kept for the next statistic of the same (n, n_boot, seed), in elements
_KEEP = 1 << 23

__all__ = ["BatchStatistic", "Estimate", "NAN", "Statistic", "bootstrap_ci", "check_n_boot", "estimate",
           "mean_estimate", "resamples", "row_bincount", "row_dots", "row_means"]


class Estimate(TypedDict):
    """A point estimate on all videos and its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


def check_n_boot(n_boot: object, n: int = 1, name: str = "--n-boot") -> int:
    """``n_boot`` replicates over ``n`` videos, if an integer >= 1 whose (n_boot, n) int64
    index array (and the replicates' float64 means) fit in memory; else
    :class:`~bebias.limits.OptionError` (also a ``ValueError``)."""
    check_int(name, n_boot)
    check_memory(16 * n_boot * max(n, 1), f"{name} {n_boot} bootstrap replicates of {max(n, 1)} video(s)")
    return n_boot  # type: ignore[return-value]


@lru_cache(maxsize=64)
def _checked(n_boot: int, n: int) -> bool:
    """:func:`check_n_boot` once per (n_boot, n) of this process (a refusal is not kept:
    it is raised again next time)."""
    check_n_boot(n_boot, n)
    return True


@lru_cache(maxsize=4)
def _draw(n: int, n_boot: int, seed: int) -> np.ndarray:
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    idx.flags.writeable = False
    return idx


def resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The (n_boot, n) int64 bootstrap resamples of n videos: row b = replicate b.

    ``default_rng(seed).integers(0, n, size=(n_boot, n))``, the same stream as one
    ``integers(0, n, n)`` call per replicate. Read-only; the last few draws are kept, so the
    many statistics of one probe share one draw."""
    if n * n_boot <= _KEEP:
        return _draw(int(n), int(n_boot), int(seed))
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _replicates(fn: Statistic | BatchStatistic, idx: np.ndarray, batched: bool) -> np.ndarray:
    """(n_boot,) values of the statistic on every row of ``idx`` (n_boot, n)."""
    if not batched:
        return np.array([fn(i) for i in idx], np.float64)
    rows = max(1, _BLOCK // max(idx.shape[1], 1))
    parts = [np.asarray(fn(idx[b:b + rows]), np.float64) for b in range(0, idx.shape[0], rows)]
    out = np.concatenate(parts)
    if out.shape != (idx.shape[0],):
        raise ValueError(f"a batched statistic must return one value per replicate, got shape {out.shape}")
    return out


def bootstrap_ci(values_or_fn: np.ndarray | Sequence[float] | Statistic | BatchStatistic, n: int | None = None, *,
                 n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, batched: bool = False
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval over videos.

    Evaluates the statistic on each of the ``n_boot`` replicates of :func:`resamples` ``(n,
    n_boot, seed)``; the interval is the (alpha/2, 1 - alpha/2) quantiles (numpy's linear
    interpolation) of the replicates.

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
        batched: the function takes a (B, n) block of replicates and returns their (B,)
            values (:data:`BatchStatistic`); it is called on blocks of rows.

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
    if isinstance(n_boot, bool) or not isinstance(n_boot, int):
        check_n_boot(n_boot, n)  # refuses it: not an integer
    _checked(n_boot, int(n))
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if n <= 0:
        return NAN, NAN
    idx = resamples(n, n_boot, seed)
    stats = v[idx].mean(axis=1) if fn is None else _replicates(fn, idx, batched)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return NAN, NAN
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def estimate(stat: Statistic | BatchStatistic, n: int, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
             batched: bool = False) -> Estimate:
    """``stat`` on all n videos (``stat(arange(n))``; batched: the one row ``arange(n)``)
    with its :func:`bootstrap_ci`.

    ``value`` is NaN when n == 0 (nothing to measure) or when the statistic is undefined.
    """
    if n <= 0:
        value = NAN
    elif batched:
        value = float(np.asarray(stat(np.arange(n)[None]), np.float64)[0])
    else:
        value = float(stat(np.arange(n)))
    lo, hi = bootstrap_ci(stat, n, n_boot=n_boot, seed=seed, alpha=alpha, batched=batched)
    return {"value": value, "ci_low": lo, "ci_high": hi}


def mean_estimate(values: np.ndarray | Sequence[float], **boot: Any) -> Estimate:
    """:func:`estimate` of the mean of per-video values (n,) (the replicates vectorised);
    ``boot``: ``n_boot``, ``seed``, ``alpha``."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(v, **boot)
    return {"value": float(v.mean()) if v.size else NAN, "ci_low": lo, "ci_high": hi}


def row_means(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per row b, the mean of ``values[b][keep[b]]`` in column order, exactly as
    ``values[b][keep[b]].mean()`` computes it (NaN for a row that keeps nothing).

    ``values``, ``keep``: (B, K) float64 and bool -> (B,) float64. Rows with the same number
    of kept entries are compacted into one C-contiguous block whose row means numpy takes
    with the same summation as a 1-D mean."""
    counts = keep.sum(axis=1)
    out = np.full(values.shape[0], NAN)
    for m in np.unique(counts):
        if m == 0:
            continue
        rows = np.flatnonzero(counts == m)
        out[rows] = np.ascontiguousarray(values[rows][keep[rows]].reshape(rows.size, int(m))).mean(axis=1)
    return out


def row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B,) ``a[r] @ b[r]`` for (B, K) float64 rows, each by numpy's 1-D dot (so exactly the
    value of the one-row computation, whatever summation order the BLAS picks)."""
    return np.fromiter((x @ y for x, y in zip(a, b)), np.float64, count=a.shape[0])


def row_bincount(x: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(B, k) counts of each value 0..k-1 in every row of the (B, n) int array ``x`` (int64;
    with (B, n) ``weights``, the float64 sum of the weights of each value, in row order)."""
    B = x.shape[0]
    flat = (x + k * np.arange(B)[:, None]).ravel()
    w = None if weights is None else np.asarray(weights, np.float64).ravel()
    return np.bincount(flat, weights=w, minlength=B * k).reshape(B, k)
