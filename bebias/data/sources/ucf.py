"""UCF101: the official ``ucfTrainTestlist`` split files.

Layouts (``--data`` may name the parent or the video folder itself):

- official: ``UCF101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` next to
  ``UCF101/ucfTrainTestlist/{classInd.txt,trainlist0N.txt,testlist0N.txt}``;
- mmaction2: ``ucf101/videos/<Class>/*.avi`` and/or ``ucf101/rawframes/<Class>/<video>/``
  next to ``ucf101/annotations/`` (the same split files, unzipped flat).
"""

from __future__ import annotations

import os

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import (
    INT_RE,
    PathLike,
    check_fold,
    check_split,
    existing_dir,
    read_lines,
    short,
)
from bebias.data.sources.layout import find_annotations, locate, nothing_found, split_rel, video_roots
from bebias.errors import DatasetFormatError

SPLITS = {"train": "train", "test": "test"}


def parse_class_ind(lines: list[tuple[int, str]], path: str) -> list[str]:
    """``classInd.txt`` lines (``"<1-based index> <name>"``) -> names indexed 0-based."""
    by_index: dict[int, str] = {}
    seen: set[str] = set()
    for lineno, line in lines:
        fields = line.split()
        if len(fields) != 2:
            raise DatasetFormatError(
                f"line {lineno}: expected '<index> <class name>', got {short(line)}", path
            )
        idx_text, name = fields
        if not INT_RE.fullmatch(idx_text):
            raise DatasetFormatError(
                f"line {lineno}: class index {short(idx_text)} is not an integer", path
            )
        idx = int(idx_text)
        if idx in by_index:
            raise DatasetFormatError(f"line {lineno}: class index {idx} is repeated", path)
        if name in seen:
            raise DatasetFormatError(f"line {lineno}: class name {name!r} is repeated", path)
        by_index[idx] = name
        seen.add(name)
    n = len(by_index)
    if sorted(by_index) != list(range(1, n + 1)):
        raise DatasetFormatError(
            f"class indices must be exactly 1..{n} (got {min(by_index)}..{max(by_index)})", path
        )
    return [by_index[i] for i in range(1, n + 1)]


def parse_list(
    lines: list[tuple[int, str]], path: str, classes: list[str]
) -> list[tuple[int, str, int]]:
    """A train/test list -> ``[(line number, '<Class>/<video>.avi', 0-based label)]``.

    Train lines are ``"<Class>/<video>.avi <1-based label>"``; test lines omit the label,
    which then comes from the class folder (matched against ``classInd.txt``, case-
    insensitively as a fallback: the files say ``HandStandPushups``, classInd
    ``HandstandPushups``).
    """
    index = {name: i for i, name in enumerate(classes)}
    lower: dict[str, list[int]] = {}
    for name, i in index.items():
        lower.setdefault(name.lower(), []).append(i)
    out: list[tuple[int, str, int]] = []
    for lineno, line in lines:
        fields = line.split()
        if len(fields) == 2:
            rel, text = fields
            if not INT_RE.fullmatch(text):
                raise DatasetFormatError(f"line {lineno}: label {short(text)} is not an integer", path)
            if not 1 <= int(text) <= len(classes):
                raise DatasetFormatError(
                    f"line {lineno}: label {int(text)} is outside 1..{len(classes)} (classInd.txt)", path
                )
            label = int(text) - 1
        elif len(fields) == 1:
            rel = fields[0]
            parts = split_rel(rel)
            if len(parts) < 2:
                raise DatasetFormatError(
                    f"line {lineno}: {short(rel)} has no class folder to take the label from", path
                )
            folder = parts[0]
            if folder in index:
                label = index[folder]
            elif len(lower.get(folder.lower(), [])) == 1:
                label = lower[folder.lower()][0]
            else:
                raise DatasetFormatError(
                    f"line {lineno}: class folder {short(folder)} is not in classInd.txt", path
                )
        else:
            raise DatasetFormatError(
                f"line {lineno}: expected '<Class>/<video> [<label>]', got {short(line)}", path
            )
        out.append((lineno, rel, label))
    return out


def ucf101(
    root: PathLike, split: str = "train", fold: int = 1, annotations: PathLike | None = None
) -> LabeledVideos:
    """Parse a UCF101 split from the official ``ucfTrainTestlist`` files.

    Args:
        root: the dataset folder or the video folder (see the module docstring); videos
            are ``<Class>/v_<Class>_gXX_cYY.avi`` files or frame folders without the
            ``.avi``.
        split: ``"train"`` (``trainlist0<fold>.txt``) or ``"test"`` (``testlist0<fold>.txt``).
        fold: official split number, 1..3.
        annotations: folder holding ``classInd.txt`` and the lists (or a file in it);
            default: searched (see :mod:`bebias.data.sources.layout`).

    Returns:
        LabeledVideos named ``ucf101/<split>/fold<fold>``, labels 0-based in
        ``classInd.txt`` order; ``meta`` holds ``split``, ``fold`` and ``class_name``.

    Raises:
        DatasetFormatError: bad split/fold, missing/empty/malformed split files.
        BebiasError: none of the listed videos exist.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, SPLITS, "ucf101", root_s)
    fold = check_fold(fold, root_s)
    ann = find_annotations(
        root_s, annotations, lambda d: os.path.isfile(os.path.join(d, "classInd.txt")),
        "classInd.txt (UCF101's ucfTrainTestlist)",
    )
    classes = parse_class_ind(read_lines(os.path.join(ann, "classInd.txt"), "class index file"),
                              os.path.join(ann, "classInd.txt"))
    list_file = os.path.join(ann, f"{split}list0{fold}.txt")
    entries = parse_list(read_lines(list_file), list_file, classes)
    roots = video_roots(root_s, [rel for _, rel, _ in entries])
    if not roots:
        raise nothing_found(len(entries), list_file, root_s, entries[0][1])
    records: list[VideoRecord] = []
    missing: list[str] = []
    for _, rel, label in entries:
        video, exists = locate(roots, rel, root_s)
        if not exists:
            missing.append(video)
        meta = {"split": split, "fold": fold, "class_name": classes[label]}
        records.append(VideoRecord(path=video, label=label, meta=meta))
    return LabeledVideos(records, classes, name=f"ucf101/{split}/fold{fold}", missing=missing)
