"""Supervised training of a classifier: full fine-tuning, a linear probe on a frozen
backbone, or training from random initialisation (the supervised baseline, and the
calibration of the embedded benchmark).

``finetune(cfg)`` writes to ``cfg.out``: ``last.pth`` (resumable state, every epoch and on
Ctrl-C), ``model.pth`` (the final classifier checkpoint that ``bebias eval`` and
``bebias probe`` load), ``metrics.jsonl`` and ``config.json``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from bebias import distract, runtime
from bebias.atomic import output_dir, write_json
from bebias.checkpoint import load_checkpoint, save_checkpoint
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.open import Data, open_data
from bebias.data.transforms import normalize, train_transform
from bebias.errors import BebiasError
from bebias.limits import check_float
from bebias.models.backbones import build_backbone
from bebias.models.classifier import VideoClassifier
from bebias.models.open import load_weights
from bebias.progress import ProgressFn
from bebias.training import loop
from bebias.training.config import RunConfig


@dataclass
class FinetuneConfig(RunConfig):
    """Everything a supervised run depends on (saved in its checkpoints)."""

    init: str | None = None  # a bebias checkpoint to start from (pre-trained encoder or classifier)
    linear: bool = False  # freeze the backbone: linear probe
    crop_scale: tuple[float, float] = (0.8, 1.0)
    color_jitter: bool = False  # supervised runs: the label is not about colour either way
    epochs: int = 14
    lr: float = 2e-3
    dropout: float = 0.0
    #: "" or a label-keeping debiasing augmentation: be | stillmix | fame (bebias.distract.debias)
    debias: str = ""
    out: str = "runs/finetune"

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= check_float("--dropout", self.dropout) < 1.0:
            raise BebiasError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.debias and self.debias not in distract.DEBIAS_METHODS:
            raise BebiasError(f"--debias must be one of {', '.join(distract.DEBIAS_METHODS)}, got {self.debias!r}")
        if self.debias in ("stillmix", "fame") and self.batch_size < 2:
            raise BebiasError(f"--debias {self.debias} mixes clips of a batch: --batch-size must be >= 2")


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


def build_classifier(cfg: FinetuneConfig, num_classes: int) -> VideoClassifier:
    backbone = build_backbone(cfg.arch, pretrained=cfg.pretrained)
    model = VideoClassifier(backbone, num_classes, cfg.dropout, freeze_backbone=cfg.linear)
    if cfg.init:
        load_backbone_from(model, cfg.init, cfg.arch)
    return model


def load_backbone_from(model: VideoClassifier, path: str, arch: str) -> None:
    """Initialise ``model.backbone`` from a bebias checkpoint (pre-trained or classifier).

    Every backbone weight must match: a missing or unexpected key, or a shape mismatch, is
    an error naming them — never a silent partial load.
    """
    ck = load_checkpoint(path)
    if ck.get("arch") != arch:
        raise BebiasError(f"checkpoint architecture is {ck.get('arch')!r}, but --arch is {arch!r}", path)
    load_weights(model.backbone, ck.get("backbone"), "backbone", path)


def classifier_payload(model: VideoClassifier, cfg: FinetuneConfig, classes: list[str], **extra) -> dict:
    return {"kind": "classifier", "arch": cfg.arch, "method": "linear" if cfg.linear else "supervised",
            "config": cfg.to_dict(), "input": cfg.clip_spec.to_dict(), "classes": list(classes),
            "num_classes": len(classes), "backbone": model.backbone.state_dict(),
            "head": model.fc.state_dict(), **extra}


def finetune(cfg: FinetuneConfig, *, resume: bool = False, overwrite: bool = False,
             progress: ProgressFn | None = None, data: Data | None = None) -> RunResult:
    """Train a classifier as configured; see the module docstring for the outputs.

    ``resume``: continue the run in ``cfg.out``; ``overwrite``: replace it. With neither, an
    ``out`` holding a run is refused (:func:`bebias.training.loop.check_out`)."""
    cfg.validate()  # a config edited after it was made
    device = runtime.pick_device(cfg.device)
    workers = runtime.resolve_workers(cfg.workers, device)
    runtime.autocast(device, cfg.precision)  # validates --precision early
    loop.check_out(cfg.out, resume, overwrite)
    data = data or open_data(cfg.data, split=cfg.split, dataset=cfg.dataset, fold=cfg.fold,
                             annotations=cfg.annotations, frame_template=cfg.frame_template)
    loop.check_batch_fits(len(data.videos), cfg.batch_size, 1, cfg.split, cfg.data)
    classes = data.videos.classes
    hflip = data.hflip_safe if cfg.hflip is None else cfg.hflip
    spec = cfg.clip_spec
    ds = ClipDataset(data.videos, data.decoder, spec,
                     train_transform(spec, scale=tuple(cfg.crop_scale), hflip=hflip,
                                     p_jitter=0.8 if cfg.color_jitter else 0.0,
                                     p_gray=0.2 if cfg.color_jitter else 0.0, normalize=False), seed=cfg.seed)
    if data.synth is not None:
        data.synth.prerender(cfg.split, workers=max(workers, 1))
    steps_per_epoch = len(ds) // cfg.batch_size or 1
    total = loop.total_steps(cfg.max_steps, cfg.epochs, steps_per_epoch)
    output_dir(cfg.out)
    last_path = os.path.join(cfg.out, "last.pth")

    runtime.seed_everything(cfg.seed)
    model = build_classifier(cfg, len(classes)).to(device)
    if cfg.precision == "bf16":
        runtime.check_bf16(model.backbone, (2, 3, spec.frames, spec.size, spec.size), device)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    opt = cfg.make_optimizer(params)
    guard = loop.StepGuard(model)  # BN statistics: undone on a bad step
    state = loop.LoopState()
    st = loop.resume_checkpoint(last_path, cfg.to_dict(), type(cfg)().to_dict()) if resume else None
    if st is not None:
        model.backbone.load_state_dict(st["backbone"])
        model.fc.load_state_dict(st["head"])
        state = loop.restore(st, opt)
    write_json(os.path.join(cfg.out, "config.json"), cfg.to_dict())
    log = runtime.MetricsLog(os.path.join(cfg.out, "metrics.jsonl"), resume_step=state.step if resume else None)

    def save() -> None:
        save_checkpoint(last_path, classifier_payload(model, cfg, classes, **loop.snapshot(state, opt)))

    def step_fn(batch: dict, step: int) -> float:
        x, y = normalize(batch["clip"].to(device, non_blocking=True), spec), batch["label"].to(device)
        if cfg.debias:  # one generator per step: a resumed run draws exactly what it would have
            x, _ = distract.debias_batch(x, cfg.debias, torch.Generator().manual_seed(cfg.seed * 7919 + step))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, cfg.lr, cfg.warmup, cfg.lr_schedule, cfg.lr_steps, cfg.lr_gamma, cfg.epochs)
        guard.save()
        with runtime.autocast(device, cfg.precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loop.guarded_update(opt, guard, loss, named)

    model.train()
    loop.run(ds, batch_size=cfg.batch_size, total_steps=total, seed=cfg.seed, workers=workers, state=state,
             step_fn=step_fn, save=save, log=log, progress=progress, max_skips=cfg.max_skips, out=cfg.out,
             stage="linear probe" if cfg.linear else "fine-tuning")
    model_path = os.path.join(cfg.out, "model.pth")
    save_checkpoint(model_path, classifier_payload(model, cfg, classes, step=state.step))
    return RunResult(cfg.out, model_path, state.step, state.last_loss, state.skipped_steps, state.failures,
                     state.train_seconds)
