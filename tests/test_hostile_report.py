"""bebias report on hostile or unlucky result folders (issue 23): references outside the
result's folder, a failure mid-write, names that are mathtext / HTML / Markdown, values out
of range, an --out that is not a report. Inputs are hand-written (tests/report_inputs.py and
:func:`probe_metrics`): no model is trained here, each test takes seconds."""

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import warnings

import pytest

from bebias.errors import BebiasError
from bebias.reporting import build
from bebias.reporting import table_formats as W
from bebias.reporting.build import build_report
from report_inputs import strip_png, write_calibration, write_cam


def probe_metrics(top1=0.5, classes=("a", "b"), method="linear", data="synthetic", variants=("original",)) -> dict:
    """A probe metrics.json with what the report reads (tables and every figure)."""
    def block(v):
        return {"value": v, "ci_low": max(v - 0.1, 0), "ci_high": min(v + 0.1, 1)}

    return {"provenance": {"checkpoint": "/nowhere/m.pth", "checkpoint_sha256": "a" * 64, "checkpoint_kind":
                           "classifier", "arch": "small3d", "method": method, "data": data, "split": "conflict",
                           "classes": list(classes)},
            "headline": {"original_top1": top1, "background_reliance": 0.4},
            "accuracy": {v: {"n": 10, "top1": block(top1)} for v in variants},
            "background_reliance": block(0.4),
            "conflict": {"swap-background": {"n": 10, "background_follow": block(0.5), "foreground_follow":
                                             block(0.2), "per_class": {"background_follow":
                                                                       {c: 0.5 for c in classes}}}}}


def write(path, obj) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def snapshot(folder) -> dict[str, bytes]:
    out = {}
    for d, _, fs in os.walk(folder):
        for f in fs:
            with open(os.path.join(d, f), "rb") as h:
                out[os.path.relpath(os.path.join(d, f), folder)] = h.read()
    return out


# --------------------------------------------------------------------------------------
# item 3: a result may only name files inside its own folder
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "symlinked-folder"])
def test_a_cam_strip_outside_the_result_folder_is_refused(tmp_path, how):
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(strip_png(7))
    cam = tmp_path / "cam"
    p = write_cam(str(cam), ["a.pth", "b.pth"])
    obj = json.loads(open(p).read())
    if how == "absolute":
        obj["videos"][0]["strip"] = str(secret)
    elif how == "dotdot":
        obj["videos"][0]["strip"] = "strips/../../elsewhere/secret.png"
    elif how == "symlink":
        os.remove(cam / "strips" / "video0.png")
        os.symlink(secret, cam / "strips" / "video0.png")
    else:
        os.rename(cam / "strips", tmp_path / "strips-real")
        os.symlink(secret.parent, cam / "strips")
        obj["videos"][0]["strip"] = "strips/secret.png"
    write(p, obj)
    with pytest.raises(BebiasError) as e:
        build_report([p], out=str(tmp_path / "out"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(p) and "videos[0].strip" in msg, msg
    assert ("absolute path" if how == "absolute" else "outside the result's folder") in msg, msg
    assert not (tmp_path / "out").exists()


def test_a_cam_strip_that_is_a_fifo_or_huge_is_refused_without_blocking(tmp_path, monkeypatch):
    p = write_cam(str(tmp_path / "cam"), ["a.pth", "b.pth"])
    os.remove(tmp_path / "cam" / "strips" / "video1.png")
    os.mkfifo(tmp_path / "cam" / "strips" / "video1.png")
    with pytest.raises(BebiasError, match=r"video1.png: the CAM strip of video 1 .* (not a regular file|not exist)"):
        build_report([p], out=str(tmp_path / "out"))
    os.remove(tmp_path / "cam" / "strips" / "video1.png")
    (tmp_path / "cam" / "strips" / "video1.png").write_bytes(strip_png(1))
    monkeypatch.setattr(build, "MAX_STRIP_BYTES", 100)
    with pytest.raises(BebiasError, match=r"video0.png: the CAM strip of video 0 .* more than"):
        build_report([p], out=str(tmp_path / "out"))


# --------------------------------------------------------------------------------------
# item 14: the report folder is swapped in whole
# --------------------------------------------------------------------------------------

def _inputs(tmp_path, top1: float) -> list[str]:
    return [write(str(tmp_path / f"probe-{top1}" / "metrics.json"), probe_metrics(top1)),
            write_calibration(str(tmp_path / "calibration"))]


@pytest.mark.parametrize("failing", ["to_markdown", "render"])
def test_disk_full_mid_report_leaves_the_old_report_byte_identical(tmp_path, monkeypatch, failing):
    out = tmp_path / "reports" / "r"
    old_mask = os.umask(0o022)
    try:
        build_report(_inputs(tmp_path, 0.5) + [write_cam(str(tmp_path / "cam"), ["a.pth", "b.pth"])], out=str(out))
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(os.stat(out / "report.html").st_mode) == 0o644  # item 17: not mkstemp's 0600
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
    before = snapshot(out)
    assert "cam.tex" in before and "figures/cam-0-video0.png" in before

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(*((W, "to_markdown") if failing == "to_markdown" else (build, "render")), full)
    with pytest.raises(BebiasError) as e:
        build_report(_inputs(tmp_path, 0.9), out=str(out))
    assert str(e.value).startswith(str(out)) and "No space left on device" in str(e.value)
    assert snapshot(out) == before
    assert os.listdir(out.parent) == ["r"]  # no temporary left
    monkeypatch.undo()
    # a report of other inputs replaces the folder whole: nothing of the old one is left
    res = build_report(_inputs(tmp_path, 0.9), out=str(out))
    assert "cam.tex" not in snapshot(out) and sorted(res.files) == sorted(str(out / f) for f in snapshot(out))
    assert os.listdir(out.parent) == ["r"]


KILLED_REPORT = textwrap.dedent("""
    import os, signal, sys
    from bebias.reporting import build
    def killed(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    build.render = killed  # after report.md, the tables and the figures are written
    build.build_report(sys.argv[2:], out=sys.argv[1])
""")


def test_a_report_killed_mid_write_leaves_the_old_one_and_a_rerun_cleans_up(tmp_path):
    out = tmp_path / "r"
    build_report(_inputs(tmp_path, 0.5), out=str(out))
    before = snapshot(out)
    r = subprocess.run([sys.executable, "-c", KILLED_REPORT, str(out), *_inputs(tmp_path, 0.9)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert snapshot(out) == before
    build_report(_inputs(tmp_path, 0.9), out=str(out))
    assert sorted(os.listdir(tmp_path)) == ["calibration", "probe-0.5", "probe-0.9", "r"]
    assert "90.0" in (out / "report.md").read_text()


def test_out_holding_other_files_is_refused_untouched(tmp_path):
    ins = _inputs(tmp_path, 0.5)
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "thesis.txt").write_text("years of work")
    (home / "report.md").write_text("mine")
    before = snapshot(home)
    with pytest.raises(BebiasError, match=r"home: --out holds 'docs/', which a report does not write"):
        build_report(ins, out=str(home))
    assert snapshot(home) == before
    # an input folder given as --out: refused too (its metrics.json)
    with pytest.raises(BebiasError, match="metrics.json"):
        build_report(ins, out=os.path.dirname(ins[0]))


# --------------------------------------------------------------------------------------
# item 21: names from result files are text, in every format and in the figures
# --------------------------------------------------------------------------------------

HOSTILE = ["$\\frac{$", "$x^$", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a|b|c",
           "two\nlines\n\\input{/etc/passwd}", "back\\slash `tick` *star* _u_ [l](javascript:alert(1))",
           "tab\there\x00nul", "😀 雪 \u202e" + "x" * 5000, "100 % & #1 ~ ^{}"]


def test_hostile_names_are_escaped_everywhere_and_draw(tmp_path):
    root = tmp_path / "in"
    ins = []
    for k, name in enumerate(HOSTILE[:4]):  # one checkpoint per label (its method), each with all classes
        m = probe_metrics(0.1 * (k + 1), classes=HOSTILE, method=name, data=HOSTILE[(k + 5) % len(HOSTILE)],
                          variants=("original", HOSTILE[k]))
        m["provenance"]["checkpoint_sha256"] = f"{k}" * 64
        ins.append(write(str(root / f"p{k}" / "metrics.json"), m))
    cam = write_cam(str(root / "cam"), ["a.pth", "b.pth"])
    obj = json.loads(open(cam).read())
    obj["checkpoints"][0]["label"] = obj["checkpoints"][0]["method"] = HOSTILE[2]
    obj["actor_share"] = {HOSTILE[2]: obj["actor_share"]["moco"], "moco+be": obj["actor_share"]["moco+be"]}
    obj["videos"][0]["label"], obj["videos"][0]["path"] = HOSTILE[3], HOSTILE[5]
    obj["layer"] = HOSTILE[6]
    write(cam, obj)
    ins.append(cam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in our own output is a bug
        res = build_report(ins, out=str(tmp_path / "out"))
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    for text in (md, html):
        assert "<script" not in text and "<img src=x" not in text
    assert not re.search(r"(?<!\\)\]\(javascript:", md)
    # every Markdown table row has as many (unescaped) cell separators as its header
    for block in re.split(r"\n\s*\n", md):
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if rows:
            n = {len(re.findall(r"(?<!\\)\|", ln)) for ln in rows}
            assert len(n) == 1, rows
    for f in res.files:
        if f.endswith(".tex"):
            tex = open(f).read()
            assert "\n\\input" not in tex and "\x00" not in tex
            assert all(ln.startswith("%") for ln in tex.splitlines()[:2])  # the comments stay comments
    assert W.md_escape("a|b\n<c>") == "a\\|b &lt;c&gt;"


# --------------------------------------------------------------------------------------
# also seen: values out of their metric's range
# --------------------------------------------------------------------------------------

def _probe_with(path, value):
    def go(tmp_path):
        m = probe_metrics()
        *head, last = path
        d = m
        for k in head:
            d = d[k]
        d[last] = value
        return write(str(tmp_path / "p" / "metrics.json"), m)
    return go


def _calib(tmp_path):
    p = write_calibration(str(tmp_path / "c"))
    obj = json.loads(open(p).read())
    obj["rows"][0]["train_minutes"] = -3
    return write(p, obj)


def _cam_share(tmp_path):
    p = write_cam(str(tmp_path / "cam"), ["a.pth", "b.pth"])
    obj = json.loads(open(p).read())
    obj["videos"][1]["actor_share"]["moco"] = "lots"
    return write(p, obj)


def _eval(tmp_path):
    return write(str(tmp_path / "e" / "eval.json"), {"checkpoint_sha256": "b" * 64, "checkpoint": "m.pth",
                                                    "splits": {"iid": {"top1": 1.5, "n": 10}}})


@pytest.mark.parametrize("make, field", [
    (_probe_with(("accuracy", "original", "top1", "value"), 12345), "accuracy.original.top1.value = 12345"),
    (_probe_with(("background_reliance", "ci_high"), -0.5), "background_reliance.ci_high = -0.5"),
    (_probe_with(("conflict", "swap-background", "n"), -3), "conflict.swap-background.n = '-3'"),
    (_probe_with(("headline", "original_top1"), float("inf")), "headline.original_top1 = inf"),
    (_probe_with(("conflict", "swap-background", "per_class", "background_follow", "a"), 7),
     "conflict.swap-background.per_class.background_follow['a'] = 7"),
    (_probe_with(("accuracy", "original"), [1, 2]), "accuracy['original'] is not an object"),
    (_probe_with(("agreement",), {"static-frame": {"kappa": {"value": 3.0}}}),
     "agreement.static-frame.kappa.value = 3.0"),
    (_calib, "rows[0].train_minutes = -3"),
    (_cam_share, "videos[1].actor_share['moco'] is 'lots', not a number"),
    (_eval, "splits.iid.top1 = 1.5"),
])
def test_values_out_of_range_are_one_line_naming_file_and_field(tmp_path, make, field):
    p = make(tmp_path)
    with pytest.raises(BebiasError) as e:
        build_report([p], out=str(tmp_path / "out"))
    msg = str(e.value)
    assert msg.startswith(p + ":") and field in msg and "\n" not in msg, msg
    assert not (tmp_path / "out").exists()
