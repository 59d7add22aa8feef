"""``bebias demo``: measure and mitigate background bias on the embedded benchmark, in one
command (:mod:`bebias.workflows.demo`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from bebias.cli.common import WorkersOpt, app, console, err_console, print_table
from bebias.cli.progress import progress_display


#: the demo table's columns, as printed and as README.md shows them
COLUMNS = ("model", "weights", "iid top-1", "conflict top-1", "background reliance", "bg-follow % (null)",
           "motion-follow % (null)", "sufficiency % (null)", "CAM on actor")
_PARTS = ("background_follow", "motion_follow", "sufficiency")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _ci(v: float | None, lo_hi) -> str:
    lo, hi = lo_hi or (None, None)
    return "–" if v is None else f"{v:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None else "")


def _part(r: dict, name: str) -> str:
    """A component of the score (%) and, in brackets, its null."""
    v = (r.get("reliance_parts") or {}).get(name)
    if not v or v[0] is None:
        return "–"
    return f"{100 * v[0]:.0f}" + (f" ({100 * v[1]:.0f})" if v[1] is not None else "")


def table_cells(rows: list[dict]) -> list[list[str]]:
    """The demo table's cells (:data:`COLUMNS`) of ``demo.json``'s rows, then, where there are
    rows, a ``chance`` row: what random decisions and a uniform map score (the parts' nulls
    are in their brackets)."""
    out = []
    for r in rows:
        rel = _ci(r["reliance"], r["reliance_ci"]) + (" no signal" if r.get("reliance_no_signal") else "")
        out.append([r["model"], r.get("origin", ""), _pct(r["iid"]), _pct(r["conflict"]), rel,
                    *(_part(r, p) for p in _PARTS), _ci(r["cam_on_actor"], r["cam_ci"])])
    if rows:
        first = rows[0]
        out.append(["chance", "", _pct(first.get("chance_top1")), _pct(first.get("chance_top1")),
                    "0 (null-anchored)", "", "", "",
                    "–" if first.get("cam_chance") is None else f"{first['cam_chance']:.2f} (masks' area)"])
    return out


@app.command("demo")
def demo_cmd(
    fast: Annotated[bool, typer.Option("--fast", help="The same stages at toy size (about 2 minutes): checks the "
                                                      "machinery, the numbers are noise.")] = False,
    out: Annotated[Optional[str], typer.Option(help="Output folder (resumable: run again to finish). Default: "
                                                    "runs/demo (runs/demo-fast with --fast).")] = None,
    debias: Annotated[str, typer.Option(help="The mitigation tried on the biased model: be | stillmix | "
                                             "fame.")] = "be",
    seed: Annotated[int, typer.Option(help="Seed of every run, probe and bootstrap.")] = 0,
    workers: WorkersOpt = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Train the positive control "
                                               "(supervised-unbiased) by the reference recipe instead of loading "
                                               "the shipped reference checkpoint (~18 min more on one core).")] = False,
    jobs: Annotated[Optional[int], typer.Option(help="Trainings at a time, one thread each. Default: the cores "
                                                     "free now.")] = None,
) -> None:
    """The whole story on the embedded benchmark: a supervised model trained on biased data and
    the positive control trained on unbiased data to convergence (the shipped reference unless
    --from-scratch), the biased one again with a debiasing augmentation, MoCo and MoCo+BE
    linear-probed; every model evaluated, probed, explained with Grad-CAM; one report; a gate
    that draws no conclusion unless the positive control reached 85 % on conflict."""
    from bebias.workflows.demo import run_demo

    out = out or ("runs/demo-fast" if fast else "runs/demo")
    with progress_display() as show:
        res = run_demo(out, fast=fast, debias=debias, seed=seed, workers=workers, jobs_n=jobs,
                       from_scratch=from_scratch, progress=show,
                       log=lambda line: err_console.print(line, highlight=False, soft_wrap=True))

    took = f"{res.seconds / 60:.1f} min" + (" (resumed: earlier runs did part of it)" if res.resumed else "")
    from bebias.results import VIDEO_CI

    table = Table(title=f"bebias demo{' --fast' if fast else ''}: {took}",
                  caption=f"brackets: {VIDEO_CI} of one trained model per row (one seed: no training variance)")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    cells = table_cells(res.rows)
    for row in cells[:-1]:
        table.add_row(*row)
    if res.rows:
        table.add_row("[dim]chance[/]", *cells[-1][1:])
    print_table(table)
    from rich.markup import escape

    gate = res.gate or {}
    colour = {"passed": "green", "failed": "red"}.get(gate.get("status", ""), "yellow")
    for i, line in enumerate(res.conclusions or []):  # the gate's verdict first, then what the run supports
        console.print(f"[{colour}]{escape(line)}[/]" if i == 0 else f"- {escape(line)}", soft_wrap=True)
    console.print(f"report: [bold]{res.html}[/]")
