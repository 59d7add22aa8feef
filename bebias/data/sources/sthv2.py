"""Something-Something v2: the label JSONs of the official release and ``<id>.webm`` videos.

Layouts (``--data`` may name the parent or the video folder itself):

- official: ``20bn-something-something-v2/<id>.webm`` (the concatenated archive parts,
  extracted) next to ``labels/`` holding ``labels.json``, ``train.json``,
  ``validation.json``, ``test.json`` and, where downloaded, ``test-answers.csv``;
- mmaction2: ``sthv2/videos/<id>.mp4`` (or ``.webm``) and/or ``sthv2/rawframes/<id>/``
  next to ``sthv2/annotations/something-something-v2-{labels,train,validation,test}.json``.

``labels.json`` maps each template *without* brackets (``"Putting something on a
surface"``) to its class index as a string; split entries are ``{"id", "label",
"template", "placeholders"}`` where the template has brackets (``"Putting [something] on
a surface"``); the brackets are removed to look the class up (as SlowFast and mmaction2
do). ``test.json`` entries carry only ``id``: their classes come from ``test-answers.csv``
(``<id>;<template>`` lines) next to it; without that file the test split is refused,
since its videos have no label to evaluate against.

Horizontal flips do not preserve SSv2 labels ("Pushing something from left to right"):
:func:`bebias.data.sources.dispatch.hflip_safe` says so to the training commands.
"""

from __future__ import annotations

import os
from typing import Any

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import (
    INT_RE,
    PathLike,
    check_split,
    csv_rows,
    existing_dir,
    read_json,
    read_text,
    short,
)
from bebias.data.sources.layout import find_annotations, locate, nothing_found, video_roots
from bebias.errors import DatasetFormatError

SPLITS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
_FILE_SPLIT = {"train": "train", "val": "validation", "test": "test"}
_PREFIX = "something-something-v2-"


def annotation_file(folder: str, stem: str) -> str | None:
    """``<stem>.json`` (official) or mmaction2's ``something-something-v2-<stem>.json``."""
    for name in (f"{stem}.json", f"{_PREFIX}{stem}.json"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def _answers_file(folder: str) -> str | None:
    for name in ("test-answers.csv", f"{_PREFIX}test-answers.csv"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def template_key(template: str) -> str:
    """A template as ``labels.json`` spells it: ``"[something]"`` -> ``"something"``."""
    return template.replace("[", "").replace("]", "").strip()


def parse_labels(data: Any, path: str) -> list[str]:
    """``labels.json`` (``{template: "index"}``) -> templates indexed by class."""
    if not isinstance(data, dict) or not data:
        raise DatasetFormatError("expected a non-empty JSON object {template: class index}", path)
    by_index: dict[int, str] = {}
    for template, value in data.items():
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not INT_RE.fullmatch(text.strip()):
            raise DatasetFormatError(f"{short(template)}: class index {value!r} is not an integer", path)
        idx = int(text)
        if idx in by_index:
            raise DatasetFormatError(f"{short(template)}: class index {idx} is repeated", path)
        by_index[idx] = template
    n = len(by_index)
    if sorted(by_index) != list(range(n)):
        raise DatasetFormatError(
            f"class indices must be exactly 0..{n - 1} (got {min(by_index)}..{max(by_index)})", path)
    return [by_index[i] for i in range(n)]


class _Lookup:
    """Template -> class index: exact, then case-insensitive when that is unambiguous."""

    def __init__(self, classes: list[str]) -> None:
        self.exact = {template_key(c): i for i, c in enumerate(classes)}
        lower: dict[str, list[int]] = {}
        for k, i in self.exact.items():
            lower.setdefault(k.lower(), []).append(i)
        self.lower = {k: v[0] for k, v in lower.items() if len(v) == 1}

    def __call__(self, template: str) -> int | None:
        key = template_key(template)
        return self.exact.get(key, self.lower.get(key.lower()))


def parse_entries(data: Any, path: str, labelled: bool, lookup: _Lookup) -> list[tuple[str, int | None]]:
    """A split JSON -> ``[(id, class index or None when not labelled)]``."""
    if not isinstance(data, list):
        raise DatasetFormatError(f"expected a JSON list of videos, got a JSON {type(data).__name__}", path)
    if not data:
        raise DatasetFormatError("empty split file (empty JSON list)", path)
    out: list[tuple[str, int | None]] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise DatasetFormatError(f"item [{i}] is not a JSON object", path)
        vid = item.get("id")
        vid = str(vid).strip() if isinstance(vid, (str, int)) and not isinstance(vid, bool) else ""
        if not vid or "/" in vid:
            raise DatasetFormatError(f"item [{i}]: missing or bad 'id' ({item.get('id')!r})", path)
        label = None
        if labelled:
            template = item.get("template")
            if not isinstance(template, str) or not template.strip():
                raise DatasetFormatError(f"item [{i}] (id {vid}): missing 'template'", path)
            label = lookup(template)
            if label is None:
                raise DatasetFormatError(
                    f"item [{i}] (id {vid}): template {short(template)} is not in labels.json", path)
        out.append((vid, label))
    return out


def parse_answers(text: str, path: str, lookup: _Lookup) -> dict[str, int]:
    """``test-answers.csv`` (``<id>;<template>`` lines, no header) -> ``{id: class index}``."""
    out: dict[str, int] = {}
    for lineno, row in csv_rows(text, path, delimiter=";"):
        if len(row) != 2 or not row[0]:
            raise DatasetFormatError(f"line {lineno}: expected '<id>;<template>', got {len(row)} fields", path)
        label = lookup(row[1])
        if label is None:
            raise DatasetFormatError(f"line {lineno}: template {short(row[1])} is not in labels.json", path)
        out[row[0]] = label
    if not out:
        raise DatasetFormatError("empty answers file", path)
    return out


def ssv2(root: PathLike, split: str = "train", annotations: PathLike | None = None) -> LabeledVideos:
    """Parse a Something-Something v2 split (see the module docstring).

    Args:
        root: the dataset folder or the video folder; videos are ``<id>.webm`` (any video
            extension) or frame folders ``<id>/``.
        split: ``"train"``, ``"val"`` (``validation.json``; ``"validation"`` accepted) or
            ``"test"`` (needs ``test-answers.csv``).
        annotations: folder holding ``labels.json`` and the split JSONs (or a file in it);
            default: searched (see :mod:`bebias.data.sources.layout`).

    Returns:
        LabeledVideos named ``ssv2/<split>``, classes the 174 templates in
        ``labels.json`` order; ``meta`` holds ``split``, ``class_name`` and ``id``.

    Raises:
        DatasetFormatError: bad split, missing/malformed JSON, a template not in
            ``labels.json``, the test split without ``test-answers.csv``.
        BebiasError: none of the listed videos exist.
    """
    root_s = existing_dir(root, "--data folder")
    split = check_split(split, SPLITS, "ssv2", root_s)
    stem = _FILE_SPLIT[split]
    ann = find_annotations(
        root_s, annotations,
        lambda d: annotation_file(d, "labels") is not None and annotation_file(d, stem) is not None,
        f"labels.json and {stem}.json (SSv2's labels/)",
    )
    labels_file, split_file = annotation_file(ann, "labels"), annotation_file(ann, stem)
    assert labels_file is not None and split_file is not None
    classes = parse_labels(read_json(labels_file, "label file"), labels_file)
    lookup = _Lookup(classes)
    entries = parse_entries(read_json(split_file, "split file"), split_file, split != "test", lookup)
    if split == "test":
        answers_file = _answers_file(ann)
        if answers_file is None:
            raise DatasetFormatError(
                "test.json lists no labels and test-answers.csv is not next to it; put it there "
                "(it comes with the labels download) or evaluate on --split val", split_file)
        answers = parse_answers(read_text(answers_file, "answers file"), answers_file, lookup)
        for i, (vid, _) in enumerate(entries):
            if vid not in answers:
                raise DatasetFormatError(f"item [{i}] (id {vid}) has no answer in {answers_file}", split_file)
        entries = [(vid, answers[vid]) for vid, _ in entries]
    rels = [f"{vid}.webm" for vid, _ in entries]
    roots = video_roots(root_s, rels)
    if not roots:
        raise nothing_found(len(entries), split_file, root_s, rels[0])
    records: list[VideoRecord] = []
    missing: list[str] = []
    for rel, (vid, label) in zip(rels, entries):
        assert label is not None
        video, exists = locate(roots, rel, root_s)
        if not exists:
            missing.append(video)
        meta = {"split": split, "class_name": classes[label], "id": vid}
        records.append(VideoRecord(path=video, label=label, meta=meta))
    return LabeledVideos(records, classes, name=f"ssv2/{split}", missing=missing)
