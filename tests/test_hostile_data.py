"""Hostile and unlucky input at the data floor (issue 23): bounded parsing of JSON/TOML,
bounded manifest labels, duplicate rows, mask and video memory bombs, FFmpeg's own log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from bebias import parse
from bebias.data import masks
from bebias.data.open import open_data
from bebias.data.sources import csv_manifest
from bebias.errors import BebiasError

DEEP = 5000  # beyond Python's recursion limit (1000): json / tomllib raised RecursionError


def _one_line(e: BaseException, path: str) -> str:
    msg = str(e)
    assert "\n" not in msg and path in msg, msg
    return msg


# -- item 10: JSON / TOML bounded in size and depth ---------------------------------------

@pytest.mark.parametrize("text", ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP,
                                  "[" * 65 + "]" * 65, "{not json", "", "1" * 5000])
def test_read_json_refuses_in_one_line(tmp_path, text):
    p = tmp_path / "a.json"
    p.write_text(text)
    with pytest.raises(BebiasError) as e:
        parse.read_json(str(p))
    _one_line(e.value, str(p))


def test_read_json_accepts_what_bebias_writes(tmp_path):
    p = tmp_path / "ok.json"
    p.write_text('{"a": [[1, NaN]], "b": "[[[[{{{{"}')
    assert parse.read_json(str(p))["b"] == "[[[[{{{{"
    assert parse.parse_json("[" * 64 + "]" * 64, "x") is not None


@pytest.mark.parametrize("text", ["a = " + "[" * DEEP + "]" * DEEP, "a = " + "{b=" * 200 + "1" + "}" * 200,
                                  "a = 1\na = 2", "x = [1,"])
def test_read_toml_refuses_in_one_line(tmp_path, text):
    p = tmp_path / "a.toml"
    p.write_text(text)
    with pytest.raises(BebiasError) as e:
        parse.read_toml(str(p))
    _one_line(e.value, str(p))


def test_read_refuses_a_fifo_and_a_file_over_the_cap(tmp_path):
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    with pytest.raises(BebiasError, match="not a regular file"):
        parse.read_json(str(fifo))  # open() would block forever
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(BebiasError, match="MiB"):
        parse.read_json(str(big), max_bytes=1000)


def test_deep_files_through_their_readers(tmp_path):
    """Each reader of a user file goes through bebias.parse (they raised RecursionError)."""
    from bebias.data.sources.common import read_json as read_annotations
    from bebias.probing.suite import load_suite
    from bebias.reporting.inputs import read_json as read_result
    from bebias.training.config import config_from_file

    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * DEEP + "]" * DEEP)
    deep_toml = tmp_path / "deep.toml"
    deep_toml.write_text("a = " + "[" * DEEP + "]" * DEEP)
    for call, p in [(lambda p: read_annotations(p, "split file"), deep_json), (read_result, deep_json),
                    (config_from_file, deep_json), (config_from_file, deep_toml), (load_suite, deep_toml)]:
        with pytest.raises(BebiasError) as e:
            call(str(p))
        _one_line(e.value, str(p))


# -- item 10: integer labels are bounded ---------------------------------------------------

def _manifest(tmp_path, rows: list[str], header: str = "path,label") -> str:
    (tmp_path / "v.mp4").write_bytes(b"x")
    p = tmp_path / "m.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return str(p)


@pytest.mark.parametrize("label", ["100000000000", "100000"])
def test_a_huge_integer_label_is_refused(tmp_path, label):
    p = _manifest(tmp_path, ["v.mp4,0", f"v.mp4,{label}"])
    with pytest.raises(BebiasError) as e:  # it built 1e11 class names (MemoryError)
        csv_manifest(p)
    _one_line(e.value, p)


def test_a_huge_start_is_one_line(tmp_path):
    p = _manifest(tmp_path, [f"v.mp4,0,{'9' * 5000}"], header="path,label,start")
    with pytest.raises(BebiasError) as e:  # int() of 5000 digits raised ValueError
        csv_manifest(p)
    _one_line(e.value, p)


# -- item 6: duplicate rows ---------------------------------------------------------------

def test_duplicate_rows_are_dropped_with_one_note(tmp_path, capsys):
    for n in "abc":
        (tmp_path / f"{n}.mp4").write_bytes(b"x")
    p = tmp_path / "m.csv"
    p.write_text("path,label\n" + "a.mp4,0\n" * 5 + "b.mp4,1\nc.mp4,1\n./a.mp4,0\n")
    d = open_data(str(p), split="test")
    assert [os.path.basename(r.path) for r in d.videos.records] == ["a.mp4", "b.mp4", "c.mp4"]
    assert d.videos.duplicates == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5 duplicate row(s)" in err


def test_duplicate_rows_with_other_labels_are_refused(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    p = tmp_path / "m.csv"
    p.write_text("path,label\na.mp4,up\na.mp4,down\n")
    with pytest.raises(BebiasError, match="listed twice, with labels 'up' and 'down'") as e:
        open_data(str(p), split="test")
    _one_line(e.value, str(p))


def test_other_windows_of_one_video_are_not_duplicates(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    p = tmp_path / "m.csv"
    p.write_text("path,label,start,end\na.mp4,0,0,10\na.mp4,0,10,20\n")
    assert len(open_data(str(p), split="test").videos) == 2


# -- item 8: masks checked from their header, read frame by frame --------------------------

def _header(shape: tuple[int, ...], descr: str = "|b1") -> bytes:
    import io

    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue()


def declared_npy(path, shape: tuple[int, ...]) -> str:
    """A .npy whose header declares ``shape`` and that holds no data (a few hundred bytes)."""
    with open(path, "wb") as f:
        f.write(_header(shape))
    return str(path)


def declared_npz(path, shape: tuple[int, ...], zero_frames: int = 0, frame: int = 0) -> str:
    """An .npz whose ``masks`` member declares ``shape``, then holds ``zero_frames`` deflated
    frames of ``frame`` zero bytes each (a deflate bomb when there are many)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("masks.npy", "w", force_zip64=True) as f:
        f.write(_header(shape))
        zeros = bytes(frame)
        for _ in range(zero_frames):
            f.write(zeros)
    return str(path)


@pytest.mark.parametrize("maker", [declared_npy, declared_npz])
def test_a_mask_declaring_a_huge_shape_is_refused_from_its_header(tmp_path, maker):
    p = maker(tmp_path / ("m" + (".npy" if maker is declared_npy else ".npz")), (10**6, 10**4, 10**4))
    assert os.path.getsize(p) < 1000
    with pytest.raises(BebiasError, match="more than 4x") as e:  # it was a MemoryError
        masks.clip_masks(p, np.arange(8), (64, 64))
    _one_line(e.value, p)
    with pytest.raises(BebiasError, match="GiB") as e:  # read whole: capped
        masks.read_mask(p)
    _one_line(e.value, p)


@pytest.mark.parametrize("shape", [(8, 0, 32), (0, 32, 32), (32, 0)])
def test_a_mask_with_an_empty_dimension_is_refused(tmp_path, shape):
    p = str(tmp_path / "m.npy")
    np.save(p, np.zeros(shape, bool))
    with pytest.raises(BebiasError, match="empty dimension") as e:  # ZeroDivisionError
        masks.clip_masks(p, np.arange(4), (32, 32))
    _one_line(e.value, p)


def test_a_fifo_as_mask_is_refused_at_once(tmp_path):
    p = tmp_path / "m.npz"
    os.mkfifo(p)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("the read blocked")))
    signal.alarm(5)
    try:
        with pytest.raises(BebiasError, match="not a regular file"):
            masks.clip_masks(str(p), np.arange(4), (32, 32))
    finally:
        signal.alarm(0)


def test_a_truncated_mask_is_one_line(tmp_path):
    p = declared_npz(tmp_path / "m.npz", (20, 32, 32), zero_frames=3, frame=32 * 32)
    with pytest.raises(BebiasError, match="truncated") as e:
        masks.clip_masks(p, np.arange(5, 9), (32, 32))
    _one_line(e.value, p)


def test_only_the_clip_frames_of_a_mask_are_read(tmp_path):
    m = np.random.default_rng(0).random((30, 6, 8)) > 0.5
    np.savez_compressed(tmp_path / "a.npz", masks=m)
    np.save(tmp_path / "b.npy", m.astype(np.float32))
    np.savez(tmp_path / "c.npz", masks=np.asfortranarray(m))
    idx = np.array([3, 3, 7, 20])
    for name in ("a.npz", "b.npy", "c.npz"):
        got = masks.clip_masks(str(tmp_path / name), idx, (12, 16))
        assert got.shape == (4, 12, 16) and np.array_equal(got[:, ::2, ::2], m[idx]), name
    np.save(tmp_path / "static.npy", m[:1])
    assert np.array_equal(masks.clip_masks(str(tmp_path / "static.npy"), idx, (6, 8)), np.repeat(m[:1], 4, 0))


_RSS = """
import resource, sys, numpy as np
from bebias.data import masks
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
masks.clip_masks(sys.argv[1], np.arange(8) + 100, (250, 250), (1000, 1000))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_deflate_bomb_mask_is_streamed_not_inflated(tmp_path):
    """A 0.3 MB .npz of 300 deflated all-zero 1000x1000 frames (300 MB inflated): the clip's
    8 frames are read, and the peak memory stays far below the inflated size (it grew by
    ~600 MB: the array, then its binary copy)."""
    p = declared_npz(tmp_path / "bomb.npz", (300, 1000, 1000), zero_frames=300, frame=10**6)
    assert os.path.getsize(p) < 2**20
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    grew = int(subprocess.run([sys.executable, "-c", _RSS, p], capture_output=True, text=True, check=True,
                              env=env, timeout=120).stdout)
    assert grew < 100, f"peak RSS grew by {grew} MB"


# -- item 23: FFmpeg's own log lines ---------------------------------------------------------

def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    return subprocess.run([sys.executable, "-m", "bebias", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_ffmpeg_prints_nothing_around_our_line(tmp_path):
    """A garbage .webm: FFmpeg printed "[matroska,webm @ 0x...] EBML header parsing failed"
    (and "Truncating packet ...") on stderr; now stderr holds only the progress line."""
    (tmp_path / "bad.webm").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    (tmp_path / "m.csv").write_text("path,label\nbad.webm,0\n")
    r = _cli("data", "info", "--data", str(tmp_path / "m.csv"), "--split", "test", "--check")
    assert r.returncode == 1 and "bad.webm: cannot be opened as a video" in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"\d\d:\d\d:\d\d decoding 1/1 \(100%\)", lines[0]), r.stderr


# -- item 12: videos decoded frame by frame, brought down on the way in -------------------

_MAKE_4K = """
import sys, cv2, numpy as np
w = cv2.VideoWriter(sys.argv[1], cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (3840, 2160))
assert w.isOpened()
frame = np.full((2160, 3840, 3), 90, np.uint8)
for t in range(int(sys.argv[2])):  # mostly flat colour (small on disk), a moving square
    f = frame.copy()
    f[900:1300, 200 + 100 * t:600 + 100 * t] = 220
    w.write(f)
w.release()
"""

_PEAK = """
import resource, sys, numpy as np
from bebias.data.open import open_data
from bebias.data.transforms import ClipSpec
d = open_data(sys.argv[1], split="test")
rec = d.videos.records[0]
d.decoder.num_frames(rec)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == "check":
    n = d.decoder.check(rec)
    shape = (n,)
else:
    from bebias.probing.source import ProbeSource
    from bebias.probing.suite import ProbeSuite
    v = ProbeSource(d, ClipSpec(frames=8, stride=1, size=112), ProbeSuite(mask="diff")).video(0)
    shape = v.clip.shape
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, *shape)
"""


@pytest.fixture(scope="module")
def clip_4k(tmp_path_factory):
    d = tmp_path_factory.mktemp("4k")
    subprocess.run([sys.executable, "-c", _MAKE_4K, str(d / "v.avi"), "16"], check=True, timeout=120)
    (d / "m.csv").write_text("path,label\nv.avi,0\n")
    return d


def _peak(clip_4k, what: str) -> list[int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", _PEAK, str(clip_4k / "m.csv"), what], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return [int(x) for x in r.stdout.split()]


def test_check_decodes_a_4k_video_frame_by_frame(clip_4k):
    """16 4K frames are 400 MB: --check stacked them all (and converted them: ~800 MB); now
    one frame at a time."""
    assert os.path.getsize(clip_4k / "v.avi") < 8 * 2**20
    grew, n = _peak(clip_4k, "check")
    assert n == 16 and grew < 150, f"peak RSS grew by {grew} MB"


def test_the_probe_brings_a_4k_clip_down_as_it_decodes(clip_4k):
    """The probe kept the 8-frame clip at 3840x2160 (and its motion masks): now at a short
    side of 256 (2 x 112 or more), decoded one native frame at a time."""
    grew, t, h, w, _ = _peak(clip_4k, "probe")
    assert (t, h, w) == (8, 256, 455) and grew < 150, f"peak RSS grew by {grew} MB"


# -- also seen: an end past the video; an invalid --frame-template -------------------------

def test_check_reports_an_end_past_the_video(tmp_path):
    """A Diving48-style end_frame beyond the video passed --check (the window was clamped)."""
    from bebias.data import video_io

    video_io.write_video(str(tmp_path / "v.mkv"), np.zeros((6, 16, 16, 3), np.uint8))
    (tmp_path / "m.csv").write_text("path,label,start,end\nv.mkv,0,0,6\nv.mkv,0,2,40\n")
    d = open_data(str(tmp_path / "m.csv"), split="test")
    assert d.decoder.check(d.videos.records[0]) == 6
    with pytest.raises(BebiasError, match=r"end past the video's 6 frames") as e:
        d.decoder.check(d.videos.records[1])
    _one_line(e.value, str(tmp_path / "v.mkv"))


@pytest.mark.parametrize("template", ["img_{", "img.jpg", "{}_{}.jpg"])
def test_an_invalid_frame_template_is_reported_once_up_front(tmp_path, template):
    for k in range(3):
        (tmp_path / f"v{k}").mkdir()
        (tmp_path / f"v{k}" / "img_00001.jpg").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"v{k},0\n" for k in range(3)))
    r = _cli("data", "info", "--data", str(tmp_path / "m.csv"), "--split", "test", "--frame-template", template,
             "--check")
    assert r.returncode == 2, r.stdout + r.stderr
    out = (r.stdout + r.stderr).strip()
    assert out.count("invalid frame template") == 1 and "Traceback" not in out, out
