"""The command line, run as a user runs it: its real entry point, real exit codes (in this
process, tests/inproc.py; test_smoke_* start a real ``python -m bebias``)."""

import json
import subprocess
import sys

import pytest

from tests.inproc import bebias


def test_synth_writes_a_benchmark_that_data_reads(tmp_path):
    out = tmp_path / "b"
    r = bebias("data", "synth", "--out", str(out), "--classes", "3", "--videos-per-class", "3",
               "--test-videos-per-class", "3", "--frames", "8", "--size", "32", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "conflict" in r.stdout and "0.000" in r.stdout
    meta = json.loads((out / "bebias-synth.json").read_text())
    assert meta["classes"] == ["right", "left", "up"] and meta["video_format"] == "mkv"
    r = bebias("data", "info", "--data", str(out), "--split", "conflict", "--check")
    assert r.returncode == 0, r.stderr
    assert "9 videos, 3 classes" in r.stdout and "no unreadable videos" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (("data", "info", "--data", "/nonexistent/x"), "/nonexistent/x"),
    (("data", "info", "--data", "synthetic", "--split", "validation"), "validation"),
    (("data", "info", "--data", "synthetic:bias=2"), "bias"),
    (("data", "synth", "--out", "OUT", "--size", "33"), "size"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, args, needle):
    args = tuple(str(tmp_path / "o") if a == "OUT" else a for a in args)
    r = bebias(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_video_in_a_manifest_is_listed(tmp_path):
    import numpy as np

    from bebias.data.video_io import write_video

    write_video(str(tmp_path / "ok.mkv"), np.zeros((6, 32, 32, 3), np.uint8))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "m.csv").write_text("path,label\nok.mkv,a\nbroken.mp4,b\n")
    r = bebias("data", "info", "--data", str(tmp_path / "m.csv"), "--check")
    assert r.returncode == 1
    assert "skipped 1 unreadable" in r.stdout and "broken.mp4" in r.stdout


def test_version():
    r = bebias("--version")
    assert r.returncode == 0 and r.stdout.startswith("bebias ")


def _real(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, timeout=300)


def test_smoke_a_real_process_user_error_is_one_line_exit_2():
    r = _real("data", "info", "--data", "synthetic:bias=2")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "bias" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_smoke_a_real_process_runs_a_command():
    r = _real("data", "info", "--data", "synthetic:classes=2,videos_per_class=1")
    assert r.returncode == 0, r.stderr
    assert "2 classes" in r.stdout and not r.stderr.strip()


@pytest.mark.parametrize("args", [("data", "info", "--data", "synthetic:bias=2"), ("--version",),
                                  ("data", "info", "--data", "synthetic:classes=2,videos_per_class=1")])
def test_the_in_process_runner_reports_what_a_real_process_does(args):
    real, here = _real(*args), bebias(*args)
    assert (here.returncode, here.stdout, here.stderr) == (real.returncode, real.stdout, real.stderr)


def test_a_table_written_to_a_file_keeps_every_digit():
    """Off a terminal rich fits a table to 80 columns and cuts cells to "0.…"; print_table does not."""
    import contextlib
    import io

    from rich.table import Table

    from bebias.cli.common import print_table

    t = Table(title="nine wide columns")
    for i in range(9):
        t.add_column(f"background reliance {i}", justify="right")
    t.add_row(*[f"0.{i}6 [0.79, 0.92]" for i in range(9)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_table(t)
    text = out.getvalue()
    assert "…" not in text and all(f"0.{i}6 [0.79, 0.92]" in text for i in range(9)), text
    assert all(f"background reliance {i}" in text for i in range(9))
