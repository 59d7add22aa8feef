"""MoCo vs MoCo+BE and its ablations on the embedded benchmark (``bebias compare``).

For every variant and seed: pre-train with the SAME budget (the config's steps, fixed
before any run), then read the representation out with linear probes trained on

- ``train`` (biased labels: the probe may use the background), and
- ``train-unbiased`` (labels carry no background information: what does the representation
  know about motion?),

and report top-1 on ``iid`` and ``conflict`` and the background-follow rate on
``conflict``, as mean ± std over seeds. A randomly initialised encoder is the floor.

Linear probes are logistic regressions on frozen, pooled features of the centre clip
(one forward pass per video; full-batch L-BFGS), which makes a probe take seconds instead
of a training run and has no augmentation or schedule to tune.
Everything is resumable: finished pre-training runs and feature files are reused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from bebias.atomic import output_dir, write_json, write_text
from bebias.checkpoint import load_checkpoint
from bebias.data.open import open_data, parse_synth_spec
from bebias.data.synth import SynthBenchmark
from bebias.errors import BebiasError
from bebias.parse import read_json
from bebias.progress import Progress, ProgressFn, scoped
from bebias.models.backbones import build_backbone
from bebias.models.inference import embed
from bebias.training.evaluate import background_follow
from bebias.training.pretrain import PretrainConfig, pretrain

#: variant -> overrides of the pre-training config. Every row differs from "moco" by switches only.
VARIANTS: dict[str, dict | None] = {
    "random-init": None,  # no pre-training: the floor
    "moco": {"method": "moco", "intra_negative": False},
    "moco+intra-neg": {"method": "moco", "intra_negative": True},
    "moco+be": {"method": "be", "intra_negative": False},
    "moco+be+intra-neg": {"method": "be", "intra_negative": True},  # the official BE recipe
    "moco+fame": {"method": "fame", "intra_negative": False},
}


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, num_classes: int, *, weight_decay: float = 1e-3,
                 iters: int = 200) -> Callable[[np.ndarray], np.ndarray]:
    """Multinomial logistic regression on standardised features (N, C) -> predict(X) -> (N,)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.from_numpy((train_x - mu) / sd).float()
    y = torch.from_numpy(train_y).long()
    w = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)

    def predict(xs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (torch.from_numpy((xs - mu) / sd).float() @ w + b).argmax(1).numpy()

    return predict


def _features(ckpt: str | None, arch: str, benchmark: SynthBenchmark, base: PretrainConfig, cache: str,
              progress: ProgressFn | None = None) -> dict:
    """Pooled features of every video of the four splits, cached in ``cache`` (.npz)."""
    if os.path.exists(cache):
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    backbone = build_backbone(arch)
    if ckpt is not None:
        backbone.load_state_dict(load_checkpoint(ckpt)["backbone"])
    out = {}
    for split in ("train", "train-unbiased", "iid", "conflict"):
        d = open_data(base.data, split=split, benchmark=benchmark)
        p = embed(backbone, d, base.clip_spec, batch_size=64, workers=0, progress=progress, stage=f"embedding {split}")
        if len(p.failures):
            raise BebiasError(f"{len(p.failures)} synthetic videos failed to render")
        fam = np.array([d.videos.records[i].meta["family"] for i in p.indices])
        out |= {f"{split}/x": p.features, f"{split}/y": p.labels, f"{split}/family": fam}
    tmp = cache + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, cache)
    return out


def probe_scores(feats: dict, num_classes: int) -> dict:
    """Two linear probes (trained on train / train-unbiased), scored on iid and conflict."""
    res = {}
    for train_split in ("train", "train-unbiased"):
        predict = linear_probe(feats[f"{train_split}/x"], feats[f"{train_split}/y"], num_classes)
        for test in ("iid", "conflict"):
            pred = predict(feats[f"{test}/x"])
            res[f"{train_split}->{test}/top1"] = float((pred == feats[f"{test}/y"]).mean())
            if test == "conflict":
                res[f"{train_split}->conflict/bg_follow"] = background_follow(pred, feats["conflict/family"])
    return res


def compare(out: str, *, variants: Sequence[str] = tuple(VARIANTS), seeds: Sequence[int] = (0, 1, 2),
            base: PretrainConfig | None = None, progress: ProgressFn | None = None) -> dict:
    """Run the grid (resumable) and write ``OUT/compare.json`` and ``OUT/compare.md``.
    ``progress``: a ``compare`` stage (runs of the grid finished) and each run's own stages
    under ``VARIANT seed SEED``."""
    base = base or PretrainConfig()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise BebiasError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not base.data.startswith("synthetic"):
        raise BebiasError("compare runs on the embedded benchmark: --data synthetic[:options]")
    benchmark = SynthBenchmark(parse_synth_spec(base.data))
    K = benchmark.cfg.classes
    rows, skipped = [], {}
    for v in variants:
        for seed in seeds:
            run = os.path.join(out, f"{v}-seed{seed}")
            output_dir(run)
            ckpt, mine = None, scoped(progress, f"{v} seed {seed}")
            if VARIANTS[v] is not None:
                cfg = replace(base, **VARIANTS[v], seed=seed, out=run)
                ckpt = os.path.join(run, "model.pth")
                if not os.path.exists(ckpt):
                    pretrain(cfg, resume=True, data=open_data(cfg.data, split=cfg.split, benchmark=benchmark),
                             progress=mine)
                skipped[f"{v}-seed{seed}"] = _skipped_updates(run)
            else:
                torch.manual_seed(seed)
            feats = _features(ckpt, base.arch, benchmark, base, os.path.join(run, "features.npz"), mine)
            rows.append({"variant": v, "seed": seed, **probe_scores(feats, K)})
            if progress:
                progress(Progress("compare", len(rows), len(variants) * len(seeds)))
    res = {"config": base.to_dict(), "seeds": list(seeds), "classes": K, "rows": rows, "skipped_updates": skipped}
    write_json(os.path.join(out, "compare.json"), res)
    write_text(os.path.join(out, "compare.md"), to_markdown(res))
    return res


def _skipped_updates(run: str) -> int | None:
    """How many updates the run skipped (its ``failures.json``); None for a run without one."""
    try:
        return len(read_json(os.path.join(run, "failures.json")).get("skipped_updates", []))
    except (BebiasError, AttributeError, TypeError):
        return None


COLUMNS = [("train->iid/top1", "biased probe: iid"), ("train->conflict/top1", "biased probe: conflict"),
           ("train->conflict/bg_follow", "biased probe: conflict bg-follow"),
           ("train-unbiased->iid/top1", "unbiased probe: iid"),
           ("train-unbiased->conflict/top1", "unbiased probe: conflict"),
           ("train-unbiased->conflict/bg_follow", "unbiased probe: conflict bg-follow")]


def to_markdown(res: dict) -> str:
    """Mean ± std (over seeds) per variant, in percent."""
    lines = ["| variant | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    by: dict[str, list[dict]] = {}
    for r in res["rows"]:
        by.setdefault(r["variant"], []).append(r)
    for v, rs in by.items():
        cells = []
        for key, _ in COLUMNS:
            vals = 100 * np.array([r[key] for r in rs])
            cells.append(f"{vals.mean():.1f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.1f}")
        lines.append(f"| {v} | {len(rs)} | " + " | ".join(cells) + " |")
    cfg = res["config"]
    lines += ["", f"Pre-training: `{cfg['arch']}`, {cfg['frames']} frames x stride {cfg['stride']} at {cfg['size']} px, "
                  f"{cfg['epochs']} epochs of batch {cfg['batch_size']} (same budget for every variant), "
                  f"{cfg['optimizer']} lr {cfg['lr']}, queue {cfg['queue_size']}, m {cfg['momentum']}, "
                  f"τ {cfg['temperature']}, {cfg['precision']}. Std over seeds (ddof 1). "
                  f"Chance = {100 / res.get('classes', 8):.1f}%."]
    skipped = res.get("skipped_updates", {})
    if skipped:
        known = [n for n in skipped.values() if n is not None]
        unknown = len(skipped) - len(known)
        lines.append(f"Updates skipped for non-finite or outlier gradients: {sum(known)} in {len(skipped)} "
                     f"pre-training runs" + (f" ({unknown} without a failures.json)" if unknown else "") + ".")
    return "\n".join(lines) + "\n"
