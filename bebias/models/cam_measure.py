"""How much of a Grad-CAM falls on the actor, on a scale anchored at both ends.

The raw measure is the **share** of a CAM's mass inside the foreground mask
(:func:`bebias.models.cam.actor_share`). Two reference maps of the same clip and layer
give it a scale:

- **chance**: a uniform map scores the mask's mean foreground fraction
  (:func:`bebias.models.cam.chance_level`), about 0.07-0.1 on the embedded benchmark;
- **ceiling**: the map a model would give if it looked exactly at the actor, as far as
  the layer's grid can resolve it. That is the foreground mask average-pooled to the
  layer's (T', H', W') grid and upsampled back the way the CAM is (:func:`oracle_map`).
  A small actor seen through a coarse grid is smeared over its cell: at small3d's last
  block (2x2x2 for 8x32x32 clips) this oracle scores only 0.11 where a uniform map
  scores 0.07, so no map at that layer can show much.

The **normalised score** ``(share - chance) / (ceiling - chance)``, with each term a mean
over the videos, is 0 for a uniform map, 1 for the oracle, negative for a map that
prefers the scene. It can exceed 1: a map peaked on the actor's best cell concentrates
more mass there than the pooled mask does.

Each of the four comes with a bootstrap interval over videos (:func:`bebias.stats.bootstrap_ci`,
the probe's resampling); the videos are resampled together for all terms.

A CAM explains one class's score: the predicted class (what the model decided; a wrong
prediction shows the evidence for the wrong class) or the true class (what it sees of the
right answer). :func:`measure_batch` computes both where the true class is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bebias.models.cam import CamOutput, GradCam, actor_share, chance_level, upsample
from bebias.models.cam_result import ClipMeasure
from bebias.stats import estimate

__all__ = ["ClipMeasure", "MEASURE", "TERMS", "ceiling_share", "measure_batch", "normalised", "oracle_map",
           "summarise"]

#: the measure's definition, recorded with its results (a probe's partial results of another definition are not reused)
MEASURE = "share/chance/pooled-mask ceiling"
#: the terms :func:`summarise` reports, each with its interval
TERMS: tuple[str, ...] = ("share", "chance", "ceiling", "normalised")


def oracle_map(mask: np.ndarray | Tensor, grid: Sequence[int]) -> Tensor:
    """The best map a layer with a (T', H', W') ``grid`` can draw of ``mask``: (T, H, W) mask
    in [0, 1] (bool or soft) -> its average over each grid cell, upsampled back to (T, H, W)
    with the CAM's own resampler (:func:`bebias.models.cam.upsample`). Float32, in [0, 1]."""
    m = torch.as_tensor(np.asarray(mask.detach().cpu() if isinstance(mask, Tensor) else mask, np.float32))
    if m.dim() != 3 or len(grid) != 3:
        raise ValueError(f"need a (T, H, W) mask and a (T', H', W') grid, got {tuple(m.shape)} and {tuple(grid)}")
    pooled = F.adaptive_avg_pool3d(m[None, None], tuple(int(g) for g in grid))[:, 0]  # (1, T', H', W')
    return upsample(pooled, tuple(m.shape))[0]


def ceiling_share(mask: np.ndarray | Tensor, grid: Sequence[int]) -> float:
    """The actor share of :func:`oracle_map`: what a map that looks exactly at the actor
    scores at a layer of this grid. NaN for an empty mask."""
    return actor_share(oracle_map(mask, grid), mask)


def normalised(share: float, chance: float, ceiling: float) -> float:
    """``(share - chance) / (ceiling - chance)``: 0 = uniform, 1 = the layer's oracle, < 0 =
    on the scene more than a uniform map. NaN where the ceiling does not exceed chance
    (an empty or full mask: no map can tell actor from scene)."""
    d = ceiling - chance
    return (share - chance) / d if math.isfinite(d) and d > 1e-9 else math.nan


def measure_batch(cam: GradCam, clips: Tensor, masks: Sequence[np.ndarray | None],
                  labels: Sequence[int | None] | None = None) -> tuple[CamOutput, CamOutput | None, list[ClipMeasure]]:
    """Grad-CAM of the predicted and the true class of a batch, and each clip's terms.

    Args:
        cam: the Grad-CAM of one model at one layer.
        clips: (B, 3, T, S, S) normalised clips.
        masks: per clip the (T, S, S) foreground mask in the model's view
            (:func:`bebias.models.cam.input_view`), or None (no usable mask).
        labels: per clip the true class as an index of the head's outputs, or None where
            unknown; the true-class map is computed only when every clip of the batch has
            one and the model has a head.

    Returns:
        (the predicted class's :class:`CamOutput`, the true class's or None, one
        :class:`ClipMeasure` per clip).
    """
    pred = cam(clips)
    true = None
    if cam.head is not None and labels is not None and len(labels) and all(y is not None for y in labels):
        true = cam(clips, torch.tensor([int(y) for y in labels]))
    grid = tuple(pred.raw.shape[1:])
    out = []
    for b, mask in enumerate(masks):
        if mask is None:
            out.append(ClipMeasure(math.nan, math.nan, math.nan, math.nan))
            continue
        out.append(ClipMeasure(actor_share(pred.cams[b], mask),
                               actor_share(true.cams[b], mask) if true is not None else math.nan,
                               chance_level(mask), ceiling_share(mask, grid)))
    return pred, true, out


def _fin(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def summarise(share: Sequence[float], chance: Sequence[float], ceiling: Sequence[float], *, n_boot: int = 1000,
              seed: int = 0, alpha: float = 0.05) -> dict:
    """The four terms over videos, each ``{"value", "ci_low", "ci_high", "n"}`` (None where
    undefined), plus ``videos_left_out`` (no usable mask or an all-zero map).

    Every term is a mean over the same videos (those where all three inputs are finite);
    ``normalised`` is :func:`normalised` of the three means (a ratio of means: a video
    whose grid barely resolves the actor does not blow it up). The interval resamples
    videos (:func:`bebias.stats.bootstrap_ci` with ``n_boot``, ``seed``, ``alpha``), every
    term from the same resamples."""
    s, c, e = (np.asarray(v, np.float64) for v in (share, chance, ceiling))
    if not s.shape == c.shape == e.shape or s.ndim != 1:
        raise ValueError(f"need one value per video in each of share, chance, ceiling; got {s.shape}, {c.shape}, "
                         f"{e.shape}")
    ok = np.isfinite(s) & np.isfinite(c) & np.isfinite(e)
    s, c, e = s[ok], c[ok], e[ok]
    n = int(ok.sum())

    def norm(idx: np.ndarray) -> np.ndarray:
        """(B, n) replicates -> (B,) :func:`normalised` of the three means, elementwise."""
        ms, mc, me = s[idx].mean(axis=1), c[idx].mean(axis=1), e[idx].mean(axis=1)
        d = me - mc
        good = np.isfinite(d) & (d > 1e-9)
        return np.where(good, (ms - mc) / np.where(good, d, 1.0), math.nan)

    stats: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "share": lambda i: s[i].mean(axis=1), "chance": lambda i: c[i].mean(axis=1),
        "ceiling": lambda i: e[i].mean(axis=1), "normalised": norm,
    }
    res: dict = {}
    for k, f in stats.items():
        if not n:
            res[k] = {"value": None, "ci_low": None, "ci_high": None, "n": 0}
            continue
        est = estimate(f, n, n_boot=n_boot, seed=seed, alpha=alpha, batched=True)
        res[k] = {"value": _fin(est["value"]), "ci_low": _fin(est["ci_low"]), "ci_high": _fin(est["ci_high"]), "n": n}
    res["videos_left_out"] = int((~ok).sum())
    return res
