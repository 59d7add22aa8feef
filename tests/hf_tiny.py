"""Tiny random Hugging Face video classifiers written with ``save_pretrained`` (tests only):
hidden size 32, 2 layers, 4 frames of 32 px, so that each loads and runs in well under a
second. Needs transformers (``bebias[hf]``)."""

from __future__ import annotations

import os

import torch

#: the tiny models' clip: 4 frames of 32 x 32 px, resized from a 36 px short side
FRAMES, SIZE, RESIZE = 4, 32, 36
FAMILIES = ("videomae", "timesformer", "vivit", "vjepa2")
_COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)


def tiny_config(family: str, num_labels: int = 3, **kw):
    """The tiny config of ``family`` (kw: any config field)."""
    import transformers as tf

    if family == "videomae":
        c = tf.VideoMAEConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, tubelet_size=2, intermediate_size=64,
                              **_COMMON)
    elif family == "timesformer":
        c = tf.TimesformerConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, intermediate_size=64, **_COMMON)
    elif family == "vivit":
        c = tf.VivitConfig(image_size=SIZE, tubelet_size=[2, 16, 16], num_frames=FRAMES, intermediate_size=64,
                           **_COMMON)
    elif family == "vjepa2":
        c = tf.VJEPA2Config(crop_size=SIZE, patch_size=16, frames_per_clip=FRAMES, tubelet_size=2, mlp_ratio=2.0,
                            pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=2,
                            num_pooler_layers=1, **_COMMON)
    else:
        raise ValueError(family)
    c.num_labels = num_labels
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def tiny_processor(family: str, **kw):
    """The family's own video processor at the tiny size (kw: any processor field)."""
    import transformers as tf

    crop = {"height": SIZE, "width": SIZE}
    if family == "vjepa2":
        return tf.VJEPA2VideoProcessor(crop_size=SIZE, **kw)
    if family == "timesformer" and not hasattr(tf, "TimesformerVideoProcessor"):  # transformers < 5.2 or so
        # what the Hub's TimeSformer repos use: VideoMAE's processor with ImageNet's mean/std
        kw = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], **kw}
        family = "videomae"
    cls = {"videomae": tf.VideoMAEVideoProcessor, "timesformer": getattr(tf, "TimesformerVideoProcessor", None),
           "vivit": getattr(tf, "VivitVideoProcessor", None) or tf.VivitImageProcessor}[family]
    return cls(**{"size": {"shortest_edge": RESIZE}, "crop_size": crop, **kw})


def tiny_hf_dir(path: str | os.PathLike, family: str, num_labels: int = 3, labels: list[str] | None = None,
                seed: int = 0, processor: bool = True, **config_kw) -> str:
    """Write a random tiny ``family`` classifier (+ its processor config) to ``path``."""
    import transformers as tf

    cfg = tiny_config(family, num_labels, **config_kw)
    if labels is not None:
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {n: i for i, n in enumerate(labels)}
    torch.manual_seed(seed)
    model = tf.AutoModelForVideoClassification.from_config(cfg).eval()
    tf.utils.logging.disable_progress_bar()
    model.save_pretrained(path)
    if processor:
        tiny_processor(family).save_pretrained(path)
    return os.fspath(path)
