"""Helpers shared by the source parsers: reading text/JSON/CSV, checking split and fold.

Every error raised here is a :class:`~bebias.errors.DatasetFormatError` whose one-line
message names the file (and the line for a malformed line), and names the CLI flag that
fixes it (``--split``, ``--fold``, ``--annotations DIR``) where one does.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bebias import parse
from bebias.errors import BebiasError, DatasetFormatError

PathLike = str | os.PathLike

#: File extensions (lower case) of video files.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v"}
)

#: Image extensions (lower case) that make a folder a frame-folder video.
FRAME_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)

#: an integer cell; at most 18 digits (an int64, and Python refuses to convert 4300+ digits)
INT_RE = re.compile(r"[+-]?\d{1,18}")
FOLDS = (1, 2, 3)


def short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, shortened so that error messages stay on one short line."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text)


def check_split(split: str, allowed: Mapping[str, str], dataset: str, where: str) -> str:
    """The canonical split name for ``split`` (case-insensitive).

    ``allowed`` maps every accepted spelling to its canonical name, e.g.
    ``{"train": "train", "val": "val", "validate": "val"}``.
    """
    s = str(split).strip().lower()
    if s not in allowed:
        names = ", ".join(dict.fromkeys(allowed.values()))
        raise DatasetFormatError(f"--split must be one of {names} for {dataset} (got {split!r})", where)
    return allowed[s]


def check_fold(fold: int, where: str) -> int:
    """``fold`` as an int in 1..3 (the official UCF101/HMDB51 splits)."""
    try:
        value: int | None = None if isinstance(fold, bool) else operator.index(fold)
    except TypeError:
        value = None
    if value not in FOLDS:
        raise DatasetFormatError(f"--fold must be 1, 2 or 3 (got {fold!r})", where)
    return value


def existing_dir(path: PathLike, what: str) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DatasetFormatError(f"{what} does not exist", p)
    if not os.path.isdir(p):
        raise DatasetFormatError(f"{what} is not a directory", p)
    return p


def existing_file(path: PathLike, what: str) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DatasetFormatError(f"{what} does not exist", p)
    if not os.path.isfile(p):
        raise DatasetFormatError(f"{what} is not a file", p)
    return p


def read_text(path: str, what: str) -> str:
    """A UTF-8 text file (a BOM is ignored, line endings normalised to ``\\n``)."""
    p = existing_file(path, what)
    try:
        with open(p, encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{what} is not valid UTF-8 text (byte {e.start})", p) from None
    except OSError as e:
        raise DatasetFormatError(f"cannot read {what}: {e.strerror or e}", p) from None


def nonblank_lines(text: str) -> list[tuple[int, str]]:
    """``(1-based line number, stripped text)`` of the non-blank lines of ``text``."""
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    return [(i, line) for i, line in lines if line]


def read_lines(path: str, what: str = "split file") -> list[tuple[int, str]]:
    """Non-blank lines of a text file; an empty file is an error."""
    lines = nonblank_lines(read_text(path, what))
    if not lines:
        raise DatasetFormatError(f"empty {what}", path)
    return lines


def parse_json(text: str, path: str, what: str) -> Any:
    if not text.strip():
        raise DatasetFormatError(f"empty {what}", path)
    try:
        return parse.parse_json(text, path, what)
    except BebiasError as e:  # the dataset readers' own class
        raise DatasetFormatError(str(e)) from None


def read_json(path: str, what: str) -> Any:
    return parse_json(read_text(path, what), path, what)


def csv_rows(text: str, path: str, delimiter: str = ",") -> Iterable[tuple[int, list[str]]]:
    """``(line number where the row starts, stripped cells)`` for each non-blank CSV row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if any(cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as e:
        raise DatasetFormatError(f"line {reader.line_num}: malformed CSV ({e})", path) from None


def listdir(path: str) -> list[str]:
    """Sorted entries of a folder; [] when it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def subdirs(path: str) -> list[str]:
    """Sorted non-hidden sub-folders of ``path`` (full paths)."""
    try:
        with os.scandir(path) as it:
            names = [e.name for e in it if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []
    return [os.path.join(path, n) for n in sorted(names)]


def is_frame_folder(path: str) -> bool:
    """Whether ``path`` is a folder holding at least one image."""
    try:
        with os.scandir(path) as it:
            return any(
                e.is_file() and os.path.splitext(e.name)[1].lower() in FRAME_EXTENSIONS for e in it
            )
    except OSError:
        return False
