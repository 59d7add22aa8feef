"""Grad-CAM of checkpoints on clips: the glue between the probe's data side (the same
centre clip and foreground mask, :class:`bebias.probing.source.ProbeSource`), the
computation (:mod:`bebias.models.cam_explain`: maps, targets, shares), the bootstrap
(:func:`bebias.stats.bootstrap_ci`) and the renderer (:mod:`bebias.reporting.cam`),
for ``bebias cam`` and ``bebias demo``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bebias.errors import BebiasError
from bebias.progress import Progress, ProgressFn

if TYPE_CHECKING:  # imported where used: torch only when a CAM is computed
    from bebias.models.cam_explain import CamModel
    from bebias.models.cam_result import CamClip


def explain(models: Sequence[CamModel], clips: Sequence[CamClip], out: str, *, n_boot: int = 1000, seed: int = 0, target: str = "pred",
            formats: Sequence[str] = ("gif",), batch_size: int = 8, fps: float = 4.0, device="cpu",
            extra: dict | None = None, progress: ProgressFn | None = None) -> dict:
    """Grad-CAM of every model (:class:`~bebias.models.cam_explain.CamModel`, the first the
    reference row) on every clip (:class:`~bebias.models.cam_result.CamClip`): strips and
    animations (``formats``, any of :data:`bebias.reporting.cam.FORMATS`) and ``out/cam.json``
    (:mod:`bebias.reporting.cam`), its intervals a bootstrap over the clips (``n_boot``
    replicates, ``seed``). ``target``: the map shown, ``pred`` or ``label``; ``extra``: more
    top-level keys for ``cam.json`` (provenance); ``progress``: a ``Grad-CAM`` stage, clips
    explained. Returns the ``cam.json`` content."""
    from bebias.models.cam_explain import CamTally, check_clips, check_models, explain_clips
    from bebias.reporting.cam import check_formats, render_clip, write_cam

    check_clips(models, clips, target)
    check_formats(formats)
    check_models(models)
    labels = [m.label for m in models]
    tally, videos = CamTally(models, target), []
    if progress:
        progress(Progress("Grad-CAM", 0, len(clips)))
    for item in explain_clips(models, clips, target=target, batch_size=batch_size, device=device):
        tally.add(item)
        videos.append(render_clip(out, item, labels, formats, fps))
        if progress:
            progress(Progress("Grad-CAM", len(videos), len(clips)))
    summary = tally.summary(n_boot=n_boot, seed=seed)
    return write_cam(out, summary, videos, extra)


def open_cam_model(path: str, label: str, arch: str | None = None, layer: str | None = None,
                   per_time: bool = False, given: dict | None = None, device="cpu",
                   log: Callable[[str], None] | None = None, model: str | None = None):
    """(:class:`CamModel`, the opened checkpoint) of one checkpoint; archives refused."""
    from bebias.models.cam import GradCam
    from bebias.models.classes import is_named
    from bebias.models.open import open_model, refuse_archive
    from bebias.models.cam_explain import CamModel

    refuse_archive(path, "a whole model with no layers to hook, so Grad-CAM cannot explain it; give its "
                         "state_dict with --arch instead")
    m = open_model(path, arch, device, model=model)
    spec = m.input_spec(given)
    said = m.announce_spec(given, label)
    if said and log:
        log(said)
    classes = list(m.meta.classes) if m.meta.classes is not None else None
    # names matched by name against the clips' classes; placeholders ("0", "1", ...) are no names
    if m.head is not None and (not is_named(classes) or len(classes) != int(m.meta.num_classes or -1)):
        classes = None
    cam = GradCam(m.backbone, m.head, layer, per_time, checkpoint=path, input_shape=(spec.frames, spec.size, spec.size))
    return CamModel(label, path, str(m.meta.arch), cam, spec, classes or None), m


def sample_clips(spec, opened, videos: Sequence[str] = (), data: str | None = None, dataset: str | None = None,
                 annotations: str | None = None, split: str | None = None, fold: int = 1, n: int = 8,
                 mask_mode: str = "auto", masks: str | None = None):
    """(clips, unreadable, source description): the probe's centre clip and mask of each of
    ``videos``, or of ``n`` class-balanced videos of the data (the checkpoint's own by default)."""
    from bebias.data.decoders import FileDecoder
    from bebias.data.open import Data, open_data
    from bebias.data.records import LabeledVideos, VideoRecord
    from bebias.models.classes import is_named
    from bebias.probing.source import ProbeSource
    from bebias.probing.suite import MASK_MODES, ProbeSuite, select_videos
    from bebias.models.cam_result import CamClip

    if mask_mode not in MASK_MODES:
        raise BebiasError(f"--mask must be one of {', '.join(MASK_MODES)}, got {mask_mode!r}")
    if videos:
        missing = [v for v in videos if not os.path.exists(v)]
        if missing:
            raise BebiasError("no such video file or frame folder", missing[0])
        d = Data(LabeledVideos([VideoRecord(v, 0) for v in videos], ["?"], name="files"), FileDecoder(), "files")
        chosen, where = list(range(len(videos))), {"videos": list(videos)}
    else:
        if n < 1:
            raise BebiasError(f"--n must be >= 1, got {n}")
        data_arg, ds, notes, sp = opened.resolve_data(data, dataset, annotations, split)
        d = open_data(data_arg, split=sp, dataset=ds, fold=fold, annotations=notes, masks=masks)
        if len(d.videos) == 0:
            raise BebiasError(f"no videos in split {sp!r}", data_arg)
        where = {"data": data_arg, "dataset": ds, "split": sp, "n": n}
    src = ProbeSource(d, spec, ProbeSuite(mask=mask_mode), need_mask=True)
    if mask_mode == "ground-truth" and not src.has_gt:
        raise BebiasError("--mask ground-truth, but the videos have no ground-truth masks (use auto, or give "
                          "masks with --masks DIR)")
    if not videos:
        chosen = select_videos(src.labels, n)
    # integer labels without names ("0", "1", ...) are matched to the model's outputs by index
    clips, unreadable, named = [], [], is_named(d.videos.classes)
    for i in chosen:
        rec = d.videos.records[i]
        try:
            v = src.video(i)
        except BebiasError as e:
            unreadable.append({"path": rec.path, "error": str(e)})
            continue
        labelled = not videos
        clips.append(CamClip(rec.path, v.clip, v.mask if v.usable else None, v.source if v.usable else "",
                             int(rec.label) if labelled else None,
                             d.videos.classes[rec.label] if labelled and named else None))
    return clips, unreadable, where
