"""Reading JSON and TOML that a user hands us (annotation files, probe suites, training
configs, result files, archive metadata), bounded in size and nesting depth.

Python's parsers recurse once per nesting level: ``[[[[...]]]]`` a few thousand deep
raises ``RecursionError`` (a traceback, not a user error), and nothing bounds the size
read. Here a file is read only if it is a regular file (a FIFO would block ``open``) of at
most ``max_bytes``; a parse that reaches the interpreter's recursion limit (the C JSON
parser raises ``RecursionError`` there, cleanly) and a parsed value nesting deeper than
``max_depth`` (which would break the recursive code downstream: ``json.dumps``, copies)
are refused; and every failure is ONE :class:`~bebias.errors.BebiasError` line naming the
file.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from typing import Any

from bebias.errors import BebiasError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "read_json", "parse_json", "read_toml", "parse_toml", "read_bytes"]

#: the largest file read (the largest annotation file we know, Something-Something v2's
#: train.json, is ~20 MB)
MAX_BYTES = 256 * 2**20
#: the deepest nesting of arrays/objects accepted; real files nest a handful of levels
MAX_DEPTH = 64



def _too_deep(obj: Any, max_depth: int) -> bool:
    """Whether ``obj`` nests lists/dicts more than ``max_depth`` levels deep (level by level:
    the walk itself must not recurse)."""
    level, depth = [obj], 1
    while level:
        if depth > max_depth:
            return True
        nxt = []
        for o in level:
            nxt.extend(c for c in (o.values() if isinstance(o, dict) else o) if type(c) in _CONTAINERS)
        level, depth = nxt, depth + 1
    return False


_CONTAINERS = (list, dict)  # what json/tomllib build


def read_bytes(path: str | os.PathLike, what: str = "file", max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; BebiasError otherwise."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BebiasError(f"{what} does not exist", p) from None
    except OSError as e:
        raise BebiasError(f"{what} cannot be read ({e.strerror or e})", p) from None
    if not stat.S_ISREG(st.st_mode):
        raise BebiasError(f"{what} is not a regular file", p)
    if st.st_size > max_bytes:
        raise BebiasError(f"{what} is {st.st_size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB "
                          "read", p)
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)  # the size may grow after the stat
    except OSError as e:
        raise BebiasError(f"{what} cannot be read ({e.strerror or e})", p) from None
    if len(data) > max_bytes:
        raise BebiasError(f"{what} is larger than the {max_bytes / 2**20:.0f} MiB read", p)
    return data


def _text(data: bytes, path: str, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BebiasError(f"{what} is not UTF-8 text (byte {e.start})", path) from None


def _recursion(what: str, path: str, max_depth: int) -> BebiasError:
    return BebiasError(f"{what} nests arrays/objects more than {max_depth} levels deep", path)


def _check_depth(obj: Any, path: str, what: str, max_depth: int) -> Any:
    if isinstance(obj, (list, dict)) and _too_deep(obj, max_depth):
        raise _recursion(what, path, max_depth)
    return obj


def parse_json(text: str | bytes, path: str | os.PathLike, what: str = "file", max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text (NaN/Infinity accepted: Python's json writes them) read from ``path``
    (named in the errors); at most ``max_depth`` levels of nesting."""
    p = os.fspath(path)
    if isinstance(text, bytes):
        text = _text(text, p, what)
    if not text.strip():
        raise BebiasError(f"{what} is empty", p)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise BebiasError(f"{what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})", p) from None
    except RecursionError:  # the C parser stops at the interpreter's recursion limit (~1000 levels)
        raise _recursion(what, p, max_depth) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise BebiasError(f"{what} is not valid JSON ({e})", p) from None
    return _check_depth(obj, p, what, max_depth)


def read_json(path: str | os.PathLike, what: str = "file", max_bytes: int = MAX_BYTES,
              max_depth: int = MAX_DEPTH) -> Any:
    """:func:`parse_json` of the file at ``path`` (a regular file of at most ``max_bytes``)."""
    return parse_json(read_bytes(path, what, max_bytes), path, what, max_depth)


def parse_toml(text: str | bytes, path: str | os.PathLike, what: str = "file", max_depth: int = MAX_DEPTH
               ) -> dict[str, Any]:
    """Parse TOML text read from ``path`` (named in the errors); at most ``max_depth`` levels
    of nested arrays / inline tables."""
    p = os.fspath(path)
    if isinstance(text, bytes):
        text = _text(text, p, what)
    try:
        obj = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BebiasError(f"{what} is not valid TOML ({e})", p) from None
    except RecursionError:
        raise _recursion(what, p, max_depth) from None
    except ValueError as e:
        raise BebiasError(f"{what} is not valid TOML ({e})", p) from None
    return _check_depth(obj, p, what, max_depth)


def read_toml(path: str | os.PathLike, what: str = "file", max_bytes: int = MAX_BYTES,
              max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """:func:`parse_toml` of the file at ``path`` (a regular file of at most ``max_bytes``)."""
    return parse_toml(read_bytes(path, what, max_bytes), path, what, max_depth)
