"""CSV manifests: ``path,label[,start,end][,split][,class_name][,...]`` with a header."""

from __future__ import annotations

import os
from typing import Any

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import INT_RE, PathLike, csv_rows, existing_file, read_text, short
from bebias.errors import BebiasError, DatasetFormatError

_KNOWN = ("path", "label", "start", "end", "split", "class_name", "mask")
#: the largest integer label + 1 accepted: integer labels are class indices, and classes 0..max
#: all get a name (the largest video datasets have ~700 classes; ImageNet-21k ~21k)
MAX_CLASSES = 100_000


def _int_cell(text: str, column: str, lineno: int, path: str) -> int | None:
    if text == "":
        return None
    if not INT_RE.fullmatch(text) or int(text) < 0:
        raise DatasetFormatError(f"line {lineno}: {column} {short(text)} is not a non-negative integer", path)
    return int(text)


def _header_hint(lower: list[str]) -> str:
    """What a CSV without path/label columns probably is, and the flag that reads it."""
    if "youtube_id" in lower:
        return ("; this looks like Kinetics/Mimetics annotations: pass --dataset kinetics400 (or "
                "mimetics) and --data the video folder")
    return ""


def _classes(body: list[tuple[int, list[str]]], col: dict[str, int], p: str) -> tuple[list[str], bool]:
    """Class names over all rows and whether labels are indices (see :func:`csv_manifest`)."""
    labels_text = [row[col["label"]] for _, row in body]
    if not all(INT_RE.fullmatch(t) for t in labels_text):
        return sorted(set(labels_text)), False
    names: dict[int, str] = {}
    name_line: dict[str, tuple[int, int]] = {}
    for lineno, row in body:
        label = int(row[col["label"]])
        if label < 0:
            raise DatasetFormatError(f"line {lineno}: label {label} is negative", p)
        if label >= MAX_CLASSES:
            raise DatasetFormatError(f"line {lineno}: label {label} is not a class index below {MAX_CLASSES:,}", p)
        if "class_name" in col and row[col["class_name"]] != "":
            name = row[col["class_name"]]
            if names.get(label, name) != name:
                raise DatasetFormatError(
                    f"line {lineno}: label {label} is named {name!r} here but {names[label]!r} earlier", p)
            other = name_line.get(name)
            if other is not None and other[1] != label:
                raise DatasetFormatError(
                    f"line {lineno}: class name {name!r} is used for labels {other[1]} "
                    f"(line {other[0]}) and {label}", p)
            names[label] = name
            name_line.setdefault(name, (lineno, label))
    n = max(int(t) for t in labels_text) + 1
    return [names.get(i, str(i)) for i in range(n)], True


def read_manifest(path: PathLike, split: str | None, strict: bool) -> LabeledVideos:
    """:func:`csv_manifest`; with ``strict=False`` a split asked of a manifest without a
    ``split`` column is ignored (the manifest is one split)."""
    p = existing_file(path, "manifest")
    rows = list(csv_rows(read_text(p, "manifest"), p))
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
            f"(got {short(','.join(header))}){_header_hint(lower)}", p)
    col = {h: i for i, h in enumerate(lower) if h in _KNOWN}
    extra = [(header[i], i) for i, h in enumerate(lower) if h not in _KNOWN]
    body = rows[1:]
    if not body:
        raise DatasetFormatError("empty manifest (a header but no rows)", p)
    for lineno, row in body:
        if len(row) != len(header):
            raise DatasetFormatError(f"line {lineno}: expected {len(header)} fields, got {len(row)}", p)
        if row[col["path"]] == "":
            raise DatasetFormatError(f"line {lineno}: empty path", p)
        if row[col["label"]] == "":
            raise DatasetFormatError(f"line {lineno}: empty label", p)

    # Classes are computed over ALL rows so that every split gets the same label indices.
    classes, int_labels = _classes(body, col, p)
    index = {name: i for i, name in enumerate(classes)}

    has_split = "split" in col
    if split is not None and has_split:
        available = sorted({row[col["split"]] for _, row in body if row[col["split"]] != ""})
        body = [(ln, row) for ln, row in body if row[col["split"]] == split]
        if not body:
            raise DatasetFormatError(
                f"no row has split {split!r} (available splits: {', '.join(available) or 'none'}; "
                "choose one with --split)", p)
    elif split is not None and strict:
        raise DatasetFormatError(
            f"split {split!r} requested but the manifest has no 'split' column (available splits: none)", p)

    base = os.path.dirname(p)
    records: list[VideoRecord] = []
    missing: list[str] = []
    for lineno, row in body:
        rel = row[col["path"]]
        video = os.path.normpath(rel if os.path.isabs(rel) else os.path.join(base, rel))
        label = int(row[col["label"]]) if int_labels else index[row[col["label"]]]
        start = _int_cell(row[col["start"]], "start", lineno, p) if "start" in col else None
        end = _int_cell(row[col["end"]], "end", lineno, p) if "end" in col else None
        if start is not None and end is not None and end <= start:
            raise DatasetFormatError(f"line {lineno}: end {end} is not after start {start}", p)
        meta: dict[str, Any] = {name: row[i] for name, i in extra}
        if "mask" in col:  # a given foreground mask (bebias.data.masks), relative to the CSV like path
            m = row[col["mask"]]
            meta["mask"] = os.path.normpath(m if os.path.isabs(m) else os.path.join(base, m)) if m else None
        row_split = row[col["split"]] if has_split else ""
        if row_split:
            meta["split"] = row_split
        meta["class_name"] = classes[label]
        if not os.path.exists(video):
            missing.append(video)
        records.append(VideoRecord(path=video, label=label, start=start, end=end, meta=meta))
    if len(missing) == len(records):
        raise BebiasError(f"none of the {len(records)} videos listed in {p} exist under {base or '.'}")
    stem = os.path.splitext(os.path.basename(p))[0]
    name = stem if split is None or not has_split else f"{stem}/{split}"
    return LabeledVideos(records, classes, name=name, missing=missing)


def csv_manifest(path: PathLike, split: str | None = None) -> LabeledVideos:
    """Parse a CSV manifest.

    The first non-blank row is a required header (column names are case-insensitive)
    with at least ``path`` and ``label``; optional ``start``, ``end`` (frame indices,
    start inclusive, end exclusive, empty = unbounded), ``split``, ``class_name``, ``mask``
    (the video's foreground mask, :mod:`bebias.data.masks`; relative to the CSV's folder
    unless absolute, empty = none; in ``meta["mask"]``); every other column goes into
    ``meta`` as a string under its header name.

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
    return read_manifest(path, split, strict=True)
