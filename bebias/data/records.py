"""What a data source yields: labelled video records, independent of how they are decoded."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bebias.errors import DatasetFormatError


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
        duplicates: rows dropped by :func:`drop_duplicates` (the same video listed again).
    """

    records: list[VideoRecord]
    classes: list[str]
    name: str = ""
    missing: list[str] = field(default_factory=list)
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def drop_duplicates(videos: LabeledVideos, where: str = "") -> LabeledVideos:
    """``videos`` with each (path, start, end) once, the first row kept, and the count of
    the rows dropped in ``duplicates``: a video listed twice would count twice in every
    metric (and be trained on twice as often).

    Raises:
        DatasetFormatError: a video listed again with another label (``where`` names the list).
    """
    seen: dict[tuple[str, int | None, int | None], int] = {}
    kept: list[VideoRecord] = []
    for r in videos.records:
        key = (r.path, r.start, r.end)
        label = seen.setdefault(key, r.label)
        if label != r.label:
            names = [repr(videos.classes[y]) if 0 <= y < len(videos.classes) else str(y) for y in (label, r.label)]
            raise DatasetFormatError(f"{r.path} is listed twice, with labels {names[0]} and {names[1]}"
                                     + ("" if r.start is None and r.end is None else f" (frames {r.start}:{r.end})"),
                                     where or None)
        if len(seen) > len(kept):
            kept.append(r)
    if len(kept) == len(videos.records):
        return videos
    return replace(videos, records=kept, duplicates=videos.duplicates + len(videos.records) - len(kept))
