"""Phase 2 of a probe: the variants of every video through one or more models, in
resumable chunks (:func:`probe_videos`).

The data side (decode, mask, plates, variants: :func:`bebias.probing.source.video_variants`)
runs ONCE per video; every model (a :class:`Member`) gets the same ``(T, H, W, 3)`` uint8
frames through its own ``eval_transform`` (its size, mean, std) and is batched on its own,
exactly as a probe of that model alone batches it: the rows, per-video records and
exclusion counts of each member are those of a single-checkpoint probe. Each member keeps
its own resume state (``partial.npz`` in its own folder): a member that finished more
chunks than the others skips the chunks it has.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from bebias.models.device import autocast
from bebias.errors import BebiasError
from bebias.models.cam_measure import measure_batch
from bebias.models.cam import input_view
from bebias.models.inference import check_finite
from bebias.probing import partial as P
from bebias.probing.source import MASK_SOURCES, new_video_log, video_variants
from bebias.progress import Progress, ProgressFn

__all__ = ["Member", "probe_videos"]


@dataclass
class Member:
    """One model of a pass and its resumable results.

    Attributes:
        cfg: its ProbeConfig (checkpoint, out, precision, save_every).
        s: its ``_Setup`` (model, spec, head, fingerprint; ``src`` shared by the pass).
        partial_path: its resume file.
        rows, vids, state: its results so far (:mod:`bebias.probing.partial`).
        tf: its ``eval_transform``: (T, H, W, 3) uint8 -> (3, T, S, S) float.
    """

    cfg: Any
    s: Any
    partial_path: str
    rows: P.Rows
    vids: dict
    state: dict
    tf: Callable[[np.ndarray], torch.Tensor]
    resumed: int = 0
    discarded: bool = False
    corrupt: str | None = None
    pending: list[torch.Tensor] = field(default_factory=list)
    originals: list[tuple[torch.Tensor, np.ndarray | None, int]] = field(default_factory=list)
    last_save: float = 0.0

    @cached_property
    def spec_key(self) -> str:
        """Its input spec: members with the same one get the same (3, T, S, S) tensor."""
        return json.dumps(self.s.spec.to_dict(), sort_keys=True)


def _forward(m: Member, device: torch.device) -> None:
    """The member's pending (3, T, S, S) clips through its model -> its rows (probs or features)."""
    x = torch.stack(m.pending).to(device)
    m.pending = []
    with torch.no_grad(), autocast(device, m.cfg.precision):
        f = m.s.model.backbone(x)
        logits = m.s.head(f).float() if m.s.head is not None else None
    # a NaN/inf has no argmax: refused before it is scored (or saved in partial.npz)
    check_finite(f.float() if logits is None else logits, m.cfg.checkpoint, seen=len(m.rows.feats),
                 what="features" if logits is None else "outputs")
    m.rows.feats.extend(f.float().cpu().numpy())
    if logits is not None:
        m.rows.out.extend(torch.softmax(logits, dim=1).cpu().numpy())


def _cam_shares(m: Member, device: torch.device) -> None:
    """Grad-CAM of the member's original clips (input, native mask or None, label) -> its cam lists."""
    bs = m.s.suite.batch_size
    for b in range(0, len(m.originals), bs):
        part = m.originals[b:b + bs]
        views = [input_view(mask, m.s.spec.size) if mask is not None else None for _, mask, _ in part]
        _, _, terms = measure_batch(m.s.cam, torch.stack([x for x, _, _ in part]).to(device), views,
                                    [y for _, _, y in part])
        for t in terms:
            m.vids["cam_share"].append(t.share)
            m.vids["cam_chance"].append(t.chance)
            m.vids["cam_share_true"].append(t.share_true)
            m.vids["cam_ceiling"].append(t.ceiling)
    m.originals = []


def _merge_log(m: Member, log_v: dict, log_s: dict) -> None:
    """One video's record (from :func:`video_variants`) into the member's lists and counts."""
    for k, v in log_v.items():
        m.vids[k].extend(v)
    for variant, reasons in log_s["excluded"].items():
        for reason, n in reasons.items():
            m.state["excluded"].setdefault(variant, {}).setdefault(reason, 0)
            m.state["excluded"][variant][reason] += n


def probe_videos(members: list[Member], share: list[int], device: torch.device, where: str,
                 progress: ProgressFn | None, stage: str = "probing") -> None:
    """Every video of ``share`` (indices into the split) through every member, chunk by
    chunk; each member's partial.npz is written after chunks (its ``save_every``), after the
    last one and on an interrupt (which raises a BebiasError naming ``where``). ``progress``
    gets ``stage`` events: videos of ``share`` done."""
    lead = members[0].s
    suite, src, seed = lead.suite, lead.src, members[0].cfg.seed
    mine = len(share)
    chunks = [share[c:c + suite.chunk] for c in range(0, mine, suite.chunk)]
    start = min(m.state["chunks_done"] for m in members)
    for m in members:
        m.last_save = time.monotonic()
    if progress:
        progress(Progress(stage, min(start * suite.chunk, mine), mine))
    try:
        for c in range(start, len(chunks)):
            todo = [m for m in members if m.state["chunks_done"] <= c]  # a resumed member skips what it has
            for k, i in enumerate(chunks[c]):
                if progress and k:  # the videos varied so far (the chunk's end: after its models ran)
                    progress(Progress(stage, c * suite.chunk + k, mine))
                log_v, log_s = new_video_log()  # this video's record, copied to every member
                for frames, meta in video_variants(i, src, lead.selected, lead.variants, suite, seed, log_v, log_s):
                    inputs: dict[str, torch.Tensor] = {}  # models of one input spec share its transform
                    for m in todo:
                        m.rows.video.append(i)
                        m.rows.variant.append(P.CODE[meta["variant"]])
                        m.rows.bg.append(meta["bg"])
                        m.rows.source.append(MASK_SOURCES.index(meta["source"]))
                        m.rows.donor.append(meta["donor"])
                        if m.spec_key not in inputs:  # this model's resize and normalisation
                            inputs[m.spec_key] = m.tf(frames)
                        m.pending.append(inputs[m.spec_key])
                        if m.s.cam is not None and meta["variant"] == "original":
                            v = src.video(i)  # cached: the decode the variants came from
                            m.originals.append((m.pending[-1], v.mask if v.usable else None, int(src.labels[i])))
                        if len(m.pending) == suite.batch_size:
                            _forward(m, device)
                for m in todo:
                    _merge_log(m, log_v, log_s)
            for m in todo:
                if m.pending:
                    _forward(m, device)
                if m.originals:
                    _cam_shares(m, device)
                m.state["chunks_done"] = c + 1
                P.commit(m.rows, m.vids, m.state)
                if m.cfg.save_every <= 0 or time.monotonic() - m.last_save >= m.cfg.save_every or \
                        c + 1 == len(chunks):
                    P.save_partial(m.partial_path, m.s.fingerprint, m.rows, m.vids, m.state)
                    m.last_save = time.monotonic()
            if progress:
                progress(Progress(stage, min((c + 1) * suite.chunk, mine), mine))
    except BaseException as e:
        # keep every member's finished chunks (drop the rows of the one in progress), then stop
        for m in members:
            m.pending, m.originals = [], []
            P.truncate(m.rows, m.vids, m.state)
            P.save_partial(m.partial_path, m.s.fingerprint, m.rows, m.vids, m.state)
        if isinstance(e, KeyboardInterrupt):
            done = min(min(m.state["chunks_done"] for m in members) * suite.chunk, mine)
            raise BebiasError(f"interrupted after {done}/{mine} videos; run the same command again to "
                              "resume", where) from None
        raise
