"""Print the README's demo table (markdown) from a ``demo.json`` that ``bebias demo`` wrote.

Usage: ``python experiments/demo_readme_table.py reports/demo/demo.json``. tests/test_demo.py
checks that README.md holds exactly this table for the committed reports/demo/demo.json, so
the published numbers are the run's, never typed in.
"""

from __future__ import annotations

import json
import sys


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _ci(v: float | None, ci: list | None, digits: int = 2) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci and None not in ci else "")


def _part(row: dict, name: str) -> str:
    v = (row.get("reliance_parts") or {}).get(name)
    return "–" if not v or v[0] is None else f"{100 * v[0]:.0f} ({100 * v[1]:.0f})"


def table(demo: dict) -> str:
    """The markdown table of ``demo``'s rows, then a chance row (its chance levels)."""
    head = ("| model | weights | iid top-1 | conflict top-1 | background reliance (↓, 0 = chance) | "
            "bg-follow % (null) | motion-follow % (null) | sufficiency % (null) | CAM on actor (`layer3`) |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in demo["rows"]:
        lines.append(f"| {r['model']} | {r.get('origin', '')} | {_pct(r['iid'])} | {_pct(r['conflict'])} | "
                     f"{_ci(r['reliance'], r.get('reliance_ci'))} | {_part(r, 'background_follow')} | "
                     f"{_part(r, 'motion_follow')} | {_part(r, 'sufficiency')} | "
                     f"{_ci(r['cam_on_actor'], r.get('cam_ci'))} |")
    first = demo["rows"][0]
    cam_chance = first.get("cam_chance")
    lines.append(f"| chance | | {_pct(first.get('chance_top1'))} | {_pct(first.get('chance_top1'))} | 0 | | | | "
                 f"{'–' if cam_chance is None else f'{cam_chance:.2f}'} (masks' area) |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(table(json.load(f)))
