"""Hugging Face video transformers from a local model directory, offline.

A directory with ``config.json``, its weights (``model.safetensors``, sharded or not; a
``pytorch_model.bin`` is read by transformers with ``torch.load(weights_only=True)``) and
its processor config (``video_preprocessor_config.json`` or ``preprocessor_config.json``)
is a checkpoint like any other (:func:`bebias.models.open.open_model`). Read are
:data:`FAMILIES`: ``VideoMAEForVideoClassification``, ``TimesformerForVideoClassification``,
``VivitForVideoClassification`` and ``VJEPA2ForVideoClassification``, through
``AutoModelForVideoClassification.from_pretrained(dir, local_files_only=True,
trust_remote_code=False)`` with ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1``: nothing
is downloaded and no code from the directory runs. ``transformers`` is the optional extra
``bebias[hf]``.

- The input spec (:class:`~bebias.data.transforms.ClipSpec` fields) comes from the processor
  config (:func:`processor_spec`): the short-side resize, the centre crop, and the rescaling
  and normalisation folded into one mean/std for pixels in [0, 1]; the frame count from the
  model config (the processors record none), stride 1. The model's fixed frame count and
  image size (``num_frames`` / ``frames_per_clip``, ``image_size`` / ``crop_size``) are
  enforced: a processor config that disagrees is refused, and so is a clip of another shape.
- :class:`HFVideoBackbone` wraps the model: normalised clips (B, 3, T, H, W) -> the pooled
  features its classifier sees (B, C) (HF models take (B, T, 3, H, W)); the classifier, a
  ``nn.Linear``, is the head. Class names come from ``config.id2label`` (transformers'
  placeholders ``LABEL_0``, ... are no names).
- Grad-CAM (:mod:`bebias.models.cam`) hooks a token layer; :meth:`HFVideoBackbone.cam_reshape`
  turns its (B, N, D) tokens into the (B, D, T', H', W') grid (:attr:`HFVideoBackbone.grid`):
  VideoMAE / V-JEPA 2 tubelets ``T/tubelet_size x H/patch_size x W/patch_size`` (no CLS),
  ViViT ``T/t x H/h x W/w`` for ``tubelet_size = [t, h, w]`` (CLS dropped), TimeSformer
  ``T x H/patch_size x W/patch_size`` in its spatial-major token order (CLS dropped; inside a
  divided-attention block also its per-frame (B*T, 1 + H'W', D) layout). The default layer is
  the last block's first LayerNorm (pytorch-grad-cam's recipe for ViTs, ``blocks[-1].norm1``):
  the last block's output would give CLS-pooled models no gradient on the patch tokens.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bebias.errors import BebiasError
from bebias.models.classifier import VideoClassifier
from bebias.models.presets import Preset
from bebias.models.pt2_check import one_line
from bebias.parse import read_json

__all__ = ["FAMILIES", "EXTRA", "Family", "HFVideoBackbone", "is_hf_dir", "open_hf", "processor_spec"]

#: how to install what this module needs
EXTRA = "pip install bebias[hf]"
#: processor configs, in the order they are looked for
PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
#: weight files transformers reads (safetensors first, as transformers prefers them)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Family:
    """One supported model family. ``arch``: its class (``config.architectures``);
    ``pixels``: the forward argument of the (B, T, 3, H, W) clip; ``frames`` / ``size``:
    the config keys of its fixed frame count and image size; ``layers``: the default CAM
    layer with ``{last}`` for the last block's index, the first of them the model has
    (module names moved between transformers versions); ``cls``: whether a CLS token leads."""

    arch: str
    pixels: str
    frames: str
    size: str
    layers: tuple[str, ...]
    cls: bool


FAMILIES: dict[str, Family] = {
    "videomae": Family("VideoMAEForVideoClassification", "pixel_values", "num_frames", "image_size",
                       ("hf.videomae.encoder.layer.{last}.layernorm_before",), False),
    "timesformer": Family("TimesformerForVideoClassification", "pixel_values", "num_frames", "image_size",
                          ("hf.timesformer.encoder.layer.{last}.layernorm_before",), True),
    "vivit": Family("VivitForVideoClassification", "pixel_values", "num_frames", "image_size",
                    ("hf.vivit.layers.{last}.layernorm_before", "hf.vivit.encoder.layer.{last}.layernorm_before"),
                    True),
    "vjepa2": Family("VJEPA2ForVideoClassification", "pixel_values_videos", "frames_per_clip", "crop_size",
                     ("hf.vjepa2.encoder.layer.{last}.norm1",), False),
}


def _supported() -> str:
    return ", ".join(f.arch for f in FAMILIES.values())


def is_hf_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a ``config.json`` (a Hugging Face model)."""
    p = os.fspath(path)
    return os.path.isdir(p) and os.path.isfile(os.path.join(p, "config.json"))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(cfg: dict, key: str, where: str) -> int:
    v = cfg.get(key)
    if not (_is_int(v) and 1 <= v <= 1 << 16):
        raise BebiasError(f"{key} is {v!r}, expected a positive integer", where)
    return int(v)


def _square(v: Any, key: str, where: str) -> int:
    """An image size given as N, [N, N] or {"height": N, "width": N} -> N."""
    if isinstance(v, (list, tuple)) and len(v) == 2:
        v = {"height": v[0], "width": v[1]}
    if isinstance(v, dict) and set(v) >= {"height", "width"}:
        if v["height"] != v["width"]:
            raise BebiasError(f"{key} is {v['height']}x{v['width']}; bebias feeds square clips", where)
        v = v["height"]
    if not (_is_int(v) and 1 <= v <= 1 << 16):
        raise BebiasError(f"{key} is {v!r}, expected a positive integer", where)
    return int(v)


# --------------------------------------------------------------------------------------
# the directory's configs
# --------------------------------------------------------------------------------------

def _family(cfg: Any, where: str) -> tuple[str, Family]:
    """config.json -> (model_type, its :class:`Family`); an unsupported one is one line."""
    if not isinstance(cfg, dict):
        raise BebiasError("is not a model config (expected a JSON object)", where)
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures")
    fam = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    names = archs if isinstance(archs, list) and all(isinstance(a, str) for a in archs) else None
    if fam is None or (archs is not None and names != [fam.arch]):
        what = ", ".join(names) if names else f"model_type {model_type!r}"
        raise BebiasError(f"is a Hugging Face {what} model; bebias reads {_supported()}", where)
    return model_type, fam


def _grid(cfg: dict, model_type: str, frames: int, size: int, where: str) -> tuple[int, int, int]:
    """The token grid (T', H', W') of a clip of the model's fixed size."""
    if model_type == "vivit":
        tub = cfg.get("tubelet_size")
        if not (isinstance(tub, list) and len(tub) == 3 and all(_is_int(t) and t >= 1 for t in tub)):
            raise BebiasError(f"tubelet_size is {tub!r}, expected [frames, height, width]", where)
        t, h, w = tub
    else:
        t = 1 if model_type == "timesformer" else _pos_int(cfg, "tubelet_size", where)
        h = w = _pos_int(cfg, "patch_size", where)
    if frames % t or size % h or size % w:
        raise BebiasError(f"{frames} frames of {size} px do not tile into {t}x{h}x{w} tubelets", where)
    return frames // t, size // h, size // w


def processor_spec(proc: Any, where: str, model_type: str, frames: int, size: int,
                   size_key: str = "image_size") -> tuple[dict[str, Any], str]:
    """A processor config (``where``: its file) -> (input spec, what its rescaling was).

    ``frames`` / ``size``: the model's fixed frame count and image size. The frames are
    resized (short side) to ``size.shortest_edge`` and centre-cropped to ``crop_size``, as
    bebias's eval transform does. HF computes ``(p * rescale_factor - offset - image_mean) /
    image_std`` on pixels p in [0, 255] (``offset`` 1 for ViViT's processors, else 0);
    bebias ``(p / 255 - mean) / std``: the same with ``std = image_std / (255 r)`` and
    ``mean = (image_mean + offset) / (255 r)``. A crop or frame count that disagrees with the
    model config is a :class:`BebiasError`.
    """
    if not isinstance(proc, dict):
        raise BebiasError("is not a processor config (expected a JSON object)", where)

    def flag(key: str, default: bool = True) -> bool:
        v = proc.get(key, default)
        if not isinstance(v, bool):
            raise BebiasError(f"{key} is {v!r}, expected true or false", where)
        return v

    do_resize, do_crop = flag("do_resize"), flag("do_center_crop")
    resize = 0
    if do_resize:
        s = proc.get("size")
        if isinstance(s, dict) and "shortest_edge" in s:
            resize = _square(s["shortest_edge"], "size.shortest_edge", where)
        else:
            resize = _square(s, "size", where)
    crop = _square(proc.get("crop_size"), "crop_size", where) if do_crop else 0
    if model_type == "vjepa2" and do_crop:
        resize = int(crop * 256 / 224)  # VJEPA2VideoProcessor derives its resize from the crop, whatever size says
    px = crop or resize or size
    if px != size:
        raise BebiasError(f"{'crops' if crop else 'resizes'} frames to {px} px, but the model config's {size_key} "
                          f"is {size}: the processor config and config.json disagree", where)
    if resize and resize < px:
        raise BebiasError(f"resizes the short side to {resize} px, less than its {px} px crop", where)
    nf = proc.get("num_frames")
    if nf is not None and nf != frames:
        raise BebiasError(f"num_frames is {nf!r}, but the model takes {frames} frames (config.json): the processor "
                          "config and config.json disagree", where)

    def triple(key: str, positive: bool) -> list[float]:
        v = proc.get(key)
        v = [v] * 3 if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if not (isinstance(v, list) and len(v) == 3 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 or not positive)
                for x in v)):
            raise BebiasError(f"{key} is {str(v)[:60]}, expected three finite numbers{' > 0' if positive else ''}",
                              where)
        return [float(x) for x in v]

    if flag("do_normalize"):
        mean, std = triple("image_mean", False), triple("image_std", True)
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    r, offset = 1.0, 0.0
    if flag("do_rescale"):
        r = proc.get("rescale_factor", 1 / 255)
        if not (isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) and r > 0):
            raise BebiasError(f"rescale_factor is {r!r}, expected a number > 0", where)
        # ViViT's processors map [0, 255] to [-1, 1]: the video processor always, the image one with offset
        if model_type == "vivit" and (proc.get("offset", True) is True or "video_processor_type" in proc):
            offset = 1.0
    scale = 255.0 * float(r)
    # bebias always resizes the short side (0 = to the crop size): say so in the spec
    spec = {"frames": frames, "stride": 1, "size": size, "resize": resize or size,
            "mean": [(m + offset) / scale for m in mean], "std": [s / scale for s in std]}
    how = "" if abs(scale - 1.0) < 1e-9 and not offset else (
        f"; its rescaling p / {1 / float(r):.4g}{' - 1' if offset else ''} folded into mean/std")
    return spec, how


def _weights(path: str) -> str:
    have = [f for f in WEIGHT_FILES if os.path.isfile(os.path.join(path, f))]
    if not have:
        raise BebiasError(f"has a config.json but no weights ({' or '.join(WEIGHT_FILES[::2])})", path)
    return have[0]


# --------------------------------------------------------------------------------------
# transformers, offline and quiet
# --------------------------------------------------------------------------------------

def _transformers(path: str) -> Any:
    """transformers, imported offline; one line naming the extra when it is missing."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: huggingface_hub reads them once
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError:
        raise BebiasError(f"is a Hugging Face model directory; reading it needs transformers: {EXTRA}", path) from None
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported before the variables were set
        hub.HF_HUB_OFFLINE = True
    return transformers


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """No progress bars, log lines or warnings from transformers while it loads (a warning
    in bebias's output is a bug; what matters is checked and raised here)."""
    log = transformers.utils.logging
    verbosity, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.set_verbosity(verbosity)
        if bars:
            log.enable_progress_bar()


def _load(transformers: Any, path: str, arch: str) -> nn.Module:
    with _quiet(transformers):
        try:
            model, info = transformers.AutoModelForVideoClassification.from_pretrained(
                path, local_files_only=True, trust_remote_code=False, output_loading_info=True, dtype=torch.float32)
        except Exception as e:  # noqa: BLE001 - whatever transformers raises on a broken directory
            raise BebiasError(f"transformers cannot load it ({one_line(e)})", path) from None
    if type(model).__name__ != arch:
        raise BebiasError(f"transformers built a {type(model).__name__}, not a {arch}", path)
    # all or nothing, as for every checkpoint: transformers would random-init what is missing
    bad = [(what, sorted(str(k) for k in info.get(key) or ()))
           for what, key in (("missing", "missing_keys"), ("unexpected", "unexpected_keys"),
                             ("shape-mismatched", "mismatched_keys"))]
    bad = [(w, ks) for w, ks in bad if ks]
    if bad:
        raise BebiasError("weights do not match config.json (" + "; ".join(
            f"{len(ks)} {w}: {', '.join(ks[:4])}{' ...' if len(ks) > 4 else ''}" for w, ks in bad) + ")", path)
    return model.eval()


# --------------------------------------------------------------------------------------
# the adapter
# --------------------------------------------------------------------------------------

class HFVideoBackbone(nn.Module):
    """A Hugging Face video classifier without its classifier: normalised clip
    (B, 3, T, H, W) -> the pooled features (B, ``dim``) its classifier sees (the family's
    own pooling: mean + LayerNorm, CLS token, attentive pooler).

    ``hf``: the model, its ``classifier`` replaced by ``nn.Identity`` (the head is kept
    apart); ``frames`` / ``size``: the only clip shape it takes; ``grid``: the token grid
    (T', H', W'); ``cam_layer``: the default Grad-CAM layer (module docstring).
    """

    def __init__(self, hf: nn.Module, family: Family, frames: int, size: int, grid: tuple[int, int, int],
                 dim: int, layers: int, path: str) -> None:
        super().__init__()
        self.hf, self.family, self.frames, self.size, self.grid = hf, family, frames, size, grid
        self.dim, self.path = dim, path
        names = {n for n, _ in self.named_modules()}
        self.cam_layer = next((c for c in (t.format(last=layers - 1) for t in family.layers) if c in names), "")

    def forward(self, clip: Tensor) -> Tensor:
        want = (3, self.frames, self.size, self.size)
        if clip.dim() != 5 or tuple(clip.shape[1:]) != want:
            raise BebiasError(f"the model takes (B, 3, {self.frames}, {self.size}, {self.size}) clips "
                              f"({self.family.frames} {self.frames}, {self.family.size} {self.size} in config.json), "
                              f"got {tuple(clip.shape)}; leave --frames and --size to its processor config", self.path)
        out = self.hf(**{self.family.pixels: clip.transpose(1, 2)})  # HF: (B, T, 3, H, W)
        return out.logits

    def cam_reshape(self, x: Tensor, batch: int) -> Tensor | None:
        """A token layer's output -> (B, D, T', H', W'), the CLS token dropped; None for a
        layout that is not this model's token sequence.

        ``x``: (B, T'H'W', D) in (t, h, w) order (VideoMAE, V-JEPA 2), (B, 1 + T'H'W', D)
        (ViViT), TimeSformer's (B, 1 + H'W'T', D) in (h, w, t) order or its per-frame
        (B T', 1 + H'W', D) inside a divided-attention block. Linear in ``x``: applied
        alike to activations and gradients (as pytorch-grad-cam's ``reshape_transform``)."""
        T, H, W = self.grid
        n, c = T * H * W, int(self.family.cls)
        if x.dim() != 3:
            return None
        D = x.shape[-1]
        if x.shape[0] == batch and x.shape[1] == n + c:
            tok = x[:, c:]
            if self.family.arch.startswith("Timesformer"):  # spatial-major: token 1 + (h W' + w) T' + t
                return tok.reshape(batch, H, W, T, D).permute(0, 4, 3, 1, 2)
            return tok.reshape(batch, T, H, W, D).permute(0, 4, 1, 2, 3)
        if self.family.arch.startswith("Timesformer") and tuple(x.shape[:2]) == (batch * T, H * W + 1):
            return x[:, 1:].reshape(batch, T, H, W, D).permute(0, 4, 1, 2, 3)  # row b T' + t: frame t's CLS + H'W'
        return None


_PLACEHOLDER = re.compile(r"LABEL_(\d+)")


def _classes(id2label: Any, k: int) -> list[str] | None:
    """config.id2label -> the names in output order; None for transformers' placeholders."""
    if not isinstance(id2label, dict) or len(id2label) != k:
        return None
    try:
        names = [str(id2label[i] if i in id2label else id2label[str(i)]) for i in range(k)]
    except KeyError:
        return None
    if all((m := _PLACEHOLDER.fullmatch(n)) and int(m.group(1)) == i for i, n in enumerate(names)):
        return None
    return names


def open_hf(path: str | os.PathLike) -> tuple[VideoClassifier, dict[str, Any]]:
    """A Hugging Face model directory -> (the classifier in eval mode, metadata).

    The classifier's ``backbone`` is a :class:`HFVideoBackbone`, its ``fc`` the model's own
    classifier. ``meta``: ``kind`` (``classifier``), ``arch`` (the HF class), ``method``
    (``huggingface``), ``input`` (:func:`processor_spec`) and ``input_preset`` (the line that
    announces it), ``classes`` (or None), ``num_classes``, ``foreign`` (what was read).
    Every problem is one :class:`BebiasError` line naming the directory or file.
    """
    p = os.fspath(path)
    cfg_path = os.path.join(p, "config.json")
    cfg = read_json(cfg_path, "model config")
    model_type, fam = _family(cfg, cfg_path)
    frames = _pos_int(cfg, fam.frames, cfg_path)
    size = _square(cfg.get(fam.size), fam.size, cfg_path)
    grid = _grid(cfg, model_type, frames, size, cfg_path)
    proc_name = next((f for f in PROCESSOR_FILES if os.path.isfile(os.path.join(p, f))), None)
    if proc_name is None:
        raise BebiasError(f"has no processor config ({' or '.join(PROCESSOR_FILES)}): its input size, mean and std "
                          "are unknown", p)
    proc_path = os.path.join(p, proc_name)
    spec, how = processor_spec(read_json(proc_path, "processor config"), proc_path, model_type, frames, size, fam.size)
    weights = _weights(p)
    transformers = _transformers(p)
    model = _load(transformers, p, fam.arch)
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Linear):
        raise BebiasError(f"has no linear classifier (num_labels {getattr(model.config, 'num_labels', None)!r})", p)
    model.classifier = nn.Identity()  # the pooled features come out; the head is applied by bebias
    layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    if layers < 1:
        raise BebiasError(f"num_hidden_layers is {layers}, expected a positive integer", cfg_path)
    backbone = HFVideoBackbone(model, fam, frames, size, grid, head.in_features, layers, p)
    k = head.out_features
    net = VideoClassifier(backbone, k)  # type: ignore[arg-type]  # duck-typed: dim + forward (B, dim)
    net.fc = head
    preset = Preset(f"Hugging Face {fam.arch} ({proc_name}{how})", spec)
    meta = {"kind": "classifier", "arch": fam.arch, "method": "huggingface", "input": spec,
            "input_preset": preset.describe(), "classes": _classes(getattr(model.config, "id2label", None), k),
            "num_classes": k,
            "foreign": {"layout": "huggingface", "model_type": model_type, "weights": weights,
                        "processor": proc_name, "transformers": transformers.__version__}}
    return net.eval(), meta
