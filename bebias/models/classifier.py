"""A backbone + linear head: what ``bebias finetune`` trains and ``bebias eval``/``probe`` load."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bebias.models.backbones import Backbone


class VideoClassifier(nn.Module):
    """clip (B, 3, T, H, W) -> logits (B, num_classes).

    ``freeze_backbone=True`` is the linear probe: the backbone stays in eval mode (its
    BatchNorm statistics are not updated) and gets no gradient.
    """

    def __init__(self, backbone: Backbone, num_classes: int, dropout: float = 0.0,
                 freeze_backbone: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(backbone.dim, num_classes)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> "VideoClassifier":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, clip: Tensor) -> Tensor:
        if self.freeze_backbone:
            with torch.no_grad():
                feats = self.backbone(clip)
        else:
            feats = self.backbone(clip)
        return self.fc(self.dropout(feats))
