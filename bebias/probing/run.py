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
   seeded by ``SeedSequence([seed, video index, crc32(variant)])``); a background swap takes
   the background plate of another probed video whose background belongs to a DIFFERENT
   class (chosen from the seed), and records that class as ``bg_label``;
4. the model on the original and on every variant (``eval_transform`` of the spec,
   batched): class probabilities (classifier checkpoints) or backbone features
   (pre-trained checkpoints, classified afterwards by cosine kNN against the features of
   the ``gallery`` split).

Outputs in ``out``: ``predictions.csv`` (one row per video x variant), ``metrics.json``
(metrics + provenance) and ``partial.npz`` (the per-video results, written atomically
after chunks: an interrupted probe resumes from it; a finished one recomputes its metrics
from it without running the model).

Under torchrun (``torchrun --nproc_per_node N -m bebias probe ...``) each rank probes a
contiguous share of the videos (resumable on its own ``partial.rank<r>-of-<N>.npz``); rank 0
gathers the rows in the single-process order and writes the outputs, which are identical to
a single-process run's.

Background labels (``bg_label``): on the embedded benchmark the class whose usual scene the
background is (family index == class index): the video's own family for variants that
keep its background, the donor's family for swaps and cue conflicts. Elsewhere the
donor's class for swaps and cue conflicts, unknown (-1, empty in the CSV) otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
import tomllib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from bebias.checkpoint import file_sha256
from bebias import __version__
from bebias.atomic import atomic_path, write_json, write_text
from bebias.errors import BebiasError
from bebias.probing import metrics as M
from bebias.probing.testsets import VARIANTS
# the data side (clips, masks, plates, variants of one video) is shared with `bebias testset`
from bebias.probing.source import MASK_SOURCES, NEEDS_MASK, ProbeSource, variant_seed, video_variants

__all__ = [
    "ALL_VARIANTS", "FLAG_VARIANTS", "MASK_MODES", "ProbeSuite", "ProbeConfig", "ProbeResult", "load_suite",
    "select_videos", "variant_seed", "run_probe", "compute_metrics",
]

#: every variant a probe can run, in the order rows are written ("original" is always run)
ALL_VARIANTS: tuple[str, ...] = (*VARIANTS, "conflict-foreground")
#: the ``bebias probe`` switches -> variants
FLAG_VARIANTS: dict[str, tuple[str, ...]] = {
    "swap_backgrounds": ("swap-background", "swap-background-static"),
    "static_frame": ("static-frame",),
    "background_only": ("background-only",),
    "foreground_only": ("foreground-only",),
    "shuffle": ("shuffle",),
    "reverse": ("reverse",),
    "conflict_foreground": ("conflict-foreground",),
    "be_distraction": ("be",),
}
#: ``mask`` settings of a suite
MASK_MODES: tuple[str, ...] = ("auto", "ground-truth", "diff", "mog2")
SWAP_SOURCES: tuple[str, ...] = ("donor", "stripes", "images")
PARTIAL = "partial.npz"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"


# --------------------------------------------------------------------------------------
# suites
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeSuite:
    """A declarative probe: which variants, with which parameters (a ``probes/*.toml`` file).

    Every field is a top-level TOML key of the same name; all are optional.
    """

    name: str = "all"
    description: str = ""
    #: variants to run besides "original" (see :data:`ALL_VARIANTS`)
    variants: tuple[str, ...] = ALL_VARIANTS[1:]
    #: at most this many videos, class-balanced (:func:`select_videos`); 0 = all
    max_videos: int = 0
    #: "auto" (ground truth where the data has it, else motion masks), "ground-truth", "diff", "mog2"
    mask: str = "auto"
    #: motion-mask method where no ground truth is used, and of the IoU check against it
    motion_method: str = "diff"
    #: a mask is usable if its foreground fraction lies in [min, max]
    min_mask_fraction: float = 0.005
    max_mask_fraction: float = 0.9
    #: background of the swaps: "donor" (another video's plate), "stripes", "images"
    swap_background: str = "donor"
    #: image files for swap_background = "images" (relative to the suite file)
    images: tuple[str, ...] = ()
    #: mixing weight of the "be" variant
    be_lambda: float = 0.3
    #: bootstrap replicates and 1 - confidence level of every interval
    n_boot: int = 1000
    alpha: float = 0.05
    #: representation-level probing (pre-trained checkpoints): k and the gallery split
    knn_k: int = 10
    gallery: str = "train"
    #: videos per chunk (resume granularity) and clips per forward pass
    chunk: int = 16
    batch_size: int = 16

    def validate(self, where: str | None = None) -> "ProbeSuite":
        def bad(msg: str) -> BebiasError:
            return BebiasError(f"suite: {msg}", where)

        unknown = [v for v in self.variants if v not in ALL_VARIANTS or v == "original"]
        if unknown:
            raise bad(f"unknown variant {unknown[0]!r}; choose from {', '.join(ALL_VARIANTS[1:])}")
        if len(set(self.variants)) != len(self.variants):
            raise bad("a variant is listed twice")
        if self.mask not in MASK_MODES:
            raise bad(f"mask must be one of {', '.join(MASK_MODES)}, got {self.mask!r}")
        if self.motion_method not in ("diff", "mog2"):
            raise bad(f"motion_method must be diff or mog2, got {self.motion_method!r}")
        if not 0.0 <= self.min_mask_fraction <= self.max_mask_fraction <= 1.0:
            raise bad("need 0 <= min_mask_fraction <= max_mask_fraction <= 1")
        if self.swap_background not in SWAP_SOURCES:
            raise bad(f"swap_background must be one of {', '.join(SWAP_SOURCES)}, got {self.swap_background!r}")
        if self.swap_background == "images" and not self.images:
            raise bad("swap_background = 'images' needs a non-empty images list")
        if not 0.0 <= self.be_lambda <= 1.0:
            raise bad(f"be_lambda must lie in [0, 1], got {self.be_lambda}")
        if not 0.0 < self.alpha < 1.0:
            raise bad(f"alpha must lie in (0, 1), got {self.alpha}")
        for key in ("n_boot", "knn_k", "chunk", "batch_size"):
            if getattr(self, key) < 1:
                raise bad(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.max_videos < 0:
            raise bad(f"max_videos must be >= 0 (0 = all), got {self.max_videos}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | None = None) -> "ProbeSuite":
        types = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise BebiasError(f"suite: unknown key {unknown[0]!r}; keys: {', '.join(types)}", where)
        kw: dict[str, Any] = {}
        for k, v in d.items():
            default = getattr(cls, k) if k not in ("variants", "images") else ()
            if k in ("variants", "images"):
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise BebiasError(f"suite: {k} must be a list of strings", where)
                v = tuple(v)
            elif isinstance(default, bool) or isinstance(v, bool):
                raise BebiasError(f"suite: bad value for {k}: {v!r}", where)
            elif isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(v, int):
                    raise BebiasError(f"suite: {k} must be an integer, got {v!r}", where)
            elif isinstance(default, float):
                if not isinstance(v, (int, float)):
                    raise BebiasError(f"suite: {k} must be a number, got {v!r}", where)
                v = float(v)
            elif isinstance(default, str) and not isinstance(v, str):
                raise BebiasError(f"suite: {k} must be a string, got {v!r}", where)
            kw[k] = v
        return cls(**kw).validate(where)


def _suite_path(name: str) -> str:
    """A suite argument -> an existing file: a path, or a bare name NAME looked up as
    ``probes/NAME.toml`` in the working directory, then next to the package (a checkout)."""
    if os.path.isfile(name):
        return name
    if os.sep not in name and "/" not in name:
        stem = name[:-5] if name.endswith(".toml") else name
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for root in ("", here):  # the working directory, then a checkout's
            p = os.path.join(root, "probes", f"{stem}.toml")
            if os.path.isfile(p):
                return p
    raise BebiasError("suite file does not exist (give a path, or NAME for probes/NAME.toml)", name)


def load_suite(name_or_path: str) -> tuple[ProbeSuite, str]:
    """Parse a suite file (see :class:`ProbeSuite`); returns it and its path. Image paths
    are made relative to the working directory. Errors are :class:`BebiasError`."""
    path = _suite_path(name_or_path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BebiasError(f"malformed suite file ({e})", path) from None
    suite = ProbeSuite.from_dict(raw, path)
    if suite.images:
        base = os.path.dirname(os.path.abspath(path))
        imgs = tuple(p if os.path.isabs(p) else os.path.relpath(os.path.join(base, p)) for p in suite.images)
        missing = [p for p in imgs if not os.path.isfile(p)]
        if missing:
            raise BebiasError("suite: background image does not exist", missing[0])
        suite = replace(suite, images=imgs)
    return suite, path


# --------------------------------------------------------------------------------------
# configuration and result
# --------------------------------------------------------------------------------------

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
        classes: the model's class names in output order; the outputs are matched to the
            data's classes by name (an error unless they are the same set).
    """

    checkpoint: str
    data: str | None = None
    dataset: str | None = None
    split: str | None = None
    fold: int = 1
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
    #: the model's class names in output order; None = the checkpoint's (foreign) or the data's order
    classes: tuple[str, ...] | None = None


@dataclass
class ProbeResult:
    out: str
    metrics_path: str
    predictions_path: str
    metrics: dict
    videos: int  # videos probed (decoded)
    resumed: int  # of which loaded from partial.npz
    discarded_partial: bool  # a partial.npz of a different probe was ignored


# --------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------

def select_videos(labels: Sequence[int], max_videos: int = 0) -> list[int]:
    """Indices of the videos to probe: all of them, or ``max_videos`` class-balanced ones
    (round robin over the classes in index order: the first video of every class, then the
    second, ...), returned sorted. Deterministic and independent of the seed."""
    labels = [int(y) for y in labels]
    if not max_videos or max_videos >= len(labels):
        return list(range(len(labels)))
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    order: list[int] = []
    rank = 0
    while len(order) < max_videos:
        for c in sorted(by_class):
            if rank < len(by_class[c]):
                order.append(by_class[c][rank])
        rank += 1
    return sorted(order[:max_videos])




def _jsonable(x: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------------------
# the probe
# --------------------------------------------------------------------------------------

_CODE = {name: c for c, name in enumerate(ALL_VARIANTS)}


@dataclass
class _Rows:
    """Per-(video, variant) results, in processing order (what partial.npz stores)."""

    video: list[int] = field(default_factory=list)
    variant: list[int] = field(default_factory=list)
    bg: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    donor: list[int] = field(default_factory=list)
    out: list[np.ndarray] = field(default_factory=list)  # probs (classifier) or nothing
    feats: list[np.ndarray] = field(default_factory=list)


def _load_model(ck: dict, path: str, device):
    """-> (kind, backbone, head or None)."""
    kind = ck.get("kind")
    if kind == "classifier":
        from bebias.training.finetune import load_classifier

        model, _ = load_classifier(path, device)
        return kind, model.backbone, model.fc
    if kind == "pretrain":
        from bebias.models.backbones import build_backbone

        if not isinstance(ck.get("backbone"), dict):
            raise BebiasError("checkpoint has no 'backbone' weights", path)
        bb = build_backbone(ck["arch"])
        try:
            bb.load_state_dict(ck["backbone"])
        except RuntimeError as e:
            raise BebiasError(f"backbone weights do not match {ck['arch']!r} ({str(e).splitlines()[0][:160]})",
                              path) from None
        return kind, bb.to(device).eval(), None
    raise BebiasError(f"is a {kind!r} checkpoint; bebias probe takes a classifier (bebias finetune) or a "
                      "pre-trained encoder (bebias train)", path)


class _Reorder:
    """A head whose output columns are permuted into the data's class order."""

    def __init__(self, head, perm: list[int]) -> None:
        self.head, self.perm = head, perm

    def __call__(self, f):
        return self.head(f)[:, self.perm]


def _open_model(cfg: ProbeConfig, device) -> tuple[dict, str, Any, Any]:
    """-> (checkpoint metadata, kind, backbone, head or None) for a bebias checkpoint, a
    foreign state_dict (``cfg.arch``) or a TorchScript / torch.export archive."""
    import torch

    from bebias.checkpoint import FORMAT, load_file
    from bebias.models.foreign import archive_layout, load_foreign

    path = cfg.checkpoint
    raw = None if archive_layout(path) else load_file(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        if cfg.arch and str(cfg.arch).strip().lower() != raw.get("arch"):
            raise BebiasError(f"checkpoint architecture is {raw.get('arch')!r}, but --arch is {cfg.arch!r}", path)
        kind, backbone, head = _load_model(raw, path, device)
        return raw, kind, backbone, head
    model, meta = load_foreign(path, cfg.arch, raw=raw)
    ck = {"kind": meta["kind"], "arch": meta["arch"], "method": "foreign", "input": meta.get("input"),
          "classes": meta.get("classes"), "foreign": meta["foreign"]}
    if meta["kind"] == "archive":  # TorchScript / torch.export: the whole model, "features" are its logits
        ck["kind"] = "classifier"
        return ck, "classifier", model.to(device), torch.nn.Identity()
    if meta["kind"] == "classifier":
        ck["num_classes"] = meta["num_classes"]
        model = model.to(device)
        return ck, "classifier", model.backbone, model.fc
    return ck, "pretrain", model.to(device), None


def run_probe(cfg: ProbeConfig, *, progress: Callable[[int, int], None] | None = None) -> ProbeResult:
    """Run the probe described by ``cfg``; see the module docstring. Resumes from
    ``cfg.out/partial.npz`` when it holds results of the same probe."""
    import torch

    from bebias.data.open import is_benchmark, open_data
    from bebias.data.transforms import ClipSpec, eval_transform
    from bebias.training import runtime

    suite = cfg.suite
    if cfg.variants is not None:
        suite = replace(suite, variants=tuple(cfg.variants))
    if cfg.max_videos is not None:
        suite = replace(suite, max_videos=int(cfg.max_videos))
    suite.validate(cfg.suite_path)
    if cfg.seed < 0:
        raise BebiasError(f"--seed must be >= 0, got {cfg.seed}")
    variants = ["original"] + [v for v in ALL_VARIANTS[1:] if v in suite.variants]

    # under torchrun every rank probes a contiguous share of the videos; rank 0 gathers them
    rank, world, device = runtime.distributed(runtime.pick_device(cfg.device))
    runtime.autocast(device, cfg.precision)  # validates the precision
    ck, kind, backbone, head = _open_model(cfg, device)
    foreign = ck.get("foreign")
    given = {k: v for k, v in (cfg.input or {}).items() if v is not None}
    if not isinstance(ck.get("input"), dict) and not ({"frames", "size"} <= set(given)):
        raise BebiasError("checkpoint records no input spec ('input': frames, stride, size, mean, std); give "
                          "--frames and --size (and --stride, --mean, --std: default 1 and Kinetics')", cfg.checkpoint)
    spec_d = {**(ck.get("input") or {}), **given}
    try:
        spec = ClipSpec(**{k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v
                           for k, v in spec_d.items()})
    except TypeError as e:
        raise BebiasError(f"bad input spec {spec_d} ({e})", cfg.checkpoint) from None
    if spec.frames < 1 or spec.stride < 1 or spec.size < 1 or len(spec.mean) != 3 or len(spec.std) != 3:
        raise BebiasError(f"bad input spec {spec.to_dict()}: frames, stride, size >= 1 and 3 means/stds")
    if foreign is not None and foreign.get("layout") in ("torchscript", "torch.export"):
        try:
            with torch.no_grad():
                ck["num_classes"] = int(backbone(torch.zeros(1, 3, spec.frames, spec.size, spec.size,
                                                             device=device)).shape[1])
        except BebiasError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the scripted model raises
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BebiasError(f"the {foreign['layout']} model fails on a (1, 3, {spec.frames}, {spec.size}, {spec.size}) "
                              f"clip ({first[:160]})", cfg.checkpoint) from None
    ck_cfg = ck.get("config", {}) or {}
    data_arg = cfg.data or ck_cfg.get("data") or "synthetic"
    dataset = cfg.dataset if cfg.dataset is not None else (ck_cfg.get("dataset") if data_arg == ck_cfg.get("data")
                                                           else None)
    split = cfg.split or ("conflict" if is_benchmark(data_arg, dataset) else "test")
    data = open_data(data_arg, split=split, dataset=dataset, fold=cfg.fold)
    classes = list(data.videos.classes)
    K = len(classes)
    if kind == "classifier" and int(ck["num_classes"]) != K:
        raise BebiasError(f"the checkpoint has {ck['num_classes']} classes but split {split!r} of {data_arg} has {K}",
                          cfg.checkpoint)
    if len(data.videos) == 0:
        raise BebiasError(f"no videos in split {split!r}", data_arg)
    model_classes = list(cfg.classes) if cfg.classes else (ck.get("classes") if foreign is not None else None)
    class_order = None
    if model_classes and kind == "classifier":
        if len(model_classes) != int(ck["num_classes"]) or sorted(model_classes) != sorted(classes):
            raise BebiasError(f"the model's {len(model_classes)} class names ({', '.join(model_classes[:4])}"
                              f"{' ...' if len(model_classes) > 4 else ''}) are not the classes of split {split!r} "
                              f"of {data_arg} ({', '.join(classes[:4])}{' ...' if K > 4 else ''})", cfg.checkpoint)
        if model_classes != classes:
            head = _Reorder(head, [model_classes.index(c) for c in classes])
            class_order = model_classes
    if kind == "pretrain" and suite.gallery == split:
        raise BebiasError(f"representation-level probing classifies by kNN against the {suite.gallery!r} split; "
                          "probe another split (or set gallery in the suite)")
    src = ProbeSource(data, spec, suite, need_mask=any(v in NEEDS_MASK for v in variants))
    if suite.mask == "ground-truth" and not src.has_gt:
        raise BebiasError("the suite asks for ground-truth masks but --data records none (use mask = 'auto')",
                          cfg.suite_path)
    selected = select_videos(src.labels, suite.max_videos)
    sha = file_sha256(cfg.checkpoint)
    level = "classifier" if kind == "classifier" else "representation"
    provenance = {
        "checkpoint": cfg.checkpoint, "checkpoint_sha256": sha, "checkpoint_kind": kind, "arch": ck.get("arch"),
        "method": ck.get("method"), "level": level, "data": data_arg, "dataset": dataset, "split": split,
        "fold": cfg.fold if dataset else None, "data_kind": src.kind, "classes": classes, "input": spec.to_dict(),
        "suite": {"name": suite.name, "path": cfg.suite_path, **suite.to_dict()}, "variants": variants,
        "seed": cfg.seed, "precision": cfg.precision, "bebias_version": __version__,
    }
    if foreign is not None:
        provenance["foreign"] = foreign
    if class_order is not None:
        provenance["model_class_order"] = class_order
    # what the numbers depend on (not where the files are): a partial.npz of another probe is ignored
    fingerprint = json.dumps({**{k: v for k, v in provenance.items() if k not in ("checkpoint", "bebias_version")},
                              "suite": suite.to_dict()}, sort_keys=True)

    os.makedirs(cfg.out, exist_ok=True)
    partial_path = os.path.join(cfg.out, PARTIAL if world == 1 else f"partial.rank{rank}-of-{world}.npz")
    rows, vids, state, discarded = _load_partial(partial_path, fingerprint)
    resumed = len(vids["index"])
    share = selected[len(selected) * rank // world:len(selected) * (rank + 1) // world]  # this rank's videos
    mine = len(share)
    chunks = [share[s:s + suite.chunk] for s in range(0, mine, suite.chunk)]
    tf = eval_transform(spec)

    def forward(batch: list[torch.Tensor]) -> None:
        x = torch.stack(batch).to(device)
        with torch.no_grad(), runtime.autocast(device, cfg.precision):
            f = backbone(x)
            p = torch.softmax(head(f).float(), dim=1) if head is not None else None
        rows.feats.extend(f.float().cpu().numpy())
        if p is not None:
            rows.out.extend(p.cpu().numpy())

    last_save = time.monotonic()
    if progress:
        progress(min(state["chunks_done"] * suite.chunk, mine), mine)
    try:
        for c in range(state["chunks_done"], len(chunks)):
            pending: list[torch.Tensor] = []
            for i in chunks[c]:
                for frames, meta in video_variants(i, src, selected, variants, suite, cfg.seed, vids, state):
                    rows.video.append(i)
                    rows.variant.append(_CODE[meta["variant"]])
                    rows.bg.append(meta["bg"])
                    rows.source.append(MASK_SOURCES.index(meta["source"]))
                    rows.donor.append(meta["donor"])
                    pending.append(tf(frames))
                    if len(pending) == suite.batch_size:
                        forward(pending)
                        pending = []
            if pending:
                forward(pending)
            state["chunks_done"] = c + 1
            _commit(rows, vids, state)
            if cfg.save_every <= 0 or time.monotonic() - last_save >= cfg.save_every or c + 1 == len(chunks):
                _save_partial(partial_path, fingerprint, rows, vids, state)
                last_save = time.monotonic()
            if progress:
                progress(min((c + 1) * suite.chunk, mine), mine)
    except BaseException as e:
        # keep the finished chunks (drop the rows of the one in progress), then stop
        _truncate(rows, vids, state)
        _save_partial(partial_path, fingerprint, rows, vids, state)
        if isinstance(e, KeyboardInterrupt):
            done = min(state["chunks_done"] * suite.chunk, mine)
            raise BebiasError(f"interrupted after {done}/{mine} videos; run the same command again to "
                              "resume", cfg.out) from None
        raise

    if world > 1:
        import torch.distributed as dist

        shards: list = [None] * world
        dist.all_gather_object(shards, (rows, vids, state["excluded"]))
        if rank != 0:  # rank 0 computes and writes the metrics of all videos
            got = [None]
            dist.broadcast_object_list(got, src=0)
            return ProbeResult(cfg.out, os.path.join(cfg.out, METRICS), os.path.join(cfg.out, PREDICTIONS), got[0],
                               len(vids["index"]), resumed, discarded)
        rows, vids, state["excluded"] = _merge_shards(shards)
    feats = _stack(rows.feats, np.float32)
    if head is not None:
        probs = _stack(rows.out, np.float64, K)
        gallery = None
    else:
        if state.get("gallery_feats") is None:
            from bebias.training.evaluate import embed

            g = open_data(data_arg, split=suite.gallery, dataset=dataset, fold=cfg.fold, bench=data.synth)
            if len(g.videos) == 0:
                raise BebiasError(f"the kNN gallery split {suite.gallery!r} has no videos", data_arg)
            ge = embed(backbone, g, spec, batch_size=suite.batch_size, device=device, precision=cfg.precision,
                       workers=cfg.workers)
            state["gallery_feats"] = ge.probs.astype(np.float32)
            state["gallery_labels"] = ge.labels.astype(np.int64)
            state["gallery_failed"] = len(ge.failures)
            _save_partial(partial_path, fingerprint, rows, vids, state)
        gf, gl = state["gallery_feats"], state["gallery_labels"]
        probs = (M.knn_predict(feats, gf, gl, suite.knn_k, num_classes=K) if len(feats)
                 else np.zeros((0, K)))
        gallery = {"split": suite.gallery, "videos": int(len(gl)), "k": min(suite.knn_k, int(len(gl))),
                   "unreadable": int(state.get("gallery_failed", 0))}

    arrays = {"video": np.asarray(rows.video, np.int64), "variant": np.asarray(rows.variant, np.int64),
              "label": src.labels[np.asarray(rows.video, np.int64)] if rows.video else np.zeros(0, np.int64),
              "bg": np.asarray(rows.bg, np.int64), "source": np.asarray(rows.source, np.int64),
              "probs": probs, "feats": feats}
    result = compute_metrics(arrays, classes, suite, cfg.seed)
    if gallery:
        provenance["gallery"] = gallery
    videos_block = _videos_block(vids, selected, src, suite)
    videos_block["per_variant"] = {
        name: {"videos": int((arrays["variant"] == _CODE[name]).sum()), "excluded": state["excluded"].get(name, {})}
        for name in variants}
    provenance["mask_iou"] = videos_block["masks"]["motion_iou"]  # None without ground truth
    metrics = _jsonable({"bebias_version": __version__, "provenance": provenance, "videos": videos_block, **result})

    pred_path = os.path.join(cfg.out, PREDICTIONS)
    write_text(pred_path, _predictions_csv(arrays, src))
    met_path = os.path.join(cfg.out, METRICS)
    write_json(met_path, metrics)
    if world > 1:
        dist.broadcast_object_list([metrics], src=0)
    return ProbeResult(cfg.out, met_path, pred_path, metrics, len(vids["index"]), resumed, discarded)


def _merge_shards(shards: list[tuple[_Rows, dict, dict]]) -> tuple[_Rows, dict, dict]:
    """The ranks' (rows, videos, exclusion counts), in rank order = the single-process order
    (each rank probed a contiguous share of the videos)."""
    rows, vids, excluded = _Rows(), {k: [] for k in shards[0][1]}, {}
    for r, v, ex in shards:
        for f in fields(_Rows):
            getattr(rows, f.name).extend(getattr(r, f.name))
        for k in vids:
            vids[k].extend(v[k])
        for variant, reasons in ex.items():
            for reason, n in reasons.items():
                excluded.setdefault(variant, {}).setdefault(reason, 0)
                excluded[variant][reason] += n
    return rows, vids, excluded


# --------------------------------------------------------------------------------------
# partial results
# --------------------------------------------------------------------------------------

def _empty() -> tuple[_Rows, dict, dict]:
    vids = {"index": [], "source": [], "usable": [], "iou": [], "fraction": [], "failed_index": [],
            "failed_error": []}
    state = {"chunks_done": 0, "excluded": {}, "gallery_feats": None, "gallery_labels": None, "gallery_failed": 0,
             "committed": (0, 0, 0), "committed_excluded": "{}"}
    return _Rows(), vids, state


def _stack(arrays: list[np.ndarray], dtype, width: int = 0) -> np.ndarray:
    """A list of (C,) rows -> (R, C); (0, width) when empty."""
    return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, width), dtype)


def _commit(rows: _Rows, vids: dict, state: dict) -> None:
    """Mark everything so far as finished (the end of a chunk)."""
    state["committed"] = (len(rows.video), len(vids["index"]), len(vids["failed_index"]))
    state["committed_excluded"] = json.dumps(state["excluded"])


def _truncate(rows: _Rows, vids: dict, state: dict) -> None:
    """Back to the last finished chunk (an interrupt mid-chunk)."""
    nr, nv, nf = state["committed"]
    for lst in (rows.video, rows.variant, rows.bg, rows.source, rows.donor):
        del lst[nr:]
    del rows.feats[nr:]
    del rows.out[nr:]
    for k in ("index", "source", "usable", "iou", "fraction"):
        del vids[k][nv:]
    del vids["failed_index"][nf:]
    del vids["failed_error"][nf:]
    state["excluded"] = json.loads(state["committed_excluded"])


def _save_partial(path: str, fingerprint: str, rows: _Rows, vids: dict, state: dict) -> None:
    arrays = {
        "fingerprint": np.array(fingerprint),
        "chunks_done": np.array(state["chunks_done"], np.int64),
        "excluded": np.array(json.dumps(state["excluded"], sort_keys=True)),
        "row_video": np.asarray(rows.video, np.int64), "row_variant": np.asarray(rows.variant, np.int64),
        "row_bg": np.asarray(rows.bg, np.int64), "row_source": np.asarray(rows.source, np.int64),
        "row_donor": np.asarray(rows.donor, np.int64),
        "row_feats": _stack(rows.feats, np.float32),
        "row_probs": _stack(rows.out, np.float32),
        "vid_index": np.asarray(vids["index"], np.int64), "vid_source": np.asarray(vids["source"], np.int64),
        "vid_usable": np.asarray(vids["usable"], bool), "vid_iou": np.asarray(vids["iou"], np.float64),
        "vid_fraction": np.asarray(vids["fraction"], np.float64),
        "failed_index": np.asarray(vids["failed_index"], np.int64),
        "failed_error": np.asarray(vids["failed_error"], dtype=np.str_),
    }
    if state.get("gallery_feats") is not None:
        arrays["gallery_feats"] = state["gallery_feats"]
        arrays["gallery_labels"] = state["gallery_labels"]
        arrays["gallery_failed"] = np.array(state["gallery_failed"], np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _load_partial(path: str, fingerprint: str) -> tuple[_Rows, dict, dict, bool]:
    """The results saved by an earlier run of the SAME probe; else empty (and whether a
    partial file of a different probe was found and ignored)."""
    rows, vids, state = _empty()
    if not os.path.exists(path):
        return rows, vids, state, False
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return rows, vids, state, True
            # the rows hold probabilities as float32, exactly as a fresh run does
            rows.video = z["row_video"].tolist()
            rows.variant = z["row_variant"].tolist()
            rows.bg = z["row_bg"].tolist()
            rows.source = z["row_source"].tolist()
            rows.donor = z["row_donor"].tolist()
            rows.feats = list(z["row_feats"])
            rows.out = list(z["row_probs"])
            vids["index"] = z["vid_index"].tolist()
            vids["source"] = z["vid_source"].tolist()
            vids["usable"] = z["vid_usable"].tolist()
            vids["iou"] = z["vid_iou"].tolist()
            vids["fraction"] = z["vid_fraction"].tolist()
            vids["failed_index"] = z["failed_index"].tolist()
            vids["failed_error"] = z["failed_error"].tolist()
            state["chunks_done"] = int(z["chunks_done"])
            state["excluded"] = json.loads(str(z["excluded"]))
            if "gallery_feats" in z:
                state["gallery_feats"] = z["gallery_feats"]
                state["gallery_labels"] = z["gallery_labels"]
                state["gallery_failed"] = int(z["gallery_failed"])
    except (OSError, ValueError, KeyError, zlib.error) as e:
        raise BebiasError(f"unreadable partial results ({e}); delete the file to start over", path) from None
    _commit(rows, vids, state)
    return rows, vids, state, False


# --------------------------------------------------------------------------------------
# metrics and outputs
# --------------------------------------------------------------------------------------

def compute_metrics(rows: dict[str, np.ndarray], classes: Sequence[str], suite: ProbeSuite, seed: int = 0
                    ) -> dict[str, Any]:
    """Every probe metric from the per-(video, variant) arrays.

    ``rows``: ``video`` (R,) video index, ``variant`` (R,) code into :data:`ALL_VARIANTS`,
    ``label`` (R,) true class, ``bg`` (R,) background class (-1 unknown), ``probs`` (R, K),
    ``feats`` (R, C) (may have C = 0). Each variant is compared with the original of the
    SAME videos (rows aligned by video index). Returns the metric blocks of metrics.json.
    """
    boot = {"seed": seed, "n_boot": suite.n_boot, "alpha": suite.alpha}
    K = len(classes)
    cls = list(classes)
    code = rows["variant"]
    present = [v for v in ALL_VARIANTS if (code == _CODE[v]).any()]

    def take(name: str, videos: np.ndarray | None = None) -> dict[str, np.ndarray]:
        sel = np.flatnonzero(code == _CODE[name])
        if videos is not None:
            pos = {int(v): r for v, r in zip(rows["video"][sel], sel)}
            sel = np.array([pos[int(v)] for v in videos], np.int64)
        return {k: rows[k][sel] for k in ("video", "label", "bg", "probs", "feats")}

    def common(*names: str) -> np.ndarray:
        vids = None
        for n in names:
            s = rows["video"][code == _CODE[n]]
            vids = s if vids is None else vids[np.isin(vids, s)]
        return vids if vids is not None else np.zeros(0, np.int64)

    out: dict[str, Any] = {"headline": {}, "accuracy": {}, "drop": {}, "agreement": {}, "conflict": {},
                           "similarity": {}}
    for name in present:
        r = take(name)
        if len(r["video"]) == 0:
            continue
        out["accuracy"][name] = M.accuracy_block(r["probs"], r["label"], K, classes=cls, **boot)
        if (r["bg"] >= 0).all():
            out["conflict"][name] = M.conflict_rates(r["probs"], r["label"], r["bg"], classes=cls, **boot)
        if name == "original" or "original" not in present:
            continue
        o = take("original", r["video"])
        out["drop"][name] = M.drop(o["probs"], r["probs"], r["label"], classes=cls, **boot)
        out["agreement"][name] = M.prediction_agreement(o["probs"], r["probs"], **boot)
        if o["feats"].shape[1] > 0:
            out["similarity"][name] = M.variant_similarity(o["feats"], r["feats"], r["label"], classes=cls, **boot)

    def have(*names: str) -> bool:
        return all(n in present for n in names) and len(common(*names)) > 0

    h = out["headline"]
    if have("swap-background", "swap-background-static"):
        vv = common("swap-background", "swap-background-static")
        a, b = take("swap-background", vv), take("swap-background-static", vv)
        out["contrasted_accuracy"] = M.contrasted_accuracy(a["probs"], b["probs"], a["label"], classes=cls, **boot)
        h["contrasted_accuracy"] = out["contrasted_accuracy"]["value"]
    if have("static-frame"):
        s = take("static-frame")
        out["static_frame_accuracy"] = M.static_frame_accuracy(s["probs"], s["label"], classes=cls, **boot)
        h["static_frame_accuracy"] = out["static_frame_accuracy"]["value"]
    bo_name = next((n for n in ("background-only", "background-only-inpaint") if have(n)), None)
    if bo_name:
        s = take(bo_name)
        out["background_only_accuracy"] = {"variant": bo_name, **M.background_only_accuracy(
            s["probs"], s["label"], classes=cls, **boot)}
        h["background_only_accuracy"] = out["background_only_accuracy"]["value"]
    for name, key in (("shuffle", "shuffle_sensitivity"), ("reverse", "reverse_sensitivity")):
        if have("original", name):
            vv = common("original", name)
            o, s = take("original", vv), take(name, vv)
            out[key] = M.shuffle_sensitivity(o["probs"], s["probs"], o["label"], classes=cls, **boot)
            h[key] = out[key]["value"]
    if "swap-background" in out["conflict"]:
        h["swap_background_follow"] = out["conflict"]["swap-background"]["background_follow"]["value"]
    # the headline: original + background-only + swap, on the videos that have all of them
    parts = ["original"] + [n for n in (bo_name, "swap-background") if n and n in present]
    if len(parts) > 1 and have(*parts):
        vv = common(*parts)
        o = take("original", vv)
        kw: dict[str, Any] = {"orig_probs": o["probs"], "labels": o["label"]}
        if bo_name in parts:
            kw["background_only_probs"] = take(bo_name, vv)["probs"]
        if "swap-background" in parts:
            sw = take("swap-background", vv)
            kw["swap_probs"] = sw["probs"]
            if (sw["bg"] >= 0).all():
                kw["bg_labels"] = sw["bg"]
        rel = M.background_reliance(**kw, **boot)
        out["background_reliance"] = {"variants": parts, **rel}
        h["background_reliance"] = rel["value"]
    else:
        out["background_reliance"] = None
        h["background_reliance"] = None
    if "original" in out["accuracy"]:
        h["original_top1"] = out["accuracy"]["original"]["top1"]["value"]
    return out


def _videos_block(vids: dict, selected: list[int], src: ProbeSource, suite: ProbeSuite) -> dict:
    usable = np.asarray(vids["usable"], bool)
    has_mask = np.asarray(vids["source"], np.int64) > 0
    iou = np.asarray(vids["iou"], np.float64)
    has_iou = np.isfinite(iou)
    frac = np.asarray(vids["fraction"], np.float64)
    sources = [MASK_SOURCES[s] or "none" for s in vids["source"]]
    return {
        "in_split": len(src.records), "selected": len(selected), "probed": len(vids["index"]),
        "unreadable": [{"index": int(i), "path": src.records[int(i)].path, "error": e}
                       for i, e in zip(vids["failed_index"], vids["failed_error"])],
        "masks": {
            "mode": suite.mask,
            "sources": {s: sources.count(s) for s in sorted(set(sources))},
            "usable": int(usable.sum()), "not_usable": int((has_mask & ~usable).sum()),
            "usable_fraction_range": [suite.min_mask_fraction, suite.max_mask_fraction],
            "mean_foreground_fraction": float(frac[has_mask].mean()) if has_mask.any() else None,
            # IoU of motion masks (suite.motion_method) vs the ground truth, where it exists
            "motion_iou": ({"method": suite.motion_method, "n": int(has_iou.sum()),
                            "mean": float(iou[has_iou].mean()), "min": float(iou[has_iou].min())}
                           if has_iou.any() else None),
        },
    }


def _predictions_csv(rows: dict[str, np.ndarray], src: ProbeSource) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "path", "variant", "label", "bg_label", "pred", "p_label", "p_bg", "mask_source"])
    probs = rows["probs"]
    pred = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    for r in range(len(rows["video"])):
        i, y, b = int(rows["video"][r]), int(rows["label"][r]), int(rows["bg"][r])
        w.writerow([i, src.records[i].path, ALL_VARIANTS[int(rows["variant"][r])], y, "" if b < 0 else b,
                    int(pred[r]), f"{probs[r, y]:.6f}", "" if b < 0 else f"{probs[r, b]:.6f}",
                    MASK_SOURCES[int(rows["source"][r])]])
    return buf.getvalue()
