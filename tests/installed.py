"""bebias as a user gets it: the built wheel, installed into a fresh folder, run from another one.

Built once per pytest session (tests/test_wheel.py and tests/test_demo.py share it): the package
sources are copied out of the checkout, ``pip wheel`` builds them offline (no index, no build
isolation: the venv's setuptools), ``pip install --target`` unpacks the wheel into ``site/``, and
commands run with ``PYTHONPATH=site`` (the venv only supplies the dependencies) from an empty
folder, so nothing can be read from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CACHE: dict[str, object] = {}


def _pip(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index", "--no-deps", "--quiet",
                        "--disable-pip-version-check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not r.stderr.strip(), r.stderr  # pip's warnings are ours to fix


def wheel(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(the wheel, the folder it is installed into, an empty working folder), built once."""
    if "wheel" not in _CACHE:
        base = tmp_path_factory.mktemp("wheel")
        src = base / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "bebias", src / "bebias", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _pip("wheel", "--no-build-isolation", "-w", str(base / "dist"), str(src))
        (whl,) = (base / "dist").glob("bebias-*.whl")
        site, work = base / "site", base / "work"
        work.mkdir()
        _pip("install", "--target", str(site), str(whl))
        _CACHE["wheel"] = (whl, site, work)
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


def demo_fast(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``bebias demo --fast`` run once from the installed wheel: (its out folder, the run)."""
    if "demo" not in _CACHE:
        out = tmp_path_factory.mktemp("demo") / "d"
        r = run_installed(tmp_path_factory, "python", "-m", "bebias", "demo", "--fast", "--out", str(out))
        assert r.returncode == 0, r.stderr
        _CACHE["demo"] = (out, r)
    return _CACHE["demo"]  # type: ignore[return-value]
