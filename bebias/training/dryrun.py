"""``--dry-run``: check a training config against a dataset and project its wall time.

Before a run of days, a user wants to know that the config, the dataset root and the
device work together, and how long the whole thing will take. :func:`dry_run` opens the
data (every split-file and layout check of the real run), builds the model and the
optimizer, runs a few real steps in a temporary directory, and projects the full run from
the median time of the steps after the first (which pays one-off costs).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace
from typing import Any

from bebias.data.open import open_data
from bebias.errors import BebiasError
from bebias.training.finetune import FinetuneConfig, finetune
from bebias.training.pretrain import PretrainConfig, pretrain


def dry_run(cfg: PretrainConfig | FinetuneConfig, *, steps: int = 4) -> dict[str, Any]:
    """Validate ``cfg`` on its data, time ``steps`` steps, and project the full run.

    Returns a JSON-able dict: ``videos`` (in the training split), ``steps_per_epoch``,
    ``total_steps``, ``timed_steps``, ``seconds_per_step`` (median after the first),
    ``projected_seconds`` and ``device``. Nothing is written outside a temporary folder.
    """
    if steps < 2:
        raise BebiasError(f"a dry run times at least 2 steps (the first pays one-off costs), got {steps}")
    data = open_data(cfg.data, split=cfg.split, dataset=cfg.dataset, fold=cfg.fold, annotations=cfg.annotations,
                     frame_template=cfg.frame_template)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = max(len(data.videos) // (cfg.batch_size * world), 1)
    total = cfg.max_steps or cfg.epochs * per_epoch
    stamps: list[float] = []
    run = pretrain if isinstance(cfg, PretrainConfig) else finetune
    with tempfile.TemporaryDirectory(prefix="bebias-dry-run-") as tmp:
        run(replace(cfg, max_steps=steps, out=tmp), data=data, progress=lambda p: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    if not gaps:
        raise BebiasError("the dry run finished fewer than 2 steps; is the split smaller than one batch?", cfg.data)
    per_step = statistics.median(gaps)
    return {"videos": len(data.videos), "split": cfg.split, "steps_per_epoch": per_epoch, "epochs": cfg.epochs,
            "total_steps": total, "timed_steps": len(stamps), "seconds_per_step": per_step,
            "projected_seconds": per_step * total, "device": cfg.device, "world_size": world}


def human_duration(seconds: float) -> str:
    """3725 -> '1 h 2 min'; 200000 -> '2.3 days'."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds:.1f} s"
