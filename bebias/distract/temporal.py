"""Temporal distractors: destroy or remove the order of the frames."""

from __future__ import annotations

import torch
from torch import Tensor

from bebias.distract._common import _check_clip, _gen_device, _per_clip_index, _randint


def shuffle_frames(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Destroy the temporal order: a random frame permutation per clip, never the identity.

    Each clip's permutation is uniform over the T! - 1 non-identity permutations (rows
    that drew the identity are redrawn; the expected number of rounds is T!/(T!-1) <= 2).
    T = 1 has only the identity and returns a copy of x.

    Args:
        x: (B, C, T, H, W) clips.
        generator: source of randomness (None: torch's default generator).

    Returns:
        (B, C, T, H, W): ``out[b, :, t] = x[b, :, perm_b[t]]``.
    """
    B, _, T, _, _ = _check_clip(x)
    dev = _gen_device(generator)
    ident = torch.arange(T, device=dev)
    perm = torch.rand(B, T, generator=generator, device=dev).argsort(dim=1)
    if T > 1:
        for _ in range(64):  # P(a row still identity after 64 rounds) <= 2^-64
            bad = (perm == ident).all(dim=1)
            if not bool(bad.any()):
                break
            redraw = torch.rand(int(bad.sum()), T, generator=generator, device=dev).argsort(dim=1)
            perm[bad] = redraw
        bad = (perm == ident).all(dim=1)
        perm[bad] = ident.roll(1)  # unreachable in practice; guarantees the contract
    perm = perm.to(x.device)
    return torch.take_along_dim(x, perm.view(B, 1, T, 1, 1), dim=2)


def reverse_frames(x: Tensor) -> Tensor:
    """Play every clip backwards: (B, C, T, H, W) -> (B, C, T, H, W), out[:, :, t] = x[:, :, T-1-t]."""
    _check_clip(x)
    return x.flip(2)


def static_clip(x: Tensor, frame_index: Tensor | int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """One frame of each clip repeated T times (SCUFO-style): appearance kept, motion removed.

    Args:
        x: (B, C, T, H, W) clips.
        frame_index: which frame: an int (all clips), a (B,) integer tensor, or None for
            a random frame per clip drawn from ``generator``.
        generator: source of randomness when ``frame_index`` is None.

    Returns:
        (B, C, T, H, W) contiguous tensor whose T frames all equal ``x[b, :, k_b]``.
    """
    B, C, T, H, W = _check_clip(x)
    k = (_randint(T, B, generator).to(x.device) if frame_index is None
         else _per_clip_index(frame_index, B, T, x.device, "frame_index"))
    still = x[torch.arange(B, device=x.device), :, k]  # (B, C, H, W)
    return still.unsqueeze(2).expand(B, C, T, H, W).contiguous()
