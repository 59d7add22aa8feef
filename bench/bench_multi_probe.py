"""Many checkpoints, one pass: ``bebias probe A B C D`` vs the pure inference of the same models.

Builds ``--models`` classifier checkpoints of one setting (``--setting``, default the
benchmark's small3d at 8 x 32 px; ``finetune`` with ``max_steps=1`` and a different seed
each: the weights do not change the cost), then measures, in one process:

- **pass**: :func:`bebias.probing.run.run_probes` of all of them with EVERY variant on
  ``--videos`` class-balanced videos of the benchmark's ``conflict`` split, the full
  suite's parameters otherwise; wall time from the call to its return (each video
  rendered, masked and varied ONCE, every model on every clip, each model's metrics with
  their bootstrap intervals, the outputs);
- **inference**: each model alone on the same number of clips, already transformed and in
  memory (:func:`bench_probe.inference_rate`), under ``torch.no_grad``;
- ``ratio`` = the sum of the models' pure-inference times / the pass's time (target >= 0.8
  for 4 small3d-sized models): the share of the pass the models themselves take.
  ``ratio_single`` (with ``--single``): the same for a probe of the first model alone.

Best of ``--repeats``. Meaningful only on an otherwise idle machine (``loadavg`` recorded).

Usage: ``python bench/bench_multi_probe.py [--models 4] [--videos 32] [--out reports/bench/multi_probe.json]``;
smoke test: ``python bench/bench_multi_probe.py --models 2 --videos 3 --repeats 1 --n-boot 20``.
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

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bebias  # noqa: E402
from bench_probe import DATA, inference_rate, setting  # noqa: E402

from bebias.probing.run import ALL_VARIANTS, ProbeConfig, ProbeSuite, run_probes  # noqa: E402
from bebias.training.finetune import FinetuneConfig, finetune  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench_multi_probe] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", default="small3d:8:2:32", help="arch:frames:stride:size of every model")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--videos", type=int, default=32, help="videos probed (class-balanced)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=None, help="bootstrap replicates (default: the full suite's)")
    ap.add_argument("--single", action="store_true", help="also time a probe of the first model alone")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    arch, frames, stride, size = setting(a.setting)
    root = tempfile.mkdtemp(prefix="bench_multi_probe_")
    try:
        log(f"building {a.models} {arch} {frames}x{size} checkpoints")
        ckpts = [finetune(FinetuneConfig(data="synthetic:videos_per_class=2", arch=arch, frames=frames, stride=stride,
                                         size=size, batch_size=2, max_steps=1, workers=0, precision="fp32", seed=k,
                                         out=os.path.join(root, f"ckpt{k}"))).model_path for k in range(a.models)]
        kw = {"n_boot": a.n_boot} if a.n_boot else {}
        suite = ProbeSuite(name="bench", variants=ALL_VARIANTS[1:], max_videos=a.videos, **kw)
        pass_t, single_t, infer, clips, videos = [], [], [], 0, []
        for r in range(a.repeats):
            cfgs = [ProbeConfig(c, data=DATA, suite=suite, out=os.path.join(root, f"pass{r}", f"m{k}"),
                                precision=a.precision) for k, c in enumerate(ckpts)]
            t = time.perf_counter()
            res = run_probes(cfgs)
            pass_t.append(time.perf_counter() - t)
            with open(res[0].predictions_path) as f:
                lines = list(f)[1:]
            clips = len(lines)
            videos = sorted({int(line.split(",")[0]) for line in lines})
            if a.single:
                t = time.perf_counter()
                run_probes([ProbeConfig(ckpts[0], data=DATA, suite=suite, out=os.path.join(root, f"single{r}"),
                                        precision=a.precision)])
                single_t.append(time.perf_counter() - t)
            # clips/s of each model alone on the pass's original clips, cycled to the pass's clip count
            infer.append([inference_rate(c, clips, videos, suite.batch_size, a.precision) for c in ckpts])
            inf_s = sum(clips / x for x in infer[-1])
            log(f"pass {pass_t[-1]:.2f} s for {a.models} x {clips} clips; pure inference {inf_s:.2f} s; "
                f"ratio {inf_s / pass_t[-1]:.3f}")
        best = [max(rates[k] for rates in infer) for k in range(a.models)]  # each model's best rate
        inference_s = sum(clips / x for x in best)
        out = {
            "arch": arch, "frames": frames, "stride": stride, "size": size, "models": a.models, "videos": len(videos),
            "variants": len(ALL_VARIANTS), "clips_per_model": clips, "pass_s": round(min(pass_t), 2),
            "inference_s": round(inference_s, 2), "ratio": round(inference_s / min(pass_t), 3), "target": 0.8,
            "pass_s_all": [round(x, 2) for x in pass_t],
            "inference_clips_per_s": [round(x, 2) for x in best],
            "n_boot": suite.n_boot,
        }
        if single_t:
            out["single_probe_s"] = round(min(single_t), 2)
            out["ratio_single"] = round(clips / best[0] / min(single_t), 3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res_all = {"results": [out], "precision": a.precision, "torch_threads": torch.get_num_threads(),
               "wall_s": round(time.perf_counter() - t_all, 1), "loadavg_start": [round(x, 2) for x in load_start],
               "loadavg_end": [round(x, 2) for x in os.getloadavg()],
               "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch": torch.__version__,
               "bebias": bebias.__version__}
    print(json.dumps(res_all, indent=2))
    if a.out:
        from bebias.atomic import write_json

        write_json(a.out, res_all)


if __name__ == "__main__":
    main()
