"""Chance levels, ceilings and the bold rule of the report's tables.

Every metric a table shows with a direction (↑ / ↓) has a **chance** level: what random
decisions score on the same data, computed from the result files (the number of classes K
a probe or eval recorded, the masks' area a CAM run recorded; never typed in), and a
**ceiling**: the best value a model can reach. A table shows both in two rows under its
checkpoints (:mod:`bebias.reporting.table_formats`).

=================================  ===================  ==========================  =========
metric                             chance               ceiling                     kind
=================================  ===================  ==========================  =========
top-1, eval top-1, eval kNN R@1    1/K                  1                           ↑
contrasted accuracy                (1/K)(1 - 1/K)       1                           ↑
swap / eval / conflict bg-follow   1/K                  0                           ↓
CAM on actor                       the masks' area      the result's oracle, else 1 ↑
background-reliance score          0 (null-anchored)    0                           ↓ floor
static-frame acc. (no conflicts)   1/K                  1/K                         ↓ floor
static-frame κ vs original         0 (κ's own null)     0                           ↓ floor
=================================  ===================  ==========================  =========

Contrasted accuracy counts a video when the model is right on the swapped clip AND not right
on its static version: random decisions do that with probability (1/K)(1 - 1/K). A **floor**
metric is one whose chance is also its best end (no reliance scores what no dependence
scores): no value lies beyond chance on its good side, so instead the row's decisions must
carry signal (:func:`probe_signal`: the probe did not flag ``no_signal``).

**Bold** (:func:`bold_column`): in each column, the best value in the metric's own
direction, and only when

1. it is beyond chance on the good side: its 95 % CI's near end (``ci_low`` for ↑,
   ``ci_high`` for ↓) clears the chance level (floor metrics: the row has signal); a value
   whose chance is unknown is not bold;
2. its CI separates it from the runner-up: the runner-up's value, and the runner-up's CI
   where it has one, lies outside it. A value without a CI (eval results) is never bold,
   nor are ties.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NAN = math.nan

#: metric key -> how its chance and ceiling are found: "1/K", "contrasted", "follow" (chance
#: 1/K, ceiling 0), "zero" (chance = ceiling = 0), "static" (chance = ceiling = 1/K), "cam"
KINDS = {"top1": "1/K", "eval_top1": "1/K", "eval_r1": "1/K", "iid_top1": "1/K", "conflict_top1": "1/K",
         "contrasted": "contrasted", "swap_bg_follow": "follow", "eval_bg_follow": "follow",
         "conflict_background_follow": "follow", "reliance": "zero", "static_kappa": "zero", "static": "static",
         "cam": "cam", "actor_share": "cam"}


def num_classes(x: Any) -> int | None:
    """K from a class list or an int (None where not a usable count)."""
    if isinstance(x, (list, tuple)):
        x = len(x)
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 2 else None


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else NAN


def reference(key: str, k: int | None, cam: dict | None = None) -> tuple[float, float]:
    """(chance, ceiling) of metric ``key`` (:data:`KINDS`) with K = ``k`` classes; ``cam``:
    a CAM block (``chance.value``, optional ``ceiling.value``). NaN where unknown."""
    kind = KINDS.get(key)
    if kind == "zero":
        return 0.0, 0.0
    if kind == "cam":
        cam = cam or {}
        ceiling = _num((cam.get("ceiling") or {}).get("value")) if isinstance(cam.get("ceiling"), dict) else NAN
        chance = _num(cam.get("chance", {}).get("value")) if isinstance(cam.get("chance"), dict) else NAN
        return chance, ceiling if math.isfinite(ceiling) else 1.0
    if kind is None or k is None:
        return NAN, NAN
    c = 1.0 / k
    return {"1/K": (c, 1.0), "contrasted": (c * (1.0 - c), 1.0), "follow": (c, 0.0), "static": (c, c)}[kind]


def probe_references(m: dict, keys: Any) -> dict[str, tuple[float, float]]:
    """(chance, ceiling) of each metric ``keys`` of one probe metrics.json."""
    k = num_classes((m.get("provenance") or {}).get("classes"))
    cam = m.get("cam") if isinstance(m.get("cam"), dict) else None
    return {key: reference(key, k, cam) for key in keys}


def probe_signal(m: dict) -> bool:
    """Whether a probe run's decisions carry signal (for the floor metrics): the reliance
    score's ``no_signal`` is False, or, without it, top-1 on the originals clears 1/K with
    its CI."""
    rel = m.get("background_reliance")
    if isinstance(rel, dict) and isinstance(rel.get("no_signal"), bool):
        return not rel["no_signal"]
    k = num_classes((m.get("provenance") or {}).get("classes"))
    top = ((m.get("accuracy") or {}).get("original") or {}).get("top1")
    lo = _num(top.get("ci_low")) if isinstance(top, dict) else NAN
    return k is not None and lo > 1.0 / k


def is_conflict_set(m: dict) -> bool:
    """Whether a probe's videos are cue conflicts (their scene points to another class), where
    static-frame accuracy is not an accuracy to minimise: a scene reader scores ~0 there. Known
    from the static-frame (or original) conflict block; without scene labels, by the split's
    name (the benchmark's ``conflict``)."""
    conf = m.get("conflict") or {}
    for v in ("static-frame", "original"):
        c = conf.get(v)
        if isinstance(c, dict) and isinstance(c.get("n"), int):
            return c["n"] > 0
    return (m.get("provenance") or {}).get("split") == "conflict"


def bold_column(value: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray, chance: np.ndarray,
                signal: np.ndarray, higher_is_better: bool | None, floor: bool) -> np.ndarray:
    """(R,) bool: the one value of a column to bold (module docstring), all arrays (R,)."""
    out = np.zeros(value.shape, bool)
    ok = np.flatnonzero(np.isfinite(value))
    if higher_is_better is None or len(ok) < 2:
        return out
    sign = 1.0 if higher_is_better else -1.0
    order = ok[np.argsort(-sign * value[ok], kind="stable")]
    b, r = order[0], order[1]
    if math.isclose(value[b], value[r], rel_tol=0, abs_tol=1e-12):
        return out  # a tie: neither is "the best"
    near = ci_low[b] if higher_is_better else ci_high[b]  # the best's CI end towards the others
    if not math.isfinite(near):
        return out
    far = ci_high[r] if higher_is_better else ci_low[r]  # the runner-up's CI end towards the best
    rival = far if math.isfinite(far) else value[r]
    separated = sign * (near - rival) > 0
    beyond = bool(signal[b]) if floor else (math.isfinite(chance[b]) and sign * (near - chance[b]) > 0)
    out[b] = separated and beyond
    return out
