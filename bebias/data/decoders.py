"""Decoders: turn a :class:`VideoRecord` plus frame indices into uint8 frames.

Two implementations share one tiny interface (``num_frames`` and ``read``), so the rest of
the pipeline does not care whether frames come from files or are rendered in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from bebias.data import video_io
from bebias.data.records import VideoRecord
from bebias.data.synth import SynthBenchmark
from bebias.errors import BebiasError

SYNTH_SCHEME = "synthetic:"


class Decoder(Protocol):
    def num_frames(self, rec: VideoRecord) -> int:
        """Usable frames of the video (after the record's start/end)."""

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 RGB; indices are relative to the record's start.
        With ``out`` (uint8, that shape) the frames are decoded into it and it is returned;
        ``ValueError`` if the video's frames have another size."""

    def frame_size(self, rec: VideoRecord) -> tuple[int, int] | None:
        """(H, W) of the video's frames where known without decoding, else None."""


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
    count, and the clip's indices wrap around the true length, as short videos do.
    """

    def __init__(self, template: str | None = None) -> None:
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

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        start, _ = _window(rec, self._total(rec))
        try:
            return video_io.read_frames(rec.path, [start + int(i) for i in indices], self.template, out)
        except video_io.VideoReadError:
            if rec.path in self._exact:
                raise
            self._frames[rec.path] = video_io.probe_video(rec.path, self.template).num_frames
            self._exact.add(rec.path)
            n = self.num_frames(rec)
            start, _ = _window(rec, self._total(rec))
            return video_io.read_frames(rec.path, [start + int(i) % n for i in indices], self.template, out)


def synth_path(split: str, index: int) -> str:
    return f"{SYNTH_SCHEME}{split}/{index}"


def parse_synth_path(path: str) -> tuple[str, int]:
    if not path.startswith(SYNTH_SCHEME):
        raise BebiasError("not a synthetic video URI", path)
    split, _, idx = path[len(SYNTH_SCHEME):].rpartition("/")
    return split, int(idx)


class SynthDecoder:
    """In-memory videos of the embedded benchmark (``synthetic:<split>/<index>``)."""

    def __init__(self, bench: SynthBenchmark) -> None:
        self.bench = bench

    def num_frames(self, rec: VideoRecord) -> int:
        start, end = _window(rec, self.bench.cfg.frames)
        return end - start

    def frame_size(self, rec: VideoRecord) -> tuple[int, int]:
        return self.bench.cfg.size, self.bench.cfg.size

    def read(self, rec: VideoRecord, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        start, _ = _window(rec, self.bench.cfg.frames)
        split, i = parse_synth_path(rec.path)
        frames = self.bench.video(split, i).frames
        idx = [start + int(k) for k in indices]
        if out is None:
            return frames[idx]
        video_io.check_out(out, (len(idx), *frames.shape[1:]))
        return np.take(frames, idx, axis=0, out=out)

    def masks(self, rec: VideoRecord, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), H, W) bool ground-truth foreground masks."""
        start, _ = _window(rec, self.bench.cfg.frames)
        split, i = parse_synth_path(rec.path)
        return self.bench.video(split, i).masks[[start + int(k) for k in indices]]
