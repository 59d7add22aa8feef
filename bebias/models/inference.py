"""Run a model over a dataset split: per-video class probabilities (:func:`predict`) or
pooled backbone features (:func:`embed`), averaged over uniformly spaced clips.

Used by evaluation, probing and the comparison grid alike; unreadable videos are skipped
and listed in ``Predictions.failures``, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bebias import runtime
from bebias.data.dataset import ClipDataset, FailureLog
from bebias.data.open import Data
from bebias.data.transforms import ClipSpec, eval_transform, normalize_frames


@dataclass
class Predictions:
    """Per-video outputs: ``probs`` (N, K) softmax averaged over clips (or features (N, C)
    for :func:`embed`), ``labels`` (N,), ``indices`` (N,) into the split's records."""

    probs: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    failures: FailureLog = field(default_factory=FailureLog)


@torch.no_grad()
def _run(fn, data: Data, spec: ClipSpec, *, num_clips: int, batch_size: int, device: torch.device,
         precision: str, workers: int) -> Predictions:
    # uint8 through the loader, normalised on the model's device (a quarter of the bytes, and
    # the float work where the model runs)
    ds = ClipDataset(data.videos, data.decoder, spec, eval_transform(spec, normalize=False), mode="test",
                     num_clips=num_clips)
    loader = runtime.make_loader(ds, batch_size, shuffle=False, seed=0, epoch=0, workers=workers, drop_last=False)
    outs, labels, indices, failures = [], [], [], FailureLog()
    for batch in loader:
        failures.add(batch["failed"])
        if "clip" not in batch:
            continue
        x = normalize_frames(batch["clip"].to(device), spec)  # uint8 (B, N, T, H, W, 3) -> float (B, N, 3, T, H, W)
        B, N = x.shape[:2]
        with runtime.autocast(device, precision):
            y = fn(x.flatten(0, 1)).float()
        outs.append(y.view(B, N, -1).mean(1).cpu())
        labels.append(batch["label"])
        indices.append(batch["index"])
    if not outs:
        return Predictions(np.zeros((0, 0)), np.zeros(0, int), np.zeros(0, int), failures)
    return Predictions(torch.cat(outs).numpy(), torch.cat(labels).numpy(), torch.cat(indices).numpy(), failures)


def predict(model: nn.Module, data: Data, spec: ClipSpec, *, num_clips: int = 1, batch_size: int = 16,
            device: torch.device | str = "cpu", precision: str = "fp32", workers: int = 0) -> Predictions:
    """Softmax probabilities averaged over ``num_clips`` uniformly spaced clips per video."""
    model.eval()
    return _run(lambda x: F.softmax(model(x).float(), dim=1), data, spec, num_clips=num_clips,
                batch_size=batch_size, device=torch.device(device), precision=precision, workers=workers)


def embed(backbone: nn.Module, data: Data, spec: ClipSpec, *, num_clips: int = 1, batch_size: int = 16,
          device: torch.device | str = "cpu", precision: str = "fp32", workers: int = 0) -> Predictions:
    """Pooled backbone features (N, C), averaged over clips (``probs`` holds the features)."""
    backbone.eval()
    return _run(backbone, data, spec, num_clips=num_clips, batch_size=batch_size, device=torch.device(device),
                precision=precision, workers=workers)
