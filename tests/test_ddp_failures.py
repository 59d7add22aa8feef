"""DDP pre-training over data with unreadable videos: every rank steps with a full batch.

Each rank drops nothing: an unreadable video's row is filled with another video of the
split (bebias.data.dataset.ClipDataset, ``substitute``), so the ranks' batches keep one
shape and MoCo's all-gather of the keys lines up. Before, a rank whose batch lost a video
aborted in gloo ("Received data size doesn't match") or deadlocked.
"""

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from bebias.checkpoint import load_checkpoint
from bebias.data import video_io

pytestmark = pytest.mark.multiprocess  # torchrun process groups

TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")


def corrupt_manifest(root, good: int, seed: int = 0) -> tuple[str, list[str]]:
    """A CSV manifest of ``good`` small real videos and three unreadable ones among them
    (garbage bytes, an MP4 cut before its index, a missing file); -> (manifest, bad names)."""
    rng = np.random.default_rng(seed)
    rows, paths = [], []
    for k in range(good):
        p = root / f"ok{k:02d}.mkv"
        video_io.write_video(str(p), rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8))
        paths.append(p)
    whole = root / "whole.mp4"
    video_io.write_video(str(whole), rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8))
    (root / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    (root / "cut.mp4").write_bytes(whole.read_bytes()[:300])  # header only: no index, no frames
    whole.unlink()
    bad = ["garbage.mp4", "cut.mp4", "gone.mp4"]
    for k, name in enumerate(bad):  # spread among the good ones
        paths.insert(2 + 5 * k, root / name)
    for k, p in enumerate(paths):
        rows.append(f"{p},{'ab'[k % 2]}")
    manifest = root / "m.csv"
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    return str(manifest), bad


def run_group(cmd: list[str], timeout: float, env: dict) -> tuple[int | None, str, str]:
    """Run ``cmd`` (torchrun) in its own process group; on ``timeout`` kill the whole group
    (a deadlocked rank would otherwise outlive torchrun) and return rc None."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not installed")
def test_torchrun_pretraining_steps_through_unreadable_videos(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    manifest, bad = corrupt_manifest(data, good=13)
    env = {**os.environ, "BEBIAS_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    # 16 videos, 2 ranks x batch 2: one epoch of 4 steps meets every video
    rc, out, err = run_group([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "bebias", "train",
                              "--data", manifest, "--method", "be", "--frames", "4", "--size", "32", "--batch-size",
                              "2", "--max-steps", "4", "--queue-size", "8", "--workers", "0", "--precision", "fp32",
                              "--device", "cpu", "--out", str(tmp_path / "run")], timeout=120, env=env)
    assert rc is not None, f"timed out (deadlocked ranks?)\n{out[-2000:]}\n{err[-3000:]}"
    assert rc == 0, f"{out[-2000:]}\n{err[-3000:]}"
    ck = load_checkpoint(tmp_path / "run" / "model.pth")
    assert ck["step"] == 4
    assert int(ck["moco"]["queue_ptr"]) == 4 * 2 * 2 % 8  # every step gathered 2 full batches of keys
    text = " ".join(out.split())  # each rank lists the unreadable videos it met (rich may wrap lines)
    for name in bad:
        assert name in text, (name, out[-3000:])
    assert "unreadable" in text
