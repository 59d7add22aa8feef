"""bebias as a user gets it: the built wheel, installed into a fresh folder, run from another one.

Built once per pytest session, across xdist's workers too (tests/test_wheel.py and tests/test_demo.py
share it; :func:`tests.session.once` keeps it in a folder every worker sees, under a file lock): the package
sources are copied out of the checkout, ``pip wheel`` builds them offline (no index, no build
isolation: the venv's setuptools), ``pip install --target`` unpacks the wheel into ``site/``, and
commands run with ``PYTHONPATH=site`` (the venv only supplies the dependencies) from an empty
folder, so nothing can be read from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.session import once

ROOT = Path(__file__).resolve().parents[1]
_CACHE: dict[str, object] = {}


def _pip(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index", "--no-deps", "--quiet",
                        "--disable-pip-version-check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not r.stderr.strip(), r.stderr  # pip's warnings are ours to fix


def wheel(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(the wheel, the folder it is installed into, an empty working folder), built once."""
    def build(base: Path) -> None:
        src = base / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "bebias", src / "bebias", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _pip("wheel", "--no-build-isolation", "-w", str(base / "dist"), str(src))
        (base / "work").mkdir()
        (whl,) = (base / "dist").glob("bebias-*.whl")
        _pip("install", "--target", str(base / "site"), str(whl))

    if "wheel" not in _CACHE:
        base = once(tmp_path_factory, "wheel", build)
        (whl,) = (base / "dist").glob("bebias-*.whl")
        _CACHE["wheel"] = (whl, base / "site", base / "work")
    return _CACHE["wheel"]  # type: ignore[return-value]


def wheel_files(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def run_installed(tmp_path_factory, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``args`` (a command line, ``python`` for the venv's interpreter) with the installed
    wheel first on the path, from the empty working folder."""
    _, site, work = wheel(tmp_path_factory)
    # not the checkout's; a wide console so that rich does not fold the demo table's column names
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "250"}
    cmd = [sys.executable if a == "python" else a for a in args]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def demo_fast(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, dict]:
    """``bebias demo --fast`` run once from the installed wheel: (its out folder, the run, its
    demo.json as the first run wrote it: a later resume rewrites the file)."""
    def build(base: Path) -> None:
        out = base / "d"
        r = run_installed(tmp_path_factory, "python", "-m", "bebias", "demo", "--fast", "--out", str(out))
        assert r.returncode == 0, r.stderr
        demo = json.loads((out / "demo.json").read_text())
        (base / "run.json").write_text(json.dumps({"args": r.args, "returncode": r.returncode, "stdout": r.stdout,
                                                   "stderr": r.stderr, "demo": demo}))

    if "demo" not in _CACHE:
        base = once(tmp_path_factory, "demo", build)
        run = json.loads((base / "run.json").read_text())
        _CACHE["demo"] = (base / "d", subprocess.CompletedProcess(run["args"], run["returncode"], run["stdout"],
                                                                  run["stderr"]), run["demo"])
    return _CACHE["demo"]  # type: ignore[return-value]
