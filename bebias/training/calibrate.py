"""Calibration of the embedded benchmark (``bebias data calibrate``).

Trains the same supervised small model from scratch on

- ``train-unbiased`` (background independent of the class): can the motion be learnt?
  The benchmark is usable only if this reaches >= 90% top-1 on ``conflict``;
- ``train`` at several biases rho: is the background cue real but graded, not a cliff?

and reports top-1 on ``iid`` and ``conflict`` and the background-follow rate on
``conflict``. The ``conflict`` split does not depend on rho, so the rows are comparable.
Results go to ``OUT/calibration.json`` and a Markdown table ``OUT/calibration.md``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import replace

import torch

from bebias.atomic import write_json, write_text
from bebias.progress import Progress, ProgressFn, scoped
from bebias.training.evaluate import evaluate_checkpoint
from bebias.training.finetune import FinetuneConfig, finetune


def calibrate(out: str, *, biases: Sequence[float] = (0.5, 0.7, 0.9, 0.99), seeds: Sequence[int] = (0,),
              base: FinetuneConfig | None = None,
              progress: ProgressFn | None = None) -> dict:
    """Run the calibration grid; resumable (finished runs are reused). ``progress``: a
    ``calibrate`` stage (runs finished) and each training's stages under its run's name."""
    base = base or FinetuneConfig()
    runs: list[tuple[str, str, str, float | None]] = [("train-unbiased", "synthetic", "train-unbiased", None)]
    runs += [(f"train rho={b}", f"synthetic:bias={b}", "train", b) for b in biases]
    rows = []
    for name, data, split, rho in runs:
        for seed in seeds:
            run_dir = os.path.join(out, f"{split}-{'u' if rho is None else rho}-seed{seed}")
            cfg = replace(base, data=data, split=split, seed=seed, out=run_dir)
            model = os.path.join(run_dir, "model.pth")
            mine = scoped(progress, f"{name} seed {seed}")
            if not os.path.exists(model):
                finetune(cfg, resume=True, progress=mine)
            seconds = _train_seconds(run_dir)
            ev = evaluate_checkpoint(model, data=data, splits="iid,conflict", workers=base.workers, progress=mine)
            c, i = ev["splits"]["conflict"], ev["splits"]["iid"]
            rows.append({"run": name, "train_split": split, "rho": rho, "seed": seed,
                         "iid_top1": i["top1"], "conflict_top1": c["top1"],
                         "conflict_background_follow": c.get("background_follow"),
                         "conflict_per_class": c["per_class"],
                         "num_classes": c.get("num_classes"),
                         "train_minutes": None if seconds is None else round(seconds / 60, 2)})
            if progress:
                progress(Progress("calibrate", len(rows), len(runs) * len(seeds)))
    res = {"config": base.to_dict(), "rows": rows, "torch": torch.__version__,
           "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} threads"}
    write_json(os.path.join(out, "calibration.json"), res)
    write_text(os.path.join(out, "calibration.md"), to_markdown(res))
    return res


def _train_seconds(run_dir: str) -> float | None:
    """The run's own training wall time (summed over resumes, kept in its last.pth), or None
    where it is unknown (a run resumed from a state saved before bebias recorded it)."""
    from bebias.checkpoint import load_checkpoint

    last = os.path.join(run_dir, "last.pth")
    if not os.path.exists(last):
        return None
    seconds = load_checkpoint(last).get("train_seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def to_markdown(res: dict) -> str:
    lines = ["| training split | seed | iid top-1 | conflict top-1 | conflict background-follow | train minutes |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        bf, minutes = r["conflict_background_follow"], r.get("train_minutes")
        lines.append(f"| {r['run']} | {r['seed']} | {100 * r['iid_top1']:.1f} | {100 * r['conflict_top1']:.1f} | "
                     f"{'-' if bf is None else f'{100 * bf:.1f}'} | {'-' if minutes is None else f'{minutes:.1f}'} |")
    cfg = res["config"]
    lines += ["", f"Model `{cfg['arch']}` from scratch, {cfg['frames']} frames x stride {cfg['stride']} at "
                  f"{cfg['size']} px, {cfg['epochs']} epochs, batch {cfg['batch_size']}, {cfg['optimizer']} "
                  f"lr {cfg['lr']}, {cfg['precision']}; {res['machine']}; torch {res['torch']}.",
              "Chance = 12.5% top-1; background-follow = P(prediction = the class whose usual scene is the "
              "background)."]
    return "\n".join(lines) + "\n"
