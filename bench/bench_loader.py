"""Loader throughput vs raw OpenCV decoding of the same files.

Writes N videos of the embedded benchmark as mp4 (mp4v) files, then measures, side by side
in one run and on the same clips:

- raw:    ``cv2.VideoCapture`` + sequential ``read()`` of every frame up to the end of the
          clip, BGR->RGB, nothing else (the floor any loader must pay);
- loader: ``ClipDataset`` with ``transform=None`` (centre clip, ``FileDecoder``: header
          frame count, clip sampling, decoding straight into the batch's recycled
          shared-memory slab, uint8 (T,H,W,3) tensors) through the trainers' ``DataLoader``
          (``bebias.data.loader.make_loader``) with ONE worker process, batch 8: the data layer's cost
          over raw decoding, hand-off to the main process included;
- loader, 0 workers: the same in the main process (the data layer's own cost, no hand-off);
- loader+eval: the same with the evaluation transform as evaluation runs it (resize and
          centre crop in the worker, written into the batch -- or, frames already at the
          model's size, decoded straight into it -- uint8 (T,H,W,3) through the loader),
          then laid out and normalised in the main process as the model's device would (on
          a GPU that step runs there);
- loader+eval (float in worker): the old path, normalised to float32 in the worker.

Then the same on 4:3 videos larger than the model's input (144x192 for 112), which the
evaluation transform resizes (short side) and centre-crops.

Targets: loader clips/s >= 0.9 x raw clips/s; loader+eval >= 0.8 x raw. Timings are meaningful only on an otherwise idle
machine (``loadavg`` is recorded). Usage: ``python bench/bench_loader.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import cv2
import numpy as np
import torch

from bebias.data.dataset import ClipDataset
from bebias.data.decoders import FileDecoder
from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sampling import center_clip
from bebias.data.synth import SynthConfig, render_video, split_specs
from bebias.data.transforms import ClipSpec, eval_transform, normalize_frames
from bebias.data.video_io import write_video
from bebias.data.loader import make_loader


def make_videos(root: str, n: int, frames: int, size: int, width: int | None = None) -> list[str]:
    """``n`` benchmark videos as mp4 files, ``size`` px square, or ``size`` x ``width`` (a
    wider frame: the benchmark rendered at ``width`` and its middle rows kept)."""
    width = width or size
    cfg = SynthConfig(frames=frames, size=width, videos_per_class=max(1, n // 8 + 1))
    top = (width - size) // 2
    paths = []
    for spec in split_specs(cfg, "train")[:n]:
        p = os.path.join(root, f"{spec.name}-{size}x{width}.mp4")
        write_video(p, np.ascontiguousarray(render_video(cfg, spec).frames[:, top:top + size]))
        paths.append(p)
    return paths


def raw_opencv(paths: list[str], clip: np.ndarray) -> int:
    done = 0
    for p in paths:
        cap = cv2.VideoCapture(p)
        frames = []
        for i in range(int(clip.max()) + 1):
            ok, f = cap.read()
            if not ok:
                break
            if i in clip:
                frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        cap.release()
        done += len(frames) == len(clip)
    return done


def loader(paths: list[str], spec: ClipSpec, workers: int, transform=None, on_device: bool = False) -> int:
    ds = ClipDataset(LabeledVideos([VideoRecord(p, 0) for p in paths], ["x"]), FileDecoder(), spec,
                     transform, mode="test", num_clips=1)
    done = 0
    for batch in make_loader(ds, 8, shuffle=False, seed=0, epoch=0, workers=workers, drop_last=False):
        if on_device:
            normalize_frames(batch["clip"], spec)
        done += len(batch.get("label", []))
    return done


def measure(paths: list[str], spec: ClipSpec, frames: int, repeats: int) -> dict[str, float]:
    """clips/s of each path, interleaved over ``repeats`` rounds (so drift hits all alike), best round."""
    clip = center_clip(frames, spec.frames, 1)
    runs = {
        "raw": lambda: raw_opencv(paths, clip),
        "loader": lambda: loader(paths, spec, workers=1),
        "loader_0": lambda: loader(paths, spec, workers=0),
        "eval": lambda: loader(paths, spec, workers=1, transform=eval_transform(spec, normalize=False)),
        "eval_cpu_norm": lambda: loader(paths, spec, workers=1, transform=eval_transform(spec, normalize=False),
                                        on_device=True),
        "old": lambda: loader(paths, spec, workers=1, transform=eval_transform(spec)),
    }
    best = {k: float("inf") for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            t = time.perf_counter()
            assert fn() == len(paths)
            best[k] = min(best[k], time.perf_counter() - t)
    return {k: len(paths) / v for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=96)
    ap.add_argument("--frames", type=int, default=64, help="frames per video")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--clip", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--passes", type=int, default=4,
                    help="each video is listed this many times, so the DataLoader's one-off worker start-up is "
                         "amortised over an epoch-sized run as in training")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    spec = ClipSpec(frames=a.clip, stride=1, size=a.size)
    with tempfile.TemporaryDirectory() as root:
        paths = make_videos(root, a.videos, a.frames, a.size) * a.passes
        r = measure(paths, spec, a.frames, a.repeats)
        # 4:3 frames larger than the model's input (UCF101's shape, at a smaller scale): resized + cropped
        h, w = a.size * 9 // 7, a.size * 12 // 7
        wide = make_videos(root, a.videos, a.frames, h, w) * a.passes
        rw = measure(wide, spec, a.frames, a.repeats)
    raw = r["raw"]
    res = {"videos": a.videos, "clips_per_pass": len(paths), "video": f"{a.frames}x{a.size}x{a.size} mp4v", "clip": a.clip,
           "raw_opencv_clips_per_s": round(raw, 1), "loader_1_worker_clips_per_s": round(r["loader"], 1),
           "ratio": round(r["loader"] / raw, 3), "target": 0.9,
           "loader_0_workers_clips_per_s": round(r["loader_0"], 1),
           "ratio_0_workers": round(r["loader_0"] / raw, 3),
           # the evaluation transform: uint8 batches handed to the model's device (which lays
           # them out and normalises them: normalize_frames) -- the target
           "loader_with_eval_transform_clips_per_s": round(r["eval"], 1), "ratio_with_transform": round(r["eval"] / raw, 3),
           "target_with_transform": 0.8,
           # ... and with that device step run on this CPU, in the main process
           "eval_normalised_on_cpu_clips_per_s": round(r["eval_cpu_norm"], 1),
           "ratio_eval_normalised_on_cpu": round(r["eval_cpu_norm"] / raw, 3),
           "float_in_worker_clips_per_s": round(r["old"], 1), "ratio_float_in_worker": round(r["old"] / raw, 3),
           "resized": {"video": f"{a.frames}x{h}x{w} mp4v", "raw_opencv_clips_per_s": round(rw["raw"], 1),
                       "loader_1_worker_clips_per_s": round(rw["loader"], 1), "ratio": round(rw["loader"] / rw["raw"], 3),
                       "loader_with_eval_transform_clips_per_s": round(rw["eval"], 1),
                       "ratio_with_transform": round(rw["eval"] / rw["raw"], 3),
                       "ratio_eval_normalised_on_cpu": round(rw["eval_cpu_norm"] / rw["raw"], 3),
                       "ratio_float_in_worker": round(rw["old"] / rw["raw"], 3)},
           "machine": f"{platform.machine()} {os.cpu_count()} cpus",
           "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
           "torch": torch.__version__, "opencv": cv2.__version__}
    print(json.dumps(res, indent=2))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
