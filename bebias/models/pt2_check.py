"""The allowlist check a ``torch.export`` (``.pt2``) archive passes before
``torch.export.load`` sees it: :func:`check_pt2` refuses, with one line, any entry torch
would not write, custom / opaque object constants, every pickle that
``torch.load(weights_only=True)`` refuses (whatever its protocol or header), and symbolic
sizes or guards that are not plain arithmetic. Nothing in the archive is run."""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from typing import Any

import torch
from torch import Tensor

from bebias.errors import BebiasError
from bebias.parse import MAX_DEPTH, parse_json

__all__ = ["PT2_ALLOWLIST", "check_pt2", "one_line"]

# torch 2.14's ``torch.export.save`` (torch/export/pt2_archive/_package.py) writes, under one
# root folder ``<name>/``, the entries below; ``torch.export.load`` reads them as follows:
#
# - ``archive_format`` ("pt2"), ``archive_version`` ("0"), ``byteorder``, ``.data/version``,
#   ``.data/serialization_id``: short text records;
# - ``models/model.json``: the program, JSON. Its symbolic sizes (``expr_str``) are parsed
#   with ``sympy.sympify`` -- Python ``eval`` -- and its ``guards_code`` is compiled with
#   ``exec`` by ``ep.module()``: both must be plain arithmetic / plain shape checks;
# - ``data/weights/model_weights_config.json`` / ``data/constants/model_constants_config.json``:
#   JSON naming each weight / constant's payload; ``data/weights/weight_N`` and
#   ``data/constants/tensor_N``: raw tensor bytes, or -- ``"use_pickle": true`` -- a
#   ``torch.save`` pickle that torch loads with ``weights_only=False``;
# - ``data/constants/custom_obj_N`` (TorchScript pickler) and ``opaque_obj_N``
#   (``pickle.loads``): objects, i.e. code -- always refused;
# - ``data/sample_inputs/model.pt``: a ``torch.save`` pickle, loaded with ``weights_only=True``
#   and, if that fails, AGAIN with ``weights_only=False``;
# - ``extra/<name>``: the extra files, read as text.
#
# Anything else -- the legacy ``data/weights/model.pt`` / ``data/constants/model.pt``
# pickles, ``data/aotinductor/`` (shared libraries that load_pt2 dlopens), executorch or
# other models, entries outside the root folder (the pre-2.8 fallback format) -- is refused.
# Every pickle torch.export.load could unpickle is first loaded here with
# ``torch.load(weights_only=True)``, whatever its first bytes (protocol 0 and 1 pickles have
# no ``\x80`` header), and must give what torch expects. The bytes checked are read with
# torch's own zip reader from the same in-memory copy that is then given to
# torch.export.load, so the check and the load cannot see different entries.

#: entries with a fixed name inside the root folder -> required?
_PT2_FIXED: dict[str, bool] = {
    "archive_format": True, "archive_version": True, "byteorder": False, ".data/version": False,
    ".data/serialization_id": False, "models/model.json": True, "data/weights/model_weights_config.json": True,
    "data/constants/model_constants_config.json": True, "data/sample_inputs/model.pt": True}
_PT2_WEIGHTS = ("data/weights/", "data/weights/model_weights_config.json", re.compile(r"weight_[0-9]+"))
_PT2_CONSTANTS = ("data/constants/", "data/constants/model_constants_config.json", re.compile(r"tensor_[0-9]+"))
_PT2_EXTRA = re.compile(r"extra/[^\x00-\x1f\x7f]+")
_PT2_OBJECTS = ("custom_obj_", "opaque_obj_")
#: the allowlist, as the refusal message states it
PT2_ALLOWLIST: tuple[str, ...] = (*_PT2_FIXED, "data/weights/weight_N", "data/constants/tensor_N", "extra/*")

# symbolic sizes: sympy's srepr / str of integer arithmetic over shape symbols
_SYM_TOKEN = re.compile(r"\s+|(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                        r"|'(?:[A-Za-z_][A-Za-z0-9_]*|[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)'"
                        r"|\*\*|//|[-+*/%(),=<>&|~]")
_SYM_NAMES = frozenset("""Symbol Integer Rational Float Add Mul Pow Mod Max Min Abs floor ceiling sqrt
    Eq Ne Lt Le Gt Ge StrictLessThan StrictGreaterThan LessThan GreaterThan Equality Unequality
    And Or Not Piecewise ExprCondPair True False true false BooleanTrue BooleanFalse oo zoo nan
    Infinity NegativeInfinity ComplexInfinity NaN Half One Zero NegativeOne int_oo IntInfinity
    NegativeIntInfinity positive negative nonnegative nonpositive nonzero zero integer real rational
    finite infinite even odd commutative extended_real precision evaluate""".split())
# guards: ``L['x'].size()[0] % 2 == 0`` and the like (torch's ShapeGuardPythonPrinter)
_GUARD_TOKEN = re.compile(r" +|(?P<num>[0-9]+(?:\.[0-9]+)?)"
                          r"|L(?:\[(?:[0-9]+|'[A-Za-z_][A-Za-z0-9_]*')\])+"
                          r"(?:\.(?:size|stride)\(\)\[[0-9]+\]|\.storage_offset\(\)|\.dim\(\)|\.numel\(\))?"
                          r"|math\.(?:floor|ceil|trunc|sqrt|isnan|inf)\b(?!\.)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                          r"|\*\*|//|==|!=|<=|>=|[-+*/%()<>,]")
_GUARD_NAMES = frozenset("and or not True False max min abs int float inf IsNonOverlappingAndDenseIndicator "
                         "cast_symbool_to_symint_guardless".split())


def one_line(e: BaseException) -> str:
    """One short line of an exception's text (torch's are often many lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    line = lines[0] if lines else type(e).__name__
    why = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Please use|Check the documentation|$)", " ".join(lines))
    if why:  # the restricted unpickler's reason, not its advice
        line = why.group(1)
    return line if len(line) <= 160 else line[:157] + "..."


def _show(name: str, n: int = 80) -> str:
    """An entry name or a string from the archive, on one line (control characters escaped)."""
    s = name.encode("unicode_escape").decode("ascii")
    return s if len(s) <= n else s[:n - 3] + "..."


def _refused(p: str, what: str) -> BebiasError:
    return BebiasError(f"torch.export archive refused, nothing in it was run: {what}", p)


def _tokens_ok(text: str, token: "re.Pattern[str]", name_ok) -> bool:
    pos = 0
    while pos < len(text):
        m = token.match(text, pos)
        if m is None or m.end() == pos:
            return False
        if m.group("name") is not None and not name_ok(m.group("name")):
            return False
        pos = m.end()
    return True


def _sym_name_ok(name: str) -> bool:
    import builtins

    import sympy
    import torch.utils._sympy.functions as fns

    if name in _SYM_NAMES:
        return True
    if re.fullmatch(r"[a-z]{1,4}[0-9]+", name):  # a shape symbol: s0, s77, u3, zuf0 ...
        return not hasattr(builtins, name) and not hasattr(sympy, name)
    fn = getattr(fns, name, None) if "__" not in name else None  # FloorDiv, PythonMod, ... (pure math)
    return isinstance(fn, type) and issubclass(fn, sympy.Basic)


def _check_pt2_program(program: Any, p: str) -> None:
    """models/model.json: what torch evaluates as code must be arithmetic / shape checks."""
    if not isinstance(program, dict):
        raise _refused(p, "models/model.json is not a JSON object")
    stack: list[Any] = [program]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if "expr_str" in o and not (isinstance(o["expr_str"], str)
                                        and _tokens_ok(o["expr_str"], _SYM_TOKEN, _sym_name_ok)):
                raise _refused(p, f"models/model.json has a symbolic size that is not plain arithmetic "
                                  f"({_show(str(o['expr_str']), 60)}); torch.export.load would eval it (sympify)")
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    guards = program.get("guards_code") or []
    plain = _GUARD_NAMES.__contains__
    bad = guards if not isinstance(guards, list) else next(
        (g for g in guards if not (isinstance(g, str) and _tokens_ok(g, _GUARD_TOKEN, plain))), None)
    if bad is not None:
        raise _refused(p, f"models/model.json has guard code that is not a plain shape check ({_show(str(bad), 60)}); "
                          "the loaded module would exec it")
    ranges = program.get("range_constraints") or {}
    if not isinstance(ranges, dict) or not all(
            isinstance(r, dict) and all(r.get(b) is None or type(r.get(b)) is int for b in ("min_val", "max_val"))
            for r in ranges.values()):
        raise _refused(p, "models/model.json has range_constraints that are not integers")


def check_pt2(data: bytes, p: str) -> None:
    """Refuse a ``.pt2`` archive (its bytes) with anything outside the allowlist above, or a
    pickle that ``torch.load(weights_only=True)`` refuses. Raises :class:`BebiasError`."""
    from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            zip_names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise _refused(p, f"not a readable zip ({one_line(e)})") from None
    if not zip_names:
        raise _refused(p, "the zip is empty")
    dup = next((n for i, n in enumerate(zip_names) if n in zip_names[:i]), None)
    if dup is not None:
        raise _refused(p, f"entry {_show(dup)} appears twice in the zip")
    root = zip_names[0].split("/", 1)[0]
    stray = next((n for n in zip_names if not n.startswith(root + "/") or n == root + "/"), None)
    if stray is not None:
        raise _refused(p, f"entry {_show(stray)} is outside the archive's folder {_show(root)}/")
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        records = list(reader.get_all_records())
    except Exception as e:  # noqa: BLE001 - torch's zip reader, whatever it raises
        raise _refused(p, f"torch cannot read it as an archive ({one_line(e)})") from None
    rel = [n[len(root) + 1:] for n in zip_names]
    if sorted(records) != sorted(rel):
        odd = sorted(set(records) ^ set(rel)) or ["(duplicates)"]
        raise _refused(p, f"torch and Python's zipfile list different entries ({_show(odd[0])})")

    def read(name: str) -> bytes:  # what torch.export.load will read, through the same reader
        try:
            return bytes(reader.get_record(name))
        except Exception as e:  # noqa: BLE001
            raise _refused(p, f"entry {name} cannot be read ({one_line(e)})") from None

    def load_json(name: str) -> Any:
        try:
            return parse_json(read(name), name)
        except BebiasError:  # invalid, or nesting deeper than any graph torch.export writes
            raise _refused(p, f"{name} is not valid JSON (or nests more than {MAX_DEPTH} levels)") from None

    def weights_only(name: str, blob: bytes) -> Any:
        try:
            with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal says enough
                warnings.simplefilter("ignore")
                return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - the restricted unpickler's refusal, whatever its class
            raise _refused(p, f"{name} is a pickle that torch.load(weights_only=True) refuses ({one_line(e)}); "
                              "torch.export.load would unpickle it unrestricted") from None

    payloads: dict[str, set[str]] = {_PT2_WEIGHTS[0]: set(), _PT2_CONSTANTS[0]: set()}
    for n in records:
        if n in _PT2_FIXED or _PT2_EXTRA.fullmatch(n):
            continue
        folder, _, base = n.rpartition("/")
        if base.startswith(_PT2_OBJECTS):
            raise _refused(p, f"entry {_show(n)} is a custom/opaque object, which torch.export.load unpickles "
                              "as arbitrary Python objects")
        kind = next((k for k in (_PT2_WEIGHTS, _PT2_CONSTANTS) if folder + "/" == k[0] and k[2].fullmatch(base)), None)
        if kind is None:
            raise _refused(p, f"unexpected entry {_show(n)} (allowed: {', '.join(PT2_ALLOWLIST)})")
        payloads[kind[0]].add(base)
    missing = [n for n, required in _PT2_FIXED.items() if required and n not in records]
    if missing:
        raise _refused(p, f"entry {missing[0]} is missing")
    if read("archive_format").strip() != b"pt2" or read("archive_version").strip() != ARCHIVE_VERSION_VALUE.encode():
        raise _refused(p, f"archive_format/archive_version are not pt2/{ARCHIVE_VERSION_VALUE}")

    for folder, cfg_name, pattern in (_PT2_WEIGHTS, _PT2_CONSTANTS):
        cfg = load_json(cfg_name)
        entries = cfg.get("config") if isinstance(cfg, dict) else None
        if not isinstance(entries, dict):
            raise _refused(p, f"{cfg_name} has no \"config\" object")
        used: set[str] = set()
        for fqn, meta in entries.items():
            name = meta.get("path_name") if isinstance(meta, dict) else None
            if not isinstance(name, str):
                raise _refused(p, f"{cfg_name}: entry {_show(str(fqn))} has no path_name")
            if name.startswith(_PT2_OBJECTS):
                raise _refused(p, f"{cfg_name}: {_show(str(fqn))} is a custom/opaque object ({_show(name)}), which "
                                  "torch.export.load unpickles as arbitrary Python objects")
            if not pattern.fullmatch(name) or name not in payloads[folder]:
                raise _refused(p, f"{cfg_name}: {_show(str(fqn))} points at {_show(name)}, not at a "
                                  f"{folder}{pattern.pattern.split('_')[0]}_N entry of the archive")
            used.add(name)
            if meta.get("use_pickle"):  # torch.load(..., weights_only=False) in torch.export.load
                obj = weights_only(folder + name, read(folder + name))
                if not isinstance(obj, Tensor):
                    raise _refused(p, f"{folder}{name} holds a {type(obj).__name__}, not a tensor")
        unused = sorted(payloads[folder] - used)
        if unused:
            raise _refused(p, f"entry {folder}{unused[0]} is not listed in {cfg_name}")

    sample = read("data/sample_inputs/model.pt")
    if sample:  # torch: weights_only=True, then weights_only=False if that fails
        weights_only("data/sample_inputs/model.pt", sample)
    _check_pt2_program(load_json("models/model.json"), p)
