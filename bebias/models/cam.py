"""Grad-CAM for 3-D CNNs and video transformers, and how much of it falls on the actor.

Grad-CAM (Selvaraju et al. 2017) on a video backbone: for a layer with activations
``A`` (B, C, T', H', W') and a scalar score ``s`` per clip,

- whole-clip weights: ``w_c = mean_{t,h,w} ds/dA_c`` (one weight per channel), map
  ``ReLU(sum_c w_c A_c)`` (B, T', H', W');
- per-time weights (``per_time=True``): ``w_{c,t} = mean_{h,w} ds/dA_{c,t}``, one weight
  vector per time slice t', so a channel may count in one moment and not in another;

then upsampled trilinearly to the clip's (T, H, W) and divided by its maximum per video:
values in [0, 1], 1 = the clip's peak, 0 = no positive evidence. Only the maximum is
divided out (pytorch-grad-cam also subtracts the minimum): the map's mass proportions are
kept, so :func:`actor_share` measures the map itself.

The score ``s`` is the class logit (the predicted class, or a given target) for a
classifier. A pre-trained encoder has no classes: its score is the **feature norm**
``s = ||z||^2 / 2`` of its pooled embedding ``z`` (B, C). That is the same as the dot
product of ``z`` with its own (stop-gradient) embedding, ``<z, sg(z)>``, up to a factor 2:
ds/dz = z, so the map shows where the features that make up the clip's embedding are.
(Cosine similarity with its own embedding would not do: its gradient at itself is zero.)

Gradients flow even when the backbone's parameters have ``requires_grad=False`` (a
linear probe's frozen backbone) and under an outer ``torch.no_grad``: the layer's output
is replaced by a fresh leaf that requires grad, and only the part of the network after
the layer is recorded. That is also why this is cheap: nothing upstream of the layer is
recorded, and no parameter gradient is computed (``torch.autograd.grad`` w.r.t. the
activation only).

Everything here is a pure tensor function or a scoped hook; :class:`GradCam` removes its
hook when a call ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from bebias.errors import BebiasError
from bebias.models.inference import check_finite

__all__ = ["CamOutput", "GradCam", "MIN_CELLS", "actor_share", "chance_level", "default_layer", "find_layer",
           "grad_cam_map", "input_view", "layer_grids", "normalise", "upsample", "SCORES"]

#: what a CAM explains: the class logit, or the feature norm of an encoder without head
SCORES: tuple[str, ...] = ("class", "feature-norm")


# --------------------------------------------------------------------------------------
# pure maps
# --------------------------------------------------------------------------------------

def grad_cam_map(acts: Tensor, grads: Tensor, per_time: bool = False) -> Tensor:
    """Grad-CAM at the layer's resolution: (B, C, T', H', W') activations and gradients ->
    (B, T', H', W') ``ReLU(sum_c w_c A_c)``, ``w`` averaged over (T', H', W'), or over
    (H', W') per time slice with ``per_time``. Units: the score's per activation unit."""
    if acts.shape != grads.shape or acts.dim() != 5:
        raise ValueError(f"need (B, C, T', H', W') activations and gradients of one shape, got {tuple(acts.shape)} "
                         f"and {tuple(grads.shape)}")
    w = grads.mean(dim=(3, 4) if per_time else (2, 3, 4))  # (B, C, T') or (B, C)
    if per_time:
        return F.relu(torch.einsum("bct,bcthw->bthw", w, acts))
    return F.relu(torch.einsum("bc,bcthw->bthw", w, acts))


def upsample(cams: Tensor, size: tuple[int, int, int]) -> Tensor:
    """(B, T', H', W') -> (B, T, H, W), trilinear (half-pixel centres: ``align_corners=False``,
    as a strided conv's receptive-field centres). Non-negative in, non-negative out."""
    if cams.dim() != 4:
        raise ValueError(f"need (B, T', H', W') maps, got {tuple(cams.shape)}")
    if tuple(cams.shape[1:]) == tuple(size):
        return cams
    return F.interpolate(cams[:, None], size=tuple(size), mode="trilinear", align_corners=False)[:, 0]


def normalise(cams: Tensor) -> Tensor:
    """(B, ...) non-negative maps divided by their maximum per video -> [0, 1]; an all-zero
    map stays zero (no positive evidence anywhere)."""
    peak = cams.flatten(1).amax(dim=1).clamp_min(torch.finfo(cams.dtype).tiny)
    return cams / peak.view(-1, *([1] * (cams.dim() - 1)))


def actor_share(cam: np.ndarray | Tensor, mask: np.ndarray | Tensor) -> float:
    """Share of the CAM's mass inside the foreground: ``sum(cam * mask) / sum(cam)``.

    ``cam`` (T, H, W) non-negative; ``mask`` (T, H, W) bool, or a soft mask in [0, 1] (a
    resized mask: each pixel's foreground fraction). 1 = all on the actor, 0 = all on the
    scene; a CAM spread uniformly scores :func:`chance_level` (the mask's mean). NaN for
    an all-zero CAM (there is no mass to share).
    """
    c = np.asarray(cam.detach().cpu() if isinstance(cam, Tensor) else cam, np.float64)
    m = np.asarray(mask.detach().cpu() if isinstance(mask, Tensor) else mask, np.float64)
    if c.shape != m.shape or c.ndim != 3:
        raise ValueError(f"need a (T, H, W) cam and mask of one shape, got {c.shape} and {m.shape}")
    if (c < 0).any():
        raise ValueError("a CAM is non-negative (ReLU); got negative values")
    total = c.sum()
    return float(np.dot(c.ravel(), m.ravel()) / total) if total > 0 else math.nan


def chance_level(mask: np.ndarray | Tensor) -> float:
    """What a uniform CAM scores on ``mask`` (T, H, W): its mean foreground fraction."""
    m = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    return float(m.astype(np.float64).mean())


def input_view(x: np.ndarray, size: int) -> np.ndarray:
    """A native clip or mask in the geometry the model sees: the eval transform's resize
    (short side to ``size``, antialiased) and centre crop (:func:`bebias.data.transforms.eval_transform`).

    ``x``: (T, H, W, 3) uint8 frames -> (T, size, size, 3) uint8, exactly the model's pixels
    before normalisation; or (T, H, W) bool/float mask -> (T, size, size) float32 in
    [0, 1] (each pixel's foreground fraction), aligned with those pixels.
    """
    if x.ndim == 4:
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    elif x.ndim == 3:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, None]  # (T, 1, H, W)
    else:
        raise ValueError(f"need (T, H, W, 3) frames or a (T, H, W) mask, got {x.shape}")
    t = TF.center_crop(TF.resize(t, [size], antialias=True), [size, size])
    return t.permute(0, 2, 3, 1).numpy() if x.ndim == 4 else t[:, 0].clamp(0, 1).numpy()


# --------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------

#: the default CAM layer's map has at least this many cells along height and width: at
#: 2x2 even a map that is exactly the actor's mask, pooled to the layer's grid, puts little
#: more of its mass on a small actor than a uniform map (docs/cam.md, "Which layer")
MIN_CELLS = 4


def layer_grids(backbone: nn.Module, names: Sequence[str], input_shape: tuple[int, int, int]
                ) -> dict[str, tuple[int, int, int]]:
    """The (T', H', W') output grid of each of ``names`` for clips of ``input_shape`` (T, H, W):
    one forward pass of a zero clip (B = 1, eval mode, no grad) with a hook on each layer.
    Layers that return no (B, C, T', H', W') map are left out."""
    mods = {n: find_layer(backbone, n) for n in names}
    grids: dict[str, tuple[int, int, int]] = {}

    def hook(name: str):
        def record(_m: nn.Module, _i: object, out: object) -> None:
            if isinstance(out, Tensor) and out.dim() == 5:
                grids.setdefault(name, tuple(int(d) for d in out.shape[2:]))
        return record

    p = next(backbone.parameters(), None)
    x = torch.zeros(1, 3, *input_shape, device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    handles = [m.register_forward_hook(hook(n)) for n, m in mods.items()]
    was_training = backbone.training
    try:
        backbone.eval()  # a train-mode pass would move BatchNorm's running statistics
        with torch.no_grad():
            backbone(x)
    finally:
        for h in handles:
            h.remove()
        backbone.train(was_training)
    return {n: grids[n] for n in names if n in grids}


def default_layer(backbone: nn.Module, input_shape: tuple[int, int, int] | None = None) -> str:
    """The backbone's default CAM layer.

    With ``input_shape`` (T, H, W), the clip size the model takes: the deepest of the
    backbone's stage blocks (:attr:`bebias.models.backbones.Backbone.cam_layers`) whose map
    has at least :data:`MIN_CELLS` cells in both H' and W' at that size, found by computing
    the maps' sizes (:func:`layer_grids`); if none has, the one with the most cells. Without
    it (or for a backbone that lists no stages): the last block,
    :attr:`~bebias.models.backbones.Backbone.cam_layer`.
    """
    last = getattr(backbone, "cam_layer", "")
    stages = tuple(getattr(backbone, "cam_layers", ()) or ())
    if input_shape is not None and stages:
        grids = layer_grids(backbone, stages, tuple(input_shape))
        fine = [n for n in stages if n in grids and min(grids[n][1:]) >= MIN_CELLS]
        if fine:
            return fine[-1]
        if grids:
            return max(grids, key=lambda n: (grids[n][1] * grids[n][2], stages.index(n)))
    if not last:
        raise BebiasError(f"{type(backbone).__name__} names no default CAM layer; give --layer NAME")
    return last


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``); a user error listing
    a few candidates otherwise."""
    mods = dict(model.named_modules())
    if name in mods and name:
        return mods[name]
    close = [n for n in mods if n and (n.startswith(name) or name in n)][:6] or \
        [n for n in mods if n and "." not in n][:12]
    raise BebiasError(f"no layer {name!r} in {type(model).__name__}; e.g. {', '.join(close)}")


# --------------------------------------------------------------------------------------
# Grad-CAM on a backbone (+ head)
# --------------------------------------------------------------------------------------

@dataclass
class CamOutput:
    """One batch of CAMs.

    ``cams`` (B, T, H, W) float32 in [0, 1] at the clip's size; ``raw`` (B, T', H', W') the
    ReLU map at the layer (not normalised); ``target`` (B,) the explained class (-1 for
    the feature-norm score); ``scores`` (B,) the explained score; ``logits`` (B, K) or None.
    """

    cams: Tensor
    raw: Tensor
    target: Tensor
    scores: Tensor
    logits: Tensor | None


class GradCam:
    """Grad-CAM of ``backbone`` (+ ``head``) at one layer.

    Args:
        backbone: clip (B, 3, T, H, W), normalised -> pooled features (B, C), in eval mode
            (BatchNorm in train mode would tie the clips of a batch together).
        head: features -> logits (B, K), or None: explain the feature norm (module docstring).
        layer: a module name of ``backbone`` (``named_modules``); None = its default
            (:func:`default_layer` at ``input_shape``). The module must run exactly once
            per forward pass and return a (B, C, T', H', W') tensor, or tokens the backbone
            maps onto that grid: ``cam_grid`` (torchvision's channel-last Swin3D stages, MViT
            tokens without their CLS token) or ``cam_reshape(x, batch)``
            (:class:`bebias.models.hf.HFVideoBackbone`; of a tuple output, the first element).
        per_time: one weight vector per time slice instead of one for the clip.
        checkpoint: the file the model came from, named when its outputs are not finite
            (a NaN model has no predicted class to explain:
            :func:`bebias.models.inference.check_finite`).
        input_shape: (T, H, W) of the clips the model takes, for the default layer's choice;
            None = the backbone's last block.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None, layer: str | None = None,
                 per_time: bool = False, checkpoint: str | None = None,
                 input_shape: tuple[int, int, int] | None = None) -> None:
        self.backbone, self.head, self.per_time, self.checkpoint = backbone, head, per_time, checkpoint
        self.layer_name = layer or default_layer(backbone, input_shape)
        self.layer = find_layer(backbone, self.layer_name)
        #: ``backbone.cam_grid(name, module, out) -> (grid (B, C, T', H', W'), inverse)`` of a
        #: token model (:mod:`bebias.models.tv_transformers`), or None: the output is the grid
        self.grid = getattr(backbone, "cam_grid", None)
        self.score = "class" if head is not None else "feature-norm"
        #: a token model's (B, N, D) layer output -> (B, D, T', H', W') (``backbone.cam_reshape``)
        self.reshape = getattr(backbone, "cam_reshape", None)

    def _grid(self, x: Tensor, batch: int) -> Tensor:
        assert self.reshape is not None  # only a backbone with cam_reshape gets a non-5-D leaf
        g = self.reshape(x, batch)
        if g is None or g.dim() != 5:
            raise BebiasError(f"layer {self.layer_name!r} returns {tuple(x.shape)}, not a token sequence of "
                              f"{type(self.backbone).__name__}'s grid; pick a block's output with --layer")
        return g

    @property
    def method(self) -> str:
        """``grad-cam[-per-time]:<score>`` with score ``class`` or ``feature-norm``."""
        return f"grad-cam{'-per-time' if self.per_time else ''}:{self.score}"

    def __call__(self, clips: Tensor, target: Tensor | None = None) -> CamOutput:
        """(B, 3, T, H, W) normalised clips -> :class:`CamOutput`. ``target`` (B,) class
        indices to explain (default: the predicted class); ignored without a head."""
        captured: list[Tensor] = []

        def hook(module: nn.Module, _inp: object, out: object) -> object:
            if self.grid:  # onto the (B, C, T', H', W') grid here, and back for the layers after
                t, (grid, back) = out, self.grid(self.layer_name, module, out)
            else:  # a transformer block may return (hidden_states, attentions, ...): the first
                t = out[0] if isinstance(out, tuple) and out and isinstance(out[0], Tensor) else out
                grid, back = t, None  # tokens (cam_reshape) are put on the grid after the backward pass
            if not isinstance(grid, Tensor) or (grid.dim() != 5 and (self.grid or self.reshape is None)):
                shape = tuple(grid.shape) if isinstance(grid, Tensor) else type(grid).__name__
                raise BebiasError(f"layer {self.layer_name!r} returns {shape}; Grad-CAM needs a (B, C, T', H', W') "
                                  "feature map (pick a conv block with --layer)")
            # a fresh leaf: gradients reach it whatever requires_grad the parameters have,
            # and nothing upstream of the layer is recorded
            act = grid.detach().float().requires_grad_(True)
            captured.append(act)
            torch.set_grad_enabled(True)  # record from here on (restored below)
            # a copy goes on: an in-place op downstream (ReLU(inplace=True)) must not touch the leaf
            on = act.clone() if grid.dtype == act.dtype else act.to(grid.dtype)
            if back is not None:
                return back(on)
            return (on, *out[1:]) if t is not out else on

        prev = torch.is_grad_enabled()
        handle = self.layer.register_forward_hook(hook)
        try:
            torch.set_grad_enabled(False)
            feats = self.backbone(clips)
            logits = self.head(feats) if self.head is not None else None
            if len(captured) != 1:
                raise BebiasError(f"layer {self.layer_name!r} ran {len(captured)} times in one forward pass; "
                                  "Grad-CAM needs a layer that runs once")
            act = captured[0]
            check_finite(feats.float() if logits is None else logits.float(), self.checkpoint,
                         what="features" if logits is None else "outputs")
            if logits is not None:
                tgt = logits.detach().argmax(dim=1) if target is None else torch.as_tensor(target).to(logits.device)
                if tgt.shape != (logits.shape[0],) or (tgt < 0).any() or (tgt >= logits.shape[1]).any():
                    raise BebiasError(f"target classes must be (B,) = ({logits.shape[0]},) indices in "
                                      f"[0, {logits.shape[1]}), got {tgt.tolist()}")
                scores = logits.float().gather(1, tgt.long()[:, None])[:, 0]
            else:
                tgt = torch.full((feats.shape[0],), -1, dtype=torch.long, device=feats.device)
                scores = 0.5 * feats.float().pow(2).sum(dim=1)
            if not scores.requires_grad:
                raise BebiasError(f"the score does not depend on layer {self.layer_name!r}")
            # clips are independent (eval mode), so the sum's gradient is each clip's own
            (grads,) = torch.autograd.grad(scores.sum(), act)
        finally:
            handle.remove()
            torch.set_grad_enabled(prev)
        acts = act.detach()
        if acts.dim() != 5:  # tokens: onto their (T', H', W') grid, activations and gradients alike
            acts, grads = self._grid(acts, clips.shape[0]), self._grid(grads, clips.shape[0])
        raw = grad_cam_map(acts, grads, self.per_time)
        cams = normalise(upsample(raw, tuple(clips.shape[2:])))
        return CamOutput(cams, raw, tgt.detach(), scores.detach(),
                         None if logits is None else logits.detach().float())
