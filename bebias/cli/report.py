"""``bebias report``: tables, figures and one HTML page from results other commands wrote."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from bebias.cli.common import app, console


@app.command("report")
def report_cmd(
    results: Annotated[list[str], typer.Argument(help="Result files or folders (searched recursively), any mix of "
                                                      "bebias probe, eval, compare, data calibrate and cam outputs, "
                                                      "recognised by their content.", show_default=False)],
    out: Annotated[Optional[str], typer.Option(help="Output folder. Default: reports/<name>.")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="Row to take deltas against: a checkpoint label or a method "
                                                         "(e.g. moco), or a compare variant.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Comma-separated: md (report.md + figures/), tex "
                                                      "(booktabs), csv (tidy), html (self-contained "
                                                      "report.html).")] = "md,tex,csv,html",
    name: Annotated[Optional[str], typer.Option(help="Report name (title, default folder). Default: from the "
                                                     "inputs' folder names.")] = None,
) -> None:
    """Paper-style tables (one row per checkpoint, 95 % CIs, best in bold, deltas against
    --baseline), figures and one self-contained report.html from bebias results."""
    from bebias.reporting.build import build_report

    res = build_report(results, out=out, baseline=baseline, formats=fmt, name=name)
    kinds = ", ".join(f"{n} {k}" for k, n in res.counts.items() if n)
    console.print(f"report [bold]{res.name}[/] from {kinds} result(s): {len(res.files)} file(s) in "
                  f"[bold]{res.out}[/]")
    html = os.path.join(res.out, "report.html")
    if html in res.files:
        console.print(f"open {html}")
