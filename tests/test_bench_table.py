"""bench/readme_table.py: the README's benchmark table comes from the JSON, between markers."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_is_rewritten_from_the_json_and_only_between_the_markers(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    for name in ("train", "probe", "cam"):
        (bench / f"{name}.json").write_text((ROOT / "reports" / "bench" / f"{name}.json").read_text())
    probe = json.loads((bench / "probe.json").read_text())
    probe["results"][0]["ratio"] = 0.123  # a measurement the table must show
    (bench / "probe.json").write_text(json.dumps(probe))
    readme = tmp_path / "README.md"
    readme.write_text("# x\nbefore\n<!-- bench-table:start -->\nstale row\n<!-- bench-table:end -->\nafter\n")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "readme_table.py"), "--readme", str(readme), "--bench",
                        str(bench)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = readme.read_text()
    assert text.startswith("# x\nbefore\n<!-- bench-table:start -->\n| benchmark | measured | target |")
    assert text.endswith("<!-- bench-table:end -->\nafter\n") and "stale row" not in text
    assert "**0.12**" in text and "not met" in text and "Grad-CAM" in text and "training efficiency" in text
    assert "loader.json: missing" in r.stderr
