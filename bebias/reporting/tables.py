"""Results -> paper-style tables (:mod:`bebias.reporting.table_formats` writes them out).

A :class:`Table` holds numbers (value, 95 % CI, std over seeds, n) per row and column, plus
the rows' descriptive fields; formatting happens only in the writers. Values are fractions
(or scores) as the results store them; a :class:`Metric` says how one is shown (scale,
decimals, unit) and which direction is better, so "best per column" (bold) and deltas
against a baseline row are direction-aware. Each cell also has the metric's chance level and
ceiling (:mod:`bebias.reporting.chance`, from the result files), and bold follows the rule
there: beyond chance and CI-separated from the runner-up. A missing value or CI is NaN and
shows as "–".

Builders (pure, no files): :func:`checkpoint_table` (probe + eval results, one row per
checkpoint, columns = data/split x metric), :func:`compare_table` (``bebias compare``: mean
± std over seeds per variant), :func:`calibration_table`, :func:`cam_table`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bebias.errors import BebiasError
from bebias.reporting import chance as CH
from bebias.reporting.inputs import Source
from bebias.reporting.provenance import data_name, describe
from bebias.results import SCALARS, VIDEO_CI, ProbeMetrics


@dataclass(frozen=True)
class Metric:
    """How one metric is shown: ``label`` + ``unit``, value x ``scale`` with ``decimals``;
    ``higher_is_better`` True / False, or None where "best" means nothing; ``floor``: chance
    is also the metric's best end (:mod:`bebias.reporting.chance`)."""

    key: str
    label: str
    unit: str = "%"
    scale: float = 100.0
    decimals: int = 1
    higher_is_better: bool | None = True
    floor: bool = False


#: the probe's columns (metrics.json), in table order
PROBE_METRICS = (
    Metric("top1", "top-1"),
    Metric("reliance", "bg reliance", unit="score 0-1", scale=1.0, decimals=3, higher_is_better=False, floor=True),
    # the score's parts, each next to its null (chance on the same probe run); no "best": the
    # score carries the direction (docs/reliance.md)
    *(Metric(f"reliance_{key}{end}", f"{label}{' null' if end else ''}", higher_is_better=None)
      for key, label in (("background_follow", "rel. bg-follow"), ("motion_follow", "rel. motion-follow"),
                         ("sufficiency", "rel. sufficiency"))
      for end in ("", "_null")),
    Metric("contrasted", "contrasted acc."),
    # a motion model should NOT recognise the action from one repeated frame (SCUFO): at
    # chance, on a set without cue conflicts (on conflicts a scene reader scores ~0 too)
    Metric("static", "static-frame acc.", higher_is_better=False, floor=True),
    # label-free, any split: do one repeated frame's decisions agree with the video's?
    Metric("static_kappa", "static-frame κ vs original", unit="", scale=1.0, decimals=2, higher_is_better=False,
           floor=True),
    Metric("swap_bg_follow", "swap bg-follow", higher_is_better=False),
    Metric("cam", "CAM on actor"),
    # (share - chance) / (ceiling - chance) of the predicted class's map (docs/cam.md)
    Metric("cam_norm", "CAM on actor, normalised", unit="0 = uniform, 1 = ceiling", scale=1.0, decimals=2),
)
#: the columns of ``bebias eval`` JSON (no CIs there)
EVAL_METRICS = (
    Metric("eval_top1", "eval top-1"),
    Metric("eval_bg_follow", "eval bg-follow", higher_is_better=False),
    Metric("eval_r1", "eval kNN R@1"),
)


@dataclass
class Table:
    """Numbers of one table. ``rows``: the descriptive fields (str) of each row;
    ``columns``: (group, Metric) per column; ``value``/``ci_low``/``ci_high``/``std``/``n``:
    (rows, columns) arrays, NaN where absent; ``baseline``: the row deltas are taken
    against; ``bold``: mark the best per column; ``chance`` / ``ceiling``: (rows, columns)
    of each cell's metric (NaN where none or unknown); ``signal``: (rows, columns) bool,
    whether the row's decisions carry signal (for floor metrics); ``extra``: for the
    checkpoint table, ``probes`` ((row, group, ProbeMetrics) per probe result, for the
    figures) and ``sha256``."""

    name: str
    title: str
    rows: pd.DataFrame
    columns: list[tuple[str, Metric]]
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    std: np.ndarray
    n: np.ndarray
    baseline: int | None = None
    bold: bool = True
    note: str = ""
    label_column: str = "checkpoint"
    extra: dict = field(default_factory=dict)
    chance: np.ndarray | None = None
    ceiling: np.ndarray | None = None
    signal: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("chance", "ceiling"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(self.value.shape, np.nan))
        if self.signal is None:
            self.signal = np.ones(self.value.shape, bool)

    def best(self) -> np.ndarray:
        """(rows, columns) bool: the value of each column to bold
        (:func:`bebias.reporting.chance.bold_column`: the best in the metric's direction,
        beyond chance, its CI clear of the runner-up)."""
        out = np.zeros(self.value.shape, bool)
        if not self.bold:
            return out
        for j, (_, m) in enumerate(self.columns):
            out[:, j] = CH.bold_column(self.value[:, j], self.ci_low[:, j], self.ci_high[:, j], self.chance[:, j],
                                      self.signal[:, j], m.higher_is_better, m.floor)
        return out

    def delta(self) -> np.ndarray:
        """(rows, columns): value - the baseline row's value (NaN for the baseline itself)."""
        d = np.full(self.value.shape, np.nan)
        if self.baseline is not None:
            d = self.value - self.value[self.baseline]
            d[self.baseline] = np.nan
        return d


# --------------------------------------------------------------------------------------
# values out of result files
# --------------------------------------------------------------------------------------

Cell = tuple[float, float, float, float]  # value, ci_low, ci_high, n


def _f(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x is not None else math.nan


def _ci(block: Any, n: Any = None) -> Cell:
    if isinstance(block, dict):
        return _f(block.get("value")), _f(block.get("ci_low")), _f(block.get("ci_high")), _f(block.get("n", n))
    return _f(block), math.nan, math.nan, _f(n)


def probe_values(m: dict | ProbeMetrics) -> dict[str, Cell]:
    """The probe columns present in one metrics.json, read through its schema
    (:meth:`bebias.results.ProbeMetrics.scalars`; a key present with a null value is kept: it
    shows as "–"). On cue-conflict sets static-frame accuracy is left out (not an accuracy to
    minimise there); its κ with the original decisions is shown on any set."""
    pm = m if isinstance(m, ProbeMetrics) else ProbeMetrics.from_json(m)
    out = {k: (_f(e.value), _f(e.ci_low), _f(e.ci_high), _f(e.n)) for k, e in pm.scalars(report=True).items()}
    if CH.is_conflict_set({"conflict": pm.conflict, "provenance": pm.provenance}):
        out.pop("static", None)
    kappa = (pm.agreement.get("static-frame") or {}).get("kappa")
    if kappa is not None:
        out["static_kappa"] = _ci(kappa, pm.agreement["static-frame"].get("n"))
    return out


def eval_values(split: dict) -> dict[str, Cell]:
    """The eval columns of one split of ``bebias eval`` JSON."""
    n = split.get("n")
    out = {"eval_top1": _ci(split.get("top1"), n)}
    if "background_follow" in split:
        out["eval_bg_follow"] = _ci(split["background_follow"], n)
    r1 = (split.get("retrieval") or {}).get("R@1")
    if r1 is not None:
        out["eval_r1"] = _ci(r1, n)
    return out


def fallback_info(src: Source) -> dict:
    """What a probe / eval result records about its checkpoint (for :func:`describe`)."""
    if src.kind == "probe":
        pv = src.data["provenance"]
        return {"path": pv.get("checkpoint"), "sha256": pv.get("checkpoint_sha256"), "arch": pv.get("arch"),
                "method": pv.get("method"), "kind": pv.get("checkpoint_kind"), "foreign": pv.get("foreign")}
    d = src.data
    return {"path": d.get("checkpoint"), "sha256": d.get("checkpoint_sha256"), "arch": d.get("arch"),
            "method": None, "kind": "classifier", "foreign": None}


def unique_labels(descs: Sequence[dict]) -> list[str]:
    """One distinct label per checkpoint: its method, then + read-out, backbone, folder and
    hash prefix, each added only where labels still collide."""
    labels = [d["method"] for d in descs]
    for extra in (lambda d: d["readout"], lambda d: d["backbone"], lambda d: d.get("folder") or "",
                  lambda d: (d.get("sha256") or "")[:8]):
        counts = pd.Series(labels).value_counts()
        if counts.max() <= 1:
            break
        labels = [f"{lab} · {extra(d)}" if counts[lab] > 1 and extra(d) else lab for lab, d in zip(labels, descs)]
    if len(set(labels)) < len(labels):  # identical in every respect: number them
        seen: dict[str, int] = {}
        for i, lab in enumerate(labels):
            seen[lab] = seen.get(lab, 0) + 1
            labels[i] = f"{lab} #{seen[lab]}" if labels.count(lab) > 1 else lab
    return labels


def resolve_baseline(name: str | None, labels: Sequence[str], methods: Sequence[str], what: str) -> int | None:
    """Index of the row named ``name`` (a label, else a unique method); None if no ``name``
    or no match (the caller decides whether that is an error)."""
    if name is None:
        return None
    if name in labels:
        return list(labels).index(name)
    hits = [i for i, m in enumerate(methods) if m == name]
    if len(hits) > 1:
        raise BebiasError(f"--baseline {name!r} matches {len(hits)} {what} rows "
                          f"({', '.join(labels[i] for i in hits)}); name one of them")
    return hits[0] if hits else None


def _arrays(cells: list[dict[tuple[str, str], Cell]], cols: list[tuple[str, Metric]]) -> dict[str, np.ndarray]:
    R, C = len(cells), len(cols)
    a = {k: np.full((R, C), np.nan) for k in ("value", "ci_low", "ci_high", "n")}
    for i, row in enumerate(cells):
        for j, (g, m) in enumerate(cols):
            if (g, m.key) in row:
                for k, x in zip(("value", "ci_low", "ci_high", "n"), row[(g, m.key)]):
                    a[k][i, j] = x
    return a


def checkpoint_table(sources: Sequence[Source], describe_fn: Callable[[Source, dict], dict] | None = None,
                     baseline: str | None = None, names: dict[str, str] | None = None) -> Table | None:
    """One row per checkpoint (probe and eval results merged by checkpoint SHA-256),
    columns = data (split) x metric. ``describe_fn(source, fallback) -> dict`` gives method /
    readout / backbone / pretrain_data (default: :func:`describe` of what the result
    recorded). ``names``: checkpoint path (as the results record it) -> row label; those
    rows come first, in the mapping's order. None if there are no probe or eval results."""
    describe_fn = describe_fn or (lambda src, fb: describe(fb))
    keys: list[str] = []
    descs: dict[str, dict] = {}
    cells: dict[str, dict[tuple[str, str], Cell]] = {}
    origin: dict[tuple[str, str, str], str] = {}
    groups: list[str] = []
    probes: list[tuple[int, str, ProbeMetrics]] = []
    refs: dict[str, dict[tuple[str, str], tuple[float, float]]] = {}  # (chance, ceiling) per cell
    signal: dict[str, dict[str, bool]] = {}  # per checkpoint and group (floor metrics)
    eval_k: dict[tuple[str, str], int | None] = {}  # the K an eval split recorded, per (checkpoint, group)
    for src in sources:
        if src.kind not in ("probe", "eval"):
            continue
        fb = fallback_info(src)
        key = fb["sha256"] or fb["path"]
        if key not in descs:
            keys.append(key)
            descs[key] = {**describe_fn(src, fb), "sha256": fb["sha256"], "path": os.path.normpath(fb["path"] or ""),
                          "folder": os.path.basename(os.path.dirname(fb["path"] or "")) or ""}
            cells[key], refs[key], signal[key] = {}, {}, {}
        if src.kind == "probe":
            pm = ProbeMetrics.from_json(src.data, src.path)
            pv = pm.provenance
            g = data_name(pv.get("data"), None, pm.split)
            blocks = {g: probe_values(pm)}
            probes.append((keys.index(key), g, pm))
            refs[key].update({(g, mk): r for mk, r in CH.probe_references(src.data, blocks[g]).items()})
            signal[key][g] = CH.probe_signal(src.data)
        else:
            blocks = {data_name(src.data.get("data"), None, s): eval_values(r) for s, r in src.data["splits"].items()}
            eval_k.update({(key, data_name(src.data.get("data"), None, s)): CH.num_classes(r.get("num_classes"))
                           for s, r in src.data["splits"].items()})
        for g, vals in blocks.items():
            if g not in groups:
                groups.append(g)
            for mk, cell in vals.items():
                if (key, g, mk) in origin:
                    raise BebiasError(f"two results for the same checkpoint, data and metric ({g}, {mk}): "
                                      f"{origin[(key, g, mk)]} and {src.path}; report one of them", src.path)
                origin[(key, g, mk)] = src.path
                cells[key][(g, mk)] = cell
    if not keys:
        return None
    for (key, g), k in eval_k.items():  # eval JSON of an older bebias has no K: the probe's of this checkpoint
        ks = {CH.num_classes(m.classes) for i, _, m in probes if keys[i] == key} - {None}
        k = k if k is not None else (ks.pop() if len(ks) == 1 else None)
        refs[key].update({(g, m.key): CH.reference(m.key, k) for m in EVAL_METRICS})
    named = {os.path.normpath(p): lab for p, lab in (names or {}).items()}
    if named:  # the caller's rows first, in its order; the rest as found
        rank = list(named)
        keys.sort(key=lambda k: rank.index(descs[k]["path"]) if descs[k]["path"] in named else len(rank))
    probed = {g for _, g, _ in probes}
    groups = [g for g in groups if g in probed] + [g for g in groups if g not in probed]
    # a headline metric of the schema without a presentation here still gets a column (no "best")
    shown = {m.key for m in PROBE_METRICS}
    more = tuple(Metric(s.key, s.label, higher_is_better=None) for s in SCALARS if s.report and s.key not in shown)
    metrics = PROBE_METRICS + more + EVAL_METRICS
    cols = [(g, m) for g in groups for m in metrics if any((g, m.key) in cells[k] for k in keys)]
    a = _arrays([cells[k] for k in keys], cols)
    ref = np.array([[refs[k].get((g, m.key), (np.nan, np.nan)) for g, m in cols] for k in keys]).reshape(
        len(keys), len(cols), 2)
    sig = np.array([[signal[k].get(g, False) for g, _ in cols] for k in keys], bool).reshape(len(keys), len(cols))
    ds = [descs[k] for k in keys]
    labels = [named.get(d["path"], lab) for d, lab in zip(ds, unique_labels(ds))]
    rows = pd.DataFrame({"checkpoint": labels, "method": [d["method"] for d in ds],
                         "readout": [d["readout"] for d in ds], "backbone": [d["backbone"] for d in ds],
                         "pre-training data": [d["pretrain_data"] for d in ds]})
    b = resolve_baseline(baseline, labels, rows["method"].tolist(), "checkpoint")
    return Table("checkpoints", "Checkpoints", rows, cols, a["value"], a["ci_low"], a["ci_high"],
                 np.full_like(a["value"], np.nan), a["n"], baseline=b,
                 note=f"Values with {VIDEO_CI} (bootstrap) in brackets (probe); eval values have "
                      "none. ↑ higher is better, ↓ lower is better. Row 'chance': what random decisions score "
                      "(1/K; contrasted acc. (1/K)(1-1/K); bg reliance and κ 0; CAM: the masks' area); row "
                      "'ceiling': the best a model can score. Bold: the best of a column, only when its CI "
                      "clears chance on the good side (bg reliance and static-frame, whose chance is their best "
                      "end: only when the run's decisions carry signal) and clears the runner-up; a value "
                      "without a CI is never bold. Static-frame accuracy is shown only on sets without cue "
                      "conflicts, its κ with the original decisions on any.",
                 extra={"sha256": [d["sha256"] for d in ds], "probes": probes,
                        # each row's training recipe (config except the seed; None unknown), for seeds.seed_table
                        "recipes": [d.get("recipe") for d in ds]},
                 chance=ref[..., 0], ceiling=ref[..., 1], signal=sig)


_PROBE_NAMES = {"train": "biased probe", "train-unbiased": "unbiased probe"}
_COMPARE_METRICS = {"top1": ("top-1", True), "bg_follow": ("bg-follow", False)}
_COMPARE_CHANCE = {"top1": "top1", "bg_follow": "eval_bg_follow"}  # -> bebias.reporting.chance.KINDS


def seed_interval(x: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (1 - alpha) Student-t interval of the mean of ``x`` (n,) across seeds: training
    variance. NaN for fewer than two seeds."""
    from scipy.stats import t as student_t  # scikit-image's dependency: no import cost elsewhere

    if len(x) < 2:
        return np.nan, np.nan
    half = float(student_t.ppf(1 - alpha / 2, len(x) - 1)) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def compare_table(src: Source, baseline: str | None = None) -> Table:
    """``bebias compare``: one row per variant, mean ± std (ddof 1) over its seeds and the
    95 % t-interval of the mean across seeds (:func:`seed_interval`); columns are the row
    keys ``<train split>-><test split>/<metric>``."""
    res = src.data
    keys = [k for k in res["rows"][0] if "/" in k]
    cols, groups, kinds = [], [], []
    for k in keys:
        m = re.fullmatch(r"(.+)->(.+)/(.+)", k)
        train, test, metric = m.groups() if m else ("", "", k)
        label, hib = _COMPARE_METRICS.get(metric, (metric, None))
        kinds.append(_COMPARE_CHANCE.get(metric, ""))
        g = f"{_PROBE_NAMES.get(train, train)} ({train})" if train else ""
        groups.append(g)
        cols.append((g, Metric(k, f"{test} {label}".strip(), higher_is_better=hib)))
    variants = list(dict.fromkeys(r["variant"] for r in res["rows"]))
    R, C = len(variants), len(cols)
    mean, std, n = np.full((R, C), np.nan), np.full((R, C), np.nan), np.zeros((R, C))
    lo, hi = np.full((R, C), np.nan), np.full((R, C), np.nan)
    for i, v in enumerate(variants):
        rs = [r for r in res["rows"] if r["variant"] == v]
        for j, (_, met) in enumerate(cols):
            x = np.array([_f(r.get(met.key)) for r in rs])
            x = x[np.isfinite(x)]
            n[i, j] = len(x)
            if len(x):
                mean[i, j] = x.mean()
                std[i, j] = x.std(ddof=1) if len(x) > 1 else np.nan
                lo[i, j], hi[i, j] = seed_interval(x)
    seeds = [len({r.get("seed") for r in res["rows"] if r["variant"] == v}) for v in variants]
    rows = pd.DataFrame({"variant": variants, "seeds": [str(s) for s in seeds]})
    b = resolve_baseline(baseline, variants, variants, "compare")
    cfg = res["config"]
    parts = [f"`{cfg.get('arch', '?')}`", f"{cfg.get('frames', '?')} frames x stride {cfg.get('stride', '?')} at "
             f"{cfg.get('size', '?')} px", f"{cfg.get('epochs', '?')} epochs of batch {cfg.get('batch_size', '?')}",
             f"{cfg.get('optimizer', '?')} lr {cfg.get('lr', '?')}", f"{cfg.get('precision', '?')}"]
    k = CH.num_classes(res.get("classes"))
    ref = np.array([CH.reference(kind, k) for kind in kinds]).reshape(C, 2)
    note = ("Mean ± std over seeds (ddof 1), percent, with the 95 % t-interval of the mean across seeds in "
            "brackets (training variance). Pre-training: " + ", ".join(parts) + "." + (
                f" Chance (random decisions) = 1/K = {100 / k:.1f} %; bold: the best of a column, only when its "
                "interval clears chance on the good side and the runner-up's interval." if k else ""))
    skipped = res.get("skipped_updates")
    if isinstance(skipped, dict) and skipped:
        known = [x for x in skipped.values() if isinstance(x, int)]
        note += f" Updates skipped: {sum(known)} in {len(known)} pre-training runs."
    return Table("compare", f"bebias compare ({src.path})", rows, cols, mean, lo, hi, std, n, baseline=b, note=note,
                 label_column="variant", chance=np.tile(ref[:, 0], (R, 1)), ceiling=np.tile(ref[:, 1], (R, 1)))


def calibration_table(src: Source) -> Table:
    """``bebias data calibrate``: one row per run and seed, no "best" (the rows differ by
    the training bias on purpose)."""
    res = src.data
    cols = [("", Metric("iid_top1", "iid top-1")), ("", Metric("conflict_top1", "conflict top-1")),
            ("", Metric("conflict_background_follow", "conflict bg-follow", higher_is_better=False)),
            ("", Metric("train_minutes", "train time", unit="min", scale=1.0, decimals=1, higher_is_better=None))]
    R, C = len(res["rows"]), len(cols)
    val = np.array([[_f(r.get(m.key)) for _, m in cols] for r in res["rows"]]).reshape(R, C)
    rows = pd.DataFrame({"training split": [r["run"] for r in res["rows"]],
                         "seed": [str(r.get("seed", "")) for r in res["rows"]]})
    cfg = res["config"]
    note = (f"Model `{cfg.get('arch', '?')}` trained from scratch, {cfg.get('frames', '?')} frames x stride "
            f"{cfg.get('stride', '?')} at {cfg.get('size', '?')} px, {cfg.get('epochs', '?')} epochs, "
            f"{cfg.get('precision', '?')}" + (f"; {res['machine']}" if res.get("machine") else "") + ".")
    nan = np.full((R, C), np.nan)
    # K as each row's eval recorded it (older files: unknown, no chance shown)
    ref = np.array([[CH.reference(m.key, CH.num_classes(r.get("num_classes"))) for _, m in cols]
                    for r in res["rows"]]).reshape(R, C, 2)
    return Table("calibration", f"Benchmark calibration ({src.path})", rows, cols, val, nan, nan.copy(),
                 nan.copy(), nan.copy(), bold=False, note=note, label_column="training split",
                 chance=ref[..., 0], ceiling=ref[..., 1])


def cam_table(src: Source) -> Table:
    """``bebias cam``: per checkpoint the share of CAM mass on the actor, its chance (the
    mask's area), the layer's ceiling and the normalised score of the predicted and the
    true class's map (``measure``, :mod:`bebias.models.cam_measure`), each with its CI.
    A cam.json without ``measure`` (an earlier bebias) fills the share only."""
    res = src.data
    cks = res.get("checkpoints", [])
    labels = [str(c.get("label") or c.get("path")) for c in cks]
    share = res.get("actor_share", {})
    measure = res.get("measure") or {}
    cols = [("", Metric("actor_share", "CAM on actor")),
            ("", Metric("chance", "chance (mask area)", higher_is_better=None)),
            ("", Metric("ceiling", "layer ceiling", higher_is_better=None)),
            ("", Metric("norm_pred", "normalised, predicted class", unit="0 = uniform, 1 = ceiling", scale=1.0,
                        decimals=2)),
            ("", Metric("norm_true", "normalised, true class", unit="0 = uniform, 1 = ceiling", scale=1.0,
                        decimals=2))]
    cells = []
    for lab in labels:
        m = measure.get(lab) or {}
        pred, true = m.get("pred") or {}, m.get("true") or {}
        cells.append({("", "actor_share"): _ci(share.get(lab)), ("", "chance"): _ci(pred.get("chance")),
                      ("", "ceiling"): _ci(pred.get("ceiling")), ("", "norm_pred"): _ci(pred.get("normalised")),
                      ("", "norm_true"): _ci(true.get("normalised"))})
    a = _arrays(cells, cols)
    rows = pd.DataFrame({"checkpoint": labels, "method": [str(c.get("method") or "–") for c in cks],
                         "backbone": [str(c.get("arch") or "–") for c in cks]})
    # chance and ceiling per cell: the share's are the row's own (mask area, pooled mask;
    # cam.json's overall levels where a row has no measure), the normalised score's 0 and 1
    share_ref = CH.reference("actor_share", None, res)
    ref = np.full((len(labels), len(cols), 2), np.nan)
    for i, lab in enumerate(labels):
        pred = ((measure.get(lab) or {}).get("pred") or {})
        ch, ce = _f((pred.get("chance") or {}).get("value")), _f((pred.get("ceiling") or {}).get("value"))
        ref[i, 0] = (ch, ce) if math.isfinite(ch) and math.isfinite(ce) else share_ref
        ref[i, 3:] = (0.0, 1.0)
    return Table("cam", f"CAM on the actor ({src.path})", rows, cols, a["value"], a["ci_low"], a["ci_high"],
                 np.full_like(a["value"], np.nan), a["n"],
                 note=f"Share of Grad-CAM mass inside the foreground mask, layer {res.get('layer', '?')}, "
                      "with its 95 % CI over test videos; chance = a uniform map's share (the mask's area), "
                      "ceiling = the mask pooled to the layer's grid; normalised = (share - chance) / (ceiling - "
                      "chance). Bold: the best, only when its CI clears chance and the runner-up.",
                 chance=ref[..., 0], ceiling=ref[..., 1])
