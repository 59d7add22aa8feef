"""Pre-training throughput: the real ``pretrain()`` path vs the bare model step, BE's cost, bf16.

Everything runs in ONE process on the default pre-training configuration
(``PretrainConfig()``: small3d, 8 frames stride 2, 32 px, batch 32, method ``be`` with the
intra-video negative, bf16, DataLoader workers as ``bebias.data.loader.resolve_workers`` picks them for
this machine: 0 on a CPU whose cores torch's threads occupy), on the ``train`` split of ``--data``
(default: the embedded benchmark, rendered into memory before anything is timed).
``--batch-size``, ``--precision``, ``--workers`` and ``--data`` override those defaults.

Measured, in this order:

1. **End-to-end** (``e2e_clips_per_s``): ``bebias.training.pretrain.pretrain(cfg)`` itself,
   with ``max_steps = warmup + steps``, in-process. Its ``progress`` callback (called after
   every optimizer step) is timestamped; the rate is ``steps * batch`` clips over the time
   from the end of step ``warmup`` to the end of step ``warmup + steps``. So it includes
   everything a training step costs in a real run: waiting for the DataLoader (decode +
   augmentation of 2 views + the intra negative in the worker, competing for the same
   cores), collation, ``make_query`` (BE mixing), the lr schedule, ``MoCo.forward``,
   backward, the non-finite-gradient check, ``optimizer.step`` and ``loss.item()``. It
   excludes the warm-up steps, prerendering, model construction, DataLoader start-up and
   the checkpoints written at the end of the run. An epoch boundary (a checkpoint save and
   a new DataLoader) falls inside the window only if ``warmup + steps`` exceeds one epoch
   (64 steps at the defaults); ``epoch_boundaries_in_window`` says how many did.
   For reference, ``e2e_clips_per_s_metrics_jsonl`` is the last ``clips_per_s`` the run
   wrote to its ``metrics.jsonl`` (cumulative from its first step: warm-up included).

   The same run is then repeated with the other of 0 / 1 workers
   (``e2e_clips_per_s_with_N_workers``, ``efficiency_with_N_workers``), so the choice of
   the default is measured, not assumed.

2. **Bare model step** on in-memory random tensors of the same shapes (views
   (B,2,3,T,H,W), negative (B,3,T,H,W), float32, already on the device), no data loading:
   ``make_query`` -> ``MoCo.forward(x_q, x_k, x_neg)`` under the run's autocast (query
   forward+backward, key forward, intra-negative forward+backward, momentum update,
   enqueue) -> ``loss.backward()`` -> ``optimizer.step()``. The model and optimizer are
   built exactly as ``pretrain`` builds them. Three variants share one model:

   - ``model``:    method ``moco`` with the intra negative (``make_query`` is the identity),
                   at ``--precision``: the pure model cost;
   - ``be``:       method ``be`` (BE mixing in ``make_query``), at ``--precision``;
   - ``other``:    as ``model`` at the other precision (fp32 <-> bf16).

   Each variant first runs ``--warmup`` untimed steps; then ``--repeats`` rounds run one
   timed block of ``steps / repeats`` steps of each variant in turn (model, be, other,
   model, be, other, ...), so slow drift hits all alike; per-step times are medians over
   the blocks. On CUDA each block ends with a synchronise.

Results:

- ``efficiency`` = e2e clips/s / bare ``model`` clips/s (target >= 0.85). Everything the
  pipeline adds to the model counts against it, BE mixing included;
  ``efficiency_vs_bare_be`` divides by the bare ``be`` step instead (data loading and step
  bookkeeping only).
- ``be_overhead`` = median over rounds of (be block time / model block time) - 1, the
  adjacent blocks paired (target <= 0.03); ``be_overhead_of_medians`` is the ratio of the
  medians - 1. Since the difference of two noisy multi-second blocks is itself noisy,
  ``be_mixing_ms`` also times ``make_query(be)`` alone (median of many calls on the same
  batch) and ``be_mixing_share`` = that / the bare model step.
- ``bf16_speedup`` = fp32 bare step time / bf16 bare step time (> 1: bf16 is faster).
- ``peak_rss_mib``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` right after the
  end-to-end run (the process high-water mark, so it includes the prerendered data set
  and the imports; ``rss_before_train_mib`` is the same mark just before ``pretrain``).
  ``worker_peak_rss_mib``: VmHWM of the DataLoader worker process(es) read from /proc at
  the last step (Linux only; a forked worker's RSS counts the parent's pages it touches,
  so it is not additive with the parent's). ``cuda_max_memory_allocated_mib`` on CUDA.

Timings are only meaningful on an otherwise idle machine: ``loadavg_start``/``loadavg_end``
record the load. On an oversubscribed CPU, torch's intra-op thread pool stalls in every
parallel region waiting for a descheduled thread (seen here: a bare bf16 step at batch 32
took ~9.6 s with 2 threads on 2 busy cores, 0.73 s with ``--threads 1``). The end-to-end
run itself puts the DataLoader worker next to torch's threads, which is part of what it
measures. ``--threads N`` calls ``torch.set_num_threads(N)`` before everything (both
measurements); the default leaves torch's default, as ``bebias train`` does.

Work at the defaults: the benchmark's 2048 train videos rendered in one process, then
5 + 60 end-to-end steps and 3 x (5 + 60) bare steps of batch 32 (about 1/3 of them fp32):
about 2.5 minutes on 2 idle cores. (60 rather than 30 timed steps: on this shared 2-core
machine single 30-step readings of the efficiency spread over about +-0.03.)

Usage: ``python bench/bench_train.py [--steps 60 --warmup 5 --repeats 5] [--out result.json]``;
smoke test: ``python bench/bench_train.py --steps 3 --warmup 1 --batch-size 4``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import torch

import bebias
from bebias.data.loader import resolve_workers
from bebias.data.open import open_data
from bebias.models.backbones import build_backbone
from bebias.models.device import autocast, pick_device
from bebias.models.moco import MoCo
from bebias.progress import Progress
from bebias.seeds import torch_seed
from bebias.training.pretrain import PretrainConfig, make_query, pretrain
from bebias.training.rng import seed_everything


def log(msg: str) -> None:
    print(f"[bench_train] {msg}", file=sys.stderr, flush=True)


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(r / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def children_hwm_mib() -> list[float] | None:
    """Peak RSS (VmHWM) of this process's live children, from /proc (None where unavailable)."""
    pids: set[str] = set()
    try:
        for f in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
            with open(f) as fh:
                pids.update(fh.read().split())
        out = []
        for pid in sorted(pids):
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        out.append(round(int(line.split()[1]) / 1024, 1))
        return out if pids else None
    except OSError:
        return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- end to end


def end_to_end(cfg: PretrainConfig, data, warmup: int, steps: int) -> dict:
    """``pretrain(cfg)`` for warmup + steps steps; clips/s over the last ``steps``."""
    stamps: dict[int, float] = {}
    workers_rss: list[list[float] | None] = [None]
    total = warmup + steps

    def progress(p: Progress) -> None:
        stamps[p.done] = time.perf_counter()
        if p.done == total:
            workers_rss[0] = children_hwm_mib()

    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        run_cfg = dataclasses.replace(cfg, max_steps=total, out=out)
        t0 = time.perf_counter()
        res = pretrain(run_cfg, progress=progress, data=data)
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
            rows = [json.loads(ln) for ln in f if ln.strip()]
    if res.steps != total or warmup not in stamps or total not in stamps:
        raise RuntimeError(f"pretrain stopped at step {res.steps} of {total}")
    window = stamps[total] - stamps[warmup]
    steps_per_epoch = max(len(data.videos) // cfg.batch_size, 1)
    return {
        "clips_per_s": steps * cfg.batch_size / window,
        "s_per_step": window / steps,
        "window_s": window,
        "run_wall_s": wall,
        "metrics_jsonl_clips_per_s": rows[-1]["clips_per_s"] if rows else None,
        "final_loss": res.final_loss,
        "skipped_steps": res.skipped_steps,
        "steps_per_epoch": steps_per_epoch,
        # an epoch ends after step k*spe; inside the window when warmup <= k*spe < total
        "epoch_boundaries_in_window": (total - 1) // steps_per_epoch - (warmup - 1) // steps_per_epoch,
        "worker_peak_rss_mib": workers_rss[0],
    }


# ----------------------------------------------------------------------------- bare step


def build(cfg: PretrainConfig, device: torch.device) -> tuple[MoCo, torch.optim.Optimizer]:
    """The model and optimizer exactly as ``pretrain`` builds them (single process)."""
    seed_everything(cfg.seed)
    moco = MoCo(build_backbone(cfg.arch, pretrained=cfg.pretrained), dim=cfg.dim, queue_size=cfg.queue_size,
                momentum=cfg.momentum, temperature=cfg.temperature, mlp=cfg.mlp, symmetric=cfg.symmetric,
                shuffle_bn=cfg.shuffle_bn).to(device)
    params = [p for p in moco.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    moco.train()
    return moco, opt


class Bare:
    """One bare MoCo step variant: ``make_query`` for ``cfg.method``, forward under
    ``cfg.precision``'s autocast, backward, optimizer step; inputs fixed in memory."""

    def __init__(self, name: str, cfg: PretrainConfig, moco: MoCo, opt: torch.optim.Optimizer,
                 views: torch.Tensor, neg: torch.Tensor | None, device: torch.device) -> None:
        self.name, self.cfg, self.moco, self.opt = name, cfg, moco, opt
        self.views, self.neg, self.device = views, neg, device
        self.step_no = 0
        self.block_s_per_step: list[float] = []

    def step(self) -> None:
        cfg = self.cfg
        g = torch.Generator().manual_seed(torch_seed(cfg.seed, "query", self.step_no, 0))  # as pretrain's step
        self.step_no += 1
        x_q = make_query(self.views[:, 0], cfg, g)
        with autocast(self.device, cfg.precision):
            out = self.moco(x_q, self.views[:, 1], self.neg)
        loss = out["loss"].float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def run(self, n: int, timed: bool) -> None:
        sync(self.device)
        t = time.perf_counter()
        for _ in range(n):
            self.step()
        sync(self.device)
        if timed:
            self.block_s_per_step.append((time.perf_counter() - t) / n)

    @property
    def s_per_step(self) -> float:
        return statistics.median(self.block_s_per_step)


def mixing_ms(cfg_be: PretrainConfig, views: torch.Tensor, device: torch.device, calls: int) -> float:
    """Median wall time of ``make_query`` for method ``be`` alone (generator creation included)."""
    times = []
    for i in range(calls + 3):
        sync(device)
        t = time.perf_counter()
        make_query(views[:, 0], cfg_be, torch.Generator().manual_seed(i))
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def bare_steps(cfg: PretrainConfig, device: torch.device, warmup: int, block: int, repeats: int,
               other_block: int | None = None) -> dict:
    """Bare steps of the model, BE and the other precision, interleaved; ``other_block`` caps
    the other precision's warm-up and blocks (bf16 without bf16 kernels is ~36x slower)."""
    n_other = block if other_block is None else other_block
    moco, opt = build(cfg, device)
    B, T, S = cfg.batch_size, cfg.frames, cfg.size
    gen = torch.Generator().manual_seed(cfg.seed)
    views = torch.randn(B, 2, 3, T, S, S, generator=gen).to(device)
    neg = torch.randn(B, 3, T, S, S, generator=gen).to(device) if cfg.use_intra_negative else None
    other = "fp32" if cfg.precision == "bf16" else "bf16"
    cfg_model = dataclasses.replace(cfg, method="moco", intra_negative=cfg.use_intra_negative)
    variants = [Bare("model", cfg_model, moco, opt, views, neg, device),
                Bare("be", cfg, moco, opt, views, neg, device),
                Bare("other", dataclasses.replace(cfg_model, precision=other), moco, opt, views, neg, device)]
    steps = {"model": block, "be": block, "other": n_other}
    for v in variants:
        w = min(warmup, steps[v.name])
        log(f"bare {v.name} ({v.cfg.method}, {v.cfg.precision}): {w} warm-up steps")
        v.run(w, timed=False)
    for r in range(repeats):
        for v in variants:
            log(f"bare round {r + 1}/{repeats}: {v.name}, {steps[v.name]} steps")
            v.run(steps[v.name], timed=True)
    model, be, oth = variants
    paired = [b / m for b, m in zip(be.block_s_per_step, model.block_s_per_step)]
    mix = mixing_ms(cfg, views, device, calls=20)
    t_fp32, t_bf16 = (oth.s_per_step, model.s_per_step) if other == "fp32" else (model.s_per_step, oth.s_per_step)
    return {
        "model": model, "be": be, "other": oth, "other_precision": other,
        "be_overhead": statistics.median(paired) - 1, "be_overhead_of_medians": be.s_per_step / model.s_per_step - 1,
        "be_mixing_ms": mix, "be_mixing_share": mix / 1e3 / model.s_per_step,
        "bf16_speedup": t_fp32 / t_bf16,
    }


# ----------------------------------------------------------------------------- main


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"machine": f"{platform.machine()} {os.cpu_count()} cpus", "cpu": cpu,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "bebias": getattr(bebias, "__version__", None),
            "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main() -> None:
    d = PretrainConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60,
                    help="timed steps of the end-to-end run, and of each bare variant (split into --repeats blocks)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones (>= 1)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved timed blocks per bare variant")
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--precision", choices=("bf16", "fp32"), default=d.precision)
    ap.add_argument("--workers", type=int, default=d.workers,
                    help="DataLoader workers of the end-to-end run (default: bebias's own choice for this machine, "
                         "bebias.data.loader.resolve_workers; the other of 0/1 is measured too, for comparison)")
    ap.add_argument("--data", default=d.data, help="--data of the run (its train split); default: the benchmark")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for the whole benchmark (default: torch's default)")
    ap.add_argument("--other-steps", type=int, default=None,
                    help="steps per timed block (and at most this many warm-up steps) at the other precision; "
                         "default: as the others")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 1 or a.repeats < 1 or a.batch_size < 1:
        ap.error("--steps, --warmup, --repeats and --batch-size must be >= 1")

    if a.threads is not None:
        if a.threads < 1:
            ap.error("--threads must be >= 1")
        torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    cfg = dataclasses.replace(d, batch_size=a.batch_size, precision=a.precision, workers=a.workers, data=a.data)
    device = pick_device(cfg.device)
    block = max(1, round(a.steps / a.repeats))

    log(f"rendering the {cfg.split!r} split of {cfg.data!r} into memory")
    t = time.perf_counter()
    data = open_data(cfg.data, split=cfg.split, dataset=cfg.dataset, fold=cfg.fold, annotations=cfg.annotations,
                     frame_template=cfg.frame_template)
    if data.synth is not None:
        data.synth.prerender(cfg.split, workers=1)  # in-process: no pool children to blur the RSS figures
    prerender_s = time.perf_counter() - t

    rss_before = maxrss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    log(f"end-to-end pretrain(): {a.warmup} warm-up + {a.steps} timed steps, batch {cfg.batch_size}")
    workers = resolve_workers(cfg.workers, device)
    cfg = dataclasses.replace(cfg, workers=workers)
    e2e = end_to_end(cfg, data, a.warmup, a.steps)
    rss_peak = maxrss_mib()
    alt_workers = 1 if workers == 0 else 0
    log(f"end-to-end again with {alt_workers} worker(s), for comparison")
    alt = end_to_end(dataclasses.replace(cfg, workers=alt_workers), data, a.warmup, a.steps)
    cuda_peak = round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None

    bare = bare_steps(cfg, device, a.warmup, block, a.repeats, a.other_steps)
    model, be, oth = bare["model"], bare["be"], bare["other"]
    B = cfg.batch_size
    res = {
        "config": {"arch": cfg.arch, "method": cfg.method, "intra_negative": cfg.use_intra_negative,
                   "frames": cfg.frames, "stride": cfg.stride, "size": cfg.size, "batch_size": B,
                   "precision": cfg.precision, "workers": cfg.workers, "data": cfg.data, "split": cfg.split,
                   "videos": len(data.videos), "queue_size": cfg.queue_size, "optimizer": cfg.optimizer},
        "steps": a.steps, "warmup": a.warmup, "repeats": a.repeats, "bare_block_steps": block,
        "e2e_clips_per_s": round(e2e["clips_per_s"], 2),
        "e2e_s_per_step": round(e2e["s_per_step"], 4),
        f"e2e_clips_per_s_with_{alt_workers}_workers": round(alt["clips_per_s"], 2),
        f"efficiency_with_{alt_workers}_workers": round(alt["clips_per_s"] * model.s_per_step / B, 3),
        "e2e_clips_per_s_metrics_jsonl": e2e["metrics_jsonl_clips_per_s"],
        "e2e_final_loss": round(e2e["final_loss"], 4) if e2e["final_loss"] == e2e["final_loss"] else None,
        "e2e_skipped_steps": e2e["skipped_steps"],
        "epoch_boundaries_in_window": e2e["epoch_boundaries_in_window"],
        "bare_model_clips_per_s": round(B / model.s_per_step, 2),
        "bare_be_clips_per_s": round(B / be.s_per_step, 2),
        f"bare_model_{bare['other_precision']}_clips_per_s": round(B / oth.s_per_step, 2),
        "bare_block_s_per_step": {f"model_{cfg.precision}": [round(x, 4) for x in model.block_s_per_step],
                                  f"be_{cfg.precision}": [round(x, 4) for x in be.block_s_per_step],
                                  f"model_{bare['other_precision']}": [round(x, 4) for x in oth.block_s_per_step]},
        "efficiency": round(e2e["clips_per_s"] * model.s_per_step / B, 3),
        "efficiency_vs_bare_be": round(e2e["clips_per_s"] * be.s_per_step / B, 3),
        "efficiency_target": 0.85,
        "be_overhead": round(bare["be_overhead"], 4),
        "be_overhead_of_medians": round(bare["be_overhead_of_medians"], 4),
        "be_overhead_target": 0.03,
        "be_mixing_ms": round(bare["be_mixing_ms"], 3),
        "be_mixing_share": round(bare["be_mixing_share"], 4),
        "bf16_speedup": round(bare["bf16_speedup"], 3),
        "rss_before_train_mib": rss_before,
        "peak_rss_mib": rss_peak,
        "worker_peak_rss_mib": e2e["worker_peak_rss_mib"],
        "cuda_max_memory_allocated_mib": cuda_peak,
        "prerender_s": round(prerender_s, 1),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        **machine_info(device),
    }
    print(json.dumps(res, indent=2))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
