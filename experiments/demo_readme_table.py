"""Print the README's demo table (markdown) from a ``demo.json`` that ``bebias demo`` wrote.

Usage: ``python experiments/demo_readme_table.py reports/demo/demo.json``. The cells are the
ones ``bebias demo`` prints (:func:`bebias.cli.demo.table_cells`); tests/test_demo.py checks
that README.md holds exactly this table for the committed reports/demo/demo.json, so the
published numbers are the run's, never typed in.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bebias.cli.demo import COLUMNS, table_cells  # noqa: E402


def table(demo: dict) -> str:
    """``demo``'s rows and its chance row as a markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_cells(demo["rows"])]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(table(json.load(f)))
