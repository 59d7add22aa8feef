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
is recognised but lacks a field the report needs, holds a value outside its metric's range
(:data:`FRACTION`, :data:`RELIANCE`, counts; NaN and null are "undefined" and show as "–")
or names a file outside its own folder (:func:`referenced_file`), is a one-line
:class:`BebiasError` naming it and the field.
"""

from __future__ import annotations

import math
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


#: (low, high, what) of a metric's values: accuracies and follow rates are fractions
FRACTION = (0.0, 1.0, "a fraction in [0, 1]")
#: the background-reliance score (bebias.probing.metrics.decisions.background_reliance)
RELIANCE = (0.0, 1.0, "a score in [0, 1]")
MINUTES = (0.0, math.inf, "a finite number of minutes >= 0")
#: Cohen's kappa (bebias.probing.metrics.decisions.prediction_agreement)
KAPPA = (-1.0, 1.0, "a kappa in [-1, 1]")


def _value(x: Any, field: str, path: str, rng: tuple[float, float, str] = FRACTION) -> None:
    """A number in ``rng``, or None / NaN (undefined: Python's json writes NaN for it)."""
    if x is None:
        return
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise BebiasError(f"malformed result: {field} is {str(x)[:40]!r}, not a number", path)
    if math.isinf(x) or (not math.isnan(x) and not rng[0] <= x <= rng[1]):
        raise BebiasError(f"{field} = {x!r} is out of range ({rng[2]})", path)


def _count(x: Any, field: str, path: str) -> None:
    if x is None:
        return
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 and x == int(x)
    if not ok:
        raise BebiasError(f"{field} = {str(x)[:40]!r} is not a count (an integer >= 0)", path)


def _block(b: Any, field: str, path: str, rng: tuple[float, float, str] = FRACTION) -> None:
    """A bare value, or ``{"value", "ci_low", "ci_high", "n"}``."""
    if isinstance(b, dict):
        for k in ("value", "ci_low", "ci_high"):
            _value(b.get(k), f"{field}.{k}", path, rng)
        _count(b.get("n"), f"{field}.n", path)
    else:
        _value(b, field, path, rng)


def _obj(x: Any, field: str, path: str) -> dict:
    """``x`` if it is an object (None / absent: empty)."""
    _need(x is None or isinstance(x, dict), f"{field!r} is not an object", path)
    return x or {}


def check_values(kind: str, obj: dict, path: str) -> None:
    """Every number the report shows, against its metric's range (module docstring)."""
    if kind == "probe":
        _need(isinstance(obj["provenance"].get("classes", []), (list, type(None))), "provenance.classes is not a list",
              path)
        for k in ("original_top1", "contrasted_accuracy", "static_frame_accuracy", "swap_background_follow"):
            _value(obj["headline"].get(k), f"headline.{k}", path)
        _value(obj["headline"].get("background_reliance"), "headline.background_reliance", path, RELIANCE)
        for v, a in _obj(obj.get("accuracy"), "accuracy", path).items():
            a = _obj(a, f"accuracy.{v}", path)
            _count(a.get("n"), f"accuracy.{v}.n", path)
            for k in ("top1", "top5"):
                _block(a.get(k), f"accuracy.{v}.{k}", path)
        _block(obj.get("background_reliance"), "background_reliance", path, RELIANCE)
        for k in ("contrasted_accuracy", "static_frame_accuracy"):
            _block(obj.get(k), k, path)
        for v, c in _obj(obj.get("conflict"), "conflict", path).items():
            c = _obj(c, f"conflict.{v}", path)
            _count(c.get("n"), f"conflict.{v}.n", path)
            for k in ("background_follow", "foreground_follow"):
                _block(c.get(k), f"conflict.{v}.{k}", path)
            pc = _obj(_obj(c.get("per_class"), f"conflict.{v}.per_class", path).get("background_follow"),
                      f"conflict.{v}.per_class.background_follow", path)
            for cls, x in pc.items():
                _value(x, f"conflict.{v}.per_class.background_follow[{cls!r}]", path)
        _block(_obj(obj.get("cam"), "cam", path).get("actor_share"), "cam.actor_share", path)
        for v, a in _obj(obj.get("agreement"), "agreement", path).items():
            a = _obj(a, f"agreement.{v}", path)
            _block(a.get("agreement"), f"agreement.{v}.agreement", path)
            _block(a.get("kappa"), f"agreement.{v}.kappa", path, KAPPA)
    elif kind == "eval":
        for name, r in obj["splits"].items():
            _count(r.get("n"), f"splits.{name}.n", path)
            for k in ("top1", "top5", "background_follow"):
                _value(r.get(k), f"splits.{name}.{k}", path)
            _value(_obj(r.get("retrieval"), f"splits.{name}.retrieval", path).get("R@1"),
                   f"splits.{name}.retrieval.R@1", path)
    elif kind == "compare":
        for i, r in enumerate(obj["rows"]):
            for k, v in r.items():
                if "/" in k:
                    _value(v, f"rows[{i}].{k}", path, FRACTION if k.rsplit("/", 1)[1] in ("top1", "bg_follow")
                           else (-math.inf, math.inf, "a finite number"))
    elif kind == "calibration":
        for i, r in enumerate(obj["rows"]):
            for k in ("iid_top1", "conflict_top1", "conflict_background_follow"):
                _value(r.get(k), f"rows[{i}].{k}", path)
            _value(r.get("train_minutes"), f"rows[{i}].train_minutes", path, MINUTES)
    elif kind == "cam":
        for lab, b in obj.get("actor_share", {}).items():
            _block(b, f"actor_share[{lab!r}]", path)
        _value(_obj(obj.get("chance"), "chance", path).get("value"), "chance.value", path)
        for i, v in enumerate(obj.get("videos", [])):
            for lab, x in _obj(v.get("actor_share"), f"videos[{i}].actor_share", path).items():
                _value(x, f"videos[{i}].actor_share[{lab!r}]", path)


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
            referenced_file(path, v["strip"], f"videos[{i}].strip")
    check_values(kind, obj, path)


def referenced_file(result: str, ref: str, field: str) -> str:
    """The real path of the file ``ref`` that result file ``result`` names in ``field``,
    relative to the result's folder. A result may only name files inside its own folder (a
    report copies and embeds them): an absolute path, one that climbs out with ``..``, or
    one through a symlink that leads out is a :class:`BebiasError` naming ``result`` and
    ``field``. The file need not exist."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(result)))
    if not ref or "\0" in ref:
        raise BebiasError(f"{field} is empty or holds a NUL character", result)
    if os.path.isabs(ref):
        raise BebiasError(f"{field} {ref!r} is an absolute path; a result may only name files inside its own "
                          "folder", result)
    real = os.path.realpath(os.path.join(folder, ref))
    if os.path.commonpath([folder, real]) != folder:
        raise BebiasError(f"{field} {ref!r} leads outside the result's folder (to {real}); a result may only name "
                          "files inside its own folder", result)
    return real


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
