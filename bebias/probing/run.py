"""Run a probe: counterfactual variants of every video of a split, the model on all of
them, and the metrics of :mod:`bebias.probing.metrics` (``bebias probe``).

Pipeline, per video (in chunks of ``suite.chunk`` videos):

1. decode the centre clip of the checkpoint's input spec ONCE
   (:func:`bebias.data.sampling.center_clip` + ``decoder.read``);
2. its foreground mask: the ground truth where the data has one (the embedded benchmark,
   in memory or on disk), else :func:`bebias.probing.masks.motion_masks` -- recorded as
   ``mask_source``; a mask that fails :func:`~bebias.probing.masks.mask_is_usable` keeps the
   video out of the mask-based variants (counted, never silently);
3. every variant of the suite from that one decode (:func:`bebias.probing.testsets.make_variant`,
   seeded by ``bebias.seeds.derive(seed, "variant", video index, variant)``); a background swap takes
   the background plate of another probed video whose background belongs to a DIFFERENT
   class than the video's motion and, where scene classes are known (the benchmark's
   families, a manifest's ``bg_label`` column), to another scene class than its own (chosen
   from the seed), and records that class as ``bg_label``; a swap with no such donor is
   left out and counted (``swaps.without_donor`` in metrics.json);
4. the model on the original and on every variant (``eval_transform`` of the spec,
   batched): class probabilities (classifier checkpoints) or backbone features
   (pre-trained checkpoints, classified afterwards by cosine kNN against the features of
   the ``gallery`` split).

With ``cam=True`` (``bebias probe --cam``) the original clip of every video also gets a
Grad-CAM (:class:`bebias.models.cam.GradCam`, fp32) of its predicted and its true class,
and their share inside the video's foreground mask, in the model's view; ``metrics.json``
gets a ``cam`` block (:mod:`bebias.models.cam_measure`: share, chance, the layer's ceiling
and the normalised score, each with its bootstrap CI, for both classes; the layer). Off by default: without it
nothing of this runs and the outputs are those of a probe without it.

Outputs in ``out``: ``predictions.csv`` (one row per video x variant), ``metrics.json``
(metrics + provenance) and ``partial.npz`` (the per-video results, written atomically
after chunks: an interrupted probe resumes from it; a finished one recomputes its metrics
from it without running the model).

Under torchrun (``torchrun --nproc_per_node N -m bebias probe ...``) each rank probes a
contiguous share of the videos (resumable on its own ``partial.rank<r>-of-<N>.npz``); rank 0
gathers the rows in the single-process order and writes the outputs, which are identical to
a single-process run's.

Several checkpoints (:func:`run_probes`, ``bebias probe A B ...``): probes of the same data,
split, suite, seed and clip geometry (frames x stride) share one pass
(:mod:`bebias.probing.onepass`): steps 1-3 run once per video, step 4 for every model with
its own resize and normalisation; each checkpoint's outputs (and resume file) are those of
its probe alone.

Background labels (``bg_label``): on the embedded benchmark the class whose usual scene the
background is (family index == class index): the video's own family for variants that
keep its background, the donor's family for swaps and cue conflicts. Elsewhere a manifest's
``bg_label`` column where given, else the donor's class for swaps and cue conflicts and
unknown (-1, empty in the CSV) otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from bebias import __version__
from bebias.models.device import autocast, distributed, pick_device
from bebias.atomic import output_dir, write_json, write_text
from bebias.checkpoint import file_sha256
from bebias.data.decoders import decode_short
from bebias.data.open import Data, open_data
from bebias.data.transforms import ClipSpec, eval_transform
from bebias.errors import BebiasError
from bebias.limits import MAX_WORKERS, check_int, check_seed
from bebias.models.cam import GradCam
from bebias.models.cam_measure import MEASURE as CAM_MEASURE
from bebias.models.classes import match_classes
from bebias.models.inference import embed
from bebias.models.open import OpenedModel, open_model
from bebias.probing import metrics as M
from bebias.probing import partial as P
from bebias.probing.assemble import cam_block, compute_metrics, jsonable, predictions_csv, swaps_block, videos_block
# the data side (clips, masks, plates, variants of one video) is shared with `bebias testset`
from bebias.probing.onepass import Member, probe_videos
from bebias.probing.source import NEEDS_MASK, ProbeSource, variant_seed
from bebias.progress import ProgressFn, scoped
from bebias.probing.suite import (ALL_VARIANTS, FLAG_VARIANTS, MASK_MODES, SWAP_SOURCES, ProbeSuite, load_suite,
                                  select_videos)
from bebias.results import ProbeMetrics

__all__ = [
    "ALL_VARIANTS", "FLAG_VARIANTS", "MASK_MODES", "SWAP_SOURCES", "NEEDS_MASK", "ProbeSuite", "ProbeConfig",
    "ProbeResult", "load_suite", "select_videos", "variant_seed", "run_probe", "run_probes", "compute_metrics",
]

PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"


@dataclass
class ProbeConfig:
    """One probe run.

    Attributes:
        checkpoint: a bebias checkpoint: ``kind = "classifier"`` (decisions of its head) or
            ``"pretrain"`` (representation level: kNN on backbone features).
        data, dataset, fold: as everywhere (``--data``); None = the checkpoint's own
            training data (the embedded benchmark by default).
        split: None = ``conflict`` on the benchmark, ``test`` on datasets.
        suite: the variants and parameters; ``suite_path`` where it was read from.
        variants: overrides ``suite.variants`` when not None.
        max_videos: overrides ``suite.max_videos`` when not None.
        seed: every random choice (variants, donors, bootstrap) derives from it.
        out: output directory.
        save_every: seconds between writes of ``partial.npz`` (it is always written after
            the last chunk and on an interrupt; 0 = after every chunk).
        arch: needed for a state_dict from another codebase (:mod:`bebias.models.foreign`);
            a TorchScript / torch.export archive (clip -> logits) needs none.
        input: overrides of the checkpoint's input spec (``frames``, ``stride``, ``size``,
            ``mean``, ``std``); a foreign checkpoint without one needs at least frames and size.
        classes: the model's class names in output order (default: the checkpoint's); the
            outputs are matched to the data's classes by name (an error unless they are the
            same set), by index only where one side has no names
            (:func:`bebias.models.classes.match_classes`).
    """

    checkpoint: str
    data: str | None = None
    dataset: str | None = None
    split: str | None = None
    fold: int = 1
    annotations: str | None = None
    #: ``--masks DIR``: per-video foreground masks for a dataset root (bebias.data.masks)
    masks: str | None = None
    suite: ProbeSuite = field(default_factory=ProbeSuite)
    suite_path: str | None = None
    variants: tuple[str, ...] | None = None
    max_videos: int | None = None
    seed: int = 0
    out: str = "runs/probe"
    device: str = "auto"
    precision: str = "fp32"
    workers: int = 0
    save_every: float = 30.0
    #: architecture of a state_dict from another codebase (bebias checkpoints record theirs)
    arch: str | None = None
    #: input-spec overrides (frames, stride, size, mean, std); None = the checkpoint's
    input: dict[str, Any] = field(default_factory=dict)
    #: the model's class names in output order; None = the checkpoint's (index order where it records none)
    classes: tuple[str, ...] | None = None
    #: Grad-CAM on every original clip and its share on the actor (``cam`` block of metrics.json)
    cam: bool = False
    #: the CAM's layer (a module name of the backbone); None = the backbone's default
    cam_layer: str | None = None
    #: ``--trust-code``: accept a TorchScript archive (it runs the code it carries)
    trust_code: bool = False
    #: ``--model module:function``: the user's network, filled from the state_dict (bebias.models.user_model)
    model: str | None = None


@dataclass
class ProbeResult:
    out: str
    metrics_path: str
    predictions_path: str
    metrics: dict  # metrics.json as written (ProbeMetrics.to_json)
    videos: int  # videos probed (decoded)
    resumed: int  # of which loaded from partial.npz
    discarded_partial: bool  # a partial.npz of a different probe was ignored
    corrupt_partial: str | None = None  # where an unreadable partial.npz was moved (the probe started over)

    @property
    def results(self) -> ProbeMetrics:
        """The metrics through their one schema (:class:`bebias.results.ProbeMetrics`)."""
        return ProbeMetrics.from_json(self.metrics, self.metrics_path)


class _Reorder(torch.nn.Module):
    """A head whose output columns are permuted into the data's class order."""

    def __init__(self, head: torch.nn.Module, perm: list[int]) -> None:
        super().__init__()
        self.head, self.perm = head, perm

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)[:, self.perm]


@dataclass
class _Setup:
    """Everything the probe's phases share once the model and the data are open."""

    model: OpenedModel
    spec: ClipSpec
    suite: ProbeSuite
    variants: list[str]
    data: Data
    data_arg: str
    dataset: str | None
    annotations: str | None
    split: str
    classes: list[str]
    head: Any  # the classifier head in the data's class order, or None (kNN on features)
    src: ProbeSource
    selected: list[int]
    provenance: dict
    fingerprint: str
    cam: GradCam | None = None


# --------------------------------------------------------------------------------------
# phase 1: suite, model, input spec, data
# --------------------------------------------------------------------------------------

def _list(names: tuple[str, ...] | None) -> list[str] | None:
    return list(names) if names is not None else None


def _effective_suite(cfg: ProbeConfig) -> tuple[ProbeSuite, list[str]]:
    suite = cfg.suite
    if cfg.variants is not None:
        suite = replace(suite, variants=tuple(cfg.variants))
    if cfg.max_videos is not None:
        suite = replace(suite, max_videos=int(cfg.max_videos))
    suite.validate(cfg.suite_path)
    check_seed("--seed", cfg.seed)
    check_int("--fold", cfg.fold)
    check_int("--workers", cfg.workers, 0, MAX_WORKERS)  # each one a forked process
    return suite, ["original"] + [v for v in ALL_VARIANTS[1:] if v in suite.variants]


def _input_spec(cfg: ProbeConfig, m: OpenedModel, device: torch.device) -> ClipSpec:
    """The checkpoint's input spec with ``cfg.input`` overrides (:meth:`OpenedModel.input_spec`);
    an archive's class count is read off one forward pass (into ``m.meta.num_classes``)."""
    spec = m.input_spec(cfg.input)
    whole = m.archive or (f"--model {m.meta.model}" if m.meta.model else None)
    if whole:
        try:
            with torch.no_grad():
                k = int(m.backbone(torch.zeros(1, 3, spec.frames, spec.size, spec.size, device=device)).shape[1])
        except BebiasError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the scripted model raises
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BebiasError(f"the {whole} model fails on a (1, 3, {spec.frames}, {spec.size}, {spec.size}) "
                              f"clip ({first[:160]})", cfg.checkpoint) from None
        m.meta = replace(m.meta, num_classes=k)
    return spec


def _setup(cfg: ProbeConfig, device: torch.device, log: Callable[[str], None] | None = None) -> _Setup:
    suite, variants = _effective_suite(cfg)
    m = open_model(cfg.checkpoint, cfg.arch, device, trust_code=cfg.trust_code, model=cfg.model)
    kind, head = m.kind, m.head
    spec = _input_spec(cfg, m, device)
    ck = m.meta
    said = m.announce_spec(cfg.input)
    if said and log:
        log(said)
    data_arg, dataset, annotations, split = m.resolve_data(cfg.data, cfg.dataset, cfg.annotations, cfg.split)
    data = open_data(data_arg, split=split, dataset=dataset, fold=cfg.fold, annotations=annotations, masks=cfg.masks)
    classes = list(data.videos.classes)
    match = None
    if kind == "classifier":  # outputs matched to the data's classes by name where both have names
        match = match_classes(list(cfg.classes) if cfg.classes else _list(ck.classes), ck.num_classes, classes,
                              checkpoint=cfg.checkpoint, data=f"split {split!r} of {data_arg}",
                              names_from="--classes" if cfg.classes else "the checkpoint's class names")
        if match.reordered:
            head = _Reorder(head, list(match.columns))
            if log:
                log(match.message(classes))
    if len(data.videos) == 0:
        raise BebiasError(f"no videos in split {split!r}", data_arg)
    if kind == "pretrain" and suite.gallery == split:
        raise BebiasError(f"representation-level probing classifies by kNN against the {suite.gallery!r} split; "
                          "probe another split (or set gallery in the suite)")
    cam = None
    if cfg.cam:
        if m.archive:
            raise BebiasError(f"--cam: a {m.archive} archive is a whole model with no layers to hook; give its "
                              "state_dict with --arch", cfg.checkpoint)
        # the reordered head: its outputs are in the data's class order, so a label is its own target
        cam = GradCam(m.backbone, head, cfg.cam_layer, input_shape=(spec.frames, spec.size, spec.size))
    src = ProbeSource(data, spec, suite, need_mask=cam is not None or any(v in NEEDS_MASK for v in variants))
    if suite.mask == "ground-truth" and not src.has_gt:
        raise BebiasError("the suite asks for ground-truth masks but --data records none (use mask = 'auto', "
                          "or give masks with --masks DIR or a manifest's mask column)", cfg.suite_path)
    if src.given_masks and log:
        log(f"masks: given for {src.given_masks} of {len(src.records)} videos"
            + (f" (--masks {cfg.masks})" if cfg.masks else " (the manifest's mask column)")
            + ("" if src.given_masks == len(src.records) or suite.mask != "auto" else "; the others get motion masks"))
    provenance = {
        "checkpoint": cfg.checkpoint, "checkpoint_sha256": file_sha256(cfg.checkpoint), "checkpoint_kind": kind,
        "arch": ck.arch, "method": ck.method,
        "level": "classifier" if kind == "classifier" else "representation", "data": data_arg, "dataset": dataset,
        "split": split, "fold": cfg.fold if dataset else None, "data_kind": src.data_kind, "classes": classes,
        "input": spec.to_dict(), "suite": {"name": suite.name, "path": cfg.suite_path, **suite.to_dict()},
        "variants": variants, "seed": cfg.seed, "precision": cfg.precision, "bebias_version": __version__,
    }
    if src.given_masks:  # only then: the provenance and fingerprint of other probes are unchanged
        provenance["given_masks"] = {"dir": cfg.masks, "videos": src.given_masks}
    if ck.foreign is not None:
        provenance["foreign"] = ck.foreign
    if ck.input_preset:
        provenance["input_preset"] = ck.input_preset
    if match is not None and (match.reordered or match.by == "index"):  # else unchanged provenance and fingerprint
        provenance["class_match"] = match.record()
        if match.reordered:
            provenance["model_class_order"] = list(match.model_classes or ())
    if src.scene_labels is not None:  # donors from another scene class too: other donors than before
        provenance["swap_donors"] = {"scene_labels": src.scene_labels,
                                     "rule": "another motion class and another scene class"}
    if cam is not None:  # only with --cam: the provenance and fingerprint of other probes are unchanged
        provenance["cam"] = {"layer": cam.layer_name, "method": cam.method, "measure": CAM_MEASURE}
    # what the numbers depend on (not where the files are): a partial.npz of another probe is ignored
    fingerprint = json.dumps({**{k: v for k, v in provenance.items() if k not in ("checkpoint", "bebias_version")},
                              "suite": suite.to_dict()}, sort_keys=True)
    return _Setup(m, spec, suite, variants, data, data_arg, dataset, annotations, split, classes, head, src,
                  select_videos(src.labels, suite.max_videos), provenance, fingerprint, cam)


# phase 2 (the variants of every video through the models, in resumable chunks) is
# bebias.probing.onepass.probe_videos

# --------------------------------------------------------------------------------------
# phase 3: class probabilities of every row (the head, or kNN against a gallery)
# --------------------------------------------------------------------------------------

def _classify(cfg: ProbeConfig, s: _Setup, feats: np.ndarray, rows: P.Rows, vids: dict, state: dict,
              partial_path: str, device: torch.device, progress: ProgressFn | None = None
              ) -> tuple[np.ndarray, dict | None]:
    K = len(s.classes)
    if s.head is not None:
        return P.stack(rows.out, np.float64, K), None
    suite = s.suite
    if state.get("gallery_feats") is None:
        g = open_data(s.data_arg, split=suite.gallery, dataset=s.dataset, fold=cfg.fold, annotations=s.annotations,
                      benchmark=s.data.synth)
        if len(g.videos) == 0:
            raise BebiasError(f"the kNN gallery split {suite.gallery!r} has no videos", s.data_arg)
        ge = embed(s.model.backbone, g, s.spec, batch_size=suite.batch_size, device=device,
                   precision=cfg.precision, workers=cfg.workers, checkpoint=cfg.checkpoint, progress=progress,
                   stage=f"embedding {suite.gallery}")
        state["gallery_feats"] = ge.features.astype(np.float32)
        state["gallery_labels"] = ge.labels.astype(np.int64)
        state["gallery_failed"] = len(ge.failures)
        P.save_partial(partial_path, s.fingerprint, rows, vids, state)
    gf, gl = state["gallery_feats"], state["gallery_labels"]
    probs = M.knn_predict(feats, gf, gl, suite.knn_k, num_classes=K) if len(feats) else np.zeros((0, K))
    gallery = {"split": suite.gallery, "videos": int(len(gl)), "k": min(suite.knn_k, int(len(gl))),
               "unreadable": int(state.get("gallery_failed", 0))}
    return probs, gallery


# --------------------------------------------------------------------------------------
# the probe
# --------------------------------------------------------------------------------------

def run_probe(cfg: ProbeConfig, *, progress: ProgressFn | None = None,
              log: Callable[[str], None] | None = None) -> ProbeResult:
    """Run the probe described by ``cfg``; see the module docstring. Resumes from
    ``cfg.out/partial.npz`` when it holds results of the same probe. ``log`` receives
    informational lines (e.g. which input preset applies); ``progress`` its stages
    (:func:`run_probes`)."""
    return run_probes([cfg], progress=progress, log=log, where=cfg.out)[0]


def _pass_key(cfg: ProbeConfig, s: _Setup) -> str:
    """What the data side of a probe depends on: probes with the same key share one decode,
    mask and variant per video (:mod:`bebias.probing.onepass`); the model's size, mean and
    std are not in it (each model resizes the same decoded frames itself)."""
    return json.dumps({"data": s.data_arg, "dataset": s.dataset, "annotations": s.annotations, "split": s.split,
                       "fold": cfg.fold, "masks": cfg.masks, "seed": cfg.seed, "suite": s.suite.to_dict(),
                       "variants": s.variants, "need_mask": s.src.need_mask, "frames": s.spec.frames,
                       "stride": s.spec.stride, "decode_short": decode_short(s.spec)}, sort_keys=True)


def _member(cfg: ProbeConfig, s: _Setup, rank: int, world: int, log: Callable[[str], None] | None) -> Member:
    """One model's output folder and resume state."""
    output_dir(cfg.out)
    partial_path = os.path.join(cfg.out, P.PARTIAL if world == 1 else f"partial.rank{rank}-of-{world}.npz")
    corrupt = None
    try:
        rows, vids, state, discarded = P.load_partial(partial_path, s.fingerprint)
    except P.CorruptPartial as e:  # truncated, empty, bit-flipped: kept aside, and a fresh start
        corrupt = P.set_aside(partial_path)
        if log:
            log(f"{partial_path}: unreadable resume state ({e.reason}); moved it to {corrupt} and probing from "
                "scratch")
        (rows, vids, state), discarded = P.empty(), False
    return Member(cfg, s, partial_path, rows, vids, state, eval_transform(s.spec), len(vids["index"]), discarded,
                  corrupt)


def run_probes(cfgs: list[ProbeConfig], *, progress: ProgressFn | None = None,
               log: Callable[[str], None] | None = None, where: str | None = None) -> list[ProbeResult]:
    """Probe several checkpoints in one pass (``bebias probe A B ...``): every ``cfgs[k]``
    writes what :func:`run_probe` of it alone writes, in its own ``out``. Probes whose data
    side is the same (:func:`_pass_key`: data, split, suite, seed and the clip geometry
    frames x stride) decode, mask and vary each video once for all of their models; the
    others get a pass of their own. ``device`` and ``precision`` are those of ``cfgs[0]``
    for the device and precision. ``where``: named by an interrupt (default ``cfgs[0].out``).
    ``progress`` (rank 0 passes it on): a ``probing`` stage per pass (videos done; ``pass
    N of M`` where there are several) and the kNN gallery's ``embedding`` of an encoder."""
    if not cfgs:
        raise BebiasError("no checkpoint to probe")
    outs = [os.path.realpath(c.out) for c in cfgs]
    if len(set(outs)) != len(outs):
        raise BebiasError("two probes of one pass write to the same output folder", cfgs[0].out)
    # under torchrun every rank probes a contiguous share of the videos; rank 0 gathers them
    rank, world, device = distributed(pick_device(cfgs[0].device))
    for c in cfgs:
        autocast(device, c.precision)  # validates the precision
    def named(c: ProbeConfig) -> Callable[[str], None] | None:  # several models: say which one a line is about
        if rank != 0 or log is None:
            return None
        return log if len(cfgs) == 1 else (lambda line: log(f"{c.checkpoint}: {line}"))

    setups = [_setup(c, device, named(c)) for c in cfgs]
    groups: dict[str, list[int]] = {}
    for k, (c, s) in enumerate(zip(cfgs, setups)):
        groups.setdefault(_pass_key(c, s), []).append(k)
    members = [_member(c, s, rank, world, log if rank == 0 else None) for c, s in zip(cfgs, setups)]
    for g, ks in enumerate(groups.values()):
        lead = setups[ks[0]]
        for k in ks[1:]:  # one decode per video: the lead's source (same data, split, geometry and masks)
            setups[k].src, setups[k].data = lead.src, lead.data
        share = lead.selected[len(lead.selected) * rank // world:len(lead.selected) * (rank + 1) // world]
        stage = "probing" if len(groups) == 1 else f"probing (pass {g + 1} of {len(groups)})"
        probe_videos([members[k] for k in ks], share, device, where or cfgs[0].out, progress, stage)
    return [_finish(m, rank, world, device, progress if len(cfgs) == 1 else scoped(progress, m.cfg.checkpoint))
            for m in members]  # the same member order on every rank  # the same member order on every rank


def _finish(mb: Member, rank: int, world: int, device: torch.device, progress: ProgressFn | None = None
            ) -> ProbeResult:
    """Phases 3 and 4 of one member: gather (torchrun), classify, metrics and outputs."""
    cfg, s, rows, vids, state = mb.cfg, mb.s, mb.rows, mb.vids, mb.state
    resumed, discarded, corrupt, partial_path = mb.resumed, mb.discarded, mb.corrupt, mb.partial_path
    if world > 1:
        import torch.distributed as dist

        shards: list = [None] * world
        dist.all_gather_object(shards, (rows, vids, state["excluded"]))
        if rank != 0:  # rank 0 computes and writes the metrics of all videos
            got = [None]
            dist.broadcast_object_list(got, src=0)
            return ProbeResult(cfg.out, os.path.join(cfg.out, METRICS), os.path.join(cfg.out, PREDICTIONS), got[0],
                               len(vids["index"]), resumed, discarded, corrupt)
        rows, vids, state["excluded"] = P.merge_shards(shards)
    feats = P.stack(rows.feats, np.float32)
    probs, gallery = _classify(cfg, s, feats, rows, vids, state, partial_path, device, progress)

    # phase 4: metrics and outputs
    arrays = {"video": np.asarray(rows.video, np.int64), "variant": np.asarray(rows.variant, np.int64),
              "label": s.src.labels[np.asarray(rows.video, np.int64)] if rows.video else np.zeros(0, np.int64),
              "bg": np.asarray(rows.bg, np.int64), "source": np.asarray(rows.source, np.int64),
              "donor": np.asarray(rows.donor, np.int64), "probs": probs, "feats": feats}
    result = compute_metrics(arrays, s.classes, s.suite, cfg.seed)
    provenance = dict(s.provenance)
    if gallery:
        provenance["gallery"] = gallery
    vblock = videos_block(vids, s.selected, s.src, s.suite)
    vblock["per_variant"] = {
        name: {"videos": int((arrays["variant"] == P.CODE[name]).sum()), "excluded": state["excluded"].get(name, {})}
        for name in s.variants}
    provenance["mask_iou"] = vblock["masks"]["motion_iou"]  # None without ground truth
    if s.cam is not None:
        result["cam"] = cam_block(vids, s.cam.layer_name, s.cam.method, s.suite, cfg.seed)
    metrics = jsonable(ProbeMetrics(bebias_version=__version__, provenance=provenance, videos=vblock,
                                    swaps=swaps_block(s.src, s.variants, s.suite, state["excluded"]),
                                    **result).to_json())

    pred_path = os.path.join(cfg.out, PREDICTIONS)
    write_text(pred_path, predictions_csv(arrays, s.src))
    met_path = os.path.join(cfg.out, METRICS)
    write_json(met_path, metrics)
    if world > 1:
        dist.broadcast_object_list([metrics], src=0)
    return ProbeResult(cfg.out, met_path, pred_path, metrics, len(vids["index"]), resumed, discarded, corrupt)
