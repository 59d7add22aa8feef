"""What a data source yields: labelled video records, independent of how they are decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video.

    Attributes:
        path: a video file, a frame folder, or (for in-memory synthetic videos) a
            ``synthetic:<split>/<index>`` URI understood by the synthetic decoder.
        label: class index in ``[0, num_classes)``.
        start: first usable frame (inclusive), or None for the beginning.
        end: last usable frame (exclusive), or None for the end of the video.
        meta: free-form extra columns (e.g. ``family``, ``mask_path``, ``split``).
    """

    path: str
    label: int
    start: int | None = None
    end: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class LabeledVideos:
    """A split of a dataset: its records and the class names indexed by label.

    Attributes:
        records: the labelled videos of the split.
        classes: class names indexed by label.
        name: a short human-readable name (e.g. ``ucf101/train/fold1``).
        missing: paths of listed videos that did not exist when the split was parsed.
            Their records are kept (the loader skips unreadable videos and reports them);
            this list lets callers warn early.
    """

    records: list[VideoRecord]
    classes: list[str]
    name: str = ""
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.classes)
