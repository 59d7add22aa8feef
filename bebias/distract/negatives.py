"""Extra negatives for MoCo."""

from __future__ import annotations

import torch
from torch import Tensor


def other_video_negative(neg: Tensor, index: Tensor) -> Tensor:
    """The official MoCo baseline's extra negative, drawn from the batch.

    FingerRec/BE's ``get_moco_items`` (src/Contrastive/data/dataset.py:312-333) returns, with
    the anchor and positive clip of video i, a clip of ANOTHER video (random index != i,
    random start, its own augmentation), which ``train_moco`` (src/Contrastive/pt.py:179-180)
    encodes with the query encoder and appends as one logit ``q_i . n_i`` per sample
    (src/Contrastive/loss/NCE/NCEAverage.py:191-199). Here sample i takes the extra clip of
    sample j of the same batch (one decoded per sample, at its own random start and with
    its own augmentation): j is the nearest position before i, cyclically (i-1, i-2, ...),
    whose video differs from i's, so a batch of distinct videos is simply rotated by one.

    Args:
        neg: (B, ...) one extra clip per sample (e.g. (B, C, T, H, W)).
        index: (B,) the video (dataset index) of each sample.

    Returns:
        (B, ...): row i is ``neg[j]`` with ``index[j] != index[i]``.
    """
    vid = torch.as_tensor(index).reshape(-1).tolist()
    B = len(vid)
    if neg.shape[0] != B:
        raise ValueError(f"neg has {neg.shape[0]} rows but index has {B}")
    partner = []
    for i in range(B):
        j = next((j for j in ((i - d) % B for d in range(1, B)) if vid[j] != vid[i]), None)
        if j is None:
            raise ValueError("every sample of the batch is the same video: no other video for a negative")
        partner.append(j)
    return neg[torch.tensor(partner, dtype=torch.long, device=neg.device)]
