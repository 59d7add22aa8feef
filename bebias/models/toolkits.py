"""Checkpoints of other toolkits, read without installing them: explicit key maps.

:func:`translate` runs before :func:`bebias.models.foreign.adapt_state_dict` and turns a
toolkit's layout into torchvision's names (which are bebias's, plus ``head.*``):

- **mmaction2** (``{"meta": ..., "state_dict": {"backbone.*", "cls_head.fc_cls.*"}}``; also the
  Video-Swin-Transformer repository, which is mmaction2-based): the Video Swin backbone
  (``SwinTransformer3D``) onto ``swin3d_t`` / ``swin3d_s`` / ``swin3d_b``. Key map
  (:data:`MMACTION2_SWIN`, ``i`` the stage, ``j`` the block):

  ==================================================== ===============================
  mmaction2                                            bebias / torchvision
  ==================================================== ===============================
  ``backbone.patch_embed.{proj,norm}.*``                ``patch_embed.{proj,norm}.*``
  ``backbone.layers.i.blocks.j.{norm1,norm2}.*``        ``features.(2i).j.{norm1,norm2}.*``
  ``backbone.layers.i.blocks.j.attn.{qkv,proj}.*``      ``features.(2i).j.attn.{qkv,proj}.*``
  ``backbone.layers.i.blocks.j.attn.relative_*``        ``features.(2i).j.attn.relative_*``
  ``backbone.layers.i.blocks.j.mlp.fc1.*`` / ``fc2.*``  ``features.(2i).j.mlp.0.*`` / ``3.*``
  ``backbone.layers.i.downsample.{reduction,norm}.*``   ``features.(2i+1).{reduction,norm}.*``
  ``backbone.norm3.*`` (mmaction2 1.x) / ``norm.*``     ``norm.*``
  ``cls_head.fc_cls.*``                                 ``head.*`` (the classifier)
  ``data_preprocessor.*``                               dropped (mean / std buffers)
  ==================================================== ===============================

  ``relative_position_index`` is derived from the window size: when present it must equal
  bebias's (else the window differs), when absent it is filled in.
- **ALBAR-style** (``{"model_state_dict": ...}``, optionally DataParallel's ``module.``): a
  torchvision video model's own state_dict, head included (``head.*``, ``head.1.*`` for MViT,
  ``fc.*``, ``classifier.1.*`` for S3D), for any torchvision arch bebias builds.

Any key that has no place in the arch is refused, naming the first one; for other
networks, ``--model module:function`` (:mod:`bebias.models.user_model`).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from bebias.errors import BebiasError

__all__ = ["MMACTION2_SWIN", "TORCHVISION_HEADS", "translate"]

#: mmaction2 Video Swin key -> torchvision key (regex, replacement); ``\\i``-stages are doubled below
MMACTION2_SWIN: tuple[tuple[str, str], ...] = (
    (r"backbone\.patch_embed\.(proj|norm)\.(weight|bias)", r"patch_embed.\1.\2"),
    (r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj)\.(weight|bias)", r"B\1.\2.\3.\4"),
    (r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.attn\.(relative_position_bias_table|relative_position_index)",
     r"B\1.\2.attn.\3"),
    (r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", r"B\1.\2.mlp.0.\3"),
    (r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", r"B\1.\2.mlp.3.\3"),
    (r"backbone\.layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)", r"D\1.\2.\3"),
    (r"backbone\.norm3?\.(weight|bias)", r"norm.\1"),
    (r"cls_head\.fc_cls\.(weight|bias)", r"head.\1"),
)
#: a torchvision video model's classifier, per family
TORCHVISION_HEADS: tuple[str, ...] = ("head.", "fc.", "classifier.")
_SWIN = ("swin3d_t", "swin3d_s", "swin3d_b")
_INDEX = "relative_position_index"


def _tensors(d: dict) -> dict[str, Tensor]:
    return {str(k): v for k, v in d.items() if isinstance(v, Tensor)}


def _swin_key(key: str) -> str | None:
    """An mmaction2 Video Swin key -> torchvision's, or None where no rule applies."""
    for pattern, repl in MMACTION2_SWIN:
        m = re.fullmatch(pattern, key)
        if m is None:
            continue
        out = m.expand(repl)
        # stage i's blocks are torchvision's features.(2i), its patch merging features.(2i+1)
        if out.startswith("B"):
            stage, rest = out[1:].split(".", 1)
            return f"features.{2 * int(stage)}.{rest}"
        if out.startswith("D"):
            stage, rest = out[1:].split(".", 1)
            return f"features.{2 * int(stage) + 1}.{rest}"
        return out
    return None


def _is_mmaction2(raw: dict) -> bool:
    sd = raw.get("state_dict")
    if not isinstance(sd, dict):
        return False
    keys = [str(k) for k in sd]
    return ("meta" in raw and any(k.startswith("backbone.") for k in keys)) or any(
        k.startswith("cls_head.") for k in keys)


def _own(arch: str) -> dict[str, Tensor]:
    from bebias.models.backbones import build_backbone

    return build_backbone(arch).state_dict()


def _mmaction2(raw: dict, arch: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    if arch not in _SWIN:
        raise BebiasError(f"is an mmaction2 checkpoint; bebias maps mmaction2's Video Swin backbone onto swin3d_t, "
                          f"swin3d_s or swin3d_b, not --arch {arch}; for another network give --model module:function")
    own = _own(arch)
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for k, v in _tensors(raw["state_dict"]).items():
        if k.startswith("data_preprocessor."):
            dropped.append(k)
            continue
        t = _swin_key(k)
        if t is None or (t not in own and not t.startswith("head.")):
            raise BebiasError(f"mmaction2 checkpoint: key {k!r} does not map to {arch} (the key map is in "
                              "docs/checkpoints.md)")
        if t.endswith(_INDEX) and not torch.equal(v.to(own[t].dtype), own[t]):
            raise BebiasError(f"mmaction2 checkpoint: {k} is not {arch}'s window index (another window size?)")
        out[t] = v
    filled = [k for k in own if k.endswith(_INDEX) and k not in out]
    for k in filled:  # a derived buffer some savers leave out
        out[k] = own[k].clone()
    return out, {"toolkit": "mmaction2", "toolkit_dropped": dropped, "toolkit_filled": len(filled)}


def _albar(raw: dict, arch: str) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    sd = _tensors(raw["model_state_dict"])
    strip = "module." if sd and all(k.startswith("module.") for k in sd) else ""
    sd = {k[len(strip):]: v for k, v in sd.items()}
    own = _own(arch)
    if not any(k in own for k in sd):
        return None  # not a torchvision layout (MoCo, Lightning, ...): foreign.adapt_state_dict's rules
    for k in sd:
        if k not in own and not k.startswith(TORCHVISION_HEADS):
            raise BebiasError(f"ALBAR-style checkpoint (model_state_dict): key {strip + k!r} does not map to "
                              f"torchvision's {arch}")
    return sd, {"toolkit": "albar", "toolkit_prefix": strip}


def translate(raw: Any, arch: str) -> tuple[Any, dict[str, Any] | None]:
    """``raw`` (a loaded file) -> (a plain state_dict in torchvision's names, report) for an
    mmaction2 or ALBAR-style checkpoint; ``(raw, None)`` for anything else (the generic rules
    of :func:`bebias.models.foreign.adapt_state_dict` apply). Raises :class:`BebiasError`
    naming the first key that does not map."""
    if not isinstance(raw, dict):
        return raw, None
    key = arch.strip().lower()
    if _is_mmaction2(raw):
        return _mmaction2(raw, key)
    if isinstance(raw.get("model_state_dict"), dict) and "state_dict" not in raw:
        found = _albar(raw, key)
        if found is not None:
            return found
    return raw, None
