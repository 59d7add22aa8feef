"""Atomic output: write to a temporary sibling, then ``os.replace`` it into place.

A reader (or an interrupted run resuming) therefore sees either the old file or the
complete new one, never a truncated file. The new data is ``fsync``-ed before the rename
and the folder after it, so a power cut cannot leave an empty file under the final name
either. Files and folders get the modes ``open`` / ``mkdir`` would give them (0666 / 0777
less the umask), not ``mkstemp``'s 0600 / ``mkdtemp``'s 0700.

A folder (``is_dir=True``) is swapped in whole: the old one is renamed aside, the new one
renamed in, then the old one removed. A process killed between the two renames leaves
the old folder, complete, as ``.<name>.old-<pid>-*`` next to it; the next
:func:`atomic_path` on that folder renames it back (if the name is still free) and removes
the temporaries of dead processes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from bebias.errors import BebiasError


#: errnos that can only mean "the output could not be written" (disk full, file too large,
#: quota, read-only file system)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


def _proc_umask() -> int | None:
    """The umask from /proc/self/status (Linux >= 4.7); None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


# reading the umask means setting it (os.umask), which races with threads creating files; so
# that is done only here, once, at import, and only where /proc cannot tell
_IMPORT_UMASK = _proc_umask()
if _IMPORT_UMASK is None:
    _IMPORT_UMASK = os.umask(0o022)
    os.umask(_IMPORT_UMASK)


def umask() -> int:
    """The process's current umask, read without changing it (/proc), else the one at import."""
    m = _proc_umask()
    return _IMPORT_UMASK if m is None else m


def _fsync(path: str) -> None:
    """Flush a file's data, or a folder's entries, to the disk. A folder that cannot be
    opened or synced (some platforms and file systems) is passed over; a file's failure
    is raised (an I/O error or lack of space there means the data is not on the disk)."""
    is_dir = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if is_dir else 0))
    except OSError:
        if is_dir:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        if not is_dir or e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def _fsync_tree(top: str) -> None:
    """fsync every file and folder under ``top`` (symlinks not followed), folders last."""
    for d, _dirs, files in os.walk(top, topdown=False):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                _fsync(p)
        _fsync(d)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process: another thread may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours (EPERM)
    return True


def _recover_dir(parent: str, base: str, path: str) -> None:
    """Leftovers of a writer of folder ``path`` that was killed: its previous folder renamed
    aside (``.old-``) is put back when ``path`` is missing, everything else removed. Only
    leftovers of processes that no longer run are touched."""
    pat = re.compile(re.escape(f".{base}.") + r"(tmp|old)-(\d+)-[A-Za-z0-9_]+")
    try:
        names = sorted(os.listdir(parent), key=lambda n: not n.startswith(f".{base}.old-"))
    except OSError:
        return
    for name in names:
        m = pat.fullmatch(name)
        if not m or _alive(int(m[2])):
            continue
        full = os.path.join(parent, name)
        if m[1] == "old" and not os.path.lexists(path) and os.path.isdir(full):
            os.replace(full, path)  # killed between the two renames: the previous folder, complete
        else:
            shutil.rmtree(full, ignore_errors=True)


def _swap_dir(tmp: str, path: str) -> None:
    """Rename folder ``tmp`` onto ``path``: old aside, new in, old removed (as close to
    atomic as POSIX allows: at every moment one complete folder exists, the old or the new)."""
    if not os.path.isdir(path):
        os.replace(tmp, path)
        return
    parent, base = os.path.split(path)
    aside = tempfile.mkdtemp(prefix=f".{base}.old-{os.getpid()}-", dir=parent)
    os.replace(path, aside)  # onto the empty folder mkdtemp reserved
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    _fsync(parent)
    shutil.rmtree(aside, ignore_errors=True)


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
    if is_dir and os.path.islink(path):
        path = os.path.realpath(path)  # the folder the link names is replaced, the link kept
    parent = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    if not is_dir and os.path.isdir(path):  # else the rename fails naming the temporary file
        raise BebiasError("is a directory; give a file path to write", path)
    try:
        os.makedirs(parent, exist_ok=True)
        if is_dir:
            _recover_dir(parent, base, os.path.abspath(path))
            tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
            os.chmod(tmp, 0o777 & ~umask())
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=ext, dir=parent)
            try:
                os.fchmod(fd, 0o666 & ~umask())
            finally:
                os.close(fd)
    except OSError as e:
        raise BebiasError(f"cannot write here ({e.strerror or e})", path) from None
    try:
        yield tmp
        if is_dir:
            _fsync_tree(tmp)
            _swap_dir(tmp, path)
        else:
            _fsync(tmp)
            os.replace(tmp, path)
        _fsync(parent)
    except BaseException as e:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise BebiasError(f"cannot write ({os.strerror(e.errno)}); the previous "
                              f"{'folder' if is_dir else 'file'}, if any, is unchanged", path) from None
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
