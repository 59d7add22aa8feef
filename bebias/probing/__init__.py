"""Probing: counterfactual test sets that measure how much a model relies on background vs motion.

- :mod:`bebias.probing.masks`     foreground masks from motion (no segmentation model),
  background plates, mask utilities
- :mod:`bebias.probing.testsets`  the variants of a video (background swap, static frame,
  background-only, foreground-only, shuffle, reverse, cue conflict, BE), pure functions of
  (clip, mask, background, seed) on uint8 arrays
- :mod:`bebias.probing.metrics`   reliance metrics on per-video probabilities / features
- :mod:`bebias.probing.suite`     declarative probe suites (TOML; built-in ones in ``suites/``)
- :mod:`bebias.probing.run`       ``bebias probe``: variants of a split through a checkpoint,
  in named phases (:func:`run_probe`)
- :mod:`bebias.probing.partial`   the probe's resumable state (``partial.npz``)
- :mod:`bebias.probing.assemble`  rows -> metrics.json blocks and predictions.csv (pure)
- :mod:`bebias.probing.source`    the probe's data side (decode once, masks, plates, donors,
  the variants of one video), shared by the probe and ``bebias testset``
- :mod:`bebias.probing.materialize` ``bebias testset``: one variant of a split written to disk
  (videos, masks, manifest.csv, provenance.json), bit-identical to the probe's frames
"""

from bebias.probing.masks import METHODS, background_plate, camera_offsets, mask_iou, mask_is_usable, motion_masks
from bebias.probing.testsets import (MASK_VARIANTS, VARIANTS, ConflictVariant, Variant, background_from_images,
                                     background_only, be_distraction, conflict_foreground, foreground_only,
                                     make_variant, reverse, shuffle, static_frame, stripes_background,
                                     swap_background)
from bebias.probing.run import ProbeConfig, ProbeResult, run_probe
from bebias.probing.suite import ALL_VARIANTS, ProbeSuite, load_suite

__all__ = [
    "METHODS", "background_plate", "camera_offsets", "mask_iou", "mask_is_usable", "motion_masks",
    "MASK_VARIANTS", "VARIANTS", "ConflictVariant", "Variant", "background_from_images", "background_only",
    "be_distraction", "conflict_foreground", "foreground_only", "make_variant", "reverse", "shuffle",
    "static_frame", "stripes_background", "swap_background",
    "ALL_VARIANTS", "ProbeConfig", "ProbeResult", "ProbeSuite", "load_suite", "run_probe",
]
