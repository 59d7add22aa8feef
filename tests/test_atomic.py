"""bebias.atomic: modes that follow the umask, fsync before the rename, and folders swapped in
whole so that a killed writer leaves the old or the new folder complete, cleaned up on rerun."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from bebias import atomic
from bebias.atomic import atomic_path, write_json


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def set_umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=oct)
def test_modes_follow_the_umask(tmp_path, set_umask, mask):
    set_umask(mask)
    write_json(tmp_path / "metrics.json", {"a": 1})
    with open(tmp_path / "plain.txt", "w") as f:  # what open() gives: the reference
        f.write("x")
    assert mode(tmp_path / "metrics.json") == mode(tmp_path / "plain.txt") == 0o666 & ~mask
    with atomic_path(tmp_path / "frames", is_dir=True) as tmp:
        with open(os.path.join(tmp, "0.png"), "wb") as f:
            f.write(b"x")
    os.mkdir(tmp_path / "plain")
    assert mode(tmp_path / "frames") == mode(tmp_path / "plain") == 0o777 & ~mask
    assert atomic.umask() == mask  # read without changing it


def test_data_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", os.fspath(b))), real_replace(a, b))[1])
    target = str(tmp_path / "model.pth")
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(b"weights")
    assert events == [("fsync", tmp), ("replace", target), ("fsync", str(tmp_path))]
    events.clear()
    with atomic_path(tmp_path / "d", is_dir=True) as tmp:
        with open(os.path.join(tmp, "f"), "wb") as f:
            f.write(b"x")
    synced = [p for k, p in events if k == "fsync"]
    assert os.path.join(tmp, "f") in synced and tmp in synced and str(tmp_path) == synced[-1]


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from bebias.atomic import atomic_path
    out, after = sys.argv[1], int(sys.argv[2])
    calls = []
    real = os.replace
    def replace(a, b):
        real(a, b)
        calls.append(b)
        if len(calls) == after:
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    with atomic_path(out, is_dir=True) as tmp:
        for name in ("a.txt", "b.txt"):
            with open(os.path.join(tmp, name), "w") as f:
                f.write("new " + name)
            if after == 0 and name == "a.txt":
                os.kill(os.getpid(), signal.SIGKILL)  # mid-write
""")


def folders(parent) -> dict[str, dict[str, str]]:
    return {d: {f: open(os.path.join(parent, d, f)).read() for f in sorted(os.listdir(os.path.join(parent, d)))}
            for d in sorted(os.listdir(parent))}


@pytest.mark.parametrize("after", [0, 1, 2], ids=["mid-write", "old-renamed-aside", "new-renamed-in"])
def test_a_killed_folder_writer_leaves_one_complete_folder_and_a_rerun_cleans_up(tmp_path, after):
    out = tmp_path / "report"
    out.mkdir()
    old = {"a.txt": "old a", "b.txt": "old b", "c.txt": "old c"}
    for k, v in old.items():
        (out / k).write_text(v)
    new = {"a.txt": "new a.txt", "b.txt": "new b.txt"}
    r = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out), str(after)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == -signal.SIGKILL, r.stderr
    left = folders(tmp_path)
    assert old in left.values() or new in left.values(), left  # findable, complete
    # a rerun: the previous folder is back under its name where it had been moved aside, then replaced
    with atomic_path(out, is_dir=True) as tmp:
        with open(os.path.join(tmp, "z.txt"), "w") as f:
            f.write("rerun")
    assert folders(tmp_path) == {"report": {"z.txt": "rerun"}}


def test_a_folder_left_aside_by_a_dead_writer_is_put_back(tmp_path):
    """Killed between the two renames (nothing under the name): the next writer puts the old
    folder back before it writes, so a rerun that fails too leaves it in place."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    aside = tmp_path / f".report.old-{dead}-abc123"
    aside.mkdir()
    (aside / "report.html").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "report", is_dir=True):
            raise RuntimeError("the rerun fails too")
    assert folders(tmp_path) == {"report": {"report.html": "old"}}
