"""What ``bebias cam`` computes, as plain data: the clips explained, each checkpoint's map of
each clip with its target and terms, and the summary over the clips.

Computed by :mod:`bebias.models.cam_explain` (Grad-CAM, shares, targets) and
:mod:`bebias.models.cam_measure` (the summary's terms and intervals); rendered by
:mod:`bebias.reporting.cam` (strips, animations, ``cam.json``). This module holds numpy
arrays and numbers only: it imports no torch, so the renderer does not either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CamCheckpoint", "CamClip", "CamSummary", "ClipCams", "ClipMeasure", "ModelCam"]


@dataclass
class CamClip:
    """One decoded clip: ``frames`` (T, H, W, 3) uint8 RGB at the video's native size (the
    centre clip of the input spec); ``mask`` (T, H, W) bool foreground or None (no usable
    mask: no actor share); ``label`` / ``class_name`` the true class where known."""

    path: str
    frames: np.ndarray
    mask: np.ndarray | None
    mask_source: str = ""
    label: int | None = None
    class_name: str | None = None


@dataclass
class ClipMeasure:
    """One clip's terms (NaN where undefined: no usable mask, an all-zero map, no true class).

    ``share``: the predicted class's map on the actor; ``share_true``: the true class's;
    ``chance``: the mask's area fraction; ``ceiling``: the share of the layer's oracle map
    (:func:`bebias.models.cam_measure.ceiling_share`)."""

    share: float
    share_true: float
    chance: float
    ceiling: float


@dataclass
class ModelCam:
    """One checkpoint's explanation of one clip.

    ``cam``: (T, S, S) float32 in [0, 1], the shown map (the ``target`` class's) in the
    model's view; ``target``: the explained class index in the model's outputs (-1: the
    feature norm of an encoder); ``target_name``: its name (``"feature norm"``, the class
    name, or ``"class k"``); ``share``: the shown map's share on the actor (None where
    undefined); ``terms``: the clip's terms of the predicted and the true class's maps;
    ``grid``: the layer's (T', H', W') map size."""

    cam: np.ndarray
    target: int
    target_name: str
    share: float | None
    terms: ClipMeasure
    grid: list[int]

    @property
    def terms_json(self) -> dict[str, float | None]:
        """``share``, ``share_true`` and ``ceiling``, None where not finite (``cam.json``'s per-video ``measure``)."""
        t = self.terms
        return {k: (v if math.isfinite(v) else None) for k, v in
                (("share", t.share), ("share_true", t.share_true), ("ceiling", t.ceiling))}


@dataclass
class ClipCams:
    """One clip explained by every checkpoint.

    ``index``: the clip's position in the input; ``clip``: the input clip; ``frames``:
    (T, S, S, 3) uint8, the model's pixels before normalisation
    (:func:`bebias.models.cam.input_view`); ``mask``: (T, S, S) float32 in [0, 1] in that
    view, or None (no usable mask); ``mask_fraction``: the mask's mean (what a uniform map
    scores), None without a mask; ``cams``: one :class:`ModelCam` per checkpoint, in the
    checkpoints' order."""

    index: int
    clip: CamClip
    frames: np.ndarray
    mask: np.ndarray | None
    mask_fraction: float | None
    cams: list[ModelCam]


@dataclass
class CamCheckpoint:
    """One explained checkpoint as the outputs name it: ``label`` (unique), ``path``,
    ``arch``, ``method`` (:attr:`bebias.models.cam.GradCam.method`), ``layer`` and ``per_time``."""

    label: str
    path: str
    arch: str
    method: str
    layer: str
    per_time: bool


@dataclass
class CamSummary:
    """The summary over the clips.

    ``checkpoints``: in order, the first the reference row; ``target``: ``pred`` or
    ``label`` (the map shown); ``measure``: per checkpoint label ``{"layer", "grid", "pred",
    "true"}``, where ``pred`` / ``true`` are :func:`bebias.models.cam_measure.summarise` of
    the predicted / true class's maps (``true`` None where no clip has a true-class map);
    ``chance``: the masks' mean foreground fraction (None without masks) over ``n_masks``
    clips."""

    checkpoints: list[CamCheckpoint]
    target: str
    measure: dict[str, dict]
    chance: float | None
    n_masks: int

    def actor_share(self, label: str) -> dict:
        """The shown map's share term of checkpoint ``label`` (``{"value", "ci_low", "ci_high", "n"}``)."""
        m = self.measure[label]
        part = m["true"] if self.target == "label" and m["true"] is not None else m["pred"]
        return part["share"]
