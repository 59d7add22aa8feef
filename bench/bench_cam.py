"""Grad-CAM speed: bebias's :class:`bebias.models.cam.GradCam` vs pytorch-grad-cam's
``GradCAM``, side by side in one process, on the same model, layer and clips.

For each model setting (``--settings``; default: the embedded benchmark's own small3d at
8 x 32 px, and r3d_18 at 16 x 112 px, the size a researcher explains a real video model
at) it builds a classifier checkpoint (``finetune`` with ``max_steps=1``: the weights do not
change the cost), opens it with :func:`bebias.models.open.open_model`, and takes the
centre clips of ``--videos`` class-balanced videos of the benchmark's ``conflict`` split,
transformed and in memory. Then, ``--repeats`` times, alternating:

- **bebias**: ``GradCam(backbone, head)(batch)`` for every batch of ``--batch`` clips:
  forward, gradient of the predicted class's logit w.r.t. the default layer, map,
  trilinear upsampling to (T, H, W), normalisation; tensors out;
- **pytorch-grad-cam**: ``GradCAM(model, [layer])(batch, None)`` on the same
  ``VideoClassifier`` (backbone + head), same layer, same predicted class: its forward,
  ``loss.backward()``, map, ``scipy.ndimage.zoom`` to (T, H, W), min-max normalisation;
  numpy out.

Reported per setting: the median seconds per clip of each over the repeats,
``speedup`` = theirs / ours (>= 1: bebias at least as fast), and the agreement of the
maps on every clip: the Pearson correlation at the layer's resolution (the Grad-CAM
itself) and at the clip's resolution (where the two differ by their interpolation:
trilinear at half-pixel centres vs a cubic spline with aligned corners), min over clips.
Timings are meaningful only on an otherwise idle machine (``loadavg`` is recorded).

Usage: ``python bench/bench_cam.py [--videos 8] [--out reports/bench/cam.json]``;
smoke test: ``python bench/bench_cam.py --videos 2 --settings small3d:8:2:32 --repeats 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

import bebias
from bebias.data.open import open_data
from bebias.data.sampling import center_clip
from bebias.data.transforms import ClipSpec, eval_transform
from bebias.models.cam import GradCam, find_layer
from bebias.models.open import open_model
from bebias.probing.suite import select_videos
from bebias.training.finetune import FinetuneConfig, finetune

DATA = "synthetic"


def log(msg: str) -> None:
    print(f"[bench_cam] {msg}", file=sys.stderr, flush=True)


def setting(text: str) -> tuple[str, int, int, int]:
    """``arch:frames:stride:size``."""
    arch, frames, stride, size = text.split(":")
    return arch, int(frames), int(stride), int(size)


def clips(spec: ClipSpec, n: int) -> torch.Tensor:
    """(n, 3, T, S, S): the transformed centre clips of n class-balanced conflict videos."""
    data = open_data(DATA, split="conflict")
    tf = eval_transform(spec)
    labels = [r.label for r in data.videos.records]
    xs = []
    for i in select_videos(labels, n):
        rec = data.videos.records[i]
        xs.append(tf(data.decoder.read(rec, center_clip(data.decoder.num_frames(rec), spec.frames, spec.stride))))
    return torch.stack(xs)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


def main() -> None:
    from pytorch_grad_cam import GradCAM  # a test/bench-only dependency (grad-cam on PyPI)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="small3d:8:2:32,r3d_18:16:1:112",
                    help="comma-separated arch:frames:stride:size")
    ap.add_argument("--videos", type=int, default=8, help="clips explained per repeat (class-balanced videos)")
    ap.add_argument("--batch", type=int, default=4, help="clips per call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    results = []
    root = tempfile.mkdtemp(prefix="bench_cam_")
    try:
        for text in a.settings.split(","):
            arch, frames, stride, size = setting(text)
            log(f"{arch} {frames}x{size}: building a classifier checkpoint")
            ckpt = finetune(FinetuneConfig(data="synthetic:videos_per_class=2", arch=arch, frames=frames,
                                           stride=stride, size=size, batch_size=2, max_steps=1, workers=0,
                                           precision="fp32", out=os.path.join(root, f"{arch}-{frames}x{stride}x{size}-ckpt"))).model_path
            m = open_model(ckpt)
            net = m.classifier()
            spec = ClipSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.meta["input"].items()})
            x = clips(spec, a.videos)
            batches = [x[s:s + a.batch] for s in range(0, len(x), a.batch)]
            ours_cam = GradCam(m.backbone, m.head)
            layer = find_layer(m.backbone, ours_cam.layer_name)
            theirs_cam = GradCAM(net, [layer])
            ours_s, theirs_s = [], []
            # warm-up (first-call allocations) and the agreement of the maps, clip by clip
            raw_c, full_c = [], []
            for xb in batches:
                o = ours_cam(xb)
                t = theirs_cam(xb, None)
                ag = theirs_cam.activations_and_grads
                t_raw = np.maximum(theirs_cam.get_cam_image(xb, layer, None, ag.activations[0].numpy(),
                                                            ag.gradients[0].numpy()), 0)
                raw_c += [corr(o.raw[b], t_raw[b]) for b in range(len(xb))]
                full_c += [corr(o.cams[b], t[b]) for b in range(len(xb))]
            for r in range(a.repeats):
                t0 = time.perf_counter()
                for xb in batches:
                    ours_cam(xb)
                ours_s.append((time.perf_counter() - t0) / len(x))
                t0 = time.perf_counter()
                for xb in batches:
                    theirs_cam(xb, None)
                theirs_s.append((time.perf_counter() - t0) / len(x))
                log(f"{arch}: bebias {ours_s[-1]:.3f} s/clip, pytorch-grad-cam {theirs_s[-1]:.3f} s/clip")
            theirs_cam.activations_and_grads.release()
            ours_med, theirs_med = statistics.median(ours_s), statistics.median(theirs_s)
            results.append({
                "arch": arch, "frames": frames, "stride": stride, "size": size, "layer": ours_cam.layer_name,
                "clips": len(x), "batch": a.batch, "repeats": a.repeats,
                "bebias_s_per_clip": round(ours_med, 4), "pytorch_grad_cam_s_per_clip": round(theirs_med, 4),
                "speedup": round(theirs_med / ours_med, 2), "target": 1.0,
                "corr_layer_resolution_min": round(min(raw_c), 6), "corr_clip_resolution_min": round(min(full_c), 4),
                "corr_clip_resolution_mean": round(float(np.mean(full_c)), 4),
                "bebias_s_per_clip_all": [round(v, 4) for v in ours_s],
                "pytorch_grad_cam_s_per_clip_all": [round(v, 4) for v in theirs_s],
            })
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import importlib.metadata as md

    res = {"results": results, "torch_threads": torch.get_num_threads(),
           "wall_s": round(time.perf_counter() - t_all, 1),
           "loadavg_start": [round(v, 2) for v in load_start], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
           "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch": torch.__version__,
           "grad_cam": md.version("grad-cam"), "bebias": bebias.__version__}
    print(json.dumps(res, indent=2))
    if a.out:
        from bebias.atomic import write_json

        write_json(a.out, res)


if __name__ == "__main__":
    main()
