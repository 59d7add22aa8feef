"""``bebias report``: results in, a report folder out.

:func:`build_report` finds the results (:mod:`~bebias.reporting.inputs`), builds the tables
(:mod:`~bebias.reporting.tables`) and figures (:mod:`~bebias.reporting.figures`), and writes,
each file atomically, for the formats asked:

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


def build_report(results: Sequence[str], *, out: str | None = None, baseline: str | None = None,
                 formats: str | Sequence[str] = FORMATS, name: str | None = None, root: str = "reports",
                 labels: dict[str, str] | None = None) -> ReportResult:
    """Read ``results`` (files / folders), write the report to ``out`` (default
    ``<root>/<name>``, the name derived from the inputs unless given); see the module
    docstring for what is written. ``labels``: checkpoint path -> row label (and order)."""
    fmts = parse_formats(formats)
    sources = find_results(results)
    name = slug(name) if name else default_name(results)
    if out is None:
        out = os.path.join(root, name)
        ins = {os.path.realpath(p) for p in results if os.path.isdir(p)}
        if os.path.realpath(out) in ins:  # never write into an input folder by default
            out = os.path.join(root, name + "-report")
    if os.path.exists(out) and not os.path.isdir(out):
        raise BebiasError("--out exists and is not a folder", out)

    tables: list[T.Table] = []
    ck = T.checkpoint_table(sources, _describe_from_files, baseline, labels)
    if ck is not None:
        tables.append(ck)
        st = S.seed_table(ck, ck.extra["recipes"])  # several seeds of one recipe: training variance
        if st is not None:
            tables.append(st)
    compares = [s for s in sources if s.kind == "compare"]
    for s in compares:
        tables.append(T.compare_table(s, baseline))
    for s in sources:
        if s.kind == "calibration":
            tables.append(T.calibration_table(s))
    cams = [s for s in sources if s.kind == "cam"]
    cam_tables = [T.cam_table(s) for s in cams]
    tables += cam_tables
    if baseline is not None and not any(t.baseline is not None for t in tables):
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

    used: set[str] = set()
    stems = {id(t): _unique(t.name, used) for t in tables}
    drawn = "md" in fmts or "html" in fmts  # figures (matplotlib) only where they go somewhere
    figs = _probe_figures(ck) if ck is not None and drawn else []
    compare_figs = []
    for t in tables:
        if t.name == "compare" and drawn:
            from bebias.reporting import figures as F

            compare_figs.append((id(t), f"{stems[id(t)]}-bars", F.compare_bars(
                t.rows["variant"].tolist(), [f"{g.split(' (')[0]}: {m.label}" for g, m in t.columns], t.value, t.std,
                "bebias compare: mean over seeds ± std")))
    strips = {id(s): _cam_strips(s) for s in cams}

    _check_replaceable(out)
    written: list[str] = []  # relative to the report folder
    tmp = ""

    def put_text(fname: str, text: str) -> None:
        put_bytes(fname, text.encode("utf-8"))

    def put_bytes(fname: str, data: bytes) -> None:
        _write_file(os.path.join(tmp, fname), data)
        written.append(fname)

    counts = {k: sum(1 for s in sources if s.kind == k) for k in KINDS}
    summary = (f"{len(sources)} result file(s): " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
               + (f"; {len(ck.rows)} checkpoint(s)" if ck is not None else "")
               + (f"; deltas against {baseline}" if baseline else "") + ".")
    src_paths = [s.path for s in sources]

    with atomic_path(out, is_dir=True) as tmp:  # swapped in whole: never a mix of two reports
        for t in tables:
            if "tex" in fmts:
                put_text(f"{stems[id(t)]}.tex", W.to_latex(t))
            if "csv" in fmts:
                put_text(f"{stems[id(t)]}.csv", W.to_csv(t))

        if "md" in fmts:
            md = [f"# bebias report: {W.md_escape(name)}\n", W.md_escape(summary) + "\n"]
            for t in tables:
                md.append(W.to_markdown(t))
                if t is ck:
                    for stem, cap, png in figs:
                        put_bytes(f"figures/{stem}.png", png)
                        md.append(f"![{stem}](figures/{stem}.png)\n\n{cap}\n")
                for tid, stem, png in compare_figs:
                    if tid == id(t):
                        put_bytes(f"figures/{stem}.png", png)
                        md.append(f"![{stem}](figures/{stem}.png)\n")
                if t in cam_tables:
                    src = cams[cam_tables.index(t)]
                    for k, (cap, fname, png) in enumerate(strips[id(src)]):
                        rel = f"figures/{stems[id(t)]}-{k}-{slug(os.path.splitext(fname)[0])}.png"
                        put_bytes(rel, png)
                        md.append(f"{W.md_escape(cap)}\n\n![{W.md_escape(cap)}]({rel})\n")
            md.append("Sources:\n\n" + "\n".join(f"- {W.md_escape(p)}" for p in src_paths) + "\n")
            put_text("report.md", "\n".join(md))

        if "html" in fmts:
            sections = []
            for t in tables:
                sec = Section(stems[id(t)], t.title, W.to_html(t), t.note)
                if t is ck:
                    sections.append(sec)
                    if figs:
                        sections.append(Section("figures", "Figures", images=[Image(png, stem, cap)
                                                                             for stem, cap, png in figs]))
                    continue
                sec.images += [Image(png, stem, "Bars: mean over seeds; whiskers: ± std. Colours: one per variant.")
                               for tid, stem, png in compare_figs if tid == id(t)]
                if t in cam_tables:
                    src = cams[cam_tables.index(t)]
                    for cap, fname, png in strips[id(src)]:
                        zoom = max(1, min(4, 900 // max(png_size(png, fname)[0], 1)))
                        sec.strips.append((cap, Image(png, f"CAM strip {fname}", zoom=zoom)))
                sections.append(sec)
            put_text("report.html", render(name, summary, sections, src_paths, __version__))
    files = [os.path.join(out, f) for f in written]
    return ReportResult(out, name, files, tables, counts)
