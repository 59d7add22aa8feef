"""The tiny runs the tests share: 3-class benchmark, 4-frame 32-px clips, batch 4."""

from bebias.training.finetune import FinetuneConfig, finetune
from bebias.training.pretrain import PretrainConfig

TINY = "synthetic:classes=3,videos_per_class=4,test_videos_per_class=2,frames=12,size=32"


def tiny_pretrain(out: str, **kw) -> PretrainConfig:
    """A fp32, in-process config writing to ``out``; ``kw`` overrides any field."""
    base = dict(data=TINY, frames=4, stride=2, size=32, batch_size=4, max_steps=6, queue_size=10, workers=0,
                precision="fp32", out=out)
    return PretrainConfig(**{**base, **kw})


def tiny_classifier(out: str, data: str = TINY, **kw) -> str:
    """Train a 2-step classifier on ``data`` into ``out``; returns its model.pth."""
    base = dict(data=data, frames=4, size=32, batch_size=4, max_steps=2, workers=0, out=str(out))
    return finetune(FinetuneConfig(**{**base, **kw})).model_path
