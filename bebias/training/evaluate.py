"""Evaluation: multi-clip classification accuracy and kNN retrieval.

Pure metric functions on arrays (:func:`classification_metrics`, :func:`retrieval_recall`)
plus :func:`evaluate_checkpoint`, which runs a checkpoint over dataset splits with
:mod:`bebias.models.inference`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bebias.checkpoint import file_sha256
from bebias.data.loader import resolve_workers
from bebias.limits import check_int, check_memory, clip_bytes
from bebias.models.classes import match_classes
from bebias.models.device import pick_device
from bebias.models.inference import embed, predict
from bebias.models.open import open_model, refuse_archive
from bebias.progress import ProgressFn


def classification_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """top-1, top-5 (top-k with k = min(5, K)) and mean-class accuracy, in [0, 1], plus
    per-class top-1. ``probs`` (N, K), ``labels`` (N,)."""
    if len(labels) == 0:
        return {"n": 0, "top1": float("nan"), "top5": float("nan"), "mean_class": float("nan"), "per_class": {}}
    pred = probs.argmax(1)
    k = min(5, probs.shape[1])
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    per_class = {int(c): float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()}
    return {"n": int(len(labels)), "top1": float((pred == labels).mean()),
            "top5": float((topk == labels[:, None]).any(1).mean()),
            "mean_class": float(np.mean(list(per_class.values()))), "per_class": per_class}


def retrieval_recall(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
                     ks: tuple[int, ...] = (1, 5, 10, 20, 50)) -> dict[str, float]:
    """Video retrieval as in the BE paper: cosine similarity of each query (N, C) to the
    gallery (M, C); a query scores at k if any of its k nearest gallery items shares its
    label. Returns ``{"R@k": fraction}``."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-(q @ g.T), axis=1, kind="stable")
    hits = gallery_labels[order] == query_labels[:, None]  # (N, M)
    return {f"R@{k}": float(hits[:, :k].any(1).mean()) for k in ks if k <= g.shape[0]}


def background_follow(pred: np.ndarray, families: np.ndarray) -> float:
    """P(prediction == the class whose usual scene is the video's background family).

    Meaningful where family i is the usual scene of class i (the embedded benchmark)."""
    return float((pred == families).mean()) if len(pred) else float("nan")


def evaluate_checkpoint(ckpt: str, *, data: str | None = None, dataset: str | None = None,
                        annotations: str | None = None, splits: str | None = None, fold: int = 1,
                        num_clips: int = 1, knn: bool = False,
                        gallery: str = "train", batch_size: int = 32, device: str = "auto",
                        workers: int | None = None, benchmark=None, log: Callable[[str], None] | None = None,
                        progress: ProgressFn | None = None) -> dict:
    """Evaluate a classifier checkpoint on one or more splits; returns a JSON-able dict.

    ``benchmark``: an in-memory :class:`~bebias.data.synth.SynthBenchmark` of ``data`` to share
    (and its rendered videos) between calls; by default each call renders its own. The
    model's outputs are matched to each split's classes by name where both record names
    (:func:`~bebias.models.classes.match_classes`; each split's ``class_match`` says how);
    ``log`` gets the line that says so when that reorders them. Non-finite outputs are a
    :class:`~bebias.errors.BebiasError` naming the checkpoint. ``progress`` gets an
    ``evaluating SPLIT`` stage per split (videos run), and ``embedding SPLIT`` with ``knn``."""
    from bebias.data.open import open_data, parse_synth_spec
    from bebias.data.synth import SynthBenchmark
    from bebias.errors import BebiasError

    check_int("--clips", num_clips)
    check_int("--batch-size", batch_size)
    check_int("--fold", fold)
    dev = pick_device(device)
    workers = resolve_workers(workers, dev)
    refuse_archive(ckpt, "a whole model, not a backbone + head; probe it with `bebias probe` (no --arch)")
    opened = open_model(ckpt, None, dev)
    model, meta = opened.classifier(), opened.meta
    if meta.input_preset and log:  # announced as bebias probe and bebias cam do
        log(f"input spec: the {meta.input_preset}")
    # the checkpoint's own data by default (its dataset settings too), and the default splits
    data, dataset, annotations, splits = opened.resolve_data(data, dataset, annotations, splits, evaluate=True)
    spec = opened.input_spec()
    # a batch holds at least one video's --clips clips (float32, on the device)
    check_memory(num_clips * clip_bytes(spec.frames, spec.size),
                 f"one video's --clips {num_clips} clips of {spec.frames} frames x {spec.size} px")
    # one in-memory benchmark shared by all splits (its render cache too)
    if benchmark is None and data.startswith("synthetic"):
        benchmark = SynthBenchmark(parse_synth_spec(data))
    elif benchmark is not None and benchmark.cfg != parse_synth_spec(data):
        raise BebiasError(f"the shared benchmark is not {data}")
    names = splits.split(",")
    out: dict = {"checkpoint": ckpt, "checkpoint_sha256": file_sha256(ckpt), "data": data, "clips": num_clips,
                 "arch": meta.arch, "splits": {}}
    gal_feats, said = None, []
    for name in names:
        d = open_data(data, split=name.strip(), dataset=dataset, fold=fold, annotations=annotations,
                      benchmark=benchmark)
        # the outputs in the data's class order: by name where both sides have names
        match = match_classes(list(meta.classes) if meta.classes is not None else None, meta.num_classes,
                              d.videos.classes, checkpoint=ckpt,
                              data=f"split {name.strip()!r} of {data}")
        msg = match.message(d.videos.classes)
        if msg and log and msg not in said:  # once (the splits of one data share its classes)
            said.append(msg)
            log(msg)
        b = min(batch_size, max(len(d.videos), 1))
        check_memory(b * num_clips * clip_bytes(spec.frames, spec.size),
                     f"a batch of {b} videos (--batch-size {batch_size}) x --clips {num_clips} clips of "
                     f"{spec.frames} frames x {spec.size} px")
        p = predict(model, d, spec, num_clips=num_clips, batch_size=batch_size, device=dev, workers=workers,
                    checkpoint=ckpt, progress=progress, stage=f"evaluating {name.strip()}")
        probs = match.apply(p.probs)
        r = classification_metrics(probs, p.labels, meta.num_classes)
        r["num_classes"] = int(meta.num_classes)  # K: the report's chance level 1/K
        fam = [d.videos.records[i].meta.get("family") for i in p.indices]
        if fam and all(f is not None and f != "" for f in fam):
            r["background_follow"] = background_follow(probs.argmax(1), np.array([int(f) for f in fam]))
        r["skipped"] = len(p.failures)
        r["class_match"] = match.record()
        if knn:
            if gal_feats is None:
                g = open_data(data, split=gallery, dataset=dataset, fold=fold, annotations=annotations,
                              benchmark=benchmark)
                gal_feats = embed(model.backbone, g, spec, num_clips=num_clips, batch_size=batch_size, device=dev,
                                  workers=workers, checkpoint=ckpt, progress=progress,
                                  stage=f"embedding {gallery}")
            q = embed(model.backbone, d, spec, num_clips=num_clips, batch_size=batch_size, device=dev,
                      workers=workers, checkpoint=ckpt, progress=progress, stage=f"embedding {name.strip()}")
            r["retrieval"] = retrieval_recall(q.features, q.labels, gal_feats.features, gal_feats.labels)
        out["splits"][name.strip()] = r
    return out


