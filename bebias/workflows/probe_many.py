"""Many checkpoints, one pass (``bebias probe A B C ...``): each checkpoint's probe in its
own folder ``<out>/<name>`` (exactly what ``bebias probe`` of it alone writes: the data
side of the pass is shared, :func:`bebias.probing.run.run_probes`), and a leaderboard:
the checkpoints ranked by the headline background-reliance score (with its 95 % CI over
test videos; chance 0, higher = more reliant), written as ``leaderboard.json`` and
``leaderboard.md`` in ``<out>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bebias.atomic import output_dir, write_json, write_text
from bebias.errors import BebiasError
from bebias.progress import ProgressFn

LEADERBOARD_JSON = "leaderboard.json"
LEADERBOARD_MD = "leaderboard.md"


def _stem(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    stem = base.rsplit(".", 1)[0] if "." in base and not os.path.isdir(path) else base
    return stem or "checkpoint"


def folder_names(checkpoints: Sequence[str]) -> list[str]:
    """One distinct folder name per checkpoint: its file stem (``model.pth`` -> ``model``);
    stems that collide get their parent folder in front (``ft-a/model.pth`` ->
    ``ft-a-model``), and what still collides a ``-2``, ``-3``, ... suffix."""
    stems = [_stem(p) for p in checkpoints]
    names = [s if stems.count(s) == 1 else
             f"{os.path.basename(os.path.dirname(os.path.abspath(os.path.normpath(p)))) or 'root'}-{s}"
             for p, s in zip(checkpoints, stems)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


@dataclass
class ManyResult:
    results: list  # ProbeResult per checkpoint, in the order given
    names: list[str]
    leaderboard: list[dict]  # rows of leaderboard.json, ranked
    json_path: str
    md_path: str


def leaderboard_rows(results: Sequence, names: Sequence[str]) -> list[dict]:
    """The checkpoints ranked by background reliance (highest first; undefined last), each
    with its CI, n, the original top-1 and their chance levels."""
    from bebias.reporting import chance

    rows = []
    for res, name in zip(results, names):
        m = res.results
        got = m.scalars()
        rel, top1 = got.get("reliance"), got.get("top1")
        k = chance.num_classes(m.classes)
        block = m.reliance_block() or {}
        rows.append({
            "name": name, "checkpoint": m.provenance.get("checkpoint"), "metrics": res.metrics_path,
            "reliance": None if rel is None else rel.value,
            "reliance_ci": None if rel is None or rel.ci_low is None else [rel.ci_low, rel.ci_high],
            "reliance_n": None if rel is None else rel.n, "reliance_chance": chance.reference("reliance", k)[0],
            "no_signal": bool(block.get("no_signal")),
            "top1": None if top1 is None else top1.value,
            "top1_chance": None if k is None else chance.reference("top1", k)[0],
        })
    defined = [r for r in rows if r["reliance"] is not None and math.isfinite(r["reliance"])]
    defined.sort(key=lambda r: -r["reliance"])  # stable: ties keep the order given
    ranked = defined + [r for r in rows if r not in defined]
    for i, r in enumerate(ranked):
        r["rank"] = i + 1 if r in defined else None
    return ranked


def leaderboard_md(rows: Sequence[dict]) -> str:
    """The ranked table as Markdown."""
    def f(x) -> str:
        return "–" if x is None else f"{x:.3f}"

    lines = ["| rank | checkpoint | background reliance [95 % CI] | n | top-1 (original) |",
             "|---:|---|---|---:|---:|"]
    for r in rows:
        ci = f" [{f(r['reliance_ci'][0])}, {f(r['reliance_ci'][1])}]" if r["reliance_ci"] else ""
        rel = ("undefined" if r["reliance"] is None else f(r["reliance"]) + ci) + (" no signal" if r["no_signal"] else "")
        top1 = "–" if r["top1"] is None else f"{100 * r['top1']:.1f} %"
        lines.append(f"| {r['rank'] or '–'} | {r['name']} | {rel} | {r['reliance_n'] or '–'} | {top1} |")
    chance_top1 = next((r["top1_chance"] for r in rows if r["top1_chance"] is not None), None)
    lines += ["", "Background reliance: chance 0 (a model that follows neither cue beyond chance), higher = "
              "the decisions rest more on the background; brackets: 95 % bootstrap CI over test videos."
              + (f" Top-1 chance: {100 * chance_top1:.1f} %." if chance_top1 is not None else ""), ""]
    return "\n".join(lines)


def probe_many(base, checkpoints: Sequence[str], *, progress: ProgressFn | None = None,
               log: Callable[[str], None] | None = None) -> ManyResult:
    """Probe ``checkpoints`` with the settings of ``base`` (a
    :class:`~bebias.probing.run.ProbeConfig`; its ``checkpoint`` is ignored) in one pass:
    ``<base.out>/<name>`` per checkpoint (:func:`folder_names`) and the leaderboard."""
    from bebias.probing.run import run_probes

    if len(checkpoints) < 2:
        raise BebiasError("probe_many needs two or more checkpoints (one is a plain probe)")
    if os.path.exists(base.out) and not os.path.isdir(base.out):
        raise BebiasError("--out exists and is not a folder", base.out)
    names = folder_names(checkpoints)
    cfgs = [replace(base, checkpoint=c, out=os.path.join(base.out, n)) for c, n in zip(checkpoints, names)]
    results = run_probes(cfgs, progress=progress, log=log, where=base.out)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 writes
        return ManyResult(results, names, [], "", "")
    rows = leaderboard_rows(results, names)
    output_dir(base.out)
    jp, mp = os.path.join(base.out, LEADERBOARD_JSON), os.path.join(base.out, LEADERBOARD_MD)
    write_json(jp, {"ranked_by": "background_reliance", "order": "descending", "chance": 0.0, "rows": rows})
    write_text(mp, leaderboard_md(rows))
    return ManyResult(results, names, rows, jp, mp)
