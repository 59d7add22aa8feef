"""Static-frame mixing: Background Erasing (same clip), its other-clip variant, and the
supervised debiasing augmentations built on them (:mod:`bebias.distract.debias`)."""

from __future__ import annotations

import torch
from torch import Tensor

from bebias.distract._common import _check_clip, _draw_lam, _given_lam, _mix_static, _per_clip_index, _randint


def background_erasing(
    x: Tensor,
    lam_max: float = 0.3,
    *,
    per_clip: bool = False,
    generator: torch.Generator | None = None,
    lam: Tensor | float | None = None,
    frame_index: Tensor | int | None = None,
) -> tuple[Tensor, dict]:
    """Background Erasing: add a random static frame of the same clip to every frame.

    The official recipe (FingerRec/BE): ``x~_j = (1 - lam) * x_j + lam * x_k`` for every
    frame j, where k is a random frame index of the *same* clip, drawn per clip, and
    ``lam ~ U[0, lam_max)`` is drawn once per mini-batch (``per_clip=True``: one lam per
    clip). The static frame is the same in every output frame, so only what moves keeps
    its contrast: a model that matches x~ to x must rely on motion, not on scenery.

    Args:
        x: (B, C, T, H, W) float clips (normalised or not; mixing commutes with an affine
            per-channel normalisation because the weights sum to 1).
        lam_max: upper bound of lam (dimensionless mixing weight), in [0, 1].
        per_clip: draw one lam per clip instead of one per batch.
        generator: source of randomness (None: torch's default generator). lam is drawn
            first, then the frame indices.
        lam: override the lam draw: a float / 0-d tensor (shared) or a (B,) tensor, in [0, 1].
        frame_index: override the frame draw: an int or a (B,) integer tensor in [0, T).

    Returns:
        ``(mixed, info)``: mixed (B, C, T, H, W) in x's dtype and device; info
        ``{"lam": (B,) tensor in x's dtype, "frame": (B,) int64}`` -- the values used.
    """
    B, _, T, _, _ = _check_clip(x)
    lam_t = (_draw_lam(B, lam_max, per_clip, generator, x.dtype, x.device) if lam is None
             else _given_lam(lam, B, x.dtype, x.device))
    k = (_randint(T, B, generator).to(x.device) if frame_index is None
         else _per_clip_index(frame_index, B, T, x.device, "frame_index"))
    still = x[torch.arange(B, device=x.device), :, k]  # (B, C, H, W): frame k_b of clip b
    return _mix_static(x, still, lam_t), {"lam": lam_t, "frame": k}


def static_frame_from(
    x: Tensor,
    donor: Tensor,
    lam_max: float = 0.3,
    *,
    per_clip: bool = False,
    generator: torch.Generator | None = None,
    lam: Tensor | float | None = None,
    frame_index: Tensor | int | None = None,
) -> tuple[Tensor, dict]:
    """BE variant whose static frame comes from *another* clip (disabled in the official code).

    ``x~_j = (1 - lam) * x_j + lam * donor[b, :, k_b]`` for every frame j of clip b, with k_b
    a random frame of the donor clip. Unlike :func:`background_erasing` this adds a
    foreign scene, so it is a background *distractor* rather than an eraser.

    Args:
        x: (B, C, T, H, W) float clips.
        donor: (B, C, T', H, W) clips giving the static frames (e.g. ``x.roll(1, 0)``);
            T' may differ from T.
        lam_max, per_clip, generator, lam: as in :func:`background_erasing`.
        frame_index: override the donor frame draw: an int or a (B,) tensor in [0, T').

    Returns:
        ``(mixed (B, C, T, H, W), {"lam": (B,), "frame": (B,) int64 donor frame indices})``.
    """
    B, C, _, H, W = _check_clip(x)
    Bd, Cd, Td, Hd, Wd = _check_clip(donor, "donor")
    if (Bd, Cd, Hd, Wd) != (B, C, H, W):
        raise ValueError(f"donor must match x in batch, channels and size: x {tuple(x.shape)}, "
                         f"donor {tuple(donor.shape)}")
    lam_t = (_draw_lam(B, lam_max, per_clip, generator, x.dtype, x.device) if lam is None
             else _given_lam(lam, B, x.dtype, x.device))
    k = (_randint(Td, B, generator).to(x.device) if frame_index is None
         else _per_clip_index(frame_index, B, Td, x.device, "frame_index"))
    still = donor.to(device=x.device, dtype=x.dtype)[torch.arange(B, device=x.device), :, k]
    return _mix_static(x, still, lam_t), {"lam": lam_t, "frame": k}
