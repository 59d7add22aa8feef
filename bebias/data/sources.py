"""Data sources: parse a dataset's split/annotation files into :class:`LabeledVideos`.

Every parser is a pure function of the files on disk. Parsers never decode videos; they
only list them. A listed video that does not exist is *kept* (the loader skips unreadable
videos and reports them at the end) and its path is added to
:attr:`LabeledVideos.missing`; if *none* of the listed videos exists, that is almost
certainly a wrong root and a :class:`~bebias.errors.BebiasError` is raised instead.

Supported sources:

- :func:`ucf101`        official ``ucfTrainTestlist`` files (``classInd.txt``,
                        ``trainlist0N.txt``, ``testlist0N.txt``)
- :func:`hmdb51`        official per-class ``<class>_test_split<N>.txt`` files
- :func:`diving48`      ``Diving48_V2_{train,test}.json`` (+ optional ``Diving48_vocab.json``)
- :func:`csv_manifest`  a CSV with a header: ``path,label[,start,end][,split][,...]``
- :func:`class_folders` ``root/<class>/<video file or frame folder>``
- :func:`load_source`   picks one of the above

Conventions shared by all parsers:

- labels are 0-based class indices into ``LabeledVideos.classes``;
- ``VideoRecord.start`` is inclusive and ``VideoRecord.end`` exclusive (frame indices);
- every record's ``meta`` has ``class_name``, and ``split`` when the split is known;
- malformed input raises :class:`~bebias.errors.DatasetFormatError` with a one-line
  message naming the file (and the line number for a malformed line);
- text files are read as UTF-8 (a BOM is ignored); Windows line endings, trailing
  whitespace and blank lines are tolerated.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.errors import BebiasError, DatasetFormatError

__all__ = [
    "DATASETS",
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "class_folders",
    "csv_manifest",
    "diving48",
    "hmdb51",
    "load_source",
    "ucf101",
]

#: Dataset names understood by :func:`load_source`.
DATASETS: tuple[str, ...] = ("ucf101", "hmdb51", "diving48")

#: File extensions (lower case) that :func:`class_folders` treats as video files.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v"}
)

#: Image extensions (lower case) that make a sub-folder a frame-folder video.
FRAME_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)

_SPLITS = ("train", "test")
_FOLDS = (1, 2, 3)
_SEARCH_DEPTH = 2
_INT_RE = re.compile(r"[+-]?\d+")

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, shortened so that error messages stay on one short line."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text)


def _check_split(split: str, where: str) -> str:
    s = str(split).strip().lower()
    if s not in _SPLITS:
        raise DatasetFormatError(f"split must be 'train' or 'test' (got {split!r})", where)
    return s


def _check_fold(fold: int, where: str) -> int:
    try:
        value: int | None = None if isinstance(fold, bool) else operator.index(fold)
    except TypeError:
        value = None
    if value not in _FOLDS:
        raise DatasetFormatError(f"fold must be 1, 2 or 3 (got {fold!r})", where)
    return value


def _existing_dir(path: PathLike, what: str) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DatasetFormatError(f"{what} does not exist", p)
    if not os.path.isdir(p):
        raise DatasetFormatError(f"{what} is not a directory", p)
    return p


def _existing_file(path: PathLike, what: str) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DatasetFormatError(f"{what} does not exist", p)
    if not os.path.isfile(p):
        raise DatasetFormatError(f"{what} is not a file", p)
    return p


def _read_text(path: str, what: str) -> str:
    p = _existing_file(path, what)
    try:
        with open(p, encoding="utf-8-sig") as f:  # universal newlines: \r\n -> \n
            return f.read()
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{what} is not valid UTF-8 text (byte {e.start})", p) from None
    except OSError as e:
        raise DatasetFormatError(f"cannot read {what}: {e.strerror or e}", p) from None


def _read_lines(path: str, what: str = "split file") -> list[tuple[int, str]]:
    """Non-blank lines of a text file as ``(1-based line number, stripped text)``.

    Raises :class:`DatasetFormatError` if the file is missing, unreadable or has no
    non-blank line.
    """
    text = _read_text(path, what)
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, line) for i, line in lines if line]
    if not lines:
        raise DatasetFormatError(f"empty {what}", path)
    return lines


def _read_json(path: str, what: str) -> Any:
    text = _read_text(path, what)
    if not text.strip():
        raise DatasetFormatError(f"empty {what}", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(
            f"{what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})", path
        ) from None


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _find_dir(
    root: str, has_it: Callable[[str], bool], preferred: Iterable[str] = ()
) -> str | None:
    """The first directory that satisfies ``has_it``.

    Tried in order: ``root`` itself, ``root/<p>`` for each preferred sub-folder, then a
    breadth-first search of the sub-folders of ``root`` down to depth 2 (sorted by name,
    hidden folders skipped).
    """
    candidates = [root] + [os.path.join(root, p) for p in preferred]
    for d in candidates:
        if os.path.isdir(d) and has_it(d):
            return d
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        nxt: list[str] = []
        for d in level:
            for name in _listdir(d):
                sub = os.path.join(d, name)
                if not name.startswith(".") and os.path.isdir(sub):
                    nxt.append(sub)
        for d in nxt:
            if has_it(d):
                return d
        level = nxt
    return None


def _annotation_dir(
    annotations: PathLike | None,
    root: str,
    has_it: Callable[[str], bool],
    preferred: Iterable[str],
    looking_for: str,
) -> str:
    """Resolve the folder holding a dataset's annotation files.

    An explicit ``annotations`` may be the folder or any file inside it; otherwise the
    folder is searched for under ``root`` (see :func:`_find_dir`).
    """
    if annotations is not None:
        ann = os.fspath(annotations)
        if not os.path.exists(ann):
            raise DatasetFormatError("annotations path does not exist", ann)
        if os.path.isfile(ann):
            ann = os.path.dirname(ann) or "."
        if not has_it(ann):
            raise DatasetFormatError(f"annotations folder has no {looking_for}", ann)
        return ann
    found = _find_dir(root, has_it, preferred)
    if found is None:
        raise DatasetFormatError(
            f"no {looking_for} found in the folder or its sub-folders (depth <= "
            f"{_SEARCH_DEPTH}); pass annotations=<that folder>",
            root,
        )
    return found


def _join_rel(root: str, rel: str) -> str:
    """``root/rel`` for a '/'- (or '\\'-) separated relative path from a split file."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    return os.path.join(root, *parts)


def _resolve_listed(root: str, rel: str) -> tuple[str, bool]:
    """Locate a video listed as ``rel`` (e.g. ``Class/v_x.avi``) under ``root``.

    Returns ``(path, exists)``: the file ``root/rel`` if it exists, else the frame folder
    ``root/rel`` without its extension if that exists, else (``root/rel``, False).
    """
    file_path = _join_rel(root, rel)
    if os.path.isfile(file_path):
        return file_path, True
    stem, ext = os.path.splitext(file_path)
    if ext and os.path.isdir(stem):
        return stem, True
    if os.path.isdir(file_path):
        return file_path, True
    return file_path, False


def _check_not_all_missing(n_listed: int, missing: list[str], listed_in: str, root: str) -> None:
    if n_listed and len(missing) == n_listed:
        raise BebiasError(f"none of the {n_listed} videos listed in {listed_in} exist under {root}")


def _parse_label(text: str, lineno: int, path: str, num_classes: int) -> int:
    """A 1-based label from a split file, returned 0-based."""
    if not _INT_RE.fullmatch(text):
        raise DatasetFormatError(f"line {lineno}: label {_short(text)} is not an integer", path)
    value = int(text)
    if not 1 <= value <= num_classes:
        raise DatasetFormatError(
            f"line {lineno}: label {value} is outside 1..{num_classes} (classInd.txt)", path
        )
    return value - 1


# --------------------------------------------------------------------------------------
# UCF101
# --------------------------------------------------------------------------------------


def _read_class_ind(path: str) -> list[str]:
    """``classInd.txt`` (``"<1-based index> <name>"`` lines) -> names indexed 0-based."""
    by_index: dict[int, str] = {}
    seen: dict[str, int] = {}
    for lineno, line in _read_lines(path, "class index file"):
        fields = line.split()
        if len(fields) != 2:
            raise DatasetFormatError(
                f"line {lineno}: expected '<index> <class name>', got {_short(line)}", path
            )
        idx_text, name = fields
        if not _INT_RE.fullmatch(idx_text):
            raise DatasetFormatError(
                f"line {lineno}: class index {_short(idx_text)} is not an integer", path
            )
        idx = int(idx_text)
        if idx in by_index:
            raise DatasetFormatError(f"line {lineno}: class index {idx} is repeated", path)
        if name in seen:
            raise DatasetFormatError(f"line {lineno}: class name {name!r} is repeated", path)
        by_index[idx] = name
        seen[name] = lineno
    n = len(by_index)
    if sorted(by_index) != list(range(1, n + 1)):
        raise DatasetFormatError(
            f"class indices must be exactly 1..{n} (got {min(by_index)}..{max(by_index)})", path
        )
    return [by_index[i] for i in range(1, n + 1)]


def _class_from_folder(
    rel: str, lineno: int, path: str, index: dict[str, int], index_lower: dict[str, int]
) -> int:
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    if len(parts) < 2:
        raise DatasetFormatError(
            f"line {lineno}: {_short(rel)} has no class folder to take the label from", path
        )
    folder = parts[0]
    if folder in index:
        return index[folder]
    if folder.lower() in index_lower:  # e.g. HandStandPushups vs HandstandPushups
        return index_lower[folder.lower()]
    raise DatasetFormatError(
        f"line {lineno}: class folder {_short(folder)} is not in classInd.txt", path
    )


def ucf101(
    root: PathLike,
    split: str = "train",
    fold: int = 1,
    annotations: PathLike | None = None,
) -> LabeledVideos:
    """Parse a UCF101 split from the official ``ucfTrainTestlist`` files.

    Args:
        root: folder holding the videos as ``root/<Class>/v_<Class>_gXX_cYY.avi`` (a frame
            folder ``root/<Class>/v_<Class>_gXX_cYY/`` is used when the file is absent).
        split: ``"train"`` (``trainlist0<fold>.txt``) or ``"test"``
            (``testlist0<fold>.txt``).
        fold: official split number, 1..3.
        annotations: folder holding ``classInd.txt`` and the list files (or any file in
            it). Default: the first of ``root``, ``root/ucfTrainTestlist``, or a
            sub-folder of ``root`` (depth <= 2) that contains ``classInd.txt``.

    ``classInd.txt`` lines are ``"<1-based index> <Class>"``; train lines are
    ``"<Class>/<video>.avi <1-based label>"``; test lines are ``"<Class>/<video>.avi"``
    and take their label from the class folder (matched against ``classInd.txt``, case-
    insensitively as a fallback). A line of either kind may omit or include the label.
    Labels are returned 0-based.

    Returns:
        LabeledVideos named ``ucf101/<split>/fold<fold>``; ``meta`` holds ``split``,
        ``fold`` and ``class_name``.

    Raises:
        DatasetFormatError: bad split/fold, missing/empty/malformed annotation files.
        BebiasError: none of the listed videos exist under ``root``.
    """
    root_s = _existing_dir(root, "UCF101 video root")
    split = _check_split(split, root_s)
    fold = _check_fold(fold, root_s)
    ann = _annotation_dir(
        annotations,
        root_s,
        lambda d: os.path.isfile(os.path.join(d, "classInd.txt")),
        preferred=("ucfTrainTestlist",),
        looking_for="classInd.txt",
    )
    classes = _read_class_ind(os.path.join(ann, "classInd.txt"))
    index = {name: i for i, name in enumerate(classes)}
    lower_counts: dict[str, int] = {}
    for name in classes:
        lower_counts[name.lower()] = lower_counts.get(name.lower(), 0) + 1
    index_lower = {n.lower(): i for n, i in index.items() if lower_counts[n.lower()] == 1}

    list_file = os.path.join(ann, f"{split}list0{fold}.txt")
    records: list[VideoRecord] = []
    missing: list[str] = []
    for lineno, line in _read_lines(list_file):
        fields = line.split()
        if len(fields) == 2:
            rel, label = fields[0], _parse_label(fields[1], lineno, list_file, len(classes))
        elif len(fields) == 1:
            rel = fields[0]
            label = _class_from_folder(rel, lineno, list_file, index, index_lower)
        else:
            raise DatasetFormatError(
                f"line {lineno}: expected '<Class>/<video> [<label>]', got {_short(line)}",
                list_file,
            )
        video, exists = _resolve_listed(root_s, rel)
        if not exists:
            missing.append(video)
        meta = {"split": split, "fold": fold, "class_name": classes[label]}
        records.append(VideoRecord(path=video, label=label, meta=meta))
    _check_not_all_missing(len(records), missing, list_file, root_s)
    return LabeledVideos(records, classes, name=f"ucf101/{split}/fold{fold}", missing=missing)


# --------------------------------------------------------------------------------------
# HMDB51
# --------------------------------------------------------------------------------------

_HMDB_FLAGS = {"0": 0, "1": 1, "2": 2}


def hmdb51(
    root: PathLike,
    split: str = "train",
    fold: int = 1,
    annotations: PathLike | None = None,
) -> LabeledVideos:
    """Parse an HMDB51 split from the official per-class split files.

    Args:
        root: folder holding the videos as ``root/<class>/<video>.avi`` (a frame folder
            ``root/<class>/<video>/`` is used when the file is absent).
        split: ``"train"`` (flag 1) or ``"test"`` (flag 2); flag 0 (unused) is skipped.
        fold: official split number, 1..3.
        annotations: folder holding ``<class>_test_split<fold>.txt`` (or any file in
            it). Default: the first of ``root``, ``root/testTrainMulti_7030_splits``, or a
            sub-folder of ``root`` (depth <= 2) holding such files.

    Each split-file line is ``"<video>.avi <flag>"``. The classes are the ``<class>``
    parts of the split-file names, sorted by name; the label is the index in that list.

    Returns:
        LabeledVideos named ``hmdb51/<split>/fold<fold>``; ``meta`` holds ``split``,
        ``fold`` and ``class_name``.

    Raises:
        DatasetFormatError: bad split/fold, missing/empty/malformed split files, or no
            video carries the split's flag.
        BebiasError: none of the listed videos exist under ``root``.
    """
    root_s = _existing_dir(root, "HMDB51 video root")
    split = _check_split(split, root_s)
    fold = _check_fold(fold, root_s)
    suffix = f"_test_split{fold}.txt"

    def class_files(d: str) -> list[str]:
        return [
            n for n in _listdir(d)
            if n.endswith(suffix) and len(n) > len(suffix) and os.path.isfile(os.path.join(d, n))
        ]

    ann = _annotation_dir(
        annotations,
        root_s,
        lambda d: bool(class_files(d)),
        preferred=("testTrainMulti_7030_splits",),
        looking_for=f"*{suffix} files",
    )
    by_class = {n[: -len(suffix)]: os.path.join(ann, n) for n in class_files(ann)}
    classes = sorted(by_class)
    wanted = 1 if split == "train" else 2

    records: list[VideoRecord] = []
    missing: list[str] = []
    for label, cls in enumerate(classes):
        split_file = by_class[cls]
        for lineno, line in _read_lines(split_file):
            fields = line.rsplit(None, 1)
            if len(fields) != 2:
                raise DatasetFormatError(
                    f"line {lineno}: expected '<video> <flag>', got {_short(line)}", split_file
                )
            video_name, flag_text = fields
            flag = _HMDB_FLAGS.get(flag_text)
            if flag is None:
                raise DatasetFormatError(
                    f"line {lineno}: flag {_short(flag_text)} is not 0, 1 or 2", split_file
                )
            if flag != wanted:
                continue
            video, exists = _resolve_listed(os.path.join(root_s, cls), video_name)
            if not exists:
                missing.append(video)
            meta = {"split": split, "fold": fold, "class_name": cls}
            records.append(VideoRecord(path=video, label=label, meta=meta))
    listed_in = os.path.join(ann, f"*{suffix}")
    if not records:
        raise DatasetFormatError(f"no video has flag {wanted} ({split})", listed_in)
    _check_not_all_missing(len(records), missing, listed_in, root_s)
    return LabeledVideos(records, classes, name=f"hmdb51/{split}/fold{fold}", missing=missing)


# --------------------------------------------------------------------------------------
# Diving48
# --------------------------------------------------------------------------------------


def _diving48_names(split: str) -> tuple[str, str]:
    return f"Diving48_V2_{split}.json", f"Diving48_{split}.json"


def _parse_diving48_entries(path: str) -> list[tuple[str, int, int | None, int | None]]:
    """``[(vid_name, label, start, end)]`` from a Diving48 split JSON (validated)."""
    data = _read_json(path, "split file")
    if not isinstance(data, list):
        raise DatasetFormatError(
            f"expected a JSON list of videos, got a JSON {type(data).__name__}", path
        )
    if not data:
        raise DatasetFormatError("empty split file (empty JSON list)", path)
    out: list[tuple[str, int, int | None, int | None]] = []
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
            raise DatasetFormatError(
                f"{where}: 'label' must be a non-negative integer (got {label!r})", path
            )
        bounds: list[int | None] = []
        for key in ("start_frame", "end_frame"):
            v = item.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise DatasetFormatError(
                    f"{where}: {key!r} must be a non-negative integer (got {v!r})", path
                )
            bounds.append(v)
        start, end = bounds
        if start is not None and end is not None and end <= start:
            raise DatasetFormatError(
                f"{where}: end_frame {end} is not after start_frame {start}", path
            )
        out.append((vid, label, start, end))
    return out


def _read_vocab(path: str) -> list[str]:
    data = _read_json(path, "vocabulary file")
    if not isinstance(data, list) or not data:
        raise DatasetFormatError("expected a non-empty JSON list of class descriptions", path)
    names: list[str] = []
    for i, entry in enumerate(data):
        if isinstance(entry, str) and entry.strip():
            names.append(entry.strip())
        elif (
            isinstance(entry, list)
            and entry
            and all(isinstance(x, str) for x in entry)
        ):
            names.append("/".join(x.strip() for x in entry))
        else:
            raise DatasetFormatError(
                f"item [{i}] must be a list of strings (e.g. 4 dive attributes)", path
            )
    return names


def _resolve_diving48(root: str, vid: str) -> tuple[str, bool]:
    rgb = os.path.join(root, "rgb")
    for cand in (os.path.join(rgb, vid + ".mp4"), os.path.join(root, vid + ".mp4")):
        if os.path.isfile(cand):
            return cand, True
    for cand in (os.path.join(root, vid), os.path.join(rgb, vid)):
        if os.path.isdir(cand):
            return cand, True
    base = rgb if os.path.isdir(rgb) else root
    return os.path.join(base, vid + ".mp4"), False


def diving48(
    root: PathLike,
    split: str = "train",
    annotations: PathLike | None = None,
) -> LabeledVideos:
    """Parse a Diving48 split from its JSON annotations.

    Args:
        root: folder holding the videos: ``root/rgb/<vid>.mp4`` or ``root/<vid>.mp4``, or
            frame folders ``root/<vid>/`` or ``root/rgb/<vid>/`` (files are preferred).
        split: ``"train"`` or ``"test"``.
        annotations: folder holding ``Diving48_V2_<split>.json`` (V1 name
            ``Diving48_<split>.json`` also accepted; V2 preferred) or any file in it.
            Default: ``root`` or a sub-folder of ``root`` (depth <= 2) holding one.

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
        BebiasError: none of the listed videos exist under ``root``.
    """
    root_s = _existing_dir(root, "Diving48 video root")
    split = _check_split(split, root_s)
    names = _diving48_names(split)
    ann = _annotation_dir(
        annotations,
        root_s,
        lambda d: any(os.path.isfile(os.path.join(d, n)) for n in names),
        preferred=(),
        looking_for=f"{names[0]} (or {names[1]})",
    )
    split_file = next(
        os.path.join(ann, n) for n in names if os.path.isfile(os.path.join(ann, n))
    )
    entries = _parse_diving48_entries(split_file)
    max_label = max(label for _, label, _, _ in entries)

    vocab_file = os.path.join(ann, "Diving48_vocab.json")
    if os.path.isfile(vocab_file):
        classes = _read_vocab(vocab_file)
        if max_label >= len(classes):
            i = next(i for i, e in enumerate(entries) if e[1] == max_label)
            raise DatasetFormatError(
                f"item [{i}] ({entries[i][0]}): label {max_label} is outside the "
                f"{len(classes)} classes of Diving48_vocab.json",
                split_file,
            )
    else:
        other = "test" if split == "train" else "train"
        for n in _diving48_names(other):
            sibling = os.path.join(ann, n)
            if os.path.isfile(sibling):
                try:
                    max_label = max(max_label, *(e[1] for e in _parse_diving48_entries(sibling)))
                except BebiasError:
                    pass  # the sibling only widens the class list; its errors are not ours
                break
        width = max(2, len(str(max_label)))
        classes = [f"class_{i:0{width}d}" for i in range(max_label + 1)]

    records: list[VideoRecord] = []
    missing: list[str] = []
    for vid, label, start, end in entries:
        video, exists = _resolve_diving48(root_s, vid)
        if not exists:
            missing.append(video)
        meta = {"split": split, "class_name": classes[label], "vid_name": vid}
        records.append(VideoRecord(path=video, label=label, start=start, end=end, meta=meta))
    _check_not_all_missing(len(records), missing, split_file, root_s)
    return LabeledVideos(records, classes, name=f"diving48/{split}", missing=missing)


# --------------------------------------------------------------------------------------
# CSV manifest
# --------------------------------------------------------------------------------------

_CSV_KNOWN = ("path", "label", "start", "end", "split", "class_name")


def _csv_int(text: str, column: str, lineno: int, path: str) -> int | None:
    if text == "":
        return None
    if not _INT_RE.fullmatch(text) or int(text) < 0:
        raise DatasetFormatError(
            f"line {lineno}: {column} {_short(text)} is not a non-negative integer", path
        )
    return int(text)


def _csv_manifest(path: PathLike, split: str | None, strict: bool) -> LabeledVideos:
    p = _existing_file(path, "manifest")
    text = _read_text(p, "manifest")
    rows = [
        (lineno, [c.strip() for c in row])
        for lineno, row in _csv_rows(text, p)
        if any(c.strip() for c in row)
    ]
    if not rows:
        raise DatasetFormatError("empty manifest (a header 'path,label,...' is required)", p)
    header_line, header = rows[0]
    lower = [h.lower() for h in header]
    for i, h in enumerate(lower):
        if h == "":
            raise DatasetFormatError(f"line {header_line}: header column {i + 1} is empty", p)
        if h in lower[:i]:
            raise DatasetFormatError(f"line {header_line}: header column {h!r} is repeated", p)
    if "path" not in lower or "label" not in lower:
        raise DatasetFormatError(
            f"line {header_line}: the header must name 'path' and 'label' columns "
            f"(got {_short(','.join(header))})",
            p,
        )
    col = {h: i for i, h in enumerate(lower) if h in _CSV_KNOWN}
    extra = [(header[i], i) for i, h in enumerate(lower) if h not in _CSV_KNOWN]
    body = rows[1:]
    if not body:
        raise DatasetFormatError("empty manifest (a header but no rows)", p)
    for lineno, row in body:
        if len(row) != len(header):
            raise DatasetFormatError(
                f"line {lineno}: expected {len(header)} fields, got {len(row)}", p
            )
        if row[col["path"]] == "":
            raise DatasetFormatError(f"line {lineno}: empty path", p)
        if row[col["label"]] == "":
            raise DatasetFormatError(f"line {lineno}: empty label", p)

    # Classes are computed over ALL rows so that every split gets the same label indices.
    labels_text = [row[col["label"]] for _, row in body]
    int_labels = all(_INT_RE.fullmatch(t) for t in labels_text)
    if int_labels:
        names: dict[int, str] = {}
        name_line: dict[str, tuple[int, int]] = {}
        for lineno, row in body:
            label = int(row[col["label"]])
            if label < 0:
                raise DatasetFormatError(f"line {lineno}: label {label} is negative", p)
            if "class_name" in col and row[col["class_name"]] != "":
                name = row[col["class_name"]]
                if names.get(label, name) != name:
                    raise DatasetFormatError(
                        f"line {lineno}: label {label} is named {name!r} here but "
                        f"{names[label]!r} earlier",
                        p,
                    )
                other = name_line.get(name)
                if other is not None and other[1] != label:
                    raise DatasetFormatError(
                        f"line {lineno}: class name {name!r} is used for labels "
                        f"{other[1]} (line {other[0]}) and {label}",
                        p,
                    )
                names[label] = name
                name_line.setdefault(name, (lineno, label))
        n = max(int(t) for t in labels_text) + 1
        classes = [names.get(i, str(i)) for i in range(n)]
    else:
        classes = sorted(set(labels_text))
    index = {name: i for i, name in enumerate(classes)}

    has_split = "split" in col
    if split is not None and has_split:
        available = sorted({row[col["split"]] for _, row in body if row[col["split"]] != ""})
        body = [(ln, row) for ln, row in body if row[col["split"]] == split]
        if not body:
            raise DatasetFormatError(
                f"no row has split {split!r} (available splits: {', '.join(available) or 'none'})",
                p,
            )
    elif split is not None and strict:
        raise DatasetFormatError(
            f"split {split!r} requested but the manifest has no 'split' column "
            "(available splits: none)",
            p,
        )

    base = os.path.dirname(p)
    records: list[VideoRecord] = []
    missing: list[str] = []
    for lineno, row in body:
        rel = row[col["path"]]
        video = os.path.normpath(rel if os.path.isabs(rel) else os.path.join(base, rel))
        label = int(row[col["label"]]) if int_labels else index[row[col["label"]]]
        start = _csv_int(row[col["start"]], "start", lineno, p) if "start" in col else None
        end = _csv_int(row[col["end"]], "end", lineno, p) if "end" in col else None
        if start is not None and end is not None and end <= start:
            raise DatasetFormatError(f"line {lineno}: end {end} is not after start {start}", p)
        meta: dict[str, Any] = {name: row[i] for name, i in extra}
        row_split = row[col["split"]] if has_split else ""
        if row_split:
            meta["split"] = row_split
        meta["class_name"] = classes[label]
        if not os.path.exists(video):
            missing.append(video)
        records.append(VideoRecord(path=video, label=label, start=start, end=end, meta=meta))
    _check_not_all_missing(len(records), missing, p, base or ".")
    stem = os.path.splitext(os.path.basename(p))[0]
    name = stem if split is None or not has_split else f"{stem}/{split}"
    return LabeledVideos(records, classes, name=name, missing=missing)


def _csv_rows(text: str, path: str) -> Iterable[tuple[int, list[str]]]:
    """``(line number where the row starts, cells)`` for each CSV row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as e:
        raise DatasetFormatError(f"line {reader.line_num}: malformed CSV ({e})", path) from None


def csv_manifest(path: PathLike, split: str | None = None) -> LabeledVideos:
    """Parse a CSV manifest.

    The first non-blank row is a required header (column names are case-insensitive)
    with at least ``path`` and ``label``; optional ``start``, ``end`` (frame indices,
    start inclusive, end exclusive, empty = unbounded), ``split``, ``class_name``; every
    other column goes into ``meta`` as a string under its header name.

    - ``path`` is relative to the CSV's folder unless absolute.
    - ``label``: if every label is an integer they are class indices, and the class
      names come from the ``class_name`` column when present (else ``"0"``, ``"1"``,
      ...; an index never named gets its number as name); otherwise every label is a
      class name and the classes are the sorted unique names. Classes are computed over
      all rows, before split filtering, so every split shares the same label indices.
    - ``split``: if given, keep only rows whose ``split`` cell equals it; a split that
      no row has, or a split requested from a manifest without a ``split`` column,
      raises :class:`DatasetFormatError` listing the available splits.

    Returns:
        LabeledVideos named after the file stem (``<stem>/<split>`` when filtered);
        ``meta`` holds the extra columns, ``split`` (when the row has one) and
        ``class_name``.

    Raises:
        DatasetFormatError: missing/empty/malformed manifest, unknown split.
        BebiasError: none of the listed videos exist.
    """
    return _csv_manifest(path, split, strict=True)


# --------------------------------------------------------------------------------------
# class folders
# --------------------------------------------------------------------------------------


def _is_frame_folder(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(
                e.is_file() and os.path.splitext(e.name)[1].lower() in FRAME_EXTENSIONS
                for e in it
            )
    except OSError:
        return False


def class_folders(root: PathLike, split: str | None = None) -> LabeledVideos:
    """List ``root/<class>/<video>`` as a labelled split.

    A video is a file with one of :data:`VIDEO_EXTENSIONS` (case-insensitive) or a sub-
    folder containing at least one image (:data:`FRAME_EXTENSIONS`), i.e. a frame folder.
    Hidden entries and other files are ignored. Classes are the (non-hidden) sub-folders
    of the root, sorted by name; a class folder with no video still counts as a class so
    that label indices stay stable. Videos are sorted by name within each class.

    Args:
        root: the folder of class folders.
        split: if given and ``root/<split>`` is a folder, that folder is used as the root
            and ``split`` is recorded in ``meta``; otherwise ``root`` itself is one
            split and ``split`` is not recorded.

    Returns:
        LabeledVideos named after the folder (``<name>/<split>`` for a split folder);
        ``meta`` holds ``class_name`` (and ``split`` for a split folder).

    Raises:
        DatasetFormatError: the root does not exist, has no class folder, or no video.
    """
    root_s = _existing_dir(root, "video folder")
    base, split_known = root_s, False
    if split is not None and split and os.path.isdir(os.path.join(root_s, split)):
        base, split_known = os.path.join(root_s, split), True
    classes = [
        n for n in _listdir(base) if not n.startswith(".") and os.path.isdir(os.path.join(base, n))
    ]
    if not classes:
        raise DatasetFormatError("no class folders (expected <root>/<class>/<video>)", base)
    records: list[VideoRecord] = []
    for label, cls in enumerate(classes):
        cdir = os.path.join(base, cls)
        for n in _listdir(cdir):
            if n.startswith("."):
                continue
            p = os.path.join(cdir, n)
            if os.path.isfile(p):
                if os.path.splitext(n)[1].lower() not in VIDEO_EXTENSIONS:
                    continue
            elif not (os.path.isdir(p) and _is_frame_folder(p)):
                continue
            meta: dict[str, Any] = {"class_name": cls}
            if split_known:
                meta["split"] = split
            records.append(VideoRecord(path=p, label=label, meta=meta))
    if not records:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise DatasetFormatError(
            f"no videos ({exts}) or frame folders in the {len(classes)} class folders", base
        )
    name = os.path.basename(os.path.normpath(root_s)) or root_s
    if split_known:
        name = f"{name}/{split}"
    return LabeledVideos(records, classes, name=name)


# --------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------


def _normalise_dataset(name: str) -> str:
    return re.sub(r"[\s_-]", "", name).lower()


def load_source(
    data: PathLike,
    dataset: str | None = None,
    split: str = "train",
    fold: int = 1,
    annotations: PathLike | None = None,
) -> LabeledVideos:
    """Load a split from ``data``, choosing the parser.

    - ``dataset`` in :data:`DATASETS` (case, ``-``, ``_`` and spaces ignored, e.g.
      ``"UCF-101"``): :func:`ucf101` / :func:`hmdb51` (with ``fold``, ``annotations``) or
      :func:`diving48` (with ``annotations``; it has no folds, so ``fold`` must be 1).
    - otherwise ``data`` ending in ``.csv``: :func:`csv_manifest`;
    - otherwise a folder: ``<data>/manifest.csv`` if present, else :func:`class_folders`.

    For a manifest, ``split`` filters on its ``split`` column; a manifest without one
    is a single split and ``split`` is ignored (so the default ``"train"`` works on it).
    For class folders, ``<data>/<split>/`` is used when it exists.
    ``fold`` and ``annotations`` only apply to the named datasets: passing a non-default
    value for another source raises :class:`BebiasError` rather than being ignored.

    Raises:
        BebiasError: unknown dataset name (the message lists the valid ones), a path
            that is neither a ``.csv`` nor a folder, misplaced ``fold``/``annotations``.
        DatasetFormatError: from the parsers.
    """
    data_s = os.fspath(data)
    if dataset is not None:
        key = _normalise_dataset(dataset)
        if key == "ucf101":
            return ucf101(data_s, split=split, fold=fold, annotations=annotations)
        if key == "hmdb51":
            return hmdb51(data_s, split=split, fold=fold, annotations=annotations)
        if key == "diving48":
            if fold != 1:
                raise BebiasError(
                    f"diving48 has a single train/test split; fold={fold!r} is not valid"
                )
            return diving48(data_s, split=split, annotations=annotations)
        raise BebiasError(
            f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)} "
            "(or none, to read a .csv manifest or a folder of class folders)"
        )
    if fold != 1:
        raise BebiasError(f"fold={fold!r} only applies to {DATASETS[0]} and {DATASETS[1]}", data_s)
    if annotations is not None:
        raise BebiasError(f"annotations only apply to {', '.join(DATASETS)}", data_s)
    if data_s.lower().endswith(".csv"):
        return _csv_manifest(data_s, split, strict=False)
    if os.path.isdir(data_s):
        manifest = os.path.join(data_s, "manifest.csv")
        if os.path.isfile(manifest):
            return _csv_manifest(manifest, split, strict=False)
        return class_folders(data_s, split)
    if not os.path.exists(data_s):
        raise DatasetFormatError("data path does not exist", data_s)
    raise BebiasError(
        "is neither a .csv manifest nor a folder; pass dataset="
        f"{'|'.join(DATASETS)} for an annotated dataset",
        data_s,
    )
