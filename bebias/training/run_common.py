"""What pre-training and fine-tuning share around their step function: setting a run up
(device, process group, workers, the ``--out`` check, the data), the learning-rate
schedule, resuming from ``last.pth``, the config and metrics files, saving, and the result.

A trainer calls :func:`start`, builds its dataset, calls :meth:`Run.prepare` (which seeds
the global generators: build the model after it), builds its model and optimiser, and hands
:meth:`Run.train` its step function and checkpoint payload. The step loop itself is
:func:`bebias.training.loop.run`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bebias.atomic import output_dir, write_json
from bebias.checkpoint import save_checkpoint
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.loader import resolve_workers
from bebias.data.open import Data, open_data
from bebias.data.transforms import ClipSpec
from bebias.models.device import autocast, distributed, pick_device
from bebias.progress import ProgressFn
from bebias.training import loop
from bebias.training.config import RunConfig
from bebias.training.precision import check_bf16
from bebias.training.rng import seed_everything


@dataclass
class RunResult:
    out: str
    model_path: str
    steps: int
    final_loss: float
    skipped_steps: int
    failures: FailureLog = field(default_factory=FailureLog)
    train_seconds: float | None = None  # wall time in the step loop over every resume; None: unknown


def lr_at(step: int, total: int, base: float, warmup: float, schedule: str = "cosine",
          milestones: tuple[int, ...] = (), gamma: float = 0.1, epochs: int = 1) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``.

    ``schedule="cosine"``: linear warm-up over the first ``warmup`` fraction of steps, then
    cosine decay to 0.
    ``schedule="step"``: ``base * gamma ** (number of milestones <= epoch)``, the epoch
    (0-based) being ``step * epochs // total``, i.e. ``step // steps_per_epoch`` when
    ``total = epochs * steps_per_epoch`` (a shorter ``--max-steps`` run compresses the
    milestones in proportion); the same linear warm-up first, if ``warmup > 0``. With
    ``milestones=(120, 160)`` and ``gamma=0.1`` this is FingerRec/BE's
    ``pt_adjust_learning_rate`` (src/Contrastive/utils/learning_rate_adjust.py:12-16: decayed
    once its 1-based epoch exceeds a milestone, once per epoch, no warm-up).
    """
    w = max(int(total * warmup), 1)
    if schedule == "step":
        epoch = step * epochs // max(total, 1)
        lr = base * gamma ** sum(epoch >= m for m in milestones)
        return lr * (step + 1) / w if step < w else lr
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'step', got {schedule!r}")
    if step < w:
        return base * (step + 1) / w
    return base * 0.5 * (1 + math.cos(math.pi * (step - w) / max(total - w, 1)))


@dataclass
class Run:
    """One training run as :func:`start` set it up. ``total`` (steps) is known after
    :meth:`prepare`. Only rank 0 writes files."""

    cfg: RunConfig
    resume: bool
    rank: int
    world: int
    device: torch.device
    workers: int
    data: Data
    total: int = 0

    @property
    def spec(self) -> ClipSpec:
        return self.cfg.clip_spec

    @property
    def hflip(self) -> bool:
        """Horizontal flips in the augmentation: ``--hflip``, else the data's own answer."""
        return self.data.hflip_safe if self.cfg.hflip is None else self.cfg.hflip

    @property
    def last_path(self) -> str:
        return os.path.join(self.cfg.out, "last.pth")

    @property
    def model_path(self) -> str:
        return os.path.join(self.cfg.out, "model.pth")

    def prepare(self, ds: ClipDataset) -> int:
        """Render the benchmark split (in memory) once, fix the run's length, make ``--out``
        and seed the global generators (the model's initialisation draws next). Returns
        the total number of steps."""
        cfg = self.cfg
        if self.data.synth is not None:
            self.data.synth.prerender(cfg.split, workers=max(self.workers, 1))
        self.total = loop.total_steps(cfg.max_steps, cfg.epochs, max(len(ds) // (cfg.batch_size * self.world), 1))
        output_dir(cfg.out)
        seed_everything(cfg.seed)
        return self.total

    def check_bf16(self, backbone: torch.nn.Module) -> None:
        """Under ``--precision bf16``, :func:`~bebias.training.precision.check_bf16` on clips of two."""
        if self.cfg.precision == "bf16":
            spec = self.spec
            check_bf16(backbone, (2, 3, spec.frames, spec.size, spec.size), self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.cfg.precision)

    def set_lr(self, opt: torch.optim.Optimizer, step: int) -> None:
        """Every parameter group's learning rate for ``step`` (:func:`lr_at`, as configured)."""
        cfg = self.cfg
        lr = lr_at(step, self.total, cfg.lr, cfg.warmup, cfg.lr_schedule, cfg.lr_steps, cfg.lr_gamma, cfg.epochs)
        for group in opt.param_groups:
            group["lr"] = lr

    def train(self, ds: ClipDataset, opt: torch.optim.Optimizer, step_fn: Callable[[dict, int], float], *,
              payload: Callable[..., dict], load: Callable[[dict[str, Any]], None],
              progress: ProgressFn | None = None, stage: str = "training") -> RunResult:
        """Resume (``load(last.pth's payload)`` restores the weights, the loop its counters,
        optimiser and RNG states), write ``config.json`` and ``metrics.jsonl``, run the loop
        saving ``last.pth`` as ``payload(**loop snapshot)``, and write ``model.pth`` as
        ``payload(step=...)``. ``progress`` gets ``stage`` events (steps done of the total)."""
        cfg = self.cfg
        state = loop.LoopState()
        st = loop.resume_checkpoint(self.last_path, cfg.to_dict(), type(cfg)().to_dict()) if self.resume else None
        if st is not None:
            load(st)
            state = loop.restore(st, opt)
        log = None
        if self.rank == 0:
            write_json(os.path.join(cfg.out, "config.json"), cfg.to_dict())
            log = loop.MetricsLog(os.path.join(cfg.out, "metrics.jsonl"),
                                  resume_step=state.step if self.resume else None)

        def save() -> None:
            if self.rank == 0:
                save_checkpoint(self.last_path, payload(**loop.snapshot(state, opt)))

        loop.run(ds, batch_size=cfg.batch_size, total_steps=self.total, seed=cfg.seed, workers=self.workers,
                 state=state, step_fn=step_fn, save=save, log=log, progress=progress, rank=self.rank,
                 world=self.world, max_skips=cfg.max_skips, out=cfg.out, stage=stage)
        if self.rank == 0:
            save_checkpoint(self.model_path, payload(step=state.step))
        return RunResult(cfg.out, self.model_path, state.step, state.last_loss, state.skipped_steps,
                         state.failures, state.train_seconds)


def start(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, data: Data | None = None,
          multiprocess: bool = False) -> Run:
    """Set a run up: validate ``cfg`` (edited after it was made?), pick the device (with
    ``multiprocess``, join torchrun's process group), the worker count, refuse an ``--out``
    holding another run (:func:`bebias.training.loop.check_out`), open the data (unless
    given) and check one batch per process fits in the split."""
    cfg.validate()
    device = pick_device(cfg.device)
    rank, world = 0, 1
    if multiprocess:
        rank, world, device = distributed(device)
    workers = resolve_workers(cfg.workers, device, world)
    autocast(device, cfg.precision)  # validates --precision early
    loop.check_out(cfg.out, resume, overwrite)
    data = data or open_data(cfg.data, split=cfg.split, dataset=cfg.dataset, fold=cfg.fold,
                             annotations=cfg.annotations, frame_template=cfg.frame_template)
    loop.check_batch_fits(len(data.videos), cfg.batch_size, world, cfg.split, cfg.data)
    return Run(cfg, resume, rank, world, device, workers, data)
