"""One progress event (bebias.progress) and its two renderers (bebias.cli.progress): the
plain lines' throttle on a fake clock, and a real command whose stderr is a file."""

import ast
import dataclasses
import io
import pathlib
import pickle
import re
import subprocess
import sys
import time

import pytest
from rich.console import Console

from bebias.cli.progress import PLAIN_INTERVAL, BarRenderer, PlainRenderer, format_info, plain_line, progress_display
from bebias.progress import Progress, scoped
from tests.inproc import PROGRESS_LINE
from tests.tiny import TINY

PKG = pathlib.Path(__file__).resolve().parents[1] / "bebias"
STAMP = r"\d\d:\d\d:\d\d"


def hms(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_event_is_frozen_and_its_info_too():
    p = Progress("training", 3, 6, {"loss": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.done = 4
    with pytest.raises(TypeError):
        p.info["loss"] = 1.0
    assert p.fraction == 0.5 and Progress("x", 3).fraction is None and Progress("x", 0, 0).fraction is None
    assert p == Progress("training", 3, 6, {"loss": 0.5})
    assert pickle.loads(pickle.dumps(p)) == p  # a worker process's events cross a queue


def test_scoped_puts_the_stage_under_a_prefix():
    got = []
    scoped(got.append, "moco")(Progress("pre-training", 1, 2, {"loss": 1.0}))
    assert got == [Progress("moco pre-training", 1, 2, {"loss": 1.0})]
    assert scoped(None, "moco") is None


def test_a_plain_line_has_time_stage_count_percent_and_info():
    t = 1_700_000_000.0
    assert plain_line(Progress("fine-tuning", 3, 8, {"epoch": 0, "loss": 1.23456, "clips_per_s": 412.7}), t) == \
        f"{hms(t)} fine-tuning 3/8 (38%) epoch=0 loss=1.235 clips_per_s=413"
    assert plain_line(Progress("rendering", 12), t) == f"{hms(t)} rendering 12"
    assert format_info({"mode": "knn", "n": 3, "x": 0.00012345}) == "mode=knn n=3 x=0.0001234"


def test_plain_lines_are_throttled_per_stage_with_first_and_last_kept():
    clock, lines = Clock(), []
    r = PlainRenderer(lines.append, clock=clock)
    t0 = clock.t
    for dt, p in [(0.0, Progress("a", 1, 100)),    # first of a: written
                  (1.0, Progress("a", 2, 100)),    # held
                  (1.5, Progress("b", 1, 10)),     # first of b: written, a's throttle untouched
                  (4.9, Progress("a", 3, 100)),    # held (4.9 s < 5 s)
                  (5.0, Progress("a", 4, 100)),    # written: 5 s since a's last line
                  (6.0, Progress("b", 2, 10)),     # held: 4.5 s since b's
                  (6.4, Progress("b", 3, 10)),     # held: 4.9 s
                  (9.0, Progress("a", 5, 100)),    # held: 4 s since a's
                  (9.5, Progress("a", 100, 100))]:  # a's last: written at once
        clock.t = t0 + dt
        r(p)
    assert PLAIN_INTERVAL == 5.0
    assert lines == [f"{hms(t0)} a 1/100 (1%)", f"{hms(t0 + 1.5)} b 1/10 (10%)", f"{hms(t0 + 5)} a 4/100 (4%)",
                     f"{hms(t0 + 9.5)} a 100/100 (100%)"]
    clock.t = t0 + 12
    r.close()  # where b stopped (it never reported its end), once
    assert lines[4:] == [f"{hms(t0 + 12)} b 3/10 (30%)"]
    r.close()
    assert len(lines) == 5
    # the tests that count a user error's lines leave out exactly these
    assert all(PROGRESS_LINE.match(s) for s in lines) and not PROGRESS_LINE.match("error: x.pth: broken")


def test_a_thousand_steps_in_a_minute_give_a_dozen_lines():
    clock, lines = Clock(), []
    r = PlainRenderer(lines.append, clock=clock)
    t0 = clock.t
    for i in range(1, 1001):
        clock.t = t0 + i * 0.06
        r(Progress("training", i, 1000, {"loss": 1 / i}))
    r.close()
    assert 12 <= len(lines) <= 14, lines
    assert lines[0].endswith("training 1/1000 (0%) loss=1") and "training 1000/1000 (100%)" in lines[-1]


def test_the_display_is_plain_off_a_terminal_and_bars_on_one():
    buf = io.StringIO()
    with progress_display(Console(file=buf, force_terminal=False)) as show:
        assert isinstance(show, PlainRenderer)
        show(Progress("probing", 2, 4))
    assert re.fullmatch(rf"{STAMP} probing 2/4 \(50%\)\n", buf.getvalue())
    tty = io.StringIO()
    with progress_display(Console(file=tty, force_terminal=True, width=100)) as show:
        assert isinstance(show, BarRenderer)
        show(Progress("probing", 2, 4, {"loss": 0.25}))
        show(Progress("rendering", 3))
    drawn = tty.getvalue()
    assert "probing" in drawn and "loss=0.25" in drawn and "2/4" in drawn and "3/3" in drawn  # no total: done at the end
    quiet = io.StringIO()
    with progress_display(Console(file=quiet, force_terminal=True)):
        pass  # no event, nothing drawn: a user error before any progress stays one line
    assert quiet.getvalue() == ""


def test_a_command_writing_to_a_file_logs_timestamped_progress(tmp_path):
    """``bebias finetune ... > log 2>&1``: the training's steps are lines with a time in the log."""
    log = tmp_path / "log"
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "-m", "bebias", "finetune", "--data", TINY, "--frames", "4", "--size", "32",
                            "--batch-size", "4", "--max-steps", "3", "--workers", "0", "--device", "cpu",
                            "--out", str(tmp_path / "run")], stdout=f, stderr=subprocess.STDOUT, timeout=300)
    text = log.read_text()
    assert r.returncode == 0, text
    steps = re.findall(rf"^{STAMP} fine-tuning (\d)/3 \(\d+%\) epoch=\d+ loss=[\d.]+ clips_per_s=[\d.]+$", text, re.M)
    assert steps[:1] == ["1"] and steps[-1:] == ["3"], text  # the first and the last step, at least
    assert "━" not in text and "\x1b" not in text, text  # no bar drawn into a file


OLD_SHAPES = ("Callable[[dict], None]", "Callable[[int, int], None]", "Callable[[str, dict], None]",
              "Callable[[str, int, int], None]")


def test_every_progress_parameter_takes_the_one_event():
    """No old callback shape is left: every ``progress`` parameter in the package is a ProgressFn."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        src = path.read_text()
        bad += [f"{path.name}: {s}" for s in OLD_SHAPES if s in src]
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for a in node.args.args + node.args.kwonlyargs:
                    if a.arg == "progress" and (a.annotation is None or
                                                ast.unparse(a.annotation) not in ("ProgressFn | None", "ProgressFn")):
                        bad.append(f"{path.name}:{node.lineno} {node.name}(progress: "
                                   f"{ast.unparse(a.annotation) if a.annotation else 'unannotated'})")
    assert bad == []
