"""Kinetics-400/600/700 and Mimetics: YouTube clips listed in the Kinetics CSV format.

The CSVs have a header naming ``label,youtube_id,time_start,time_end,split[,is_cc]``
(the test files of Kinetics-600 and -700-2020 have no ``label``). A clip is a file
``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (any video extension) or a frame
folder of that name, as the official crawler and mmaction2 name them, found anywhere
under ``--data`` (class folders ``<label>/`` with spaces or underscores, split folders
``train/``, ``val/``, ``videos_val/``, ..., or flat; see
:func:`bebias.data.sources.layout.index_clips`). Clips that are not found are counted
and listed in ``LabeledVideos.missing`` (Kinetics always has some: YouTube videos go
away); only a split with none of them found is an error.

Split files, in the annotation folder:

- Kinetics: ``train.csv``, ``validate.csv`` (or ``val.csv``), ``test.csv``, also with
  mmaction2's ``kinetics_`` or the ActivityNet crawler's ``kinetics-400_`` prefixes;
- Mimetics: ``mimetics_v1.0.csv`` (any ``mimetics*.csv``): 50 Kinetics-400 classes, a
  test set only.

Classes are the sorted unique labels as written in the CSVs (``"air drumming"``), over
every labelled split file of the folder, so that all splits share the label indices;
for a complete release this is the alphabetical order of torchvision's and mmaction2's
Kinetics label maps.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import (
    PathLike,
    check_split,
    csv_rows,
    existing_dir,
    listdir,
    read_text,
    short,
)
from bebias.data.sources.layout import CLIP_DEPTH, find_annotations, index_clips, nothing_found
from bebias.errors import DatasetFormatError

SPLITS = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
_FILE = re.compile(r"(?P<prefix>kinetics(?:[-_]?(?:400|600|700))?_)?(?P<split>train|validate|val|test)\.csv")
_FILE_SPLIT = {"train": "train", "validate": "val", "val": "val", "test": "test"}
_MIMETICS = re.compile(r"mimetics.*\.csv", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d*)?")
_REQUIRED = ("youtube_id", "time_start", "time_end")


@dataclass(frozen=True)
class Clip:
    """One row of a Kinetics-format CSV."""

    lineno: int
    label: str | None
    youtube_id: str
    start: int
    end: int

    @property
    def name(self) -> str:
        """The clip's file name without extension, as the official crawler writes it."""
        return f"{self.youtube_id}_{self.start:06d}_{self.end:06d}"


def _seconds(text: str, column: str, lineno: int, path: str) -> int:
    # The crawler names clips with '%06d' of the time, so a fractional time truncates.
    if text.isascii() and text.isdigit():
        return int(text)
    if not _NUMBER.fullmatch(text):
        raise DatasetFormatError(
            f"line {lineno}: {column} {short(text)} is not a non-negative number of seconds", path
        )
    return int(float(text))


def parse_clips(text: str, path: str) -> tuple[list[Clip], bool]:
    """Rows of a Kinetics-format CSV -> ``(clips, labelled)``; ``labelled`` is whether the
    header has a ``label`` column (then every row has a non-empty label)."""
    rows = iter(csv_rows(text, path))
    first = next(rows, None)
    if first is None:
        raise DatasetFormatError("empty annotation file (a header 'label,youtube_id,...' is required)", path)
    header_line, header = first
    col = {h.lower(): i for i, h in enumerate(header)}
    absent = [c for c in _REQUIRED if c not in col]
    if absent:
        raise DatasetFormatError(
            f"line {header_line}: the header must name {', '.join(_REQUIRED)} (missing "
            f"{', '.join(absent)}; got {short(','.join(header))})",
            path,
        )
    labelled = "label" in col
    clips: list[Clip] = []
    for lineno, row in rows:
        if len(row) != len(header):
            raise DatasetFormatError(f"line {lineno}: expected {len(header)} fields, got {len(row)}", path)
        ytid = row[col["youtube_id"]]
        if not ytid or "/" in ytid or "\\" in ytid:
            raise DatasetFormatError(f"line {lineno}: bad youtube_id {short(ytid)}", path)
        label = row[col["label"]] if labelled else None
        if labelled and not label:
            raise DatasetFormatError(f"line {lineno}: empty label", path)
        start = _seconds(row[col["time_start"]], "time_start", lineno, path)
        end = _seconds(row[col["time_end"]], "time_end", lineno, path)
        clips.append(Clip(lineno, label, ytid, start, end))
    if not clips:
        raise DatasetFormatError("empty annotation file (a header but no rows)", path)
    return clips, labelled


def _has_clip_header(path: str) -> bool:
    """Whether a CSV's first line names the Kinetics columns (cheap: reads 4 KiB)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = f.read(4096).splitlines()[:1]
    except OSError:
        return False
    names = {h.strip().strip('"').lower() for h in first[0].split(",")} if first else set()
    return all(c in names for c in _REQUIRED)


def kinetics_csvs(folder: str) -> dict[str, str]:
    """``{split: path}`` of the Kinetics split files in ``folder`` (unprefixed names first)."""
    found: dict[str, tuple[tuple[bool, str], str]] = {}
    for name in listdir(folder):
        m = _FILE.fullmatch(name)
        path = os.path.join(folder, name)
        if m is None or not os.path.isfile(path) or not _has_clip_header(path):
            continue
        split, key = _FILE_SPLIT[m["split"]], (m["prefix"] is not None, name)
        if split not in found or key < found[split][0]:
            found[split] = (key, path)
    return {s: p for s, (_, p) in found.items()}


def mimetics_csvs(folder: str) -> list[str]:
    """The Mimetics annotation files in ``folder`` (``mimetics*.csv``), sorted."""
    return [
        os.path.join(folder, n) for n in listdir(folder)
        if _MIMETICS.fullmatch(n) and os.path.isfile(os.path.join(folder, n))
        and _has_clip_header(os.path.join(folder, n))
    ]


def _parse_file(path: str) -> tuple[list[Clip], bool]:
    return parse_clips(read_text(path, "annotation file"), path)


def kinetics_classes(files: dict[str, str], parsed: dict[str, list[Clip]] | None = None) -> list[str]:
    """Sorted unique labels over the labelled files of ``files`` ({split: path})."""
    labels: set[str] = set()
    for split, path in files.items():
        clips = (parsed or {}).get(split)
        if clips is None:
            clips, labelled = _parse_file(path)
            if not labelled:
                continue
        labels.update(c.label for c in clips if c.label is not None)
    return sorted(labels)


def clip_records(
    root: str, clips: list[Clip], classes: list[str], split: str, listed_in: str, name: str
) -> LabeledVideos:
    """Find ``clips`` under ``root`` and label them by index into ``classes``."""
    where = index_clips(root, {c.name for c in clips})
    if not where:
        raise nothing_found(len(clips), listed_in, root, f"{clips[0].name}.mp4", depth=CLIP_DEPTH)
    index = {c: i for i, c in enumerate(classes)}
    records: list[VideoRecord] = []
    missing: list[str] = []
    for c in clips:
        if c.label not in index:
            raise DatasetFormatError(f"line {c.lineno}: label {short(str(c.label))} is not a known class", listed_in)
        path = where.get(c.name)
        if path is None:
            path = os.path.join(root, c.name + ".mp4")
            missing.append(path)
        meta = {"split": split, "class_name": c.label, "youtube_id": c.youtube_id,
                "time_start": c.start, "time_end": c.end}
        records.append(VideoRecord(path=path, label=index[c.label], meta=meta))
    return LabeledVideos(records, classes, name=name, missing=missing)


def kinetics(
    root: PathLike, split: str = "train", annotations: PathLike | None = None, version: str = "kinetics400"
) -> LabeledVideos:
    """Parse a Kinetics split from the official CSV annotations.

    Args:
        root: the folder holding the clips (and usually the annotations), see the module
            docstring.
        split: ``"train"``, ``"val"`` (``"validate"`` accepted) or ``"test"``.
        annotations: folder holding the split CSVs (or a file in it); default: searched
            (see :mod:`bebias.data.sources.layout`).
        version: ``"kinetics400"``, ``"kinetics600"`` or ``"kinetics700"``, for the name.

    Returns:
        LabeledVideos named ``<version>/<split>``; ``meta`` holds ``split``,
        ``class_name``, ``youtube_id``, ``time_start`` and ``time_end``. Clips not found
        are kept (the loader skips and reports them) and listed in ``missing``.

    Raises:
        DatasetFormatError: bad split, missing/malformed CSV (with its line), a split file
            without labels (the held-out test sets of Kinetics-600 and -700).
        BebiasError: none of the listed clips exist under ``root``.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, SPLITS, version, root_s)
    ann = find_annotations(
        root_s, annotations, lambda d: split in kinetics_csvs(d),
        f"Kinetics {split} annotations ({'validate.csv or val.csv' if split == 'val' else split + '.csv'})",
    )
    files = kinetics_csvs(ann)
    clips, labelled = _parse_file(files[split])
    if not labelled:
        raise DatasetFormatError(
            "has no 'label' column (this release keeps its test labels back); "
            "evaluate on --split val", files[split])
    classes = kinetics_classes(files, {split: clips})
    return clip_records(root_s, clips, classes, split, files[split], f"{version}/{split}")


def mimetics(root: PathLike, split: str = "test", annotations: PathLike | None = None) -> LabeledVideos:
    """Parse Mimetics (mimed Kinetics-400 actions, out of context): a test set only.

    Args:
        root: the folder holding the clips (``<label>/<clip>.mp4`` as the Kinetics crawler
            writes them, or flat) and usually ``mimetics_v1.0.csv``.
        split: ``"test"``.
        annotations: a folder (or a file in it) holding ``mimetics_v1.0.csv`` and/or a
            Kinetics release's split CSVs. With Kinetics CSVs the classes are the Kinetics
            classes (400 for Kinetics-400), so that a Kinetics model's outputs index them;
            without, they are the 50 Mimetics labels, sorted. ``mimetics_v1.0.csv`` not in
            that folder is searched from ``root``.

    Returns:
        LabeledVideos named ``mimetics/test``; ``meta`` as for :func:`kinetics`.

    Raises:
        DatasetFormatError: a split other than test, missing/malformed CSV, a Mimetics
            label that is not a class of the given Kinetics annotations.
        BebiasError: none of the listed clips exist under ``root``.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, {"test": "test"}, "mimetics", root_s)
    kinetics_files: dict[str, str] = {}
    mimetics_file: str | None = None
    if annotations is not None:
        ann = os.fspath(annotations)
        if not os.path.exists(ann):
            raise DatasetFormatError("--annotations path does not exist", ann)
        folder = ann if os.path.isdir(ann) else (os.path.dirname(ann) or ".")
        kinetics_files = kinetics_csvs(folder)
        own = mimetics_csvs(folder)
        mimetics_file = own[0] if own else None
        if not kinetics_files and mimetics_file is None:
            raise DatasetFormatError(
                "--annotations folder has neither mimetics_v1.0.csv nor Kinetics split CSVs "
                "(train.csv, validate.csv, test.csv)", folder)
    if mimetics_file is None:
        mimetics_file = mimetics_csvs(find_annotations(
            root_s, None, lambda d: bool(mimetics_csvs(d)), "mimetics_v1.0.csv"))[0]
    clips, labelled = _parse_file(mimetics_file)
    if not labelled:
        raise DatasetFormatError("has no 'label' column", mimetics_file)
    if kinetics_files:
        classes = kinetics_classes(kinetics_files)
        known = set(classes)
        for c in clips:
            if c.label not in known:
                raise DatasetFormatError(
                    f"line {c.lineno}: label {short(str(c.label))} is not a class of the Kinetics "
                    f"annotations in {os.path.dirname(next(iter(kinetics_files.values())))}",
                    mimetics_file,
                )
    else:
        classes = sorted({c.label for c in clips if c.label is not None})
    return clip_records(root_s, clips, classes, split, mimetics_file, "mimetics/test")
