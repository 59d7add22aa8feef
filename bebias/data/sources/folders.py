"""A folder of class folders: ``root/<class>/<video file or frame folder>``."""

from __future__ import annotations

import os
from typing import Any

from bebias.data.records import LabeledVideos, VideoRecord
from bebias.data.sources.common import VIDEO_EXTENSIONS, PathLike, existing_dir, is_frame_folder, listdir
from bebias.errors import DatasetFormatError


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
    root_s = existing_dir(root, "video folder")
    base, split_known = root_s, False
    if split and os.path.isdir(os.path.join(root_s, split)):
        base, split_known = os.path.join(root_s, split), True
    classes = [n for n in listdir(base) if not n.startswith(".") and os.path.isdir(os.path.join(base, n))]
    if not classes:
        raise DatasetFormatError(
            "no class folders (expected <root>/<class>/<video>; for an annotated dataset pass --dataset)", base)
    records: list[VideoRecord] = []
    for label, cls in enumerate(classes):
        cdir = os.path.join(base, cls)
        for n in listdir(cdir):
            if n.startswith("."):
                continue
            p = os.path.join(cdir, n)
            if os.path.isfile(p):
                if os.path.splitext(n)[1].lower() not in VIDEO_EXTENSIONS:
                    continue
            elif not (os.path.isdir(p) and is_frame_folder(p)):
                continue
            meta: dict[str, Any] = {"class_name": cls}
            if split_known:
                meta["split"] = split
            records.append(VideoRecord(path=p, label=label, meta=meta))
    if not records:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise DatasetFormatError(
            f"no videos ({exts}) or frame folders in the {len(classes)} class folders "
            "(for an annotated dataset pass --dataset)", base)
    name = os.path.basename(os.path.normpath(root_s)) or root_s
    if split_known:
        name = f"{name}/{split}"
    return LabeledVideos(records, classes, name=name)
