"""Supervised training of a classifier: full fine-tuning, a linear probe on a frozen
backbone, or training from random initialisation (the supervised baseline, and the
calibration of the embedded benchmark).

``finetune(cfg)`` writes to ``cfg.out``: ``last.pth`` (resumable state, every epoch and on
Ctrl-C), ``model.pth`` (the final classifier checkpoint that ``bebias eval`` and
``bebias probe`` load), ``metrics.jsonl`` and ``config.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bebias import distract
from bebias.checkpoint import CheckpointMeta, load_checkpoint
from bebias.data.dataset import ClipDataset
from bebias.data.open import Data
from bebias.data.transforms import normalize, train_transform
from bebias.errors import BebiasError
from bebias.limits import check_float
from bebias.models.backbones import build_backbone
from bebias.models.classifier import VideoClassifier
from bebias.models.hf import is_hf_dir
from bebias.models.open import load_weights
from bebias.progress import ProgressFn
from bebias.seeds import torch_seed
from bebias.training import loop, run_common
from bebias.training.config import RunConfig
from bebias.training.run_common import RunResult


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
        if self.init:
            check_init(self.init)


def check_init(path: str) -> None:
    """Refuse, in one line before any work, a starting point fine-tuning cannot read: a directory.

    A Hugging Face model directory is read by probe, cam and eval, but a classifier
    checkpoint records a bebias architecture (``--arch``) whose weights it rebuilds; one
    holding a transformers model (its config, processor and head) is not written."""
    if is_hf_dir(path):
        raise BebiasError("a Hugging Face model directory: bebias probe, cam and eval read it, but fine-tuning "
                          "starts from a bebias checkpoint (bebias train / finetune) or from --arch [--pretrained] "
                          "(torchvision's video models included)", path)
    if os.path.isdir(path):
        raise BebiasError("is a directory; fine-tuning starts from a bebias checkpoint file (bebias train / "
                          "finetune), e.g. its model.pth", path)


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
    meta = CheckpointMeta.from_dict(ck, path)
    if meta.arch != arch:
        raise BebiasError(f"checkpoint architecture is {meta.arch!r}, but --arch is {arch!r}", path)
    load_weights(model.backbone, ck.get("backbone"), "backbone", path)


def classifier_meta(cfg: FinetuneConfig, classes: list[str]) -> CheckpointMeta:
    """What a classifier checkpoint of ``cfg`` records besides its weights."""
    return CheckpointMeta("classifier", cfg.arch, "linear" if cfg.linear else "supervised", config=cfg.to_dict(),
                          input=cfg.clip_spec.to_dict(), classes=tuple(classes), num_classes=len(classes))


def classifier_payload(model: VideoClassifier, cfg: FinetuneConfig, classes: list[str], **extra) -> dict:
    """The checkpoint of a classifier: its metadata (:func:`classifier_meta`), weights and ``extra``."""
    return {**classifier_meta(cfg, classes).to_dict(), "backbone": model.backbone.state_dict(),
            "head": model.fc.state_dict(), **extra}


def finetune(cfg: FinetuneConfig, *, resume: bool = False, overwrite: bool = False,
             progress: ProgressFn | None = None, data: Data | None = None) -> RunResult:
    """Train a classifier as configured; see the module docstring for the outputs.

    ``resume``: continue the run in ``cfg.out``; ``overwrite``: replace it. With neither, an
    ``out`` holding a run is refused (:func:`bebias.training.loop.check_out`)."""
    run = run_common.start(cfg, resume=resume, overwrite=overwrite, data=data)
    classes, spec = run.data.videos.classes, run.spec
    ds = ClipDataset(run.data.videos, run.data.decoder, spec,
                     train_transform(spec, scale=tuple(cfg.crop_scale), hflip=run.hflip,
                                     p_jitter=0.8 if cfg.color_jitter else 0.0,
                                     p_gray=0.2 if cfg.color_jitter else 0.0, normalize=False), seed=cfg.seed)
    run.prepare(ds)
    device = run.device
    model = build_classifier(cfg, len(classes)).to(device)
    run.check_bf16(model.backbone)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = cfg.make_optimizer([p for _, p in named])
    guard = loop.StepGuard(model)  # BN statistics: undone on a bad step

    def load(st: dict) -> None:
        model.backbone.load_state_dict(st["backbone"])
        model.fc.load_state_dict(st["head"])

    def step_fn(batch: dict, step: int) -> float:
        x, y = normalize(batch["clip"].to(device, non_blocking=True), spec), batch["label"].to(device)
        if cfg.debias:  # one generator per step: a resumed run draws exactly what it would have
            g = torch.Generator().manual_seed(torch_seed(cfg.seed, "debias", step))
            x, _ = distract.debias_batch(x, cfg.debias, g)
        run.set_lr(opt, step)
        guard.save()
        with run.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loop.guarded_update(opt, guard, loss, named)

    model.train()
    return run.train(ds, opt, step_fn, payload=lambda **extra: classifier_payload(model, cfg, classes, **extra),
                     load=load, progress=progress,
                     stage="linear probe" if cfg.linear else "fine-tuning")
