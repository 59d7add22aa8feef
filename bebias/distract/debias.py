"""Debiasing augmentations for supervised training (``bebias finetune --debias``): the label
is kept, the scene is made less useful for predicting it.

Each function takes a batch of normalised clips ``x`` (B, C, T, H, W) and returns the
augmented batch and what was drawn; defaults are each source's own settings, read from
the StillMix code base (lihaoxin05/StillMix, ``mmaction/datasets/blending_utils.py``), which
implements all three for supervised training:

* :func:`be_supervised` -- BE as an augmentation (``BEIntraBlending``): a random frame of
  the SAME clip mixed into every frame, ``(1 - lam) x + lam x_k`` with
  ``lam = 0.3 * Beta(1, 1)`` once per batch (= U[0, 0.3), :func:`background_erasing`),
  on half of the samples (the reference notes' setting of StillMix's BE baseline).
* :func:`stillmix` -- StillMix (Li et al., ICCV 2023; ``StillMixRandomBlending``): a random
  frame of ANOTHER clip of the batch mixed in, ``lam x + (1 - lam) still`` with
  ``lam ~ Beta(200, 200)`` once per batch (about 0.5), on half of the samples. StillMix's
  full method draws the still frames from a bank chosen by a 2-D reference network; this
  is its "random" variant, which needs no second model.
* :func:`fame_supervised` -- FAME's merge (``FameBlending``): the clip's motion-derived
  foreground (:func:`motion_mask`, half of the pixels) pasted on the background of a
  random clip of the batch (a permutation, which may map a clip to itself), on every sample.

All draws come from ``generator`` (CPU): the same generator state gives the same batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bebias.distract._common import _check_clip, _gen_device, _mix_static, _rand, _randint
from bebias.distract.fame import fame_merge, motion_mask
from bebias.distract.mixing import background_erasing

#: ``--debias`` choices
DEBIAS_METHODS: tuple[str, ...] = ("be", "stillmix", "fame")


def apply_to_fraction(x: Tensor, mixed: Tensor, prob: float, generator: torch.Generator | None = None
                      ) -> tuple[Tensor, Tensor]:
    """Keep ``mixed[b]`` with probability ``prob`` per sample, else ``x[b]``.

    Returns ``(out (B, C, T, H, W), applied (B,) bool)``. ``prob = 1`` returns ``mixed``
    itself (no draw); ``prob = 0`` returns ``x`` (no draw).
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must lie in [0, 1], got {prob}")
    B = x.shape[0]
    if prob >= 1.0:
        return mixed, torch.ones(B, dtype=torch.bool, device=x.device)
    if prob <= 0.0:
        return x, torch.zeros(B, dtype=torch.bool, device=x.device)
    applied = (_rand(B, generator) < prob).to(x.device)
    return torch.where(applied.view(B, 1, 1, 1, 1), mixed, x), applied


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """One Beta(alpha, alpha) draw, seeded from ``generator`` (torch's Beta takes no generator)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=_gen_device(generator)))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _other_index(B: int, generator: torch.Generator | None) -> Tensor:
    """(B,) for each b a uniform index among the OTHER B - 1 positions."""
    if B < 2:
        raise ValueError("StillMix needs a batch of at least 2 clips (the still frame comes from another clip)")
    return (torch.arange(B) + 1 + _randint(B - 1, B, generator).cpu()) % B


def be_supervised(x: Tensor, *, lam_max: float = 0.3, prob: float = 0.5,
                  generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
    """BE as a supervised augmentation; ``info``: ``lam`` (B,), ``frame`` (B,), ``applied`` (B,)."""
    mixed, info = background_erasing(x, lam_max, generator=generator)
    out, applied = apply_to_fraction(x, mixed, prob, generator)
    return out, {**info, "applied": applied}


def stillmix(x: Tensor, *, alpha: float = 200.0, prob: float = 0.5, generator: torch.Generator | None = None,
             lam: float | None = None, donor: Tensor | None = None, frame_index: Tensor | None = None
             ) -> tuple[Tensor, dict]:
    """StillMix (random still frames): ``lam * x + (1 - lam) * x[d_b, :, k_b]``, label kept.

    Args:
        x: (B, C, T, H, W) float clips, B >= 2.
        alpha: Beta(alpha, alpha) of the clip's weight ``lam`` (one draw per batch).
        prob: fraction of the samples augmented.
        generator: randomness (lam, then donors, then frames, then the subset).
        lam, donor, frame_index: overrides of the draws (donor (B,) with donor[b] != b,
            frame_index (B,) in [0, T)).

    Returns:
        ``(out, {"lam": float, "donor": (B,), "frame": (B,), "applied": (B,) bool})``.
    """
    B, _, T, _, _ = _check_clip(x)
    lam_v = _beta(alpha, generator) if lam is None else float(lam)
    if not 0.0 <= lam_v <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam_v}")
    d = _other_index(B, generator) if donor is None else torch.as_tensor(donor, dtype=torch.long).cpu()
    if d.shape != (B,) or bool((d == torch.arange(B)).any()) or bool(((d < 0) | (d >= B)).any()):
        raise ValueError(f"donor must be a ({B},) index with donor[b] != b, got {d.tolist()}")
    k = _randint(T, B, generator).cpu() if frame_index is None else torch.as_tensor(frame_index).long().cpu()
    still = x[d.to(x.device), :, k.to(x.device)]  # (B, C, H, W): frame k_b of clip d_b
    mixed = _mix_static(x, still, torch.full((B,), 1.0 - lam_v, dtype=x.dtype, device=x.device))
    out, applied = apply_to_fraction(x, mixed, prob, generator)
    return out, {"lam": lam_v, "donor": d, "frame": k, "applied": applied}


def fame_supervised(x: Tensor, *, keep: float = 0.5, prob: float = 1.0, generator: torch.Generator | None = None,
                    perm: Tensor | None = None) -> tuple[Tensor, dict]:
    """FAME merge: each clip's foreground on the background of clip ``perm[b]``, label kept.

    ``info``: ``perm`` (B,), ``applied`` (B,) bool, ``mask`` (B, 1, 1, H, W) in {0, 1}.
    """
    B = _check_clip(x)[0]
    p = (torch.randperm(B, generator=generator, device=_gen_device(generator)).cpu() if perm is None
         else torch.as_tensor(perm, dtype=torch.long).cpu())
    mask = motion_mask(x, keep=keep)
    mixed = fame_merge(x, x[p.to(x.device)], mask)
    out, applied = apply_to_fraction(x, mixed, prob, generator)
    return out, {"perm": p, "applied": applied, "mask": mask}


def debias_batch(x: Tensor, method: str, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
    """``method`` in :data:`DEBIAS_METHODS` with its source's defaults."""
    if method == "be":
        return be_supervised(x, generator=generator)
    if method == "stillmix":
        return stillmix(x, generator=generator)
    if method == "fame":
        return fame_supervised(x, generator=generator)
    raise ValueError(f"unknown debias method {method!r}; choose from {', '.join(DEBIAS_METHODS)}")
