"""``--data`` + ``--dataset`` -> the parser that reads them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from bebias.data.records import LabeledVideos
from bebias.data.sources.common import PathLike
from bebias.data.sources.diving import diving48
from bebias.data.sources.folders import class_folders
from bebias.data.sources.hmdb import hmdb51
from bebias.data.sources.manifest import read_manifest
from bebias.data.sources.sthv2 import ssv2
from bebias.data.sources.ucf import ucf101
from bebias.data.sources.youtube_clips import kinetics, mimetics
from bebias.errors import BebiasError, DatasetFormatError

Parser = Callable[[str, str, PathLike | None], LabeledVideos]

#: datasets with the official 3-fold splits: parser(root, split, fold, annotations)
WITH_FOLDS: dict[str, Callable[[str, str, int, PathLike | None], LabeledVideos]] = {
    "ucf101": ucf101,
    "hmdb51": hmdb51,
}


def _kinetics(version: str) -> Parser:
    def parse(root: str, split: str, annotations: PathLike | None) -> LabeledVideos:
        return kinetics(root, split, annotations, version=version)
    return parse


#: datasets with one official split per name: parser(root, split, annotations)
WITHOUT_FOLDS: dict[str, Parser] = {
    "diving48": diving48,
    "kinetics400": _kinetics("kinetics400"),
    "kinetics600": _kinetics("kinetics600"),
    "kinetics700": _kinetics("kinetics700"),
    "ssv2": ssv2,
    "mimetics": mimetics,
}

#: other spellings (after lower-casing and dropping '-', '_' and spaces)
ALIASES = {"sthv2": "ssv2", "somethingsomethingv2": "ssv2", "ssv2": "ssv2"}

#: Dataset names understood by :func:`load_source` (``--dataset``).
DATASETS: tuple[str, ...] = (*WITH_FOLDS, *WITHOUT_FOLDS)

#: Datasets whose labels a horizontal flip changes (left/right in the class).
HFLIP_UNSAFE = frozenset({"ssv2"})


def canonical_dataset(name: str) -> str:
    """The name in :data:`DATASETS` for ``name`` (case, ``-``, ``_`` and spaces ignored)."""
    key = re.sub(r"[\s_-]", "", name).lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise BebiasError(
            f"unknown --dataset {name!r}; valid names: {', '.join(DATASETS)} "
            "(or none, to read a .csv manifest or a folder of class folders)"
        )
    return key


def hflip_safe(dataset: str | None) -> bool:
    """Whether horizontal flips keep the labels of ``dataset`` (False for SSv2)."""
    return dataset is None or canonical_dataset(dataset) not in HFLIP_UNSAFE


def load_source(
    data: PathLike,
    dataset: str | None = None,
    split: str = "train",
    fold: int = 1,
    annotations: PathLike | None = None,
) -> LabeledVideos:
    """Load a split from ``data``, choosing the parser.

    - ``dataset`` (see :func:`canonical_dataset`): its parser, with ``fold`` for
      ucf101/hmdb51 (the others have one official split, so ``fold`` must be 1) and
      ``annotations`` overriding where the split files are searched;
    - otherwise ``data`` ending in ``.csv``: a manifest (:func:`csv_manifest`);
    - otherwise a folder: ``<data>/manifest.csv`` if present, else :func:`class_folders`.

    For a manifest, ``split`` filters on its ``split`` column; a manifest without one
    is a single split and ``split`` is ignored (so the default ``"train"`` works on it).
    For class folders, ``<data>/<split>/`` is used when it exists. ``fold`` and
    ``annotations`` only apply to the named datasets: passing them for another source
    raises :class:`BebiasError` rather than being ignored.

    Raises:
        BebiasError: unknown dataset name (the message lists the valid ones), a path
            that is neither a ``.csv`` nor a folder, misplaced ``fold``/``annotations``.
        DatasetFormatError: from the parsers.
    """
    data_s = os.fspath(data)
    if dataset is not None:
        key = canonical_dataset(dataset)
        if os.path.isfile(data_s):
            raise BebiasError(
                "with --dataset, --data is the dataset (or video) folder, not a file; "
                "give the split files' folder as --annotations DIR", data_s)
        if key in WITH_FOLDS:
            return WITH_FOLDS[key](data_s, split, fold, annotations)
        if fold != 1:
            raise BebiasError(f"{key} has a single official split; --fold {fold!r} only applies to "
                              f"{' and '.join(WITH_FOLDS)}")
        return WITHOUT_FOLDS[key](data_s, split, annotations)
    if fold != 1:
        raise BebiasError(f"--fold {fold!r} only applies with --dataset {' or '.join(WITH_FOLDS)}", data_s)
    if annotations is not None:
        raise BebiasError(f"--annotations only applies with --dataset ({', '.join(DATASETS)})", data_s)
    if data_s.lower().endswith(".csv"):
        return read_manifest(data_s, split, strict=False)
    if os.path.isdir(data_s):
        manifest = os.path.join(data_s, "manifest.csv")
        if os.path.isfile(manifest):
            return read_manifest(manifest, split, strict=False)
        return class_folders(data_s, split)
    if not os.path.exists(data_s):
        raise DatasetFormatError("--data path does not exist", data_s)
    raise BebiasError(
        f"is neither a .csv manifest nor a folder; pass --dataset {'|'.join(DATASETS)} for an "
        "annotated dataset",
        data_s,
    )
