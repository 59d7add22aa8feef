"""Diving48: the JSON annotations of the official release.

Layouts (``--data`` may name the parent or the video folder itself):

- official: ``Diving48_rgb.tar.gz`` extracted (``rgb/<vid_name>.mp4``) next to
  ``Diving48_V2_train.json``, ``Diving48_V2_test.json`` and ``Diving48_vocab.json`` (the V1
  names ``Diving48_train.json`` / ``Diving48_test.json`` also work; V2 is preferred);
- mmaction2: ``diving48/videos/<vid_name>.mp4`` (``rgb/`` renamed) and/or
  ``diving48/rawframes/<vid_name>/`` next to ``diving48/annotations/``.
"""

from __future__ import annotations

import os
from typing import Any

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import PathLike, check_split, existing_dir, read_json
from bebias.data.sources.layout import find_annotations, locate, nothing_found, video_roots
from bebias.errors import BebiasError, DatasetFormatError

SPLITS = {"train": "train", "test": "test"}

Entry = tuple[str, int, int | None, int | None]


def split_file_names(split: str) -> tuple[str, str]:
    """The V2 and V1 file names of a split, preferred first."""
    return f"Diving48_V2_{split}.json", f"Diving48_{split}.json"


def parse_entries(data: Any, path: str) -> list[Entry]:
    """``[(vid_name, label, start, end)]`` from a parsed split JSON (validated)."""
    if not isinstance(data, list):
        raise DatasetFormatError(f"expected a JSON list of videos, got a JSON {type(data).__name__}", path)
    if not data:
        raise DatasetFormatError("empty split file (empty JSON list)", path)
    out: list[Entry] = []
    for i, item in enumerate(data):
        where = f"item [{i}]"
        if not isinstance(item, dict):
            raise DatasetFormatError(f"{where} is not a JSON object", path)
        vid = item.get("vid_name")
        if not isinstance(vid, str) or not vid.strip():
            raise DatasetFormatError(f"{where}: missing or empty 'vid_name'", path)
        vid = vid.strip()
        where = f"{where} ({vid})"
        label = item.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise DatasetFormatError(f"{where}: 'label' must be a non-negative integer (got {label!r})", path)
        bounds: list[int | None] = []
        for key in ("start_frame", "end_frame"):
            v = item.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise DatasetFormatError(f"{where}: {key!r} must be a non-negative integer (got {v!r})", path)
            bounds.append(v)
        start, end = bounds
        if start is not None and end is not None and end <= start:
            raise DatasetFormatError(f"{where}: end_frame {end} is not after start_frame {start}", path)
        out.append((vid, label, start, end))
    return out


def parse_vocab(data: Any, path: str) -> list[str]:
    """``Diving48_vocab.json`` (a list of 4-lists of dive attributes) -> ``"a/b/c/d"`` names."""
    if not isinstance(data, list) or not data:
        raise DatasetFormatError("expected a non-empty JSON list of class descriptions", path)
    names: list[str] = []
    for i, entry in enumerate(data):
        if isinstance(entry, str) and entry.strip():
            names.append(entry.strip())
        elif isinstance(entry, list) and entry and all(isinstance(x, str) for x in entry):
            names.append("/".join(x.strip() for x in entry))
        else:
            raise DatasetFormatError(f"item [{i}] must be a list of strings (e.g. 4 dive attributes)", path)
    return names


def _classes(ann: str, split: str, split_file: str, entries: list[Entry]) -> list[str]:
    max_label = max(label for _, label, _, _ in entries)
    vocab_file = os.path.join(ann, "Diving48_vocab.json")
    if os.path.isfile(vocab_file):
        classes = parse_vocab(read_json(vocab_file, "vocabulary file"), vocab_file)
        if max_label >= len(classes):
            i = next(i for i, e in enumerate(entries) if e[1] == max_label)
            raise DatasetFormatError(
                f"item [{i}] ({entries[i][0]}): label {max_label} is outside the "
                f"{len(classes)} classes of Diving48_vocab.json",
                split_file,
            )
        return classes
    other = "test" if split == "train" else "train"
    for n in split_file_names(other):
        sibling = os.path.join(ann, n)
        if os.path.isfile(sibling):
            try:
                more = parse_entries(read_json(sibling, "split file"), sibling)
                max_label = max(max_label, *(e[1] for e in more))
            except BebiasError:
                pass  # the sibling only widens the class list; its errors are not ours
            break
    width = max(2, len(str(max_label)))
    return [f"class_{i:0{width}d}" for i in range(max_label + 1)]


def diving48(root: PathLike, split: str = "train", annotations: PathLike | None = None) -> LabeledVideos:
    """Parse a Diving48 split from its JSON annotations.

    Args:
        root: the dataset folder or the video folder (see the module docstring); videos
            are ``<vid_name>.mp4`` files or frame folders ``<vid_name>/``.
        split: ``"train"`` or ``"test"``.
        annotations: folder holding ``Diving48_V2_<split>.json`` (or a file in it);
            default: searched (see :mod:`bebias.data.sources.layout`).

    The split file is a JSON list of ``{"vid_name", "label", "start_frame"?,
    "end_frame"?}`` with 0-based labels. ``start_frame`` is inclusive and ``end_frame``
    **exclusive** (the official files use ``start_frame=0`` and ``end_frame`` = number of
    frames); they become ``VideoRecord.start`` / ``VideoRecord.end`` unchanged.

    Class names come from ``Diving48_vocab.json`` next to the split file (a list of
    4-lists joined as ``"a/b/c/d"``); without it they are ``class_00``, ``class_01``, ...
    for ``0..max label``, the max taken over this split file and its train/test sibling
    (when present) so that both splits get the same classes.

    Returns:
        LabeledVideos named ``diving48/<split>``; ``meta`` holds ``split``,
        ``class_name`` and ``vid_name``.

    Raises:
        DatasetFormatError: bad split, missing/empty/invalid JSON, label out of range.
        BebiasError: none of the listed videos exist.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, SPLITS, "diving48", root_s)
    names = split_file_names(split)
    ann = find_annotations(
        root_s, annotations, lambda d: any(os.path.isfile(os.path.join(d, n)) for n in names),
        f"{names[0]} (or {names[1]})",
    )
    split_file = next(os.path.join(ann, n) for n in names if os.path.isfile(os.path.join(ann, n)))
    entries = parse_entries(read_json(split_file, "split file"), split_file)
    classes = _classes(ann, split, split_file, entries)
    rels = [f"{vid}.mp4" for vid, _, _, _ in entries]
    roots = video_roots(root_s, rels)
    if not roots:
        raise nothing_found(len(entries), split_file, root_s, rels[0])
    records: list[VideoRecord] = []
    missing: list[str] = []
    for rel, (vid, label, start, end) in zip(rels, entries):
        video, exists = locate(roots, rel, root_s)
        if not exists:
            missing.append(video)
        meta = {"split": split, "class_name": classes[label], "vid_name": vid}
        records.append(VideoRecord(path=video, label=label, start=start, end=end, meta=meta))
    return LabeledVideos(records, classes, name=f"diving48/{split}", missing=missing)
