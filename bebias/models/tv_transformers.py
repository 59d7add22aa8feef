"""torchvision's video transformers behind the :class:`~bebias.models.backbones.Backbone` interface.

=============== ==== ================================================== =========================
arch            dim  what                                               input
=============== ==== ================================================== =========================
``swin3d_t``    768  Video Swin-T (Liu et al. 2022), torchvision        any (windows are padded)
``swin3d_s``    768  Video Swin-S                                       any
``swin3d_b``    1024 Video Swin-B                                       any
``mvit_v1_b``   768  MViT-B 16x4 (Fan et al. 2021)                      exactly 16 x 224 x 224
``mvit_v2_s``   768  MViTv2-S (Li et al. 2022)                          exactly 16 x 224 x 224
=============== ==== ================================================== =========================

Both keep torchvision's module names, so a torchvision state_dict minus ``head.*`` is the
backbone's state_dict, and ``--pretrained`` loads torchvision's Kinetics-400 weights from
torch's local cache (:func:`~bebias.models.backbones.cached_weights`, never downloading).

- Swin3D: ``features`` = the last stage after the final LayerNorm, channel-last
  ``(B, T', H', W', C)`` in torchvision, returned as ``(B, C, T', H', W')`` with
  T' = ceil(T/2), H' = ceil(H/32), W' = ceil(W/32); ``forward`` = its average (torchvision's
  ``avgpool``). Every stage's output is channel-last: :meth:`TorchvisionSwin3D.cam_grid`
  permutes it for Grad-CAM. Default CAM layer: ``norm`` (what the pooled features see).
- MViT: tokens ``(B, 1 + T'H'W', C)`` with a CLS token first, in (T', H', W') raster order.
  ``forward`` is the CLS token after the final norm (what torchvision's head reads);
  ``features`` the other tokens as ``(B, C, T', H', W')`` (T' = 8, H' = W' = 7 at 16 x 224).
  The positional embedding is learnt for one input size, so any other clip is one error
  line. The head reads the CLS token only, so the final norm carries no gradient on the
  patch tokens: the default CAM layer is the last block's ``norm1``, whose tokens the CLS
  token attends to; :meth:`TorchvisionMViT.cam_grid` drops the CLS token and reshapes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from bebias.errors import BebiasError
from bebias.models.backbones import Backbone, cached_weights

__all__ = ["FIXED_INPUT", "SWIN3D", "MVIT", "TV_WEIGHTS", "TorchvisionMViT", "TorchvisionSwin3D", "check_fixed_input"]

#: torchvision weight enums per arch (their DEFAULT: Kinetics-400)
TV_WEIGHTS: dict[str, str] = {"swin3d_t": "Swin3D_T_Weights", "swin3d_s": "Swin3D_S_Weights",
                              "swin3d_b": "Swin3D_B_Weights", "mvit_v1_b": "MViT_V1_B_Weights",
                              "mvit_v2_s": "MViT_V2_S_Weights"}
SWIN3D: tuple[str, ...] = ("swin3d_t", "swin3d_s", "swin3d_b")
MVIT: tuple[str, ...] = ("mvit_v1_b", "mvit_v2_s")
#: (frames, size) an arch accepts and no other: MViT's positional embedding is learnt for
#: 16 x 224 x 224 (torchvision's ``min_temporal_size`` / ``min_size``)
FIXED_INPUT: dict[str, tuple[int, int]] = {"mvit_v1_b": (16, 224), "mvit_v2_s": (16, 224)}


def check_fixed_input(arch: str, frames: int, size: int, what: str = "--frames / --size") -> None:
    """One error line if ``arch`` takes one clip size only and (``frames``, ``size``) is not it."""
    want = FIXED_INPUT.get(str(arch).strip().lower())
    if want and (frames, size) != want:
        raise BebiasError(f"{arch} takes clips of exactly {want[0]} frames at {want[1]}x{want[1]} px (its positional "
                          f"embedding is learnt for that size), got {frames} frames at {size} px: set {what} to "
                          f"{want[0]} / {want[1]}")


def _tv_net(arch: str, pretrained: bool) -> nn.Module:
    import torchvision.models.video as tvv

    net = getattr(tvv, arch)(weights=None)
    if pretrained:
        net.load_state_dict(cached_weights(getattr(tvv, TV_WEIGHTS[arch]).DEFAULT))
    return net


class TorchvisionSwin3D(Backbone):
    """torchvision's ``SwinTransformer3d`` without ``avgpool`` and ``head`` (module docstring).

    ``net``: a prebuilt ``SwinTransformer3d`` to wrap (tests build small ones); else
    ``arch``'s, with Kinetics-400 weights when ``pretrained``. Its trunk is registered under
    torchvision's name ``features`` (as in :class:`~bebias.models.backbones.S3DBackbone`).
    Shapes: (B, 3, T, H, W) -> features (B, C, ceil(T/2), ceil(H/32), ceil(W/32)); any size
    works (patches and windows are zero-padded), e.g. 3x4x32x32 -> 768x2x1x1.
    """

    cam_layer = "norm"

    def __init__(self, arch: str = "swin3d_t", pretrained: bool = False, net: nn.Module | None = None) -> None:
        net = net if net is not None else _tv_net(arch, pretrained)
        super().__init__(dim=int(net.num_features))
        self.arch = arch
        self.patch_embed, self.pos_drop, self.norm = net.patch_embed, net.pos_drop, net.norm
        self._modules["features"] = net.features  # torchvision's name; features() is the method

    @property
    def trunk(self) -> nn.Sequential:
        """torchvision's ``SwinTransformer3d.features`` (stages and patch mergings)."""
        return self._modules["features"]  # type: ignore[return-value]

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, C, ceil(T/2), ceil(H/32), ceil(W/32))."""
        x = self.norm(self.trunk(self.pos_drop(self.patch_embed(clip))))  # (B, T', H', W', C)
        return x.permute(0, 4, 1, 2, 3)

    def cam_grid(self, layer: str, module: nn.Module, out: object) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """A layer's output -> ((B, C, T', H', W') grid, the inverse back to the output's layout).
        Every module of a Swin3D works channel-last ``(B, T', H', W', C)`` except convolutions
        (the patch projection), which are already channel-first."""
        if isinstance(module, nn.Conv3d) or not isinstance(out, Tensor) or out.dim() != 5:
            return out, lambda g: g  # type: ignore[return-value]  # GradCam names the wrong shape
        return out.permute(0, 4, 1, 2, 3), lambda g: g.permute(0, 2, 3, 4, 1)


def _out_len(n: int, pool: nn.Module, axis: int) -> int:
    """An axis's length after a Conv3d / MaxPool3d (torchvision's MViT q-pooling)."""
    k, s, p = (v if isinstance(v, int) else v[axis] for v in (pool.kernel_size, pool.stride, pool.padding))
    return (n + 2 * p - k) // s + 1


class TorchvisionMViT(Backbone):
    """torchvision's ``MViT`` without ``head`` (module docstring).

    ``net``: a prebuilt ``MViT`` to wrap (tests build small ones with
    ``torchvision.models.video.mvit._mvit``); else ``arch``'s, with Kinetics-400 weights when
    ``pretrained``. :attr:`input_size` is the only clip size (T, H, W) it accepts.
    Shapes: (B, 3, 16, 224, 224) -> features (B, 768, 8, 7, 7); forward -> (B, 768).
    """

    def __init__(self, arch: str = "mvit_v2_s", pretrained: bool = False, net: nn.Module | None = None) -> None:
        net = net if net is not None else _tv_net(arch, pretrained)
        super().__init__(dim=int(net.norm.normalized_shape[0]))
        self.arch = arch
        self.conv_proj, self.pos_encoding, self.blocks, self.norm = net.conv_proj, net.pos_encoding, net.blocks, net.norm
        pe, st = self.pos_encoding, self.conv_proj.stride
        self.token_thw: tuple[int, int, int] = (pe.temporal_size, *pe.spatial_size)
        self.input_size = (pe.temporal_size * st[0], pe.spatial_size[0] * st[1], pe.spatial_size[1] * st[2])
        self.cam_layer = f"blocks.{len(self.blocks) - 1}.norm1"
        # (T', H', W') of the tokens before each block and after the last (q-pooling shrinks them)
        thws = [self.token_thw]
        for b in self.blocks:
            pq = b.attn.pool_q
            thws.append(thws[-1] if pq is None else tuple(_out_len(n, pq.pool, a) for a, n in enumerate(thws[-1])))
        self._thws: list[tuple[int, int, int]] = thws

    def _check(self, clip: Tensor) -> None:
        t, h, w = (int(v) for v in clip.shape[2:])
        if (t, h, w) != self.input_size:
            want = self.input_size
            raise BebiasError(f"{self.arch} takes clips of exactly {want[0]} frames at {want[1]}x{want[2]} px (its "
                              f"positional embedding is learnt for that size), got {t}x{h}x{w}: set --frames "
                              f"{want[0]} --size {want[1]}")

    def tokens(self, clip: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        """(B, 3, T, H, W) at :attr:`input_size` -> (normed tokens (B, 1 + T'H'W', C), (T', H', W'))."""
        self._check(clip)
        x = self.conv_proj(clip).flatten(2).transpose(1, 2)  # (B, T'H'W', C0), raster order
        x = self.pos_encoding(x)  # prepends the CLS token
        thw = self.token_thw
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.norm(x), thw

    def features(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, C, T', H', W'): the patch tokens (CLS dropped) on their grid."""
        x, thw = self.tokens(clip)
        return x[:, 1:].transpose(1, 2).reshape(x.shape[0], x.shape[2], *thw)

    def forward(self, clip: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, C): the CLS token after the final norm (what the head reads)."""
        return self.tokens(clip)[0][:, 0]

    def cam_grid(self, layer: str, module: nn.Module, out: object) -> tuple[Tensor, Callable[[Tensor], object]]:
        """A layer's output -> ((B, C, T', H', W') grid of the patch tokens, the inverse).

        Token tensors ``(B, 1 + N, C)`` (a block returns ``(tokens, thw)``) lose their CLS
        token, which goes back unchanged (a constant for the gradient); (T', H', W') is the
        stage's grid with N cells. Other outputs (the patch projection's conv) pass through."""
        tup = isinstance(out, tuple)
        x = out[0] if tup else out
        if not isinstance(x, Tensor) or x.dim() != 3:
            return out, lambda g: g  # type: ignore[return-value]
        n = x.shape[1] - 1
        thw = next((t for t in self._thws if t[0] * t[1] * t[2] == n), None)
        if thw is None:
            raise BebiasError(f"layer {layer!r} has {n} tokens, no stage grid of {self.arch} has that many")
        cls = x[:, :1].detach()
        grid = x[:, 1:].transpose(1, 2).reshape(x.shape[0], x.shape[2], *thw)

        def back(g: Tensor) -> object:
            tokens = torch.cat([cls.to(g.dtype), g.flatten(2).transpose(1, 2)], dim=1)
            return (tokens, *out[1:]) if tup else tokens

        return grid, back
