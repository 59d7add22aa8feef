"""The torch ``Dataset`` that composes the stages: record -> clip indices -> decode -> transform.

Unreadable videos never crash a run, and :class:`FailureLog` accumulates them so the run can
list them at the end. What takes their place depends on the dataset:

- training (``substitute``, the default in train mode): another video of the split, chosen
  by :meth:`ClipDataset.replacements`, fills the unreadable one's row, so every batch keeps
  its size B (under DDP every rank must step with the same batch shape: MoCo all-gathers
  the keys); the item records the swap under ``replaced``;
- evaluation (test mode): nothing -- a test video must never count twice -- the item is an
  error entry, which :func:`bebias.data.batches.collate_clips` drops from the batch and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bebias.data import sampling
from bebias.data.decoders import Decoder, decode_short
from bebias.data.records import LabeledVideos
from bebias.data.transforms import ClipSpec, ClipTransform
from bebias import seeds
from bebias.errors import BebiasError

REPLACE_ATTEMPTS = 16
"""Other videos tried, in turn, for an unreadable one before the run stops (with half the
videos unreadable, 2^-16 per unreadable video met; "nearly all" stops within 16 decodes)."""


class TooManyUnreadable(BebiasError):
    """No readable video could be found to take an unreadable one's place.

    Raised inside a DataLoader worker, PyTorch re-raises it in the main process with the
    worker's whole traceback as the message; the message is cut back to its one line."""

    def __init__(self, message: str, path: str | None = None) -> None:
        if path is None and message.startswith("Caught ") and "\nOriginal Traceback" in message:
            message = message.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1]  # "module.Class: <message>"
        super().__init__(message, path)


class ClipDataset(Dataset):
    """Clips of a labelled video set.

    ``mode="train"``: one clip at a random start; ``views`` independently transformed copies
    of the SAME frames (MoCo's query and key); with ``intra_negative`` also a clip of the same
    video at another start (BE's intra-video negative).
    ``mode="test"``: ``num_clips`` evenly spaced clips (1 = the centre clip).

    Items are dicts: ``clip`` (3,T,H,W) as the transform returns it — or (V,3,T,H,W) for
    ``views > 1``, or (N,3,T,H,W) in test mode — ``label`` int, ``index`` int, optionally
    ``negative`` (3,T,H,W); with ``query_decoder``, view 0 is decoded by it at the SAME
    frame indices (e.g. the actor-swap oracle: the same actor on another scene); ``min_gap``:
    how far (frames) the intra-video negative's start is from the clip's; or, for an unreadable video, ``{"index": i, "path": ...,
    "error": message}`` -- unless ``substitute`` (default: in train mode), where another
    video's item takes its place (:meth:`replacements`), with ``replaced``: the
    ``(failed index, path, error, replacement index)`` of each unreadable video met on the
    way; :class:`TooManyUnreadable` if none of :data:`REPLACE_ATTEMPTS` others can be read.
    Evaluation must not substitute (a test video would count twice).

    With ``transform=None`` clips are the raw decoded frames, uint8 (T,H,W,3) (test mode:
    (N,T,H,W,3)), e.g. to augment them batched on a GPU; a batch of them is decoded
    straight into the batch's memory (:meth:`items`).

    Randomness is a function of ``(seed, epoch, index)`` only -- for a replacement, of
    ``(seed, epoch, failed index, attempt)`` -- so results do not depend on the number of
    DataLoader workers, on the order items are requested, or on resuming.
    """

    def __init__(self, videos: LabeledVideos, decoder: Decoder, spec: ClipSpec, transform: ClipTransform | None, *,
                 mode: str = "train", views: int = 1, num_clips: int = 1, intra_negative: bool = False,
                 seed: int = 0, substitute: bool | None = None, min_gap: int = 2,
                 query_decoder: Decoder | None = None) -> None:
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if transform is None and views > 1:
            raise ValueError("views > 1 needs a (random) transform: raw views would be identical")
        self.videos, self.decoder, self.spec, self.transform = videos, decoder, spec, transform
        # a transform that writes uint8 (T, size, size, 3) frames into a given buffer
        self._writes_frames = mode == "test" and bool(getattr(transform, "writes_frames", False))
        self.mode, self.views, self.num_clips, self.intra_negative = mode, views, num_clips, intra_negative
        self.min_gap = min_gap  # frames between the starts of a clip and its intra-video negative
        if query_decoder is not None and (mode != "train" or views < 2):
            raise ValueError("query_decoder gives view 0 of a train item with views >= 2")
        self.query_decoder = query_decoder
        self.seed, self.epoch = seed, 0
        self.substitute = mode == "train" if substitute is None else substitute
        self.short = decode_short(spec)  # frames are brought down to this short side as they are decoded

    def __len__(self) -> int:
        return len(self.videos.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._fill(index)

    def replacements(self, index: int) -> list[int]:
        """The videos that take an unreadable ``index``'s place, tried in this order:
        :data:`REPLACE_ATTEMPTS` distinct others (fewer in a smaller split), a function of
        ``(seed, epoch, index)`` only -- attempt ``a`` tries ``replacements(index)[a]``."""
        n = len(self)
        rng = seeds.rng(self.seed, "replacements", self.epoch, index)
        others = rng.choice(n - 1, size=min(REPLACE_ATTEMPTS, n - 1), replace=False)
        return [int(j) + int(j >= index) for j in others]  # every index but ``index``

    def items(self, indices: Sequence[int], alloc: Callable[[tuple[int, ...], torch.dtype], torch.Tensor] | None = None
              ) -> list[dict[str, Any]]:
        """The items at ``indices`` (one batch's).

        Raw clips (``transform=None``, no intra negative) are decoded straight into the rows
        of one ``alloc((len(indices), *clip.shape), torch.uint8)`` buffer, so collating them
        copies nothing (see :mod:`bebias.data.batches`); ``alloc`` defaults to ``torch.empty``.
        So are test clips of a transform that writes uint8 frames
        (:class:`~bebias.data.transforms.EvalTransform` with ``normalize=False``): it writes
        into the rows, and frames it would pass through unchanged are decoded into them.
        """
        if (self.transform is not None and not self._writes_frames) or self.intra_negative or self.query_decoder:
            return [self._fill(i) for i in indices]
        items: list[dict[str, Any]] = []
        rows: torch.Tensor | None = None
        for k, i in enumerate(indices):
            item = self._fill(i, out=None if rows is None else rows[k].numpy())
            clip = item.get("clip")
            if clip is not None:
                if rows is None:
                    shape = (len(indices), *clip.shape)
                    rows = alloc(shape, clip.dtype) if alloc is not None else torch.empty(shape, dtype=clip.dtype)
                if clip.shape == rows.shape[1:]:
                    if clip.data_ptr() != rows[k].data_ptr():  # the first item, or a decoder that ignored out
                        rows[k].copy_(clip)
                    item["clip"] = rows[k]  # the row itself, so collate recognises the buffer
            items.append(item)
        return items

    def _fill(self, index: int, out: np.ndarray | None = None) -> dict[str, Any]:
        """The item at ``index``; if it is unreadable and ``substitute``, the first readable
        of its :meth:`replacements` (its draws keyed by the failed index and attempt)."""
        item = self._get_into(index, out)
        if "error" not in item or not self.substitute:
            return item
        met = [item]
        for attempt, j in enumerate(self.replacements(index)):
            other = self._get_into(j, out, draw=(index, attempt))
            if "error" not in other:
                other["replaced"] = [(e["index"], e["path"], e["error"], j) for e in met]
                return other
            met.append(other)
        tried = len(met) - 1
        raise TooManyUnreadable(
            f"too many unreadable videos to fill a batch: video {index} and the {tried} other(s) tried in its place "
            f"all failed ({'; '.join(e['error'] for e in met[:3])}{'; ...' if len(met) > 3 else ''})")

    def _get_into(self, index: int, out: np.ndarray | None, draw: tuple[int, int] | None = None) -> dict[str, Any]:
        """:meth:`_get`, decoding into ``out`` where the clip fits it."""
        if out is None:
            return self._get(index, draw=draw)
        try:
            return self._get(index, out, draw)
        except ValueError:  # another frame size than the batch's first: kept apart, collate reports it
            return self._get(index, draw=draw)

    def _get(self, index: int, out: np.ndarray | None = None, draw: tuple[int, int] | None = None) -> dict[str, Any]:
        """``draw``: (failed index, attempt) when this video stands in for an unreadable one."""
        rec = self.videos.records[index]
        if draw is None:
            rng = seeds.rng(self.seed, "item", self.epoch, index)
        else:  # (failed index, attempt): apart from every item's own draws
            rng = seeds.rng(self.seed, "stand-in", self.epoch, *draw)
        # the transforms draw from torch's global CPU generator: seed it for this item and
        # restore it after (what torch.random.fork_rng + manual_seed do, minus their ~0.6 ms
        # of per-call overhead -- a quarter of a small item's cost)
        gen = torch.default_generator
        saved = gen.get_state()
        gen.manual_seed(int(rng.integers(2**62)))
        try:
            return self._item(index, rec, rng, out)
        except BebiasError as e:
            return {"index": index, "path": rec.path, "error": str(e)}
        finally:
            gen.set_state(saved)

    def _item(self, index: int, rec, rng: np.random.Generator, out: np.ndarray | None) -> dict[str, Any]:
        """``out``: where the raw clip goes (``transform=None``, no intra negative), shaped
        like it ((N,T,H,W,3) in test mode, (T,H,W,3) in train mode)."""
        n = self.decoder.num_frames(rec)
        T, s = self.spec.frames, self.spec.stride
        item: dict[str, Any] = {"index": index, "label": rec.label}
        if self.mode == "test":
            idx = sampling.uniform_clips(n, T, s, self.num_clips)
            tf = self.transform
            # decode into ``out`` when the clip goes there as decoded (a video of another
            # size raises ValueError there, and _get_into decodes it apart)
            direct = out is not None and (tf is None or (
                self._writes_frames and tf.passes_through(*out.shape[2:4])
                and self.decoder.frame_size(rec) in (None, tuple(out.shape[2:4]))))
            flat_out = out.reshape(-1, *out.shape[2:]) if direct else None
            # one decode for all clips: (N*T, H, W, 3)
            flat = self.decoder.read(rec, idx.reshape(-1), out=flat_out, short=self.short)
            frames = flat.reshape(*idx.shape, *flat.shape[1:])
            if tf is None or direct:
                item["clip"] = torch.from_numpy(frames)  # (N, T, H, W, 3) uint8
                return item
            if self._writes_frames:  # resize + crop into the batch's row (or a fresh buffer)
                S = self.spec.size
                dst = out if out is not None else np.empty((len(frames), T, S, S, 3), np.uint8)
                for k, f in enumerate(frames):
                    tf.into(f, dst[k])
                item["clip"] = torch.from_numpy(dst)  # (N, T, S, S, 3) uint8
                return item
            clips = [self.transform(f) for f in frames]
            item["clip"] = clips[0].unsqueeze(0) if len(clips) == 1 else torch.stack(clips)  # (N,3,T,H,W)
            return item
        tf = self.transform or torch.from_numpy
        idx = sampling.random_clip(n, T, s, rng)
        if self.intra_negative:
            neg = sampling.shifted_clip(n, T, s, int(idx[0]), rng, min_gap=self.min_gap)
            both = self.decoder.read(rec, np.concatenate([idx, neg]), short=self.short)
            frames, neg_frames = both[:T], both[T:]
            item["negative"] = tf(neg_frames)
        else:
            frames = self.decoder.read(rec, idx, out=out, short=self.short)
        clips = [tf(frames) for _ in range(self.views)]
        if self.query_decoder is not None:
            clips[0] = tf(self.query_decoder.read(rec, idx, short=self.short))
        item["clip"] = clips[0] if self.views == 1 else torch.stack(clips)
        return item


@dataclass
class FailureLog:
    """Unreadable videos met during a run: counted, never silently dropped.

    ``add`` takes a batch's ``failed``: ``(index, path, error, replacement index or None)``
    per unreadable video met (None: dropped from its batch); ``replaced`` counts those that
    another video stood in for."""

    entries: dict[str, str] = field(default_factory=dict)
    replaced: int = 0

    def add(self, failed: Sequence[tuple]) -> None:
        for _, path, err, *swap in failed:
            self.entries.setdefault(path, err)
            self.replaced += bool(swap and swap[0] is not None)

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self, limit: int = 20) -> str:
        if not self.entries:
            return "no unreadable videos"
        swaps = f", replaced in their batches by other videos of the split ({self.replaced}x)" if self.replaced else ""
        lines = [f"skipped {len(self.entries)} unreadable video(s){swaps}:"]
        lines += [f"  {err}" for err in list(self.entries.values())[:limit]]
        if len(self.entries) > limit:
            lines.append(f"  ... and {len(self.entries) - limit} more")
        return "\n".join(lines)
