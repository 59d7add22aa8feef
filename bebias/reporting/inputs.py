"""Find and recognise result files by their content, not by their name.

A RESULT given to ``bebias report`` is a file or a folder; a folder is searched recursively
for ``*.json`` files. Each JSON object is recognised by :func:`recognise`:

- ``probe``: a ``bebias probe`` metrics.json (``"kind": "bebias-probe"``, or before the
  schema had a kind ``provenance`` + ``headline``), read through
  :class:`bebias.results.ProbeMetrics`;
- ``eval``: ``bebias eval`` output (``splits`` + ``checkpoint_sha256``);
- ``compare``: ``bebias compare`` output (``rows`` + ``seeds`` + ``config``);
- ``calibration``: ``bebias data calibrate`` output (``rows`` + ``config``, rows with
  ``iid_top1``);
- ``cam``: ``bebias cam`` output (``"kind": "bebias-cam"``).

A file named on the command line must be one of these; inside a folder, other JSON files
(``config.json``, ``failures.json``, ...) are passed over. A file that is not valid JSON, or
is recognised but lacks a field the report needs, is a one-line :class:`BebiasError`
naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bebias import parse
from bebias.errors import BebiasError
from bebias.results import KIND as KIND_PROBE
from bebias.results import ProbeMetrics

KINDS = ("probe", "eval", "compare", "calibration", "cam")
EXPECTED = ("a bebias probe metrics.json, bebias eval JSON, compare.json, calibration.json or cam.json")


@dataclass(frozen=True)
class Source:
    """One recognised result file: ``kind`` (one of :data:`KINDS`), its path and parsed JSON."""

    kind: str
    path: str
    data: dict

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)


def recognise(obj: Any) -> str | None:
    """The kind of a parsed result (see the module docstring), or ``None``."""
    if not isinstance(obj, dict):
        return None
    if obj.get("kind") == "bebias-cam":
        return "cam"
    if obj.get("kind") == KIND_PROBE or ("kind" not in obj and "provenance" in obj and "headline" in obj):
        return "probe"
    if "splits" in obj and "checkpoint_sha256" in obj:
        return "eval"
    if "rows" in obj and "config" in obj:
        if "seeds" in obj:
            return "compare"
        rows = obj["rows"]
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "iid_top1" in rows[0]:
            return "calibration"
    return None


def _need(cond: bool, what: str, path: str) -> None:
    if not cond:
        raise BebiasError(f"malformed result: {what}", path)


def _is_num(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def validate(kind: str, obj: dict, path: str) -> None:
    """Check the fields the report reads; raise :class:`BebiasError` naming ``path`` if one is off."""
    if kind == "probe":
        ProbeMetrics.from_json(obj, path)  # the schema's own checks (and version)
    elif kind == "eval":
        _need(isinstance(obj["splits"], dict) and obj["splits"], "'splits' is empty or not an object", path)
        for name, r in obj["splits"].items():
            _need(isinstance(r, dict) and _is_num(r.get("top1")), f"split {name!r} has no numeric 'top1'", path)
    elif kind in ("compare", "calibration"):
        _need(isinstance(obj["rows"], list) and obj["rows"], "'rows' is empty or not a list", path)
        _need(isinstance(obj["config"], dict), "'config' is not an object", path)
        key = "variant" if kind == "compare" else "run"
        for i, r in enumerate(obj["rows"]):
            _need(isinstance(r, dict) and isinstance(r.get(key), str), f"row {i} has no {key!r}", path)
            nums = {k: v for k, v in r.items() if "/" in k} if kind == "compare" else \
                {k: r.get(k) for k in ("iid_top1", "conflict_top1")}
            _need(all(_is_num(v) for v in nums.values()), f"row {i} has a non-numeric metric", path)
    elif kind == "cam":
        _need(isinstance(obj.get("checkpoints"), list), "'checkpoints' is not a list", path)
        _need(isinstance(obj.get("videos", []), list), "'videos' is not a list", path)
        _need(isinstance(obj.get("actor_share", {}), dict), "'actor_share' is not an object", path)
        for i, v in enumerate(obj.get("videos", [])):
            _need(isinstance(v, dict) and isinstance(v.get("strip"), str), f"video {i} names no 'strip' image", path)


def read_json(path: str) -> Any:
    """Parse a JSON file (NaN/Infinity accepted: Python's json writes them); errors name the file."""
    return parse.read_json(path, "result file")


def _load(path: str, *, named: bool) -> Source | None:
    obj = read_json(path)
    kind = recognise(obj)
    if kind is None:
        if named:
            raise BebiasError("not a bebias result (expected " + EXPECTED + ")", path)
        return None
    validate(kind, obj, path)
    return Source(kind, path, obj)


def find_results(paths: Sequence[str]) -> list[Source]:
    """Every result in ``paths`` (files or folders, searched recursively), in the order given
    (a folder's files sorted by path); the same file reached twice counts once."""
    if not paths:
        raise BebiasError("no RESULTS given")
    out: list[Source] = []
    seen: set[str] = set()
    for p in paths:
        if not os.path.exists(p):
            raise BebiasError("does not exist", p)
        if os.path.isdir(p):
            files = []
            for d, dirs, fs in os.walk(p):
                dirs[:] = [x for x in dirs if not x.startswith(".")]  # temporaries of atomic writes
                files += [os.path.join(d, f) for f in fs if f.endswith(".json") and not f.startswith(".")]
            files.sort()
            found = 0
            for f in files:
                real = os.path.realpath(f)
                if real in seen:
                    found += 1
                    continue
                src = _load(f, named=False)
                if src is not None:
                    seen.add(real)
                    out.append(src)
                    found += 1
            if not found:
                raise BebiasError("no bebias results found in this folder (searched for " + EXPECTED + ")", p)
        else:
            real = os.path.realpath(p)
            if real not in seen:
                src = _load(p, named=True)
                seen.add(real)
                out.append(src)  # type: ignore[arg-type]
    return out
