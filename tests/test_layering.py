"""The package's floors: a module imports only from its own floor or the floors below.

errors/atomic/parse/recipes/results/seeds/progress/stats -> data (+ distract, checkpoint) -> models -> training | probing | reporting
(siblings: none imports another) -> workflows (compose the siblings) -> cli. Read from the source with ``ast``, lazy
imports inside functions included, so a shortcut taken inside a function shows too.
"""

from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "bebias"

#: floor of each top-level part of the package (a module's floor = its first path part)
FLOORS = {
    "errors": 0, "atomic": 0, "parse": 0, "limits": 0, "recipes": 0, "results": 0, "seeds": 0, "progress": 0, "stats": 0, "__init__": 0,
    "data": 1, "distract": 1, "checkpoint": 1,
    "models": 3,
    "training": 4, "probing": 4, "reporting": 4,
    "workflows": 5,
    "cli": 6, "__main__": 7,
}
SIBLINGS = {"training", "probing", "reporting"}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def _edges() -> list[tuple[str, str, int]]:
    """(importing file, imported bebias module, line) for every import in the package."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bebias"):
                names = [node.module] if node.module != "bebias" else [f"bebias.{a.name}" for a in node.names]
                out += [(str(path.relative_to(PKG.parent)), n, node.lineno) for n in names]
            elif isinstance(node, ast.Import):
                out += [(str(path.relative_to(PKG.parent)), a.name, node.lineno) for a in node.names
                        if a.name.startswith("bebias.")]
    return out


def _floor_violations() -> list[str]:
    bad = []
    for src, mod, line in _edges():
        me = pathlib.Path(src).parts[1].removesuffix(".py")
        other = _part(mod)
        if other == "__version__" or other == me:
            continue
        if FLOORS[other] > FLOORS[me] or (FLOORS[other] == FLOORS[me] and {me, other} <= SIBLINGS):
            bad.append(f"{src}:{line} imports {mod} ({me} is floor {FLOORS[me]}, {other} floor {FLOORS[other]})")
    return bad


def test_every_part_has_a_floor():
    parts = {p.name.removesuffix(".py") for p in PKG.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts <= set(FLOORS), f"new top-level part(s) without a floor: {parts - set(FLOORS)}"


def test_no_import_goes_up_or_sideways():
    assert _floor_violations() == []


def test_the_check_sees_a_lazy_import(tmp_path, monkeypatch):
    """The checker itself can fail: a function-level import of training from probing is caught."""
    fake = tmp_path / "bebias"
    (fake / "probing").mkdir(parents=True)
    (fake / "probing" / "x.py").write_text("def f():\n    from bebias.training.loop import run\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _floor_violations() == ["bebias/probing/x.py:2 imports bebias.training.loop "
                                   "(probing is floor 4, training floor 4)"]


#: ``reporting`` renders what the floors below computed and runs no model: of ``bebias.models``
#: it reads only the plain result types (numpy, no torch), and it imports torch nowhere
RENDER_ONLY_MODELS = {"bebias.models.cam_result"}


def _render_violations() -> list[str]:
    """Imports by ``bebias/reporting`` of torch or of a model-running module of ``bebias.models``."""
    bad = []
    for path in sorted((PKG / "reporting").rglob("*.py")):
        src = str(path.relative_to(PKG.parent))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = ([node.module] if node.module != "bebias.models" else
                        [f"bebias.models.{a.name}" for a in node.names])
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                if mod.split(".")[0] == "torch" or (mod.startswith("bebias.models") and mod not in RENDER_ONLY_MODELS):
                    bad.append(f"{src}:{node.lineno} imports {mod} (reporting renders; it runs no model)")
    return bad


def test_reporting_runs_no_model():
    assert _render_violations() == []


def test_importing_reporting_loads_no_torch():
    """What the imports bring in at run time too (a module below reporting that pulled torch
    in would show here): the renderers and the report builder load neither torch nor a model."""
    import subprocess
    import sys

    code = ("import sys, bebias.reporting.cam, bebias.reporting.build, bebias.reporting.figures; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('bebias.models.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=PKG.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(sorted(RENDER_ONLY_MODELS))


def test_the_render_check_sees_a_model_import(tmp_path, monkeypatch):
    """The checker itself can fail: reporting importing Grad-CAM, or torch inside a function, is caught."""
    fake = tmp_path / "bebias"
    (fake / "reporting").mkdir(parents=True)
    (fake / "reporting" / "x.py").write_text("from bebias.models.cam import GradCam\n"
                                             "from bebias.models.cam_result import ClipCams\n"
                                             "def f():\n    import torch.nn\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert _render_violations() == [
        "bebias/reporting/x.py:1 imports bebias.models.cam (reporting renders; it runs no model)",
        "bebias/reporting/x.py:4 imports torch.nn (reporting renders; it runs no model)"]
