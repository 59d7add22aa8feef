"""`bebias demo --fast`: every stage of the story runs, at toy size, and resumes.

It runs from the built wheel, installed outside the checkout (tests/installed.py): the same run
is tests/test_wheel.py's check that the wheel works, so the suite pays for one demo, not two (one
per session, shared by xdist's workers)."""

import json

import pytest

from tests.installed import demo_fast, run_installed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_fast(tmp_path_factory)


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The printed table's body rows, by their first cell: {model: [cells...]}."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 9 and cells[0] and not cells[0].startswith(("model", "━", "─")):
            rows[cells[0]] = cells[1:]
    return rows


def test_every_stage_ran_and_the_summary_names_the_report(demo):
    out, r, d = demo
    names = [row["model"] for row in d["rows"]]
    assert names == ["supervised-biased", "supervised-unbiased", "supervised-biased+be", "moco", "moco+be"]
    for row in d["rows"]:
        assert 0 <= row["iid"] <= 1 and 0 <= row["conflict"] <= 1
        assert row["reliance"] is None or 0 <= row["reliance"] <= 1
        assert set(row["reliance_parts"]) == {"background_follow", "motion_follow", "sufficiency"}
        assert row["cam_on_actor"] is not None
    # the printed table is demo.json's: one row per model, in order, then chance, with its numbers
    table = _table_rows(r.stdout)
    assert list(table) == [*names, "chance"], r.stdout
    for row in d["rows"]:
        cells = table[row["model"]]  # weights, iid, conflict, reliance, its 3 parts, CAM
        assert cells[0] == row["origin"], (row, cells)
        assert cells[1:3] == [f"{100 * row['iid']:.1f}", f"{100 * row['conflict']:.1f}"], (row, cells)
        assert cells[7].startswith(f"{row['cam_on_actor']:.2f}"), (row, cells)
    chance = d["rows"][0].get("chance_top1")
    assert table["chance"][1:3] == ["–" if chance is None else f"{100 * chance:.1f}"] * 2, table["chance"]
    for name in names:
        m = json.loads((out / "probe" / name / "metrics.json").read_text())
        assert "cam" in m and m["provenance"]["checkpoint"] == row_ckpt(d, name)
        assert (out / "probe" / name / "metrics.json").stat().st_size > 0
    cam = json.loads((out / "cam" / "cam.json").read_text())
    assert [c["label"] for c in cam["checkpoints"]] == names and cam["videos"]
    assert (out / "report" / "report.html").exists()
    html = (out / "report" / "report.html").read_text()
    assert "moco+be" in html and "data:image/png;base64," in html
    # the report's rows are the demo's models, by name and in the demo's order
    rows = (out / "report" / "checkpoints.csv").read_text().splitlines()[1:]
    labels = list(dict.fromkeys(line.split(",")[0] for line in rows))
    assert labels == names, labels
    assert not d["resumed"]
    # the gate: not checked at toy size, and so no conclusion; every model trained now
    assert d["gate"]["status"] == "not checked" and d["conclusions"] == [d["gate"]["message"]]
    assert "positive control not checked at --fast size" in r.stdout and "no conclusion is drawn" in r.stdout
    assert [row["origin"] for row in d["rows"]] == ["trained now"] * 5 and d["reference"] is None
    assert "report:" in r.stdout and "report.html" in r.stdout and "reliance" in r.stdout


def row_ckpt(d, name):
    return next(row["checkpoint"] for row in d["rows"] if row["model"] == name)


def test_a_second_run_reuses_every_stage(demo, tmp_path_factory):
    out, _, before = demo
    r = run_installed(tmp_path_factory, "python", "-m", "bebias", "demo", "--fast", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("reusing") == 7  # 3 supervised, 2 pre-trainings, 2 linear probes
    again = json.loads((out / "demo.json").read_text())
    assert [row.pop("origin") for row in again["rows"]] == ["reused (trained by an earlier run)"] * 5
    assert again["rows"] == [{k: v for k, v in row.items() if k != "origin"} for row in before["rows"]]
    assert again["resumed"] and "resumed" in r.stdout
    assert _table_rows(r.stdout).keys() == _table_rows(demo[1].stdout).keys()


def test_the_readme_table_is_the_committed_reference_runs():
    """README.md's demo table is experiments/demo_readme_table.py's rendering of reports/demo/demo.json."""
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("demo_readme_table", root / "experiments" / "demo_readme_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    demo = json.loads((root / "reports" / "demo" / "demo.json").read_text())
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- demo-table:start -->\n", 1)[1].split("\n<!-- demo-table:end -->", 1)[0]
    assert block == mod.table(demo)
    assert demo["gate"]["status"] == "passed" and not demo["fast"]
