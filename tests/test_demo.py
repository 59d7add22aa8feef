"""`bebias demo --fast`: every stage of the story runs, at toy size, and resumes.

It runs from the built wheel, installed outside the checkout (tests/installed.py): the same run
is tests/test_wheel.py's check that the wheel works, so the suite pays for one demo, not two."""

import json

import pytest

from tests.installed import demo_fast, run_installed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_fast(tmp_path_factory)


def test_every_stage_ran_and_the_summary_names_the_report(demo):
    out, r = demo
    d = json.loads((out / "demo.json").read_text())
    names = [row["model"] for row in d["rows"]]
    assert names == ["supervised-biased", "supervised-unbiased", "supervised-biased+be", "moco", "moco+be"]
    for row in d["rows"]:
        assert 0 <= row["iid"] <= 1 and 0 <= row["conflict"] <= 1
        assert row["reliance"] is None or 0 <= row["reliance"] <= 1
        assert set(row["reliance_parts"]) == {"background_follow", "motion_follow", "sufficiency"}
        assert row["cam_on_actor"] is not None
    for name in names:
        m = json.loads((out / "probe" / name / "metrics.json").read_text())
        assert "cam" in m and m["provenance"]["checkpoint"] == row_ckpt(d, name)
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
    out, _ = demo
    before = json.loads((out / "demo.json").read_text())["rows"]
    r = run_installed(tmp_path_factory, "python", "-m", "bebias", "demo", "--fast", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("reusing") == 7  # 3 supervised, 2 pre-trainings, 2 linear probes
    again = json.loads((out / "demo.json").read_text())
    assert [row.pop("origin") for row in again["rows"]] == ["reused (trained by an earlier run)"] * 5
    assert again["rows"] == [{k: v for k, v in row.items() if k != "origin"} for row in before]
    assert again["resumed"] and "resumed" in r.stdout
