"""Distractors: pure tensor functions that alter a clip's background or its time axis.

Every function takes and returns float clips of shape ``(B, C, T, H, W)`` (C = 3 colour
channels, already normalised) on any device, and touches no file and no global state:
each random function takes a ``torch.Generator | None`` (``None`` falls back to torch's
default generator, as ``torch.rand`` does). Draws are made on the generator's device
(CPU when ``None``) and moved to the clip's device, so a CPU generator drives a GPU clip
reproducibly.

* :func:`background_erasing` -- BE (Wang et al., CVPR 2021): add a static frame of the
  same clip to every frame.
* :func:`static_frame_from` -- the BE variant whose static frame comes from another clip.
* :func:`motion_mask` / :func:`fame_merge` -- FAME (Ding et al., CVPR 2022): a foreground
  mask from frame differences and colour statistics, and the foreground pasted on another
  clip's background.
* :func:`shuffle_frames`, :func:`reverse_frames`, :func:`static_clip` -- destroy or remove
  the temporal order (static_clip = SCUFO-style "one frame repeated").
* :func:`other_video_negative` -- the official MoCo baseline's extra negative (a clip of
  another video), taken from the batch.
* :func:`be_supervised`, :func:`stillmix`, :func:`fame_supervised` -- the same ideas as
  label-preserving augmentations for supervised training (:mod:`bebias.distract.debias`).

Mixing normalised clips equals mixing pixels (normalisation is affine per channel and the
weights sum to 1), so all of these can run after the data pipeline.
"""

from bebias.distract.debias import DEBIAS_METHODS, be_supervised, debias_batch, fame_supervised, stillmix
from bebias.distract.fame import fame_merge, motion_mask
from bebias.distract.mixing import background_erasing, static_frame_from
from bebias.distract.negatives import other_video_negative
from bebias.distract.temporal import reverse_frames, shuffle_frames, static_clip

__all__ = [
    "background_erasing",
    "static_frame_from",
    "motion_mask",
    "fame_merge",
    "shuffle_frames",
    "reverse_frames",
    "static_clip",
    "other_video_negative",
    "DEBIAS_METHODS",
    "be_supervised",
    "stillmix",
    "fame_supervised",
    "debias_batch",
]
