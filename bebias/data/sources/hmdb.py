"""HMDB51: the official per-class split files (``testTrainMulti_7030_splits``).

Layouts (``--data`` may name the parent or the video folder itself):

- official: ``hmdb51_org.rar`` extracted into a folder (e.g. ``hmdb51_org/``) and each
  per-class ``<class>.rar`` in it extracted, giving ``<class>/<video>.avi``; the split
  archive gives ``testTrainMulti_7030_splits/<class>_test_split<N>.txt``;
- mmaction2: ``hmdb51/videos/<class>/*.avi`` and/or ``hmdb51/rawframes/<class>/<video>/``
  next to ``hmdb51/annotations/`` (the split files, moved flat).
"""

from __future__ import annotations

import os

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import (
    PathLike,
    check_fold,
    check_split,
    existing_dir,
    listdir,
    read_lines,
    short,
    subdirs,
)
from bebias.data.sources.layout import find_annotations, locate, nothing_found, video_roots
from bebias.errors import DatasetFormatError

SPLITS = {"train": "train", "test": "test"}
#: split-file flag per split (0 = in neither)
FLAGS = {"train": "1", "test": "2"}


def split_files(folder: str, fold: int) -> dict[str, str]:
    """``{class: path}`` of the ``<class>_test_split<fold>.txt`` files in ``folder``."""
    suffix = f"_test_split{fold}.txt"
    return {
        n[: -len(suffix)]: os.path.join(folder, n)
        for n in listdir(folder)
        if n.endswith(suffix) and len(n) > len(suffix) and os.path.isfile(os.path.join(folder, n))
    }


def parse_split_file(lines: list[tuple[int, str]], path: str, flag: str) -> list[str]:
    """Video names carrying ``flag`` in one split file (lines ``"<video>.avi <0|1|2>"``)."""
    out: list[str] = []
    for lineno, line in lines:
        fields = line.rsplit(None, 1)
        if len(fields) != 2:
            raise DatasetFormatError(f"line {lineno}: expected '<video> <flag>', got {short(line)}", path)
        name, value = fields
        if value not in ("0", "1", "2"):
            raise DatasetFormatError(f"line {lineno}: flag {short(value)} is not 0, 1 or 2", path)
        if value == flag:
            out.append(name)
    return out


def _unextracted_hint(root: str, classes: list[str]) -> str:
    """A hint when the per-class .rar archives of hmdb51_org.rar were not extracted."""
    wanted = {f"{c}.rar" for c in classes}
    for d in [root, *subdirs(root)]:
        rars = sorted(wanted.intersection(listdir(d)))
        if rars:
            return (f"; the per-class archives ({os.path.join(d, rars[0])}, ...) are not "
                    "extracted yet: run `unrar x` on each")
    return ""


def hmdb51(
    root: PathLike, split: str = "train", fold: int = 1, annotations: PathLike | None = None
) -> LabeledVideos:
    """Parse an HMDB51 split from the official per-class split files.

    Args:
        root: the dataset folder or the video folder (see the module docstring); videos
            are ``<class>/<video>.avi`` files or frame folders without the ``.avi``.
        split: ``"train"`` (flag 1) or ``"test"`` (flag 2); flag 0 (unused) is skipped.
        fold: official split number, 1..3.
        annotations: folder holding ``<class>_test_split<fold>.txt`` (or a file in it);
            default: searched (see :mod:`bebias.data.sources.layout`).

    The classes are the ``<class>`` parts of the split-file names, sorted by name (as
    mmaction2 numbers them); the label is the index in that list.

    Returns:
        LabeledVideos named ``hmdb51/<split>/fold<fold>``; ``meta`` holds ``split``,
        ``fold`` and ``class_name``.

    Raises:
        DatasetFormatError: bad split/fold, missing/empty/malformed split files, or no
            video carries the split's flag.
        BebiasError: none of the listed videos exist.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, SPLITS, "hmdb51", root_s)
    fold = check_fold(fold, root_s)
    ann = find_annotations(
        root_s, annotations, lambda d: bool(split_files(d, fold)),
        f"*_test_split{fold}.txt files (HMDB51's testTrainMulti_7030_splits)",
    )
    by_class = split_files(ann, fold)
    classes = sorted(by_class)
    entries: list[tuple[str, int]] = []
    for label, cls in enumerate(classes):
        for name in parse_split_file(read_lines(by_class[cls]), by_class[cls], FLAGS[split]):
            entries.append((f"{cls}/{name}", label))
    listed_in = os.path.join(ann, f"*_test_split{fold}.txt")
    if not entries:
        raise DatasetFormatError(f"no video has flag {FLAGS[split]} ({split})", listed_in)
    roots = video_roots(root_s, [rel for rel, _ in entries])
    if not roots:
        raise nothing_found(len(entries), listed_in, root_s, entries[0][0],
                            _unextracted_hint(root_s, classes))
    records: list[VideoRecord] = []
    missing: list[str] = []
    for rel, label in entries:
        video, exists = locate(roots, rel, root_s)
        if not exists:
            missing.append(video)
        meta = {"split": split, "fold": fold, "class_name": classes[label]}
        records.append(VideoRecord(path=video, label=label, meta=meta))
    return LabeledVideos(records, classes, name=f"hmdb51/{split}/fold{fold}", missing=missing)
