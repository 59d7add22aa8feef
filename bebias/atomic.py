"""Atomic output: write to a temporary sibling, then ``os.replace`` it into place.

A reader (or an interrupted run resuming) therefore sees either the old file or the
complete new one, never a truncated file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from bebias.errors import BebiasError


#: errnos that can only mean "the output could not be written" (disk full, file too large,
#: quota, read-only file system)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the final suffix (some writers, e.g. OpenCV, pick the
    container from it). On an exception the temporary file/folder is removed and
    ``path`` is left untouched. An output location that cannot be written (a parent that
    is a file, no permission, a read-only file system) or a write that fails for lack of
    space raises :class:`~bebias.errors.BebiasError` naming ``path``.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    if not is_dir and os.path.isdir(path):  # else the rename fails naming the temporary file
        raise BebiasError("is a directory; give a file path to write", path)
    try:
        os.makedirs(parent, exist_ok=True)
        if is_dir:
            tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=ext, dir=parent)
            os.close(fd)
    except OSError as e:
        raise BebiasError(f"cannot write here ({e.strerror or e})", path) from None
    try:
        yield tmp
        if is_dir and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise BebiasError(f"cannot write ({os.strerror(e.errno)}); the previous file, if any, is unchanged",
                              path) from None
        raise


def output_dir(path: str | os.PathLike) -> str:
    """``os.makedirs(path, exist_ok=True)``; a location that cannot be a directory (a file
    in the way, no permission, a read-only file system) is one :class:`BebiasError` line."""
    p = os.fspath(path)
    try:
        os.makedirs(p, exist_ok=True)
    except OSError as e:
        raise BebiasError(f"cannot write here: cannot create the output directory ({e.strerror or e})", p) from None
    return p


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file (UTF-8)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
