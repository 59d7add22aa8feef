"""What the probe metrics share besides the bootstrap (that is :mod:`bebias.stats`): input
checks, top-1 correctness and per-class means. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from bebias.stats import row_bincount, row_dots

ClassKey = Union[str, int]


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


def chance_agreements(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per row, the agreement of two label rows expected by chance, Σ_c q_a(c) q_b(c) with
    q the row's class frequencies: (B, n) ints in [0, k) each -> (B,) float64 (n >= 1).
    Each row's value is exactly the one-row ``(bincount(a)/n) @ (bincount(b)/n)``."""
    n = a.shape[1]
    return row_dots(row_bincount(a, k) / n, row_bincount(b, k) / n)


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
