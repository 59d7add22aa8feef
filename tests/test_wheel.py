"""The built wheel works outside the checkout: it ships every file the package reads at run
time, and its `bebias probe --suite quick` and `bebias demo --fast` run from another folder.
The demo run is shared with tests/test_demo.py (tests/installed.py): the suite pays for it once."""

import json
import os

import pytest

from tests.installed import ROOT, demo_fast, run_installed, wheel, wheel_files
from tests.tiny import TINY, tiny_classifier

pytestmark = pytest.mark.slow


def test_the_wheel_ships_every_file_of_the_package(tmp_path_factory):
    whl, _, _ = wheel(tmp_path_factory)
    names = wheel_files(whl)
    pkg = ROOT / "bebias"
    here = {p.relative_to(ROOT).as_posix() for p in pkg.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert {"bebias/probing/suites/quick.toml", "bebias/probing/suites/full.toml"} <= here
    assert here - names == set(), "files of bebias/ missing from the wheel (declare them as package data)"
    assert "bebias-0.1.0.dist-info/entry_points.txt" in names


def test_the_installed_wheel_is_what_runs(tmp_path_factory):
    _, site, _ = wheel(tmp_path_factory)
    r = run_installed(tmp_path_factory, "python", "-c", "import bebias; print(bebias.__file__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(site / "bebias" / "__init__.py")  # not the checkout's, nor the editable one


def test_probe_with_a_built_in_suite_from_another_folder(tmp_path_factory, tmp_path):
    _, site, _ = wheel(tmp_path_factory)
    ckpt = tiny_classifier(tmp_path / "clf")
    out = tmp_path / "probe"
    # the console script the wheel installs (its entry point), not python -m
    r = run_installed(tmp_path_factory, str(site / "bin" / "bebias"), "probe", ckpt, "--data", TINY,
                      "--suite", "quick", "--max-videos", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    suite = json.loads((out / "metrics.json").read_text())["provenance"]["suite"]
    assert suite["name"] == "quick" and suite["path"] == str(site / "bebias" / "probing" / "suites" / "quick.toml")


def test_demo_fast_from_another_folder(tmp_path_factory):
    _, site, work = wheel(tmp_path_factory)
    out, r, _ = demo_fast(tmp_path_factory)  # tests/test_demo.py checks what it wrote
    m = json.loads((out / "probe" / "moco+be" / "metrics.json").read_text())
    assert m["provenance"]["suite"]["path"] == os.path.join(site, "bebias", "probing", "suites", "quick.toml")
    assert (out / "report" / "report.html").is_file() and "report.html" in r.stdout
    assert not any(work.iterdir())  # its working folder stays empty: nothing read or written there
