"""Decoders: turn a :class:`VideoRecord` plus frame indices into uint8 frames.

The implementations share one tiny interface (``num_frames`` and ``read``), so the rest of
the pipeline does not care whether frames come from files or are rendered in memory. What
the data records beside the frames comes through the same interface: ``masks`` (ground-truth
foreground) and ``plate`` (the clean background), None where the data has none
(``has_masks`` says which without reading; a decoder without these optional members records
nothing), so a consumer never asks what kind of data it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from bebias.data import video_io
from bebias.data.records import VideoRecord
from bebias.data.video_io.common import shrink
from bebias.data.synth import SynthBenchmark
from bebias.errors import BebiasError

SYNTH_SCHEME = "synthetic:"
#: frames are decoded at a short side of at most max(2 x the model's input side, this):
#: every crop of a random resized crop (scale >= 0.3, so a side >= 0.55 of the frame's)
#: still has at least the input's resolution, and videos this small are never touched
MIN_DECODE_SHORT = 256


def decode_short(spec) -> int:
    """The short side (pixels) frames are brought down to as they are decoded for a model
    of input ``spec`` (a :class:`~bebias.data.transforms.ClipSpec`: its ``size`` and
    ``resize``): a 4K clip is never held at its native size."""
    return max(2 * max(int(getattr(spec, "size", 0)), int(getattr(spec, "resize", 0) or 0)), MIN_DECODE_SHORT)


class Decoder(Protocol):
    def num_frames(self, rec: VideoRecord) -> int:
        """Usable frames of the video (after the record's start/end)."""

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None,
             short: int | None = None) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 RGB; indices are relative to the record's start.
        With ``out`` (uint8, that shape) the frames are decoded into it and it is returned;
        ``ValueError`` if the video's frames have another size. ``short``: each frame's
        short side is brought down to that many pixels as it is decoded (aspect kept;
        ``video_io.scaled_size``), so a 4K clip never sits in memory at its native size."""

    def check(self, rec: VideoRecord) -> int:
        """Decode every frame of the record's video, keeping none; its usable frame count.
        VideoReadError if a frame fails or the record's ``end`` lies past the video."""

    def frame_size(self, rec: VideoRecord) -> tuple[int, int] | None:
        """(H, W) of the video's frames where known without decoding, else None."""

    #: whether :meth:`masks` and :meth:`plate` return what the data records (else None)
    has_masks: bool

    def masks(self, rec: VideoRecord, indices: Sequence[int]) -> np.ndarray | None:
        """(len(indices), H, W) bool ground-truth foreground masks of the frames ``indices``
        (relative to the record's start), at the size they were recorded; None where the
        data records none."""

    def plate(self, rec: VideoRecord) -> np.ndarray | None:
        """The video's clean background, (H, W, 3) uint8 RGB, as the data records it; None
        where it records none."""


def _window(rec: VideoRecord, total: int) -> tuple[int, int]:
    start = max(rec.start or 0, 0)
    end = min(rec.end if rec.end is not None else total, total)
    if end <= start:
        raise video_io.VideoReadError(f"empty frame range [{rec.start}, {rec.end}) for a video of {total} frames",
                                      rec.path)
    return start, end


class FileDecoder:
    """Video files and frame folders through OpenCV (``bebias.data.video_io``).

    Frame counts come from the container header (cheap, cached per path). If a header
    overcounts (a damaged file) the read that runs past the true end triggers an exact
    count, and the clip's indices wrap around the true length, as short videos do. Files
    record no masks or plates.
    """

    has_masks = False

    def __init__(self, template: str | None = None) -> None:
        if template is not None:  # refused once, up front, not once per video
            from bebias.data.video_io.folders import _template_regex

            _template_regex(template)
        self.template = template
        self._frames: dict[str, int] = {}
        self._sizes: dict[str, tuple[int, int] | None] = {}
        self._exact: set[str] = set()

    def _total(self, rec: VideoRecord) -> int:
        if rec.path not in self._frames:
            self._frames[rec.path], self._sizes[rec.path] = video_io.header(rec.path, self.template)
        return self._frames[rec.path]

    def frame_size(self, rec: VideoRecord) -> tuple[int, int] | None:
        """The header's (H, W) (cached with the frame count); None for frame folders."""
        self._total(rec)
        return self._sizes.get(rec.path)

    def num_frames(self, rec: VideoRecord) -> int:
        start, end = _window(rec, self._total(rec))
        return end - start

    def masks(self, rec: VideoRecord, indices: Sequence[int]) -> np.ndarray | None:
        return None

    def plate(self, rec: VideoRecord) -> np.ndarray | None:
        return None

    def check(self, rec: VideoRecord) -> int:
        n = video_io.scan_video(rec.path, self.template).num_frames
        self._frames[rec.path] = n
        self._exact.add(rec.path)
        if rec.end is not None and rec.end > n:
            raise video_io.VideoReadError(f"the record's frames [{rec.start or 0}, {rec.end}) end past the video's "
                                          f"{n} frames", rec.path)
        return self.num_frames(rec)

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None,
             short: int | None = None) -> np.ndarray:
        start, _ = _window(rec, self._total(rec))
        try:
            return video_io.read_frames(rec.path, [start + int(i) for i in indices], self.template, out, short)
        except video_io.VideoReadError:
            if rec.path in self._exact:
                raise
            self._frames[rec.path] = video_io.probe_video(rec.path, self.template).num_frames
            self._exact.add(rec.path)
            n = self.num_frames(rec)
            start, _ = _window(rec, self._total(rec))
            return video_io.read_frames(rec.path, [start + int(i) % n for i in indices], self.template, out, short)


def synth_path(split: str, index: int) -> str:
    return f"{SYNTH_SCHEME}{split}/{index}"


def parse_synth_path(path: str) -> tuple[str, int]:
    if not path.startswith(SYNTH_SCHEME):
        raise BebiasError("not a synthetic video URI", path)
    split, _, idx = path[len(SYNTH_SCHEME):].rpartition("/")
    return split, int(idx)


class SynthDecoder:
    """In-memory videos of the embedded benchmark (``synthetic:<split>/<index>``), with their
    ground-truth masks and background plates."""

    has_masks = True

    def __init__(self, benchmark: SynthBenchmark) -> None:
        self.benchmark = benchmark

    def num_frames(self, rec: VideoRecord) -> int:
        start, end = _window(rec, self.benchmark.cfg.frames)
        return end - start

    def frame_size(self, rec: VideoRecord) -> tuple[int, int]:
        return self.benchmark.cfg.size, self.benchmark.cfg.size

    def check(self, rec: VideoRecord) -> int:
        return self.num_frames(rec)  # rendered in memory: nothing to decode

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None,
             short: int | None = None) -> np.ndarray:
        start, _ = _window(rec, self.benchmark.cfg.frames)
        split, i = parse_synth_path(rec.path)
        frames = self.benchmark.video(split, i).frames
        idx = [start + int(k) for k in indices]
        if video_io.scaled_size(*frames.shape[1:3], short) != frames.shape[1:3]:
            small = np.stack([shrink(f, short) for f in frames[idx]])
            if out is not None:
                video_io.check_out(out, small.shape)
                out[...] = small
            return small if out is None else out
        if out is None:
            return frames[idx]
        video_io.check_out(out, (len(idx), *frames.shape[1:]))
        return np.take(frames, idx, axis=0, out=out)

    def masks(self, rec: VideoRecord, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), H, W) bool ground-truth foreground masks."""
        start, _ = _window(rec, self.benchmark.cfg.frames)
        split, i = parse_synth_path(rec.path)
        return self.benchmark.video(split, i).masks[[start + int(k) for k in indices]]

    def plate(self, rec: VideoRecord) -> np.ndarray:
        """(H, W, 3) uint8: the plate the video was rendered on."""
        split, i = parse_synth_path(rec.path)
        return self.benchmark.video(split, i).background


class ActorSwapDecoder(SynthDecoder):
    """The benchmark's actor-swap oracle: a video's own actor and motion rendered on another
    video's plate and camera (:meth:`bebias.data.synth.SynthBenchmark.actor_swap`), frame by
    frame on demand. Pre-training's ``--oracle actor-swap`` decodes its query view with it."""

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None,
             short: int | None = None) -> np.ndarray:
        start, _ = _window(rec, self.benchmark.cfg.frames)
        split, i = parse_synth_path(rec.path)
        frames = self.benchmark.actor_swap(split, i, [start + int(k) for k in indices])
        if video_io.scaled_size(*frames.shape[1:3], short) != frames.shape[1:3]:
            frames = np.stack([shrink(f, short) for f in frames])
        if out is None:
            return frames
        video_io.check_out(out, frames.shape)
        out[...] = frames
        return out
