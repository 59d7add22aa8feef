"""``bebias report``: results in, a report folder out.

:func:`build_report` runs three steps: :func:`collect` finds and reads the results
(:mod:`~bebias.reporting.inputs`) and picks the report's folder; :func:`plan` builds the
tables (:mod:`~bebias.reporting.tables`), checks ``--baseline`` and draws the figures
(:mod:`~bebias.reporting.figures`) into a :class:`Plan`, plain data in which every table
has its key and carries its figures; then one writer per format (:data:`WRITERS`) turns the
plan into files, written into a temporary folder swapped in whole:

- ``md``: ``report.md`` (every table, figures referenced from ``figures/*.png``);
- ``tex``: ``<table>.tex`` per table (a booktabs ``tabular`` to ``\\input``);
- ``csv``: ``<table>.csv`` per table (tidy: one line per row x column, unrounded);
- ``html``: ``report.html`` (self-contained, :mod:`~bebias.reporting.page`).

Tables are ``checkpoints`` (probe + eval results), ``compare`` (each compare.json),
``calibration`` and ``cam`` (each cam.json); a second one of a kind gets ``-2``, ...
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from bebias import __version__
from bebias.atomic import atomic_path
from bebias.errors import BebiasError
from bebias.reporting import table_formats as W
from bebias.reporting import seeds as S
from bebias.reporting import tables as T
from bebias.reporting.inputs import KINDS, Source, find_results, referenced_file
from bebias.reporting.page import Image, Section, png_size, render
from bebias.reporting.provenance import describe, read_checkpoint_meta

FORMATS = ("md", "tex", "csv", "html")

CAPTIONS = {
    "accuracy": "Top-1 accuracy of each checkpoint on each probe variant, 95 % CIs over test videos as whiskers; dashed: "
                "chance. A model that recognises motion keeps its accuracy where the background changes "
                "(swap-background) and loses it where the motion goes (static-frame, background-only).",
    "follow": "On the conflict variants, where the actor's class and the scene's class differ: how often the "
              "prediction is the scene's class (y) vs the actor's (x), 95 % CIs over test videos. Above the dotted diagonal the "
              "model follows the background more than the motion.",
    "per_class": "Per true class: the share of background-swapped clips classified as the donor scene's class. "
                 "Tall bars: classes the model recognises by their background.",
    "scatter": "Accuracy on the original clips against the background-reliance score (the share of swapped "
               "clips, beyond chance, decided as their new background alone is; lower is better), 95 % CIs over "
               "test videos both ways. Top-left is best.",
}


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: ``out``, the ``files`` (paths), the tables and counts."""

    out: str
    name: str
    files: list[str]
    tables: list[T.Table]
    counts: dict[str, int] = field(default_factory=dict)


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")
    return s or "report"


def default_name(paths: Sequence[str]) -> str:
    """A report name from the inputs: their folder names (a file counts as its folder),
    joined with ``+``, at most three and ``+N-more``."""
    parts = []
    for p in paths:
        a = os.path.abspath(p)
        base = os.path.basename(os.path.dirname(a) if os.path.isfile(a) or a.endswith(".json") else a)
        parts.append(slug(base))
    parts = list(dict.fromkeys(parts))
    name = "+".join(parts[:3]) + (f"+{len(parts) - 3}-more" if len(parts) > 3 else "")
    return name[:80]


def parse_formats(spec: str | Sequence[str]) -> tuple[str, ...]:
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in items if s not in FORMATS]
    if bad or not items:
        raise BebiasError(f"--format: unknown format(s) {', '.join(bad) or '(none)'}; choose from "
                          f"{','.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def _describe_from_files(src: Source, fb: dict) -> dict:
    meta, init = read_checkpoint_meta(fb["path"], fb["sha256"], src.folder)
    return {**describe(fb, meta, init), "recipe": S.recipe(meta, init)[0]}


def _probe_figures(t: T.Table) -> list[tuple[str, str, bytes]]:
    """(file stem, caption, PNG) of the probe figures."""
    from bebias.reporting import figures as F

    labels = t.rows["checkpoint"].tolist()
    probes = [(row, labels[row], g, m) for row, g, m in t.extra.get("probes", [])]
    out = []
    for stem, fn in (("accuracy", F.accuracy_by_variant), ("follow", F.follow_rates),
                     ("per_class", F.per_class_reliance), ("scatter", F.accuracy_vs_reliance)):
        png = fn(probes)
        if png is not None:
            out.append((stem, CAPTIONS[stem], png))
    return out


#: a CAM strip larger than this is refused (bebias cam writes ~0.1 MB; the report embeds it)
MAX_STRIP_BYTES = 32 * 2**20


def read_strip(src: Source, i: int) -> bytes:
    """The PNG strip of video ``i`` of a cam.json: inside the result's folder (resolved
    again here, then opened without following a final symlink), a regular file (a FIFO
    would block), at most :data:`MAX_STRIP_BYTES`, a PNG; else a :class:`BebiasError`."""
    field_ = f"videos[{i}].strip"
    path = referenced_file(src.path, src.data["videos"][i]["strip"], field_)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise BebiasError(f"the CAM strip of video {i} named in {src.path} does not exist", path) from None
    except OSError as e:
        raise BebiasError(f"the CAM strip of video {i} named in {src.path} cannot be read ({e.strerror})",
                          path) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BebiasError(f"the CAM strip of video {i} named in {src.path} is not a regular file", path)
        if st.st_size > MAX_STRIP_BYTES:
            raise BebiasError(f"the CAM strip of video {i} named in {src.path} is {st.st_size / 2**20:.0f} MB, "
                              f"more than {MAX_STRIP_BYTES >> 20} MB", path)
        data = f.read(MAX_STRIP_BYTES + 1)
    png_size(data, path)
    return data


def _cam_strips(src: Source) -> list[tuple[str, str, bytes]]:
    """(caption, file name, PNG) per video of a cam.json, each strip read and checked."""
    out = []
    for i, v in enumerate(src.data.get("videos", [])):
        data = read_strip(src, i)
        shares = v.get("actor_share") or {}
        share = ", ".join(f"{k} {'–' if s is None else f'{100 * s:.0f} %'}" for k, s in shares.items())
        name = v.get("label") or os.path.basename(str(v.get("path", f"video {i}")))
        cap = f"{name}" + (f" ({v['path']})" if v.get("path") and v.get("label") else "") + \
              (f": CAM on the actor {share}" if share else "")
        out.append((cap, os.path.basename(v["strip"]), data))
    return out


#: what a report folder holds (and the temporaries of its files' atomic writes by an older
#: bebias): an existing --out is replaced only if it holds nothing else
_PRODUCTS = re.compile(r"report\.md|report\.html|[^/]+\.tex|[^/]+\.csv|figures/[^/]+\.png"
                       r"|(figures/)?\.[^/]+\.tmp-[^/]*")


def _check_replaceable(out: str) -> None:
    """The report replaces ``out`` whole: refuse a folder that holds anything a report does
    not write (an input folder, a home directory given by mistake), or a symlink."""
    if not os.path.isdir(out):
        return
    for d, dirs, files in os.walk(out):
        rel = os.path.relpath(d, out)
        for name, is_dir in sorted([(f, False) for f in files] + [(x, True) for x in dirs]):
            r = name if rel == "." else f"{rel}/{name}"
            p = os.path.join(d, name)
            ok = r == "figures" if is_dir else _PRODUCTS.fullmatch(r) and os.path.isfile(p)
            if not ok or os.path.islink(p):
                raise BebiasError(f"--out holds {r + '/' * is_dir!r}, which a report does not write; the report "
                                  "replaces the whole folder: give a new or empty folder, or a previous report's", out)


def _write_file(path: str, data: bytes) -> None:
    """One file of the report (inside the temporary folder: atomic_path syncs them all)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _unique(stem: str, used: set[str]) -> str:
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}-{k}"
    used.add(name)
    return name


@dataclass
class Figure:
    """A figure drawn for the report: ``key`` its file stem (``figures/<key>.png``), a
    ``caption`` and the ``png``."""

    key: str
    caption: str
    png: bytes


@dataclass
class Strip:
    """A CAM strip of a cam.json: its ``caption``, the strip's file ``name`` and ``png``."""

    caption: str
    name: str
    png: bytes


@dataclass
class Part:
    """One table of the report and what is shown with it.

    ``key``: the table's unique stem (``<key>.tex``, ``<key>.csv``, the page's section id);
    ``figures``: the probe figures (after the checkpoint table; a section of their own on
    the page); ``bars``: the compare bars (inside the table's section); ``strips``: the
    CAM strips of a cam table."""

    key: str
    table: T.Table
    figures: list[Figure] = field(default_factory=list)
    bars: list[Figure] = field(default_factory=list)
    strips: list[Strip] = field(default_factory=list)


@dataclass
class Inputs:
    """What :func:`collect` read: the results, the report's name and folder."""

    results: list[str]
    sources: list[Source]
    name: str
    out: str


@dataclass
class Plan:
    """A report as data, before any file is written: every format's writer reads only this.

    ``parts``: the tables in order with their figures; ``summary``: the line under the
    title; ``sources``: the result files read; ``counts``: result files per kind."""

    name: str
    summary: str
    sources: list[str]
    parts: list[Part]
    counts: dict[str, int]


def collect(results: Sequence[str], *, out: str | None = None, name: str | None = None,
            root: str = "reports") -> Inputs:
    """Find and read ``results`` (files / folders); pick the report's name and folder
    (default ``<root>/<name>``, never an input folder)."""
    sources = find_results(results)
    name = slug(name) if name else default_name(results)
    if out is None:
        out = os.path.join(root, name)
        ins = {os.path.realpath(p) for p in results if os.path.isdir(p)}
        if os.path.realpath(out) in ins:  # never write into an input folder by default
            out = os.path.join(root, name + "-report")
    if os.path.exists(out) and not os.path.isdir(out):
        raise BebiasError("--out exists and is not a folder", out)
    return Inputs(list(results), sources, name, out)


def _check_baseline(baseline: str, tables: Sequence[T.Table], ck: T.Table | None) -> None:
    """A :class:`BebiasError` naming the rows there are, unless some table has deltas against ``baseline``."""
    if any(t.baseline is not None for t in tables):
        return
    have = []
    if ck is not None:
        have.append("checkpoints: " + ", ".join(ck.rows["checkpoint"]) + " (methods: "
                    + ", ".join(dict.fromkeys(ck.rows["method"])) + ")")
    for t in tables:
        if t.name == "compare":
            have.append("compare variants: " + ", ".join(t.rows["variant"]))
    raise BebiasError(f"--baseline {baseline!r} is not a row of any table; "
                      + ("; ".join(have) if have else "no table has deltas (give probe, eval or compare "
                                                       "results)"))


def _compare_bars(t: T.Table, key: str) -> Figure:
    from bebias.reporting import figures as F

    png = F.compare_bars(t.rows["variant"].tolist(), [f"{g.split(' (')[0]}: {m.label}" for g, m in t.columns],
                         t.value, t.std, "bebias compare: mean over seeds ± std")
    return Figure(f"{key}-bars", "Bars: mean over seeds; whiskers: ± std. Colours: one per variant.", png)


def plan(inputs: Inputs, *, baseline: str | None = None, formats: Sequence[str] = FORMATS,
         labels: dict[str, str] | None = None) -> Plan:
    """The tables (checkpoints, seeds, compare, calibration, cam: in that order), checked
    against ``baseline``, and the figures the formats show (drawn only for md and html)."""
    sources = inputs.sources
    ck = T.checkpoint_table(sources, _describe_from_files, baseline, labels)
    parts: list[Part] = []
    used: set[str] = set()

    def add(t: T.Table) -> Part:
        parts.append(Part(_unique(t.name, used), t))
        return parts[-1]

    if ck is not None:
        add(ck)
        st = S.seed_table(ck, ck.extra["recipes"])  # several seeds of one recipe: training variance
        if st is not None:
            add(st)
    for s in sources:
        if s.kind == "compare":
            add(T.compare_table(s, baseline))
    for s in sources:
        if s.kind == "calibration":
            add(T.calibration_table(s))
    cams = [(s, add(T.cam_table(s))) for s in sources if s.kind == "cam"]
    if baseline is not None:
        _check_baseline(baseline, [p.table for p in parts], ck)
    if "md" in formats or "html" in formats:  # figures (matplotlib) only where they go somewhere
        for p in parts:
            if p.table is ck:
                p.figures = [Figure(stem, cap, png) for stem, cap, png in _probe_figures(ck)]
            elif p.table.name == "compare":
                p.bars = [_compare_bars(p.table, p.key)]
    for s, p in cams:
        p.strips = [Strip(cap, fname, png) for cap, fname, png in _cam_strips(s)]
    counts = {k: sum(1 for s in sources if s.kind == k) for k in KINDS}
    summary = (f"{len(sources)} result file(s): " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
               + (f"; {len(ck.rows)} checkpoint(s)" if ck is not None else "")
               + (f"; deltas against {baseline}" if baseline else "") + ".")
    return Plan(inputs.name, summary, [s.path for s in sources], parts, counts)


# --------------------------------------------------------------------------------------
# one writer per format: plan -> (file name in the report folder, bytes), in order
# --------------------------------------------------------------------------------------

Files = list[tuple[str, bytes]]


def write_tex(p: Plan) -> Files:
    """``<key>.tex`` per table."""
    return [(f"{part.key}.tex", W.to_latex(part.table).encode("utf-8")) for part in p.parts]


def write_csv(p: Plan) -> Files:
    """``<key>.csv`` per table."""
    return [(f"{part.key}.csv", W.to_csv(part.table).encode("utf-8")) for part in p.parts]


def _strip_file(part: Part, k: int, strip: Strip) -> str:
    return f"figures/{part.key}-{k}-{slug(os.path.splitext(strip.name)[0])}.png"


def write_md(p: Plan) -> Files:
    """``report.md`` and the figures it references (``figures/*.png``)."""
    files: Files = []
    md = [f"# bebias report: {W.md_escape(p.name)}\n", W.md_escape(p.summary) + "\n"]
    for part in p.parts:
        md.append(W.to_markdown(part.table))
        for f in part.figures:
            files.append((f"figures/{f.key}.png", f.png))
            md.append(f"![{f.key}](figures/{f.key}.png)\n\n{f.caption}\n")
        for f in part.bars:
            files.append((f"figures/{f.key}.png", f.png))
            md.append(f"![{f.key}](figures/{f.key}.png)\n")
        for k, strip in enumerate(part.strips):
            rel = _strip_file(part, k, strip)
            files.append((rel, strip.png))
            md.append(f"{W.md_escape(strip.caption)}\n\n![{W.md_escape(strip.caption)}]({rel})\n")
    md.append("Sources:\n\n" + "\n".join(f"- {W.md_escape(s)}" for s in p.sources) + "\n")
    return files + [("report.md", "\n".join(md).encode("utf-8"))]


def write_html(p: Plan) -> Files:
    """``report.html``: self-contained, every figure embedded (:mod:`~bebias.reporting.page`)."""
    sections = []
    for part in p.parts:
        t = part.table
        sec = Section(part.key, t.title, W.to_html(t), t.note)
        sec.images += [Image(f.png, f.key, f.caption) for f in part.bars]
        for strip in part.strips:
            zoom = max(1, min(4, 900 // max(png_size(strip.png, strip.name)[0], 1)))
            sec.strips.append((strip.caption, Image(strip.png, f"CAM strip {strip.name}", zoom=zoom)))
        sections.append(sec)
        if part.figures:
            sections.append(Section("figures", "Figures", images=[Image(f.png, f.key, f.caption)
                                                                 for f in part.figures]))
    return [("report.html", render(p.name, p.summary, sections, p.sources, __version__).encode("utf-8"))]


#: the writer of each format, in the order their files are written
WRITERS = {"tex": write_tex, "csv": write_csv, "md": write_md, "html": write_html}


def build_report(results: Sequence[str], *, out: str | None = None, baseline: str | None = None,
                 formats: str | Sequence[str] = FORMATS, name: str | None = None, root: str = "reports",
                 labels: dict[str, str] | None = None) -> ReportResult:
    """Read ``results`` (files / folders), write the report to ``out`` (default
    ``<root>/<name>``, the name derived from the inputs unless given); see the module
    docstring for what is written. ``labels``: checkpoint path -> row label (and order).

    :func:`collect` -> :func:`plan` -> one writer per format (:data:`WRITERS`), their files
    written into a temporary folder swapped in whole."""
    fmts = parse_formats(formats)
    inputs = collect(results, out=out, name=name, root=root)
    p = plan(inputs, baseline=baseline, formats=fmts, labels=labels)
    out = inputs.out
    _check_replaceable(out)
    written: list[str] = []  # relative to the report folder
    with atomic_path(out, is_dir=True) as tmp:  # swapped in whole: never a mix of two reports
        for fmt, writer in WRITERS.items():
            if fmt in fmts:
                for fname, data in writer(p):
                    _write_file(os.path.join(tmp, fname), data)
                    written.append(fname)
    return ReportResult(out, p.name, [os.path.join(out, f) for f in written], [part.table for part in p.parts],
                        p.counts)
