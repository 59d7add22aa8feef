"""Grad-CAM of one or more checkpoints on the same clips: maps, targets and shares on the
actor, ready to render (:mod:`bebias.reporting.cam`), for ``bebias cam`` and ``bebias demo``.

:func:`explain_clips` runs every model on the clips batch by batch and yields one
:class:`~bebias.models.cam_result.ClipCams` per clip (so a long list of clips is never held
at once); :class:`CamTally` gathers their terms and summarises them
(:func:`bebias.models.cam_measure.summarise`) with an interval passed in from above.

Everything is in the geometry the model sees (the eval transform's resize and centre crop,
:func:`bebias.models.cam.input_view`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bebias.data.transforms import ClipSpec, eval_transform
from bebias.errors import BebiasError
from bebias.models.cam import GradCam, chance_level, input_view
from bebias.models.cam_measure import measure_batch, summarise
from bebias.models.cam_result import CamCheckpoint, CamClip, CamSummary, ClipCams, ModelCam

__all__ = ["CamModel", "CamTally", "TARGETS", "check_clips", "check_models", "explain_clips"]

#: what a map explains: each model's predicted class, or the clip's true class
TARGETS: tuple[str, ...] = ("pred", "label")


@dataclass
class CamModel:
    """One opened checkpoint to explain.

    ``label``: its name in the outputs (unique); ``cam``: its :class:`GradCam`; ``spec``:
    its input spec; ``classes``: its output class names, in order (None = unknown).
    """

    label: str
    path: str
    arch: str
    cam: GradCam
    spec: ClipSpec
    classes: list[str] | None = None

    def checkpoint(self) -> CamCheckpoint:
        """How the outputs name it."""
        return CamCheckpoint(self.label, self.path, self.arch, self.cam.method, self.cam.layer_name,
                             bool(self.cam.per_time))


def check_clips(models: Sequence[CamModel], clips: Sequence[CamClip], target: str) -> None:
    """A :class:`BebiasError` for no model, no clip or an unknown ``target``."""
    if not models:
        raise BebiasError("no checkpoint to explain")
    if not clips:
        raise BebiasError("no readable video to explain")
    if target not in TARGETS:
        raise BebiasError(f"--target must be pred or label, got {target!r}")


def check_models(models: Sequence[CamModel]) -> None:
    """A :class:`BebiasError` unless every model takes the same clips (frames, stride,
    size) and the labels are distinct."""
    geo = {m.label: (m.spec.frames, m.spec.stride, m.spec.size) for m in models}
    if len(set(geo.values())) > 1:
        raise BebiasError("the checkpoints take different clips (frames, stride, size): "
                          + ", ".join(f"{k} {v}" for k, v in geo.items()) + "; compare checkpoints of one input spec")
    if len({m.label for m in models}) != len(models):
        raise BebiasError("checkpoint labels must be distinct")


def _label_of(m: CamModel, clip: CamClip) -> int | None:
    """The clip's true class in ``m``'s output order; None where unknown (no label, or a
    class name the model does not have)."""
    if m.cam.head is None or clip.label is None:
        return None
    if m.classes and clip.class_name is not None:
        return m.classes.index(clip.class_name) if clip.class_name in m.classes else None
    return int(clip.label)


def _target_of(m: CamModel, clip: CamClip, target: str) -> int | None:
    """The class index to explain in ``m``'s output order (None = its prediction)."""
    if target == "pred" or m.cam.head is None:
        return None
    if clip.label is None:
        raise BebiasError(f"--target label needs labelled videos; {clip.path} has no label (use --data, or "
                          "--target pred)")
    if m.classes and clip.class_name is not None:
        if clip.class_name not in m.classes:
            raise BebiasError(f"class {clip.class_name!r} of {clip.path} is not one of the model's classes", m.path)
        return m.classes.index(clip.class_name)
    return int(clip.label)


def _class_name(m: CamModel, k: int) -> str:
    return "feature norm" if k < 0 else m.classes[k] if m.classes and k < len(m.classes) else f"class {k}"


def explain_clips(models: Sequence[CamModel], clips: Sequence[CamClip], *, target: str = "pred",
                  batch_size: int = 8, device: torch.device | str = "cpu") -> Iterator[ClipCams]:
    """Grad-CAM of every model on every clip, ``batch_size`` clips per pass; one
    :class:`ClipCams` per clip, in order.

    Args:
        models: the checkpoints, first = the reference row; every one must take the same
            clip geometry (frames, stride, size: the same clips for all).
        clips: decoded clips with their masks.
        target: the map shown and its share: ``pred`` (each model's predicted class) or
            ``label`` (the true class). Each clip's terms hold both either way.
    """
    check_clips(models, clips, target)
    check_models(models)
    size = models[0].spec.size
    tfs = [eval_transform(m.spec) for m in models]
    device = torch.device(device)
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        views = [input_view(c.mask, size) if c.mask is not None else None for c in batch]
        per_model: list[list[ModelCam]] = []  # per model, one ModelCam per clip of the batch
        for m, tf in zip(models, tfs):
            x = torch.stack([tf(c.frames) for c in batch]).to(device)
            for c in batch:
                _target_of(m, c, target)  # a user error when --target label has no label to explain
            pred, true, per_clip = measure_batch(m.cam, x, views, [_label_of(m, c) for c in batch])
            if target == "label" and m.cam.head is not None and true is None:
                raise BebiasError("--target label: some of the clips' classes are not the model's classes", m.path)
            shown = true if target == "label" and true is not None else pred
            grid = list(pred.raw.shape[1:])
            cams, tgt = shown.cams.cpu().numpy(), shown.target.cpu().tolist()
            row = []
            for b, t in enumerate(per_clip):
                share = t.share_true if target == "label" and m.cam.head is not None else t.share
                row.append(ModelCam(cams[b], int(tgt[b]), _class_name(m, tgt[b]),
                                    share if math.isfinite(share) else None, t, grid))
            per_model.append(row)
        for b, c in enumerate(batch):
            mask = views[b]
            yield ClipCams(start + b, c, input_view(c.frames, size), mask,
                           None if mask is None else chance_level(mask), [row[b] for row in per_model])


class CamTally:
    """The terms of the clips explained so far (:meth:`add`), summarised by :meth:`summary`."""

    def __init__(self, models: Sequence[CamModel], target: str = "pred") -> None:
        self.models, self.target = list(models), target
        self.terms: dict[str, dict[str, list[float]]] = {
            m.label: {"share": [], "share_true": [], "chance": [], "ceiling": []} for m in self.models}
        self.grids: dict[str, list[int]] = {}
        self.fractions: list[float] = []

    def add(self, item: ClipCams) -> None:
        """Count one clip's terms (every model's, in the models' order)."""
        if item.mask_fraction is not None:
            self.fractions.append(item.mask_fraction)
        for m, mc in zip(self.models, item.cams):
            for k, values in self.terms[m.label].items():
                values.append(getattr(mc.terms, k))
            self.grids[m.label] = mc.grid

    def summary(self, n_boot: int = 1000, seed: int = 0) -> CamSummary:
        """Per model the four terms of the predicted (and, where any clip has one, the true)
        class's maps with their intervals (:func:`bebias.stats.bootstrap_ci` over the clips,
        ``n_boot`` replicates, ``seed``), and the masks' mean foreground fraction."""
        boot = {"n_boot": n_boot, "seed": seed}
        measure = {}
        for m in self.models:
            t = self.terms[m.label]
            true_ok = any(math.isfinite(v) for v in t["share_true"])
            measure[m.label] = {"layer": m.cam.layer_name, "grid": self.grids.get(m.label),
                                "pred": summarise(t["share"], t["chance"], t["ceiling"], **boot),
                                "true": summarise(t["share_true"], t["chance"], t["ceiling"], **boot) if true_ok else None}
        chance = float(np.mean(self.fractions)) if self.fractions else None
        return CamSummary([m.checkpoint() for m in self.models], self.target, measure, chance, len(self.fractions))
