"""Training variance: checkpoints of one recipe trained with different seeds, reported together.

A probe's CIs are over test videos of ONE trained model (:data:`bebias.results.VIDEO_CI`); they
do not contain what retraining with another seed changes. Where ``bebias report`` is given
several checkpoints of one recipe (the same training config, the pre-trained encoder's
included, except ``seed``, ``out`` and the run's machine settings), :func:`seed_table` gives
one row per recipe: mean ± std over seeds (ddof 1) and a 95 % t-interval across seeds
(mean ± t_{0.975, n-1} · std / √n). :func:`differences` states "A differs from B" only from
these: Welch's 95 % interval of the difference of the seed means excludes 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bebias.reporting.tables import Table

#: config fields that are not the recipe: where and how a run ran, and its seed
NOT_RECIPE = ("seed", "out", "device", "workers", "init")
#: what the seed intervals are over, as shown
SEED_CI = "95 % t-interval across seeds (training variance)"


def recipe(meta: dict | None, init_meta: dict | None = None) -> tuple[str | None, tuple]:
    """(recipe key, seeds) of a checkpoint from its metadata and its encoder's: the key is
    the canonical JSON of kind, method, arch and config without :data:`NOT_RECIPE` (the
    encoder's too); None where the metadata could not be read."""
    if not meta or not isinstance(meta.get("config"), dict):
        return None, ()

    def part(m: dict) -> dict:
        cfg = m.get("config") or {}
        return {"kind": m.get("kind"), "method": m.get("method"), "arch": m.get("arch"),
                "config": {k: v for k, v in cfg.items() if k not in NOT_RECIPE}}

    key = {"model": part(meta), "init": part(init_meta) if init_meta else None}
    seeds = ((meta.get("config") or {}).get("seed"), ((init_meta or {}).get("config") or {}).get("seed"))
    return json.dumps(key, sort_keys=True, default=str), seeds


def t_interval(x: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """(mean, std ddof 1, low, high) of the values ``x`` (n,) with a Student t-interval; NaN
    std and interval for n < 2."""
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    h = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return m, sd, m - h, m + h


def seed_table(ck: Table, keys: Sequence[str | None]) -> Table | None:
    """One row per recipe with >= 2 checkpoints among ``ck``'s rows (``keys``: each row's
    :func:`recipe` key): mean ± std over them and the t-interval across seeds, per column of
    ``ck``. None where no recipe has two checkpoints."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    groups = {k: rows for k, rows in groups.items() if len(rows) >= 2}
    if not groups:
        return None
    R, C = len(groups), len(ck.columns)
    a = {k: np.full((R, C), np.nan) for k in ("value", "std", "ci_low", "ci_high", "n")}
    labels, methods, members = [], [], []
    for r, rows in enumerate(groups.values()):
        for j in range(C):
            x = ck.value[rows, j]
            a["value"][r, j], a["std"][r, j], a["ci_low"][r, j], a["ci_high"][r, j] = t_interval(x)
            a["n"][r, j] = np.isfinite(x).sum()
        first = ck.rows.iloc[rows[0]]
        labels.append(f"{first['method']} · {first['readout']} ({len(rows)} seeds)")
        methods.append(first["method"])
        members.append(", ".join(ck.rows["checkpoint"].iloc[rows]))
    rows_df = pd.DataFrame({"recipe": labels, "method": methods, "checkpoints": members})
    t = Table("seeds", "Recipes over seeds", rows_df, list(ck.columns), a["value"], a["ci_low"], a["ci_high"],
              a["std"], a["n"], bold=False, label_column="recipe",
              note=f"Mean ± std over the checkpoints of one recipe (same config except the seed), {SEED_CI} in "
                   "brackets. The checkpoint table's brackets are 95 % CIs over test videos of one model; only "
                   "these say whether two recipes differ.")
    diffs = differences(t)
    if diffs:
        t.note += " Differences (Welch 95 % interval of the difference of seed means excludes 0): " \
                  + "; ".join(diffs) + "."
    elif R > 1:
        t.note += " No two recipes differ on any column by that test."
    return t


def differences(t: Table, alpha: float = 0.05) -> list[str]:
    """"A differs from B" statements of a :func:`seed_table`: per column and pair of rows,
    where Welch's (1 - alpha) interval of the difference of the seed means excludes 0."""
    out = []
    labels = t.rows[t.label_column].tolist()
    for j, (g, m) in enumerate(t.columns):
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                lo, hi = welch_interval(t.value[a, j], t.std[a, j], t.n[a, j], t.value[b, j], t.std[b, j],
                                        t.n[b, j], alpha)
                if math.isfinite(lo) and (lo > 0 or hi < 0):
                    d = (t.value[a, j] - t.value[b, j]) * m.scale
                    out.append(f"{labels[a]} − {labels[b]} on {g + ' ' if g else ''}{m.label}: "
                               f"{d:+.{m.decimals}f} [{lo * m.scale:.{m.decimals}f}, {hi * m.scale:.{m.decimals}f}]")
    return out


def welch_interval(m1: float, s1: float, n1: float, m2: float, s2: float, n2: float,
                   alpha: float = 0.05) -> tuple[float, float]:
    """Welch's (1 - alpha) interval of m1 - m2 from two groups' means, stds (ddof 1) and
    sizes; NaN where a group has fewer than 2 values or both stds are 0."""
    if not all(math.isfinite(v) for v in (m1, s1, m2, s2)) or n1 < 2 or n2 < 2:
        return math.nan, math.nan
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0:
        return math.nan, math.nan
    dof = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    h = float(stats.t.ppf(1 - alpha / 2, dof)) * math.sqrt(v1 + v2)
    return m1 - m2 - h, m1 - m2 + h
