"""Shared checks and random draws of the distractors (every draw on the generator's device)."""

from __future__ import annotations

import torch
from torch import Tensor


def _check_clip(x: Tensor, name: str = "x") -> tuple[int, int, int, int, int]:
    if not isinstance(x, Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, C, T, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return tuple(x.shape)  # type: ignore[return-value]


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _rand(n: int, generator: torch.Generator | None) -> Tensor:
    """(n,) float32 uniforms in [0, 1), drawn on the generator's device."""
    return torch.rand(n, generator=generator, device=_gen_device(generator))


def _randint(high: int, n: int, generator: torch.Generator | None) -> Tensor:
    """(n,) int64 uniform in [0, high), drawn on the generator's device."""
    return torch.randint(0, high, (n,), generator=generator, device=_gen_device(generator))


def _per_clip_index(index: Tensor | int, B: int, T: int, device: torch.device, what: str) -> Tensor:
    """An int or a (B,) / 0-d integer tensor -> (B,) int64 on ``device``, each in [0, T)."""
    idx = torch.as_tensor(index, device=device)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"{what} must be integer, got {idx.dtype}")
    idx = idx.to(torch.long)
    if idx.dim() == 0:
        idx = idx.expand(B)
    if idx.shape != (B,):
        raise ValueError(f"{what} must be an int or a ({B},) tensor, got shape {tuple(idx.shape)}")
    if bool(((idx < 0) | (idx >= T)).any()):
        raise ValueError(f"{what} must lie in [0, {T}), got {idx.tolist()}")
    return idx


def _draw_lam(B: int, lam_max: float, per_clip: bool, generator: torch.Generator | None,
              dtype: torch.dtype, device: torch.device) -> Tensor:
    """lambda ~ U[0, lam_max): one value for the batch (repeated B times) or one per clip."""
    if not 0.0 <= lam_max <= 1.0:
        raise ValueError(f"lam_max must be in [0, 1], got {lam_max}")
    u = _rand(B if per_clip else 1, generator).to(device=device, dtype=dtype)
    lam = (u * lam_max).expand(B)
    # u * lam_max can round up to lam_max in low precision; keep the interval half-open
    top = torch.nextafter(torch.tensor(lam_max, dtype=dtype, device=device),
                          torch.tensor(0.0, dtype=dtype, device=device))
    return lam.clamp(min=0.0, max=float(top)).contiguous()


def _given_lam(lam: Tensor | float, B: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    t = torch.as_tensor(lam, dtype=dtype, device=device)
    if t.dim() == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise ValueError(f"lam must be a float or a ({B},) tensor, got shape {tuple(t.shape)}")
    if bool(((t < 0) | (t > 1)).any()):
        raise ValueError(f"lam must lie in [0, 1], got {t.tolist()}")
    return t.contiguous()


def _mix_static(x: Tensor, still: Tensor, lam: Tensor) -> Tensor:
    """x_j + lam * (still - x_j) for every frame j; x (B,C,T,H,W), still (B,C,H,W), lam (B,).

    Written as x + lam * (still - x) rather than (1 - lam) * x + lam * still because this
    form is *exact* where it should be: lam = 0 returns x bit for bit, and a frame equal
    to ``still`` (a static video) is returned unchanged for any lam. With lam in [0, 1]
    the result stays between x_j and ``still`` (rounding is monotone).
    """
    return x + lam.view(-1, 1, 1, 1, 1) * (still.unsqueeze(2) - x)
