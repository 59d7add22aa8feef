"""Input presets: the preprocessing that an architecture's usual public weights expect.

A state_dict from another codebase rarely records how its clips were made. Where the
architecture tells, :func:`preset_for` gives the spec those weights were trained and
evaluated with, so ``bebias probe ckpt.pth --arch r3d_18`` needs no more flags:

- torchvision's video models (``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ``swin3d_t/s/b``,
  ``mvit_v1_b``, ``mvit_v2_s``): read from torchvision's own weight metadata
  (``Weights.DEFAULT.transforms()`` for resize, crop, mean and std; the ``clip_len`` and
  ``frame_rate`` its docs state, MViT's ``min_temporal_size``, the one clip length it takes).
  torchvision samples at 15 fps (MViT: 7.5); bebias samples frames, so the preset takes every
  2nd (MViT: 4th) frame, right for the 25-30 fps of UCF101, HMDB51 and Kinetics. Swin3D:
  32 frames at stride 2, 256 -> 224; MViT: 16 frames at stride 4, 256 -> 224.
- ``i3d``: the Kinetics-400 I3D port most codebases load (piergiaj/pytorch-i3d, which
  FingerRec/BE fine-tunes): 64 frames, 256 -> 224 crop, pixels scaled to [-1, 1].
- ``c3d``: the C3D recipe of FingerRec/BE (16 frames, 128 -> 112 crop, ImageNet mean/std;
  ``configs/be-official.toml``); bebias's C3D has BatchNorm, so Sports-1M caffe weights do
  not load into it anyway.

``small3d`` is bebias's own and has no public weights: no preset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TORCHVISION = {"r3d_18": "R3D_18_Weights", "mc3_18": "MC3_18_Weights", "r2plus1d_18": "R2Plus1D_18_Weights",
                "s3d": "S3D_Weights", "swin3d_t": "Swin3D_T_Weights", "swin3d_s": "Swin3D_S_Weights",
                "swin3d_b": "Swin3D_B_Weights", "mvit_v1_b": "MViT_V1_B_Weights", "mvit_v2_s": "MViT_V2_S_Weights"}


@dataclass(frozen=True)
class Preset:
    """``name``: what the spec comes from; ``spec``: :class:`~bebias.data.transforms.ClipSpec`
    fields (frames, stride, size, resize, mean, std)."""

    name: str
    spec: dict[str, Any]

    def describe(self) -> str:
        s = self.spec
        return (f"{self.name}: {s['frames']} frames at stride {s['stride']}, short side {s['resize']} -> "
                f"{s['size']} px centre crop, mean {_fmt(s['mean'])}, std {_fmt(s['std'])}")


def _fmt(v: Any) -> str:
    return "(" + ", ".join(f"{x:.3g}" for x in v) + ")"


def _torchvision(arch: str) -> Preset:
    import torchvision.models.video as tvv

    weights = getattr(tvv, _TORCHVISION[arch]).DEFAULT
    tf = weights.transforms()
    docs = weights.meta.get("_docs", "")
    clip_len = re.search(r"clip_len=(\d+)", docs)
    fps = re.search(r"frame_rate=(\d+(?:\.\d+)?)", docs)
    frames = int(clip_len.group(1)) if clip_len else 16
    # a fixed-size model (MViT) takes its own clip length, whatever the docs evaluated with
    frames = int(weights.meta.get("min_temporal_size", frames)) if arch.startswith("mvit") else frames
    return Preset(f"torchvision {type(weights).__name__}.{weights.name}", {
        "frames": frames,
        "stride": max(1, round(30 / float(fps.group(1)))) if fps else 1,  # 15 fps from ~30 fps videos
        "size": int(tf.crop_size[0]),
        "resize": int(min(tf.resize_size)),
        "mean": [float(x) for x in tf.mean],
        "std": [float(x) for x in tf.std],
    })


def preset_for(arch: str | None) -> Preset | None:
    """The preset of ``arch`` (case-insensitive), or None where there is none."""
    key = (arch or "").strip().lower()
    if key in _TORCHVISION:
        return _torchvision(key)
    if key == "i3d":
        return Preset("I3D Kinetics-400 (piergiaj/pytorch-i3d, as FingerRec/BE loads it)", {
            "frames": 64, "stride": 1, "size": 224, "resize": 256, "mean": [0.5] * 3, "std": [0.5] * 3})
    if key == "c3d":
        return Preset("C3D as FingerRec/BE trains it (configs/be-official.toml)", {
            "frames": 16, "stride": 1, "size": 112, "resize": 128, "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD)})
    return None
