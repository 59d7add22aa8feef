"""A :class:`~bebias.reporting.tables.Table` written as Markdown, LaTeX (booktabs), HTML
and CSV / long-format data. Formatting lives only here: bold marks the best value of a
column (direction-aware, beyond chance, CI-separated: :mod:`bebias.reporting.chance`),
deltas are against the baseline row, a missing value is "–". Under the rows, a ``chance``
and a ``ceiling`` row give each column's levels (where a column's level differs between
rows, the row says "per row" and each cell carries its own)."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from bebias.reporting.tables import Metric, Table


DASH = {"md": "–", "html": "–", "tex": "--"}
ARROW = {"md": {True: " ↑", False: " ↓", None: ""}, "html": {True: " ↑", False: " ↓", None: ""},
         "tex": {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}}

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--",
                "±": r"$\pm$", "·": r"$\cdot$", "→": r"$\to$", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
                "κ": r"$\kappa$"}


def _plain(c: str) -> bool:
    """Not a control character (a line break would end a LaTeX comment or a Markdown row)."""
    return c >= " " and c != "\x7f" and c not in "\u2028\u2029\x85"


def tex_escape(s: str) -> str:
    """Plain text -> LaTeX (specials escaped, the few non-ASCII symbols we print mapped,
    line breaks and other control characters as spaces)."""
    return "".join(_TEX_ESCAPES.get(c, c) if _plain(c) else " " for c in str(s))


_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: "\\" + c for c in "\\`*_[]|#~"}}


def md_escape(s: str) -> str:
    """Plain text -> Markdown that shows it literally, in a table cell or a paragraph: HTML's
    ``& < >`` as entities (no tag, no ``onerror``), Markdown's specials and ``|`` (which
    would end a cell) backslash-escaped, line breaks and control characters as spaces."""
    return "".join(_MD_ESCAPES.get(c, c) if _plain(c) else " " for c in str(s))


def _num(x: float, m: Metric, fmt: str) -> str:
    return DASH[fmt] if not math.isfinite(x) else f"{x * m.scale:.{m.decimals}f}"


def _signed(x: float, m: Metric, fmt: str) -> str:
    s = f"{x * m.scale:+.{m.decimals}f}"
    return s.replace("-", "$-$") if fmt == "tex" else s


def header(m: Metric, fmt: str) -> str:
    unit = f" ({m.unit})" if m.unit else ""
    text = m.label + unit
    text = {"tex": tex_escape, "html": html.escape, "md": md_escape}[fmt](text)
    return text + ARROW[fmt][m.higher_is_better]


REFERENCES = ("chance", "ceiling")  # the Table arrays shown as rows under the checkpoints


def _level(t: Table, name: str, j: int) -> float | None:
    """Column ``j``'s chance / ceiling if one value serves every row that has a value (or
    every row); None if it differs between rows; NaN if there is none."""
    a = getattr(t, name)[:, j]
    has = np.isfinite(t.value[:, j]) & np.isfinite(a)
    x = a[has] if has.any() else a[np.isfinite(a)]
    if not len(x):
        return math.nan
    return float(x[0]) if np.allclose(x, x[0], rtol=0, atol=1e-9) else None


def cell(t: Table, i: int, j: int, fmt: str, best: np.ndarray, delta: np.ndarray) -> str:
    """One formatted cell: value (bold if best), ± std, [CI], (delta vs baseline), and the
    row's own chance where the column's differs between rows. In HTML the CI goes on a
    second, smaller line (narrow columns)."""
    m = t.columns[j][1]
    v, lo, hi, sd, d = t.value[i, j], t.ci_low[i, j], t.ci_high[i, j], t.std[i, j], delta[i, j]
    s = _num(v, m, fmt)
    if best[i, j]:
        s = {"md": f"**{s}**", "html": f"<b>{s}</b>", "tex": rf"\textbf{{{s}}}"}[fmt]
    if math.isfinite(v) and math.isfinite(sd):
        s += {"md": " ± ", "html": " ± ", "tex": r" $\pm$ "}[fmt] + _num(sd, m, fmt)
    ci = ""
    if math.isfinite(v) and math.isfinite(lo) and math.isfinite(hi):
        ci = f"[{_num(lo, m, fmt)}, {_num(hi, m, fmt)}]"
        if fmt != "html":
            s += f" {ci}" if fmt == "md" else rf" {{\scriptsize {ci}}}"
    if math.isfinite(d):
        ds = _signed(d, m, fmt)
        if fmt == "html":
            good = "" if m.higher_is_better is None or d == 0 else \
                (" better" if (d > 0) == m.higher_is_better else " worse")
            s += f' <span class="delta{good}">({ds})</span>'
        else:
            s += f" ({ds})" if fmt == "md" else rf" {{\scriptsize ({ds})}}"
    if ci and fmt == "html":
        s += f'<br><span class="ci">{ci}</span>'
    if math.isfinite(v) and _level(t, "chance", j) is None and math.isfinite(t.chance[i, j]):
        s += f" (chance {_num(t.chance[i, j], m, fmt)})"
    return s


def _reference_rows(t: Table, fmt: str) -> dict[str, list[str]]:
    """``{"chance": cells, "ceiling": cells}`` (one per column), for the levels any column has."""
    out = {}
    for name in REFERENCES:
        cells = []
        for j, (_, m) in enumerate(t.columns):
            x = _level(t, name, j)
            cells.append("per row" if x is None else "" if not math.isfinite(x) else _num(x, m, fmt))
        if any(cells):
            out[name] = cells
    return out


def display_frame(t: Table, fmt: str) -> pd.DataFrame:
    """The table as strings for ``fmt`` (md / html / tex): the descriptive columns, then one
    column per (group, metric) (a MultiIndex of two levels)."""
    best, delta = t.best(), t.delta()
    esc = {"md": md_escape, "html": html.escape, "tex": tex_escape}[fmt]
    refs = _reference_rows(t, fmt)
    data: dict[tuple[str, str], list[str]] = {}
    for c in t.rows.columns:
        labels = [esc(x) for x in t.rows[c]]
        if c == t.label_column and t.baseline is not None:
            mark = {"md": " (baseline)", "html": ' <span class="base">(baseline)</span>',
                    "tex": " (baseline)"}[fmt]
            labels[t.baseline] += mark
        data[("", esc(c))] = labels + [name if c == t.label_column else "" for name in refs]
    for j, (g, m) in enumerate(t.columns):
        data[(esc(g), header(m, fmt))] = ([cell(t, i, j, fmt, best, delta) for i in range(len(t.rows))]
                                          + [r[j] for r in refs.values()])
    df = pd.DataFrame(data)
    df.columns = pd.MultiIndex.from_tuples(list(data))
    return df


def _split(t: Table, df: pd.DataFrame) -> tuple[list, list[str]]:
    """(the descriptive columns of ``df``, the column groups in order)."""
    desc = list(df.columns[:len(t.rows.columns)])
    return desc, list(dict.fromkeys(c[0] for c in df.columns[len(desc):])) or [""]


def to_markdown(t: Table) -> str:
    """One Markdown (pipe) table per column group, each with the descriptive columns."""
    df = display_frame(t, "md")
    desc, groups = _split(t, df)
    parts = [f"## {md_escape(t.title)}\n"]
    for g in groups:
        sub = df[desc + [c for c in df.columns[len(desc):] if c[0] == g]]
        flat = sub.copy()
        flat.columns = [c[1] for c in sub.columns]
        if g:
            parts.append(f"### {g}\n")
        align = ["left"] * len(desc) + ["right"] * (len(flat.columns) - len(desc))
        parts.append(flat.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n")
    if t.note:
        parts.append(md_escape(t.note) + "\n")
    return "\n".join(parts)


def to_latex(t: Table) -> str:
    """A booktabs ``tabular`` (\\toprule/\\midrule/\\bottomrule, grouped headers with
    \\cmidrule), to ``\\input`` in a document that loads booktabs."""
    df = display_frame(t, "tex")
    ndesc = len(t.rows.columns)
    grouped = any(g for g, _ in t.columns)
    if not grouped:
        df.columns = pd.Index([c[1] for c in df.columns])
    tex = df.style.hide(axis="index").to_latex(hrules=True, multicol_align="c",
                                               column_format="l" * ndesc + "r" * (len(df.columns) - ndesc))
    if len(df) > len(t.rows):  # a rule between the checkpoints and the chance / ceiling rows
        lines = tex.split("\n")
        first = lines.index(r"\midrule") + 1 + len(t.rows)
        lines.insert(first, r"\midrule")
        tex = "\n".join(lines)
    if grouped:  # \cmidrule under each group's \multicolumn (paper style)
        spans, col = [], 1
        for g, size in _runs([c[0] for c in df.columns]):
            if g:
                spans.append(rf"\cmidrule(lr){{{col}-{col + size - 1}}}")
            col += size
        lines = tex.split("\n")
        top = lines.index(r"\toprule")
        lines.insert(top + 2, " ".join(spans))
        tex = "\n".join(lines)
    return f"% {tex_escape(t.title)}\n% {tex_escape(t.note)}\n" + tex


def _runs(xs: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for x in xs:
        if out and out[-1][0] == x:
            out[-1] = (x, out[-1][1] + 1)
        else:
            out.append((x, 1))
    return out


def to_html(t: Table) -> str:
    """HTML: one <table> per column group (each with the descriptive columns and the group
    as its heading), so that a table with many data/splits stays readable on a screen."""
    df = display_frame(t, "html")
    desc, groups = _split(t, df)
    # the descriptive columns are left-aligned by the page's CSS: it knows how many from the class
    classes = ["results", f"d{len(desc)}"]
    parts = []
    for g in groups:
        sub = df[desc + [c for c in df.columns[len(desc):] if c[0] == g]]
        sub.columns = pd.Index([c[1] for c in sub.columns])
        head = f"<h3>{g}</h3>\n" if g else ""
        parts.append(f'{head}<div class="scroll">\n'
                     + sub.to_html(escape=False, index=False, border=0, classes=classes, na_rep="–") + "\n</div>")
    return "\n".join(parts)


def to_long(t: Table) -> pd.DataFrame:
    """Tidy rows (one per table row x column) with unrounded values (fractions as stored),
    for CSV: the descriptive columns, group, metric, unit, value, ci_low, ci_high, std, n,
    delta (vs the baseline), higher_is_better, chance, ceiling, best."""
    best, delta = t.best(), t.delta()
    recs = []
    for i in range(len(t.rows)):
        for j, (g, m) in enumerate(t.columns):
            recs.append({**t.rows.iloc[i].to_dict(), "group": g, "metric": m.label, "key": m.key,
                         "unit": "fraction" if m.scale == 100 else m.unit, "value": t.value[i, j],
                         "ci_low": t.ci_low[i, j], "ci_high": t.ci_high[i, j], "std": t.std[i, j],
                         "n": t.n[i, j], "delta": delta[i, j], "higher_is_better": m.higher_is_better,
                         "chance": t.chance[i, j], "ceiling": t.ceiling[i, j], "best": bool(best[i, j]),
                         "baseline": t.baseline == i})
    return pd.DataFrame(recs)


def to_csv(t: Table) -> str:
    return to_long(t).to_csv(index=False, lineterminator="\n", float_format="%.10g")
