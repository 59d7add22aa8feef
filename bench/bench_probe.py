"""Probe throughput: ``bebias probe`` with every variant vs pure inference on the same clips.

For each model setting (``--settings``; default: the embedded benchmark's own small3d at
8 x 32 px, and r3d_18 at 16 x 112 px, the size a researcher probes a real video model at)
it builds a classifier checkpoint (``finetune`` with ``max_steps=1``: the weights do not
change the cost), then measures, in one process:

- **probe**: ``run_probe`` with EVERY variant (:data:`bebias.probing.run.ALL_VARIANTS`) on
  ``--videos`` class-balanced videos of the benchmark's ``conflict`` split, the full suite's
  parameters otherwise (1000 bootstrap replicates); wall time from the call to its return:
  rendering/decoding each video once, ground-truth and motion masks (the IoU check),
  every variant, the eval transform, the model, the metrics with their bootstrap
  intervals, the outputs. ``probe_clips_per_s`` = clips the model saw / that time.
- **inference**: the same model on the same number of clips, already transformed and in
  memory (the probed videos' original clips, cycled), in batches of the suite's batch size,
  under ``torch.no_grad``, at the same precision: ``inference_clips_per_s``.
- ``ratio`` = probe / inference clips/s (target >= 0.8): the share of the probe's time the
  model itself takes. ``metrics_s``: a second ``run_probe`` on the finished output directory
  resumes every video from ``partial.npz`` and only recomputes the metrics and outputs --
  the part of the probe that does not grow with the model's cost.

The two are run ``--repeats`` times, alternating; the best of each is reported. Timings are
meaningful only on an otherwise idle machine (``loadavg`` is recorded).

Usage: ``python bench/bench_probe.py [--videos 32] [--out reports/bench/probe.json]``;
smoke test: ``python bench/bench_probe.py --videos 4 --settings small3d:8:2:32 --repeats 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

import bebias
from bebias.data.open import open_data
from bebias.data.sampling import center_clip
from bebias.data.transforms import eval_transform
from bebias.models.open import load_classifier
from bebias.probing.run import ALL_VARIANTS, ProbeConfig, ProbeSuite, run_probe
from bebias.training.finetune import FinetuneConfig, finetune

DATA = "synthetic"


def log(msg: str) -> None:
    print(f"[bench_probe] {msg}", file=sys.stderr, flush=True)


def setting(text: str) -> tuple[str, int, int, int]:
    """``arch:frames:stride:size``."""
    arch, frames, stride, size = text.split(":")
    return arch, int(frames), int(stride), int(size)


def inference_rate(ckpt: str, clips: int, videos: list[int], batch: int, precision: str) -> float:
    """clips/s of the bare model on in-memory, transformed original clips of ``videos``."""
    model, meta = load_classifier(ckpt, torch.device("cpu"))
    spec_d = meta["input"]
    from bebias.data.transforms import ClipSpec

    spec = ClipSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec_d.items()})
    data = open_data(DATA, split="conflict")
    tf = eval_transform(spec)
    xs = []
    for i in videos:
        rec = data.videos.records[i]
        idx = center_clip(data.decoder.num_frames(rec), spec.frames, spec.stride)
        xs.append(tf(data.decoder.read(rec, idx)))
    pool = torch.stack(xs)
    order = np.arange(clips) % len(pool)
    batches = [pool[order[s:s + batch]] for s in range(0, clips, batch)]
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.no_grad(), amp:
        model(batches[0])  # warm-up
        t = time.perf_counter()
        for x in batches:
            torch.softmax(model(x).float(), dim=1)
        return clips / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="small3d:8:2:32,r3d_18:16:1:112",
                    help="comma-separated arch:frames:stride:size")
    ap.add_argument("--videos", type=int, default=32, help="videos probed (class-balanced)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    results = []
    root = tempfile.mkdtemp(prefix="bench_probe_")
    try:
        for text in a.settings.split(","):
            arch, frames, stride, size = setting(text)
            log(f"{arch} {frames}x{size}: building a classifier checkpoint")
            # a few training videos suffice: one step, and the weights do not change the cost
            ckpt = finetune(FinetuneConfig(data="synthetic:videos_per_class=2", arch=arch, frames=frames, stride=stride, size=size,
                                           batch_size=2, max_steps=1, workers=0, precision="fp32",
                                           out=os.path.join(root, f"{arch}-{frames}x{stride}x{size}-ckpt"))).model_path
            suite = ProbeSuite(name="bench", variants=ALL_VARIANTS[1:], max_videos=a.videos)
            videos: list[int] = []
            probe_t, infer_r, metrics_t, clips = [], [], [], 0
            for r in range(a.repeats):
                out = os.path.join(root, f"{arch}-probe-{r}")
                t = time.perf_counter()
                res = run_probe(ProbeConfig(ckpt, data=DATA, suite=suite, out=out, precision=a.precision))
                probe_t.append(time.perf_counter() - t)
                with open(res.predictions_path) as f:
                    clips = sum(1 for _ in f) - 1
                os.remove(res.metrics_path)
                t = time.perf_counter()
                run_probe(ProbeConfig(ckpt, data=DATA, suite=suite, out=out, precision=a.precision))
                metrics_t.append(time.perf_counter() - t)
                with open(res.predictions_path) as f:  # the probed videos (first column: index)
                    videos = sorted({int(line.split(",")[0]) for line in list(f)[1:]})
                infer_r.append(inference_rate(ckpt, clips, videos, suite.batch_size, a.precision))
                log(f"{arch}: probe {clips / probe_t[-1]:.1f} clips/s, inference {infer_r[-1]:.1f} clips/s")
            probe_rate = clips / min(probe_t)
            inf = max(infer_r)
            results.append({
                "arch": arch, "frames": frames, "stride": stride, "size": size, "videos": a.videos,
                "variants": len(ALL_VARIANTS), "clips": clips, "probe_s": round(min(probe_t), 2),
                "probe_clips_per_s": round(probe_rate, 2), "inference_clips_per_s": round(inf, 2),
                "ratio": round(probe_rate / inf, 3), "target": 0.8, "metrics_s": round(min(metrics_t), 2),
                "probe_s_all": [round(x, 2) for x in probe_t], "inference_clips_per_s_all": [round(x, 2) for x in infer_r],
            })
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {"results": results, "precision": a.precision, "torch_threads": torch.get_num_threads(),
           "wall_s": round(time.perf_counter() - t_all, 1), "loadavg_start": [round(x, 2) for x in load_start],
           "loadavg_end": [round(x, 2) for x in os.getloadavg()],
           "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch": torch.__version__,
           "bebias": bebias.__version__}
    print(json.dumps(res, indent=2))
    if a.out:
        from bebias.atomic import write_json

        write_json(a.out, res)


if __name__ == "__main__":
    main()
