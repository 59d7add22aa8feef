"""Run a model over a dataset split: per-video class probabilities (:func:`predict`) or
pooled backbone features (:func:`embed`), averaged over uniformly spaced clips.

Used by evaluation, probing and the comparison grid alike; unreadable videos are skipped
and listed in ``Predictions.failures`` / ``Embeddings.failures``, never fatal. Non-finite
model outputs are fatal (:func:`check_finite`): a NaN or inf logit has no argmax, and
scoring it as class 0 would report numbers that mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bebias.data.loader import make_loader
from bebias.models.device import autocast
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.open import Data
from bebias.data.transforms import ClipSpec, eval_transform, normalize_frames
from bebias.errors import BebiasError
from bebias.progress import Progress, ProgressFn


def check_finite(y: torch.Tensor, checkpoint: str | None, *, seen: int = 0, what: str = "outputs") -> None:
    """Refuse model outputs ``y`` (B, ...) with a NaN or inf: one :class:`BebiasError`
    naming ``checkpoint`` and how many of the B clips (``seen``: clips already run, all
    finite). Every place that runs a model for inference calls this on what it produced
    (:func:`predict` / :func:`embed`, the probe, Grad-CAM)."""
    bad = int((~torch.isfinite(y.detach())).flatten(1).any(1).sum()) if y.numel() else 0
    if bad:
        B = int(y.shape[0])
        after = f", after {seen} finite one(s)" if seen else ""
        raise BebiasError(f"the model's {what} are not finite (NaN or inf) on {bad} of {B} clip(s){after}; the "
                          "weights (or the input spec's mean/std) are broken, so there is nothing to score",
                          checkpoint)


@dataclass
class Predictions:
    """Per-video class probabilities (:func:`predict`): ``probs`` (N, K) softmax averaged over
    clips, ``labels`` (N,), ``indices`` (N,) into the split's records."""

    probs: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    failures: FailureLog = field(default_factory=FailureLog)


@dataclass
class Embeddings:
    """Per-video backbone features (:func:`embed`): ``features`` (N, C) pooled features averaged
    over clips, ``labels`` (N,), ``indices`` (N,) into the split's records."""

    features: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    failures: FailureLog = field(default_factory=FailureLog)


@torch.no_grad()
def _run(fn, data: Data, spec: ClipSpec, *, num_clips: int, batch_size: int, device: torch.device,
         precision: str, workers: int, checkpoint: str | None, softmax: bool,
         progress: ProgressFn | None = None,
         stage: str = "inference") -> tuple[np.ndarray, np.ndarray, np.ndarray, FailureLog]:
    """(outputs (N, K) probabilities or (N, C) features, labels (N,), indices (N,), failures)."""
    # uint8 through the loader, normalised on the model's device (a quarter of the bytes, and
    # the float work where the model runs)
    ds = ClipDataset(data.videos, data.decoder, spec, eval_transform(spec, normalize=False), mode="test",
                     num_clips=num_clips)
    loader = make_loader(ds, batch_size, shuffle=False, seed=0, epoch=0, workers=workers, drop_last=False)
    outs, labels, indices, failures, seen = [], [], [], FailureLog(), 0
    if progress:
        progress(Progress(stage, 0, len(ds)))
    for b, batch in enumerate(loader):
        failures.add(batch["failed"])
        if "clip" not in batch:
            if progress:
                progress(Progress(stage, min((b + 1) * batch_size, len(ds)), len(ds)))
            continue
        x = normalize_frames(batch["clip"].to(device), spec)  # uint8 (B, N, T, H, W, 3) -> float (B, N, 3, T, H, W)
        B, N = x.shape[:2]
        with autocast(device, precision):
            y = fn(x.flatten(0, 1)).float()
        # the raw outputs (before the softmax: an inf logit would turn into NaN there)
        check_finite(y, checkpoint, seen=seen, what="outputs" if softmax else "features")
        seen += len(y)
        if softmax:
            y = F.softmax(y, dim=1)
        outs.append(y.view(B, N, -1).mean(1).cpu())
        labels.append(batch["label"])
        indices.append(batch["index"])
        if progress:
            progress(Progress(stage, min((b + 1) * batch_size, len(ds)), len(ds)))
    if not outs:
        return np.zeros((0, 0)), np.zeros(0, int), np.zeros(0, int), failures
    return torch.cat(outs).numpy(), torch.cat(labels).numpy(), torch.cat(indices).numpy(), failures


def predict(model: nn.Module, data: Data, spec: ClipSpec, *, num_clips: int = 1, batch_size: int = 16,
            device: torch.device | str = "cpu", precision: str = "fp32", workers: int = 0,
            checkpoint: str | None = None, progress: ProgressFn | None = None,
            stage: str = "predicting") -> Predictions:
    """Softmax probabilities averaged over ``num_clips`` uniformly spaced clips per video.
    Non-finite logits raise :class:`BebiasError` naming ``checkpoint`` (:func:`check_finite`).
    ``progress`` gets ``stage`` events: videos run of the split's."""
    model.eval()
    return Predictions(*_run(model, data, spec, num_clips=num_clips, batch_size=batch_size,
                             device=torch.device(device), precision=precision, workers=workers,
                             checkpoint=checkpoint, softmax=True, progress=progress, stage=stage))


def embed(backbone: nn.Module, data: Data, spec: ClipSpec, *, num_clips: int = 1, batch_size: int = 16,
          device: torch.device | str = "cpu", precision: str = "fp32", workers: int = 0,
          checkpoint: str | None = None, progress: ProgressFn | None = None,
          stage: str = "embedding") -> Embeddings:
    """Pooled backbone features (N, C), averaged over clips.
    Non-finite features raise :class:`BebiasError` naming ``checkpoint``. ``progress`` as
    :func:`predict`'s."""
    backbone.eval()
    return Embeddings(*_run(backbone, data, spec, num_clips=num_clips, batch_size=batch_size,
                            device=torch.device(device), precision=precision, workers=workers,
                            checkpoint=checkpoint, softmax=False, progress=progress, stage=stage))
