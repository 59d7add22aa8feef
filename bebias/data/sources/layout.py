"""Where a dataset's split files and videos are, given the folder the user named.

``--data`` may name the dataset's parent folder (``UCF101/`` holding ``UCF-101/`` and
``ucfTrainTestlist/``; mmaction2's ``data/ucf101/`` holding ``videos/``, ``rawframes/`` and
``annotations/``), or the video folder itself. So:

- split files are looked for in the folder, its sub-folders (2 levels down), then the
  folder above it and the folders next to it; the first level that has them wins, and two
  candidates on the same level is an error asking for ``--annotations DIR``;
- videos are looked for in the folder and its sub-folders (2 levels down): every folder
  that directly holds some of the listed names is a candidate *video root*; candidates are
  ranked by how many of a sample of the listed videos they hold (video files before frame
  folders on a tie), and each video is taken from the first candidate that has it. A
  listed video may be a file with another video extension, a frame folder named after
  it without its extension (mmaction2's ``rawframes/``), and a listed ``<class>/<video>``
  may be flat in the video root (frame releases that drop the class folder).

Nothing here knows a dataset; the parsers pass what their official layout defines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from bebias.data.sources.common import VIDEO_EXTENSIONS, PathLike, subdirs
from bebias.errors import BebiasError, DatasetFormatError

#: How far below ``--data`` split files and video roots are searched.
SEARCH_DEPTH = 2
#: How many listed videos are probed to rank candidate video roots.
SAMPLE = 64


# --------------------------------------------------------------------------------------
# split files
# --------------------------------------------------------------------------------------


def _levels(root: str) -> Iterator[list[str]]:
    """Folders to search for split files, nearest first, one list per level."""
    level = [root]
    yield level
    for _ in range(SEARCH_DEPTH):
        level = [c for d in level for c in subdirs(d)]
        yield level
    here = os.path.abspath(root)
    parent = os.path.dirname(here)
    if parent != here:
        yield [parent]
        yield [s for s in subdirs(parent) if os.path.abspath(s) != here]


def find_annotations(
    root: str, annotations: PathLike | None, has_it: Callable[[str], bool], looking_for: str
) -> str:
    """The folder holding a dataset's split files.

    ``annotations`` (``--annotations DIR``; a file in that folder works too) overrides the
    search. ``looking_for`` names the files in messages, e.g. ``"classInd.txt"``.
    """
    if annotations is not None:
        ann = os.fspath(annotations)
        if not os.path.exists(ann):
            raise DatasetFormatError("--annotations path does not exist", ann)
        if os.path.isfile(ann):
            ann = os.path.dirname(ann) or "."
        if not has_it(ann):
            raise DatasetFormatError(f"--annotations folder has no {looking_for}", ann)
        return ann
    for level in _levels(root):
        hits = [d for d in level if has_it(d)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            shown = ", ".join(hits[:3]) + (", ..." if len(hits) > 3 else "")
            raise DatasetFormatError(
                f"{looking_for} found in {len(hits)} folders ({shown}); "
                "pass --annotations DIR to choose one",
                root,
            )
    parent = os.path.dirname(os.path.abspath(root))
    raise DatasetFormatError(
        f"no {looking_for} in this folder, its sub-folders ({SEARCH_DEPTH} levels down), "
        f"{parent} or the folders next to it; pass --annotations DIR (the folder holding it)",
        root,
    )


# --------------------------------------------------------------------------------------
# videos listed by relative path
# --------------------------------------------------------------------------------------


def split_rel(rel: str) -> list[str]:
    """A '/'- (or '\\'-) separated relative path from a split file, as parts."""
    return [p for p in rel.replace("\\", "/").split("/") if p]


def _try(path: str) -> tuple[str, bool, bool] | None:
    """The video at ``path``: the file; the frame folder without its extension; a folder;
    the file with another video extension. None when there is none."""
    if os.path.isfile(path):
        return path, True, True
    stem, ext = os.path.splitext(path)
    if os.path.isdir(stem):
        return stem, True, False
    if os.path.isdir(path):
        return path, True, False
    for other in sorted(VIDEO_EXTENSIONS - {ext.lower()}):
        if os.path.isfile(stem + other):
            return stem + other, True, True
    return None


def resolve_in(root: str, rel: str) -> tuple[str, bool, bool]:
    """Find the video listed as ``rel`` under ``root``: ``(path, exists, is_file)``.

    ``root/rel`` is tried as in :func:`_try`, then, for a listed ``<class>/<video>``, the
    flat ``root/<video>`` (frame releases such as UCF101's ``jpegs_256/`` drop the class
    folder; the video names carry it).
    """
    parts = split_rel(rel)
    path = os.path.join(root, *parts)
    hit = _try(path)
    if hit is None and len(parts) > 1:
        hit = _try(os.path.join(root, parts[-1]))
    return hit or (path, False, False)


def _first_keys(rel: str) -> set[str]:
    """Names a video root may hold directly for ``rel``: its first part, and its last part
    and that part's stem (the flat layout)."""
    parts = split_rel(rel)
    if not parts:
        return set()
    return {parts[0], parts[-1], os.path.splitext(parts[-1])[0]}


def _holds_some(folder: str, keys: set[str]) -> bool:
    """Whether ``folder`` directly holds one of ``keys``, or a video file whose stem is one
    (not any file: ``brush_hair.rar`` beside the class folders is no video)."""
    def hit(name: str) -> bool:
        stem, ext = os.path.splitext(name)
        return name in keys or (ext.lower() in VIDEO_EXTENSIONS and stem in keys)
    try:
        with os.scandir(folder) as it:
            return any(hit(e.name) for e in it)
    except OSError:
        return False


def sample(items: Sequence[str], n: int = SAMPLE) -> list[str]:
    """Up to ``n`` items spread evenly over ``items`` (all of them when there are few)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def rank_roots(scores: Sequence[tuple[str, int, int]]) -> list[str]:
    """Candidate roots ``(folder, found, found as files)`` in search order -> ranked folders.

    Folders that hold none of the probed videos are dropped; the rest are ordered by
    ``found`` then ``found as files`` (both descending), then search order.
    """
    ranked = sorted(
        ((-found, -files, i, folder) for i, (folder, found, files) in enumerate(scores) if found)
    )
    return [folder for *_, folder in ranked]


def video_roots(root: str, rels: Sequence[str]) -> list[str]:
    """Candidate folders holding the videos listed as ``rels``, best first (maybe empty).

    A sample of ``rels`` is probed; when it finds nothing, every listed video is, so that
    a folder holding only a few of them is still found.
    """
    ranked = _video_roots(root, sample(rels))
    if not ranked and len(rels) > SAMPLE:
        ranked = _video_roots(root, rels)
    return ranked


def _video_roots(root: str, probe: Sequence[str]) -> list[str]:
    keys = set().union(*(_first_keys(r) for r in probe)) if probe else set()
    candidates: list[str] = []
    level = [root]
    for depth in range(SEARCH_DEPTH + 1):
        nxt: list[str] = []
        for d in level:
            if _holds_some(d, keys):
                candidates.append(d)  # a video root: its sub-folders are classes or videos
            elif depth < SEARCH_DEPTH:
                nxt.extend(subdirs(d))
        level = nxt
    scores = []
    for d in candidates:
        hits = [resolve_in(d, r) for r in probe]
        scores.append((d, sum(h[1] for h in hits), sum(h[2] for h in hits)))
    return rank_roots(scores)


def locate(roots: Sequence[str], rel: str, default: str) -> tuple[str, bool]:
    """``(path, exists)`` of the video listed as ``rel``: the first root that has it, else
    its expected path under the best root (``default`` when there is no root)."""
    for r in roots:
        path, exists, _ = resolve_in(r, rel)
        if exists:
            return path, True
    return os.path.join(roots[0] if roots else default, *split_rel(rel)), False


def nothing_found(
    n: int, listed_in: str, root: str, example: str, hint: str = "", depth: int = SEARCH_DEPTH
) -> BebiasError:
    """The one-line error for a split none of whose videos exist."""
    return BebiasError(
        f"none of the {n} videos listed in {listed_in} exist under {root} (looked for e.g. "
        f"{example} there and {depth} levels down); point --data at the folder that "
        f"holds them{hint}"
    )


# --------------------------------------------------------------------------------------
# videos listed by clip name (Kinetics-style: found anywhere in the tree)
# --------------------------------------------------------------------------------------


def _preference(path: str, is_file: bool) -> tuple[int, int]:
    # A file beats a frame folder; under CVDF's Kinetics-400 layout the re-encoded copies in
    # replacement/ replace corrupted originals of the same name.
    parts = path.replace("\\", "/").split("/")
    return (0 if is_file else 1, 0 if any(p.startswith("replacement") for p in parts) else 1)


#: How far below ``--data`` clips listed by name are looked for.
CLIP_DEPTH = 3


def index_clips(root: str, wanted: set[str], depth: int = CLIP_DEPTH) -> dict[str, str]:
    """Map each clip name in ``wanted`` to where it is under ``root``.

    A clip is a video file whose name without extension is in ``wanted``, or a folder
    whose name is (a frame folder; not descended into). Other folders are descended into
    down to ``depth`` levels (``root/<split>/<class>/<clip>.mp4`` is 2). When a clip is
    found twice, a file beats a frame folder, then a copy under ``replacement*/`` wins,
    then the first in sorted order.
    """
    found: dict[str, tuple[str, bool]] = {}

    def keep(name: str, path: str, is_file: bool) -> None:
        old = found.get(name)
        if old is None or _preference(path, is_file) < _preference(*old):
            found[name] = (path, is_file)

    level = [root]
    for d_level in range(depth + 1):
        nxt: list[str] = []
        for d in level:
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir():
                    if e.name in wanted:
                        keep(e.name, e.path, False)
                    elif d_level < depth:
                        nxt.append(e.path)
                elif e.is_file():
                    stem, ext = os.path.splitext(e.name)
                    if ext.lower() in VIDEO_EXTENSIONS and stem in wanted:
                        keep(stem, e.path, True)
        level = nxt
    return {name: path for name, (path, _) in found.items()}
