"""The report's tables state chance and ceiling, and bold only the truth (issue 19 item 3):
a value is bold only when it is the best of its column in the metric's own direction, beyond
chance on the good side, and its CI clears the runner-up. Chance levels come from the
result files (K, the masks' area), never typed in. Constructed tables, no model: seconds."""

import math

import numpy as np
import pandas as pd
import pytest

from bebias.reporting import chance as CH
from bebias.reporting import table_formats as W
from bebias.reporting import tables as T
from bebias.reporting.inputs import Source

CLASSES = [f"c{i}" for i in range(8)]  # K = 8: chance 12.5 %, contrasted (1/8)(7/8) = 10.9 %


def block(v, lo=None, hi=None):
    return {"value": v, "ci_low": v - 0.02 if lo is None else lo, "ci_high": v + 0.02 if hi is None else hi}


def metrics(sha, *, top1=(0.5, 0.45, 0.55), split="conflict", classes=CLASSES, no_signal=False, **blocks) -> dict:
    """A probe metrics.json with what the table reads; ``blocks``: contrasted / static /
    static_kappa / swap_bg / reliance / cam as (value, ci_low, ci_high)."""
    m = {"provenance": {"checkpoint": f"/nowhere/{sha}.pth", "checkpoint_sha256": sha * 64, "checkpoint_kind":
                        "classifier", "arch": "small3d", "method": "linear", "data": "synthetic", "split": split,
                        "classes": list(classes)},
         "headline": {"original_top1": top1[0]},
         "accuracy": {"original": {"n": 100, "top1": block(*top1)}}}
    if "contrasted" in blocks:
        m["contrasted_accuracy"] = block(*blocks["contrasted"])
    if "static" in blocks:
        m["static_frame_accuracy"] = block(*blocks["static"])
        # the benchmark's conflict split: every static-frame clip's scene is another class's
        m["conflict"] = {"static-frame": {"n": 100 if split == "conflict" else 0, "n_excluded": 0}}
    if "static_kappa" in blocks:
        m["agreement"] = {"static-frame": {"n": 100, "agreement": block(0.5), "kappa": block(*blocks["static_kappa"])}}
    if "swap_bg" in blocks:
        m.setdefault("conflict", {})["swap-background"] = {"n": 100, "background_follow": block(*blocks["swap_bg"])}
    if "reliance" in blocks:
        m["background_reliance"] = {**block(*blocks["reliance"]), "n": 100, "no_signal": no_signal,
                                    "components": {}, "definition": "score = ..."}
        m["headline"]["background_reliance"] = blocks["reliance"][0]
    if "cam" in blocks:
        m["cam"] = {"actor_share": block(*blocks["cam"]), "chance": {"value": 0.074, "n": 40}}
    return m


def table(*ms) -> T.Table:
    srcs = [Source("probe", f"{i}.json", m) for i, m in enumerate(ms)]
    return T.checkpoint_table(srcs, lambda s, fb: {"method": fb["sha256"][:1], "readout": "linear",
                                                   "backbone": "small3d", "pretrain_data": "k400"})


def col(t: T.Table, key: str) -> int:
    return [m.key for _, m in t.columns].index(key)


# --------------------------------------------------------------------------------------
# the rule, on one column
# --------------------------------------------------------------------------------------

def bold(values, cis, chance, hib=True, floor=False, signal=None):
    v = np.array(values, float)
    lo = np.array([c[0] for c in cis], float)
    hi = np.array([c[1] for c in cis], float)
    sig = np.ones(len(v), bool) if signal is None else np.array(signal)
    return CH.bold_column(v, lo, hi, np.full(len(v), chance), sig, hib, floor).tolist()


def test_the_rule_on_one_column():
    ok = [(0.75, 0.85), (0.45, 0.55)]
    assert bold([0.8, 0.5], ok, 0.125) == [True, False]
    # below chance: not bold, however far from the runner-up (contrasted 7 % vs random 10.9 %)
    assert bold([0.07, 0.02], [(0.05, 0.09), (0.01, 0.03)], CH.reference("contrasted", 8)[0]) == [False, False]
    # above chance by its value, but its CI reaches below chance: not bold
    assert bold([0.16, 0.05], [(0.11, 0.21), (0.03, 0.07)], 0.125) == [False, False]
    # overlapping CIs: not bold; the runner-up's value inside the best's CI: not bold either
    assert bold([0.8, 0.7], [(0.6, 0.9), (0.65, 0.75)], 0.125) == [False, False]
    assert bold([0.8, 0.7], [(0.6, 0.9), (math.nan, math.nan)], 0.125) == [False, False]
    assert bold([0.8, 0.5], [(0.7, 0.9), (math.nan, math.nan)], 0.125) == [True, False]  # clears its value
    # no CI on the best (eval results), a tie, one value, unknown chance: not bold
    assert bold([0.8, 0.5], [(math.nan, math.nan), (0.45, 0.55)], 0.125) == [False, False]
    assert bold([0.8, 0.8], [(0.75, 0.85)] * 2, 0.125) == [False, False]
    assert bold([0.8, math.nan], [(0.75, 0.85)] * 2, 0.125) == [False, False]
    assert bold([0.8, 0.5], ok, math.nan) == [False, False]
    # no direction: never
    assert bold([0.8, 0.5], ok, 0.125, hib=None) == [False, False]


def test_the_rule_follows_the_metrics_direction():
    cis = [(0.01, 0.05), (0.45, 0.55)]
    # a ↓ rate (bg-follow): the LOW one, below chance, is bold; the high one never
    assert bold([0.03, 0.5], cis, 0.125, hib=False) == [True, False]
    # the same numbers as an ↑ metric: the high one (it is the best there)
    assert bold([0.03, 0.5], cis, 0.125, hib=True) == [False, True]
    # a ↓ rate whose lowest value sits at chance (10.5 % with chance 12.5 %, CI over it): not bold
    assert bold([0.105, 0.5], [(0.08, 0.13), (0.45, 0.55)], 0.125, hib=False) == [False, False]
    # floor metrics (chance = their best end): the lowest, if its run has signal
    assert bold([0.0, 0.9], [(0.0, 0.05), (0.8, 1.0)], 0.0, hib=False, floor=True) == [True, False]
    assert bold([0.0, 0.9], [(0.0, 0.05), (0.8, 1.0)], 0.0, hib=False, floor=True,
                signal=[False, True]) == [False, False]


# --------------------------------------------------------------------------------------
# chance levels from the result files
# --------------------------------------------------------------------------------------

def test_chance_levels_come_from_the_results():
    t = table(metrics("a", top1=(0.8, 0.75, 0.85), contrasted=(0.3,), swap_bg=(0.05,), reliance=(0.1,),
                      cam=(0.3,), static_kappa=(0.1,)),
              metrics("b", contrasted=(0.2,), swap_bg=(0.6,), reliance=(0.8,), cam=(0.2,), static_kappa=(0.9,)))
    ch = {m.key: t.chance[0, j] for j, (_, m) in enumerate(t.columns)}
    ce = {m.key: t.ceiling[0, j] for j, (_, m) in enumerate(t.columns)}
    assert ch["top1"] == pytest.approx(1 / 8) and ce["top1"] == 1
    assert ch["contrasted"] == pytest.approx(1 / 8 * 7 / 8)  # right on SCUBA, not on SCUFO, at random
    assert ch["swap_bg_follow"] == pytest.approx(1 / 8) and ce["swap_bg_follow"] == 0
    assert ch["reliance"] == ce["reliance"] == 0 and ch["static_kappa"] == 0
    assert ch["cam"] == pytest.approx(0.074)  # the masks' area the run recorded
    # another K, another chance: 1/3
    t3 = table(metrics("c", classes=["x", "y", "z"]), metrics("d", classes=["x", "y", "z"]))
    assert t3.chance[0, col(t3, "top1")] == pytest.approx(1 / 3)
    # no class list: no chance, and so no bold
    t0 = table(metrics("e", top1=(0.9, 0.88, 0.92), classes=[]), metrics("f", top1=(0.2, 0.18, 0.22), classes=[]))
    assert np.isnan(t0.chance[:, col(t0, "top1")]).all() and not t0.best().any()


def test_eval_chance_uses_the_k_it_recorded_or_the_probes():
    ev = {"checkpoint": "/nowhere/a.pth", "checkpoint_sha256": "a" * 64, "data": "synthetic",
          "splits": {"conflict": {"n": 40, "top1": 0.4, "background_follow": 0.1, "num_classes": 4},
                     "iid": {"n": 40, "top1": 0.9}}}
    t = T.checkpoint_table([Source("eval", "e.json", ev)])
    j = [(g, m.key) for g, m in t.columns]
    conflict = next(g for g, k in j if "conflict" in g)
    iid = next(g for g, k in j if "iid" in g)
    assert t.chance[0, j.index((conflict, "eval_top1"))] == pytest.approx(1 / 4)
    assert np.isnan(t.chance[0, j.index((iid, "eval_top1"))])  # no K recorded, no probe of it
    t2 = T.checkpoint_table([Source("probe", "p.json", metrics("a")), Source("eval", "e.json", ev)])
    j2 = [(g, m.key) for g, m in t2.columns]
    assert t2.chance[0, j2.index((iid, "eval_top1"))] == pytest.approx(1 / 8)  # the probe's K


# --------------------------------------------------------------------------------------
# whole tables: what the issue saw bolded, and the static-frame metric
# --------------------------------------------------------------------------------------

def test_below_chance_wrong_direction_and_overlaps_are_not_bold():
    """The issue's cases: a below-chance bg-follow, a contrasted accuracy below random
    guessing, and models whose CIs overlap."""
    t = table(metrics("a", top1=(0.60, 0.50, 0.70), contrasted=(0.07, 0.05, 0.09), swap_bg=(0.105, 0.08, 0.13)),
              metrics("b", top1=(0.55, 0.45, 0.65), contrasted=(0.02, 0.01, 0.03), swap_bg=(0.60, 0.55, 0.65)),
              metrics("c", top1=(0.20, 0.15, 0.25), contrasted=(0.01, 0.0, 0.02), swap_bg=(0.9, 0.85, 0.95)))
    best = t.best()
    assert not best[:, col(t, "contrasted")].any()  # 7 % < 10.9 % random: nobody is good
    assert not best[:, col(t, "swap_bg_follow")].any()  # 10.5 %, CI over chance 12.5 %
    assert not best[:, col(t, "top1")].any()  # 60 % [50, 70] vs 55 % [45, 65]: overlapping
    md = W.to_markdown(t)
    assert "**" not in md


def test_a_clear_winner_is_bold_in_its_direction():
    t = table(metrics("a", top1=(0.90, 0.85, 0.95), swap_bg=(0.02, 0.0, 0.04), reliance=(0.05, 0.0, 0.1)),
              metrics("b", top1=(0.50, 0.45, 0.55), swap_bg=(0.70, 0.65, 0.75), reliance=(0.9, 0.85, 0.95)))
    best = t.best()
    assert best[:, col(t, "top1")].tolist() == [True, False]
    assert best[:, col(t, "swap_bg_follow")].tolist() == [True, False]  # ↓: the low one
    assert best[:, col(t, "reliance")].tolist() == [True, False]
    row = next(ln for ln in W.to_markdown(t).splitlines() if ln.startswith("| a "))
    assert "**90.0**" in row and "**2.0**" in row and "**0.050**" in row


def test_random_decisions_are_not_bold_as_the_least_reliant():
    """The reliance score's chance is its best end (0): a run flagged no_signal (its decisions
    track neither cue) scores ~0 but is not bold; with signal it is."""
    ms = [metrics("a", top1=(0.13, 0.08, 0.18), reliance=(0.0, 0.0, 0.03), no_signal=True, static_kappa=(0.0, -0.05,
                                                                                                          0.05)),
          metrics("b", top1=(0.9, 0.85, 0.95), reliance=(0.6, 0.5, 0.7), static_kappa=(0.8, 0.7, 0.9))]
    t = table(*ms)
    assert not t.best()[:, col(t, "reliance")].any()
    assert not t.best()[:, col(t, "static_kappa")].any()
    ms[0]["background_reliance"]["no_signal"] = False
    t = table(*ms)
    assert t.best()[:, col(t, "reliance")].tolist() == [True, False]
    assert t.best()[:, col(t, "static_kappa")].tolist() == [True, False]


def test_static_frame_on_conflict_is_not_an_accuracy_to_minimise():
    """On the conflict split a scene reader scores ~0 static-frame accuracy (its scene points
    elsewhere): the column is left out there, and the label-free κ between the static-frame
    and the original decisions is shown instead; on iid the accuracy is shown (↓, chance 1/K)."""
    scene, motion = dict(static=(0.031, 0.0, 0.06), static_kappa=(0.9, 0.85, 0.95)), \
        dict(static=(0.25, 0.2, 0.3), static_kappa=(0.05, 0.0, 0.1))
    t = table(metrics("a", **scene), metrics("b", **motion))
    keys = [m.key for _, m in t.columns]
    assert "static" not in keys and "static_kappa" in keys
    assert t.best()[:, col(t, "static_kappa")].tolist() == [False, True]  # the motion model agrees least
    md = W.to_markdown(t)
    assert "static-frame acc." not in md and "3.1" not in md and "static-frame κ vs original ↓" in md
    tex = W.to_latex(t)
    assert "κ" not in tex and r"static-frame $\kappa$ vs original $\downarrow$" in tex  # pdflatex has no κ glyph
    # on iid (no cue conflicts) the accuracy is there, lower better, chance 1/K = its best end
    ti = table(metrics("a", split="iid", **{**scene, "static": (0.95, 0.9, 1.0)}),
               metrics("b", split="iid", **{**motion, "static": (0.13, 0.08, 0.18)}))
    j = col(ti, "static")
    m = ti.columns[j][1]
    assert m.higher_is_better is False and m.floor and ti.chance[0, j] == pytest.approx(1 / 8)
    assert ti.best()[:, j].tolist() == [False, True]
    # a manifest whose bg labels make cue conflicts: known from the conflict block, whatever the split's name
    assert CH.is_conflict_set(metrics("a", split="test", **scene) | {"conflict": {"static-frame": {"n": 5}}})
    assert not CH.is_conflict_set({"provenance": {"split": "test"}})


# --------------------------------------------------------------------------------------
# rendering: the chance and ceiling rows, per-row levels, CSV
# --------------------------------------------------------------------------------------

def test_chance_and_ceiling_rows_in_every_format():
    t = table(metrics("a", contrasted=(0.3,), swap_bg=(0.05,)), metrics("b", contrasted=(0.2,), swap_bg=(0.5,)))
    md = W.to_markdown(t)
    chance = next(ln for ln in md.splitlines() if ln.startswith("| chance "))
    ceiling = next(ln for ln in md.splitlines() if ln.startswith("| ceiling "))
    cells = [c.strip() for c in chance.strip("|").split("|")]
    assert cells[-3:] == ["12.5", "10.9", "12.5"]  # top-1, contrasted, swap bg-follow
    assert [c.strip() for c in ceiling.strip("|").split("|")][-3:] == ["100.0", "100.0", "0.0"]
    html = W.to_html(t)
    assert "<td>chance</td>" in html and "<td>10.9</td>" in html
    tex = W.to_latex(t)
    assert "\nchance &" in tex and "\nceiling &" in tex
    df = pd.read_csv(__import__("io").StringIO(W.to_csv(t)))
    assert set(df.columns) >= {"chance", "ceiling"} and len(df) == 2 * len(t.columns)  # no extra rows in the data
    assert df.loc[df["key"] == "contrasted", "chance"].tolist() == pytest.approx([7 / 64] * 2)


def test_a_chance_that_differs_between_rows_is_given_per_cell():
    t = table(metrics("a", cam=(0.30, 0.25, 0.35)), metrics("b", cam=(0.20, 0.15, 0.25)))
    t.chance[1, col(t, "cam")] = 0.11  # another run, other masks
    md = W.to_markdown(t)
    assert "(chance 7.4)" in md and "(chance 11.0)" in md
    assert "per row" in next(ln for ln in md.splitlines() if ln.startswith("| chance "))


def compare(be):
    rows = [{"variant": v, "seed": s, "train->conflict/top1": x, "train->conflict/bg_follow": 1 - x}
            for v, xs in (("moco", (0.80, 0.82, 0.81)), ("random-init", (0.30, 0.31, 0.29)), ("be", be))
            for s, x in enumerate(xs)]
    return T.compare_table(Source("compare", "compare.json", {"config": {}, "seeds": [0, 1, 2], "classes": 4,
                                                              "rows": rows}))


def test_compare_bolds_only_with_its_interval_across_seeds():
    t = compare(be=(0.50, 0.52, 0.51))
    j = [m.key for _, m in t.columns].index("train->conflict/top1")
    x = np.array([0.80, 0.82, 0.81])
    half = 4.302652729911275 * x.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert (t.ci_low[0, j], t.ci_high[0, j]) == pytest.approx((x.mean() - half, x.mean() + half))
    assert t.chance[0, j] == pytest.approx(0.25)
    assert t.best()[:, j].tolist() == [True, False, False]
    k = [m.key for _, m in t.columns].index("train->conflict/bg_follow")
    assert t.best()[:, k].tolist() == [True, False, False]  # ↓: moco's 19 % [16.5, 21.5], below chance 25 %
    assert "[78.5, 83.5]" in W.to_markdown(t)
    # a runner-up whose seeds disagree (training variance): its interval covers moco's, nothing is bold
    t = compare(be=(0.79, 0.5, 0.2))
    assert not t.best()[:, j].any()


def test_the_probe_summary_states_chance_and_reads_static_frames_on_conflicts(monkeypatch):
    import io
    import types

    from rich.console import Console

    import bebias.cli.probe as P

    m = metrics("a", contrasted=(0.07, 0.05, 0.09), static=(0.031, 0.0, 0.06), static_kappa=(0.9, 0.85, 0.95))
    m["headline"].update(contrasted_accuracy=0.07, static_frame_accuracy=0.031)
    m["provenance"].update(level="decision")
    m.update(drop={}, similarity={}, conflict={**m["conflict"], "original": {"n": 100, "n_excluded": 0}},
             videos={"probed": 100, "selected": 100, "unreadable": [], "masks": {"sources": {}, "not_usable": 0,
                                                                                 "motion_iou": None}})
    buf = io.StringIO()
    monkeypatch.setattr(P, "console", Console(file=buf, width=250, color_system=None))
    from bebias.results import ProbeMetrics

    P._print_probe(types.SimpleNamespace(metrics=m, results=ProbeMetrics.from_json(m), resumed=0, discarded_partial=False, out="o", metrics_path="o/m",
                                         predictions_path="o/p"))
    out = buf.getvalue()
    assert "contrasted accuracy: 7.0 % (chance 10.9 %)" in out
    assert "static-frame accuracy: 3.1 % (chance 12.5 %); on cue conflicts a scene reader scores ~0 too" in out
    assert "static-frame kappa vs original decisions: 0.90 (chance 0" in out
