"""Two kinds of interval (issue 19, item 2): the probe's bootstrap is over the test videos of
one model and is labelled so; several checkpoints of one recipe (same config except the
seed) reported together get mean ± std and a t-interval across seeds, and only those decide
"A differs from B". Constructed results with known numbers."""

import math

import numpy as np
import pytest
from scipy import stats

from bebias.reporting import seeds as S
from bebias.reporting import table_formats as W
from bebias.reporting import tables as T
from bebias.reporting.inputs import Source
from bebias.results import VIDEO_CI


def probe(sha: str, top1: float, ci: float = 0.02) -> Source:
    m = {"provenance": {"checkpoint": f"/nowhere/{sha[:4]}.pth", "checkpoint_sha256": sha, "checkpoint_kind":
                        "classifier", "arch": "small3d", "method": "linear", "data": "synthetic",
                        "split": "conflict", "classes": ["a", "b"]},
         "headline": {"original_top1": top1},
         "accuracy": {"original": {"n": 100, "top1": {"value": top1, "ci_low": top1 - ci, "ci_high": top1 + ci}}}}
    return Source("probe", f"{sha[:4]}.json", m)


def meta(method: str, seed: int, lr: float = 1e-3) -> dict:
    return {"kind": "classifier", "method": "linear", "arch": "small3d",
            "config": {"seed": seed, "out": f"runs/{method}-{seed}", "lr": lr, "epochs": 4, "init": f"{method}.pth"}}


def enc(method: str, seed: int) -> dict:
    return {"kind": "pretrain", "method": method, "arch": "small3d", "config": {"seed": seed, "out": "x",
                                                                               "intra_negative": False}}


def table(values: dict[str, list[float]]) -> tuple[T.Table, T.Table | None]:
    """Checkpoints of recipes ``values`` (method -> top-1 of each seed), plus one lone run."""
    srcs, info = [], {}
    for method, tops in values.items():
        for seed, v in enumerate(tops):
            sha = f"{method[:2]}{seed}".ljust(64, "0")
            srcs.append(probe(sha, v))
            info[sha] = {"method": "moco" if method == "moco" else "moco+be", "readout": "linear",
                         "backbone": "small3d", "pretrain_data": "k400",
                         "recipe": S.recipe(meta(method, seed), enc(method, 10 + seed))[0]}
    lone = "zz".ljust(64, "0")  # another learning rate: a recipe of its own, one seed
    srcs.append(probe(lone, 0.5))
    info[lone] = {"method": "moco", "readout": "linear", "backbone": "small3d", "pretrain_data": "k400",
                  "recipe": S.recipe(meta("moco", 0, lr=0.1), enc("moco", 10))[0]}
    ck = T.checkpoint_table(srcs, lambda s, fb: info[fb["sha256"]])
    return ck, S.seed_table(ck, ck.extra["recipes"])


def test_the_recipe_is_the_config_except_the_seed():
    a, seeds = S.recipe(meta("moco", 0), enc("moco", 10))
    assert seeds == (0, 10)
    assert a == S.recipe(meta("moco", 3), enc("moco", 7))[0]  # other seeds (and out): the same recipe
    assert a != S.recipe(meta("moco", 0, lr=0.1), enc("moco", 10))[0]
    assert a != S.recipe(meta("moco", 0), enc("be", 10))[0]  # another pre-training method
    assert S.recipe(None)[0] is None


def test_mean_std_and_t_interval_across_seeds():
    tops = {"moco": [0.60, 0.64, 0.62], "be": [0.70, 0.74, 0.75, 0.71]}
    ck, st = table(tops)
    assert st is not None and st.rows["recipe"].tolist() == ["moco · linear (3 seeds)", "moco+be · linear (4 seeds)"]
    j = [m.key for _, m in st.columns].index("top1")
    for r, x in enumerate(map(np.array, tops.values())):
        n, sd = len(x), x.std(ddof=1)
        h = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        assert (st.value[r, j], st.std[r, j], st.ci_low[r, j], st.ci_high[r, j], st.n[r, j]) == pytest.approx(
            (x.mean(), sd, x.mean() - h, x.mean() + h, n))
    # the interval across seeds is wider than a single model's CI over test videos (0.02 here)
    assert st.ci_high[0, j] - st.value[0, j] > 0.02
    md = W.to_markdown(st)
    assert "62.0 ± 2.0 [" in md and "moco+be · linear (4 seeds)" in md
    assert "t-interval across seeds" in st.note and "over test videos of one model" in st.note
    assert VIDEO_CI in ck.note  # the checkpoint table names its bootstrap as such


def test_differences_come_from_the_seed_intervals_only():
    _, st = table({"moco": [0.60, 0.64, 0.62], "be": [0.70, 0.74, 0.75, 0.71]})
    diffs = S.differences(st)
    assert len(diffs) == 1 and diffs[0].startswith("moco · linear (3 seeds) − moco+be · linear (4 seeds) on ")
    assert "-10.5" in diffs[0] and "Differences (Welch" in st.note
    # each model's own CIs over test videos are apart (0.62 ± 0.02 vs 0.70 ± 0.02), but across
    # seeds the recipes overlap: no difference is stated
    _, st2 = table({"moco": [0.55, 0.75, 0.62], "be": [0.70, 0.52, 0.80]})
    assert S.differences(st2) == [] and "No two recipes differ" in st2.note


def test_one_seed_per_recipe_gives_no_seed_table():
    ck, st = table({"moco": [0.6], "be": [0.7]})
    assert st is None and len(ck.rows) == 3


def test_welch_interval_matches_scipy():
    a, b = np.array([0.60, 0.64, 0.62]), np.array([0.70, 0.74, 0.75, 0.71])
    lo, hi = S.welch_interval(a.mean(), a.std(ddof=1), 3, b.mean(), b.std(ddof=1), 4)
    r = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((r.low, r.high))


def test_the_seed_table_writes_in_every_format():
    _, st = table({"moco": [0.60, 0.64, 0.62], "be": [0.70, 0.74, 0.75, 0.71]})
    assert "moco+be · linear (4 seeds)" in W.to_html(st) and r"$\pm$" in W.to_latex(st)
    csv = W.to_csv(st)
    assert "recipe" in csv.splitlines()[0] and len(csv.strip().splitlines()) > 2
