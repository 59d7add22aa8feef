"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot state, no display).

Every function returns PNG bytes. One colour per checkpoint across every figure: colour
``i`` of :data:`PALETTE` is the table's row ``i`` (Okabe-Ito, colour-blind safe). PNGs carry
no ``Software`` or date metadata, so the same results give the same bytes.

Inputs are ``probes``: ``(row, label, group, ProbeMetrics)`` per probe result (metrics.json
read through :class:`bebias.results.ProbeMetrics`), ``row`` being the checkpoint's row in the
table. Whiskers are 95 % CIs over test videos (the probe's bootstrap).

Every text that comes from a result file (labels, class and variant names, data names) goes
through :func:`literal`: matplotlib would parse a ``$...$`` span in it as mathtext (and
crash on one that is not valid mathtext), and TeX is turned off for the figures whatever
the user's matplotlibrc says.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bebias.results import Estimate, ProbeMetrics

#: Okabe-Ito without its yellow (too faint on white), then tab10's distinct hues
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd")
#: conflict-block variants in which the foreground's class and the background's differ by construction
FOLLOW_VARIANTS = ("original", "swap-background", "swap-background-static", "conflict-foreground")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

Probe = tuple[int, str, str, ProbeMetrics]  # row, label, group, metrics.json
DPI = 100


def literal(s: Any, n: int = 48) -> str:
    """Text from a result file as matplotlib shows it, literally: ``$`` escaped (no
    mathtext), control characters as spaces, cut to ``n`` characters (a megabyte-long class
    name would make a figure wider than Agg can draw)."""
    s = "".join(c if c >= " " and c != "\x7f" else " " for c in str(s))
    s = s if len(s) <= n else s[:n - 1] + "…"
    return s.replace("$", r"\$")


def _plain_text(fn: Callable[..., bytes | None]) -> Callable[..., bytes | None]:
    """Draw with TeX off (a user's ``text.usetex: True`` would send result-file text to
    LaTeX), and without the warning about a glyph the font lacks (shown as a box)."""
    @functools.wraps(fn)
    def draw(*args: Any, **kwargs: Any) -> bytes | None:
        with matplotlib.rc_context({"text.usetex": False}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font")
            return fn(*args, **kwargs)
    return draw


def colour(row: int) -> str:
    return PALETTE[row % len(PALETTE)]


def png(fig: Figure) -> bytes:
    """PNG bytes without time or software metadata (deterministic output)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def _v(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _err(e: Estimate | None, scale: float = 100.0) -> tuple[float, float, float]:
    """(value, lower error, upper error) x scale; errors 0 where the CI is missing."""
    e = e or Estimate(None)
    v, lo, hi = _v(e.value), _v(e.ci_low), _v(e.ci_high)
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(v)):
        return v * scale, 0.0, 0.0
    return v * scale, max(v - lo, 0) * scale, max(hi - v, 0) * scale


def _groups(probes: Sequence[Probe]) -> list[str]:
    return list(dict.fromkeys(p[2] for p in probes))


def _figure(n_panels: int, width: float = 9.5, height: float = 3.6) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height * n_panels), layout="constrained")
    axes = fig.subplots(n_panels, 1, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(axis="y", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes)


def _chance(ax, metrics: ProbeMetrics) -> None:
    k = len(metrics.classes)
    if k > 1:
        ax.axhline(100 / k, color="#555555", linestyle="--", linewidth=1)
        ax.annotate(f"chance\n{100 / k:.1f} %", xy=(1, 100 / k), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", ha="left", va="center", fontsize=8, color="#555555")


def _bars(ax, categories: list[str], series: list[tuple[int, str, list[tuple[float, float, float]]]]) -> None:
    """Grouped bars: one group per category, one bar (colour of its row) per series, CI whiskers."""
    x = np.arange(len(categories))
    w = 0.8 / max(len(series), 1)
    for s, (row, label, vals) in enumerate(series):
        v = np.array([t[0] for t in vals])
        err = np.array([[t[1] for t in vals], [t[2] for t in vals]])
        ax.bar(x - 0.4 + w * (s + 0.5), np.nan_to_num(v), w * 0.92, color=colour(row), label=literal(label),
               yerr=err if err.any() else None, error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333333"})
        for xi, vi in zip(x, v):  # a missing value is marked, not drawn as 0
            if not math.isfinite(vi):
                ax.text(xi - 0.4 + w * (s + 0.5), 1, "–", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [literal(c, 32) for c in categories], rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(categories) - 0.4)


@_plain_text
def accuracy_by_variant(probes: Sequence[Probe]) -> bytes | None:
    """Top-1 per probe variant (x) per checkpoint (bars), 95 % CI whiskers; one panel per data/split."""
    groups = _groups(probes)
    if not groups:
        return None
    fig, axes = _figure(len(groups))
    for ax, g in zip(axes, groups):
        ps = [p for p in probes if p[2] == g]
        variants = list(dict.fromkeys(v for p in ps for v in p[3].variants()))
        series = [(row, label, [_err(m.top1(v)) for v in variants]) for row, label, _, m in ps]
        _bars(ax, variants, series)
        _chance(ax, ps[0][3])
        ax.set_ylim(0, 105)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_xlabel("probe variant")
        ax.set_title(f"Accuracy per variant\n{literal(g, 100)}", loc="left", fontsize=11)
        ax.legend(title="checkpoint", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


@_plain_text
def follow_rates(probes: Sequence[Probe]) -> bytes | None:
    """Background-follow (y) vs foreground-follow (x) on the conflict variants: up-left means
    the model follows the scene, down-right the actor's motion. One panel per data/split."""
    groups = [g for g in _groups(probes) if any(p[3].conflict for p in probes if p[2] == g)]
    if not groups:
        return None
    fig = Figure(figsize=(8.0, 4.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, g in zip(axes, groups):
        ps = [p for p in probes if p[2] == g]
        present = [v for v in FOLLOW_VARIANTS if any(v in p[3].conflict for p in ps)] or \
            list(dict.fromkeys(v for p in ps for v in p[3].conflict))[:len(MARKERS)]
        ax.plot([0, 100], [0, 100], color="#bbbbbb", linewidth=1, linestyle=":", zorder=0)
        for row, label, _, m in ps:
            for k, v in enumerate(present):
                c = m.follow(v)
                if c is None:
                    continue
                fx, fl, fh = _err(c[0])
                bx, bl, bh = _err(c[1])
                ax.errorbar(fx, bx, xerr=[[fl], [fh]], yerr=[[bl], [bh]], fmt=MARKERS[k % len(MARKERS)],
                            color=colour(row), markersize=8, elinewidth=0.8, capsize=2, alpha=0.9)
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_aspect("equal")
        ax.set_xlabel("foreground-follow: prediction = the actor's class (%)")
        ax.set_ylabel("background-follow:\nprediction = the scene's class (%)")
        ax.set_title(f"Who does the model follow on conflicts?\n{literal(g, 100)}", loc="left", fontsize=11)
        ax.grid(color="#eeeeee", linewidth=0.8)
        ax.set_axisbelow(True)
        ck = [Line2D([], [], color=colour(row), marker="o", linestyle="", label=literal(label))
              for row, label in dict.fromkeys((p[0], p[1]) for p in ps)]
        mk = [Line2D([], [], color="#444444", marker=MARKERS[k % len(MARKERS)], linestyle="", label=literal(v))
              for k, v in enumerate(present)]
        leg = ax.legend(handles=ck, title="checkpoint", fontsize=8, title_fontsize=8, loc="upper left",
                        bbox_to_anchor=(1.02, 1))
        ax.add_artist(leg)
        ax.legend(handles=mk, title="variant", fontsize=8, title_fontsize=8, loc="lower left",
                  bbox_to_anchor=(1.02, 0))
    return png(fig)


@_plain_text
def per_class_reliance(probes: Sequence[Probe], variant: str = "swap-background") -> bytes | None:
    """Per-class background-follow on ``variant`` (the class's share of swaps decided by the
    donor's scene): which classes lean on the background. One panel per data/split."""
    def per_class(m: ProbeMetrics) -> dict:
        return m.per_class_follow(variant)

    groups = [g for g in _groups(probes) if any(per_class(p[3]) for p in probes if p[2] == g)]
    if not groups:
        return None
    fig, axes = _figure(len(groups))
    for ax, g in zip(axes, groups):
        ps = [p for p in probes if p[2] == g and per_class(p[3])]
        classes = list(dict.fromkeys(c for p in ps for c in per_class(p[3])))
        series = []
        for row, label, _, m in ps:
            pc = per_class(m)
            series.append((row, label, [(100 * pc[c] if pc.get(c) is not None else math.nan, 0.0, 0.0)
                                        for c in classes]))
        _bars(ax, classes, series)
        ax.set_ylim(0, 105)
        ax.set_ylabel("background-follow (%)")
        ax.set_xlabel("true (motion) class")
        ax.set_title(f"Per-class background reliance ({variant})\n{literal(g, 100)}", loc="left", fontsize=11)
        ax.legend(title="checkpoint", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


@_plain_text
def accuracy_vs_reliance(probes: Sequence[Probe]) -> bytes | None:
    """Original top-1 (y) against the background-reliance score (x), 95 % CIs both ways;
    one marker shape per data/split. Top-left is where a motion model belongs."""
    pts = []
    for row, label, g, m in probes:
        rel = m.reliance_block()
        score, top = Estimate.of(rel), m.top1("original")
        if rel is not None and math.isfinite(_v(score.value)) and math.isfinite(_v(top.value)):
            pts.append((row, label, g, _err(score, 1.0), _err(top)))
    if not pts:
        return None
    groups = list(dict.fromkeys(p[2] for p in pts))
    fig = Figure(figsize=(9.5, 5.0), layout="constrained")
    ax = fig.subplots()
    for row, label, g, (x, xl, xh), (y, yl, yh) in pts:
        ax.errorbar(x, y, xerr=[[xl], [xh]], yerr=[[yl], [yh]], fmt=MARKERS[groups.index(g) % len(MARKERS)],
                    color=colour(row), markersize=9, elinewidth=0.9, capsize=2)
        ax.annotate(literal(label), (x, y), xytext=(6, 5), textcoords="offset points", fontsize=8, color=colour(row))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("background reliance (0 = swaps follow the new background no more than chance, "
                  "1 = always)")
    ax.set_ylabel("top-1 accuracy, original clips (%)")
    ax.set_title("Accuracy vs background reliance", loc="left", fontsize=11)
    ax.grid(color="#eeeeee", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    if len(groups) > 1:
        ax.legend(handles=[Line2D([], [], color="#444444", marker=MARKERS[k % len(MARKERS)], linestyle="",
                                  label=literal(g, 100))
                           for k, g in enumerate(groups)], title="data (split)", fontsize=8, title_fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


@_plain_text
def compare_bars(variants: Sequence[str], columns: Sequence[str], mean: np.ndarray, std: np.ndarray,
                 title: str) -> bytes:
    """``bebias compare``: mean over seeds (bars) ± std (whiskers) per column, one colour per variant."""
    fig, (ax,) = _figure(1, height=4.2)
    series = [(i, v, [(100 * mean[i, j], 100 * np.nan_to_num(std[i, j]), 100 * np.nan_to_num(std[i, j]))
                      for j in range(len(columns))]) for i, v in enumerate(variants)]
    _bars(ax, list(columns), series)
    ax.set_ylim(0, 105)
    ax.set_ylabel("percent of videos (%)")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(title="variant", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)
