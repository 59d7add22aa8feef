"""The allowlist check a ``torch.export`` (``.pt2``) archive passes before
``torch.export.load`` sees it: :func:`check_pt2` refuses, with one line, any entry torch
would not write, custom / opaque object constants, every pickle that
``torch.load(weights_only=True)`` refuses (whatever its protocol or header), and symbolic
sizes or guards that are not plain arithmetic, and a graph that calls any operator outside an
explicit list of pure tensor computations (:data:`PT2_OPS`). Nothing in the archive is run."""

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

__all__ = ["PT2_ALLOWLIST", "PT2_OPS", "check_pt2", "one_line"]

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


# The graph's operators. torch.export.load resolves a node's target by name: ``torch.X.Y``
# is any attribute of the torch module (torch.save, torch.ops.aten.from_file, ...), and
# ep.module() calls it with the node's arguments on every forward. Only the operators below
# may appear: pure tensor computations (their result depends on their arguments only) and
# the shape arithmetic of dynamic sizes -- nothing that opens files, touches storages,
# draws random numbers or writes into a tensor the graph did not create.
_ATEN_PURE = """
    convolution _convolution conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
    linear addmm mm bmm matmul baddbmm einsum
    batch_norm _native_batch_norm_legit_no_training layer_norm native_layer_norm group_norm
    native_group_norm rms_norm
    relu relu6 hardtanh gelu silu sigmoid tanh hardswish hardsigmoid leaky_relu elu softplus mish
    clamp clamp_min clamp_max threshold
    max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices avg_pool1d
    avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
    _adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool2d adaptive_max_pool3d
    softmax _softmax log_softmax _log_softmax
    mean sum amax amin max min argmax argmin var std var_mean logsumexp linalg_vector_norm
    add sub rsub mul div neg pow sqrt rsqrt exp log abs reciprocal square sign floor ceil round erf
    sin cos log1p expm1
    where maximum minimum eq ne lt le gt ge logical_not logical_and logical_or
    cat stack pad constant_pad_nd repeat index_select gather flip roll clone
    upsample_nearest2d upsample_nearest3d upsample_bilinear2d upsample_trilinear3d upsample_linear1d
    _to_copy lift_fresh_copy copy zeros ones full arange scalar_tensor zeros_like ones_like full_like
    new_zeros new_ones new_full dropout
    sym_size sym_stride sym_numel sym_storage_offset _assert_scalar _assert_tensor_metadata
    sym_constrain_range sym_constrain_range_for_size _local_scalar_dense
    """.split()
# views: their result shares the first argument's memory (an in-place op on it writes there)
_ATEN_VIEWS = """view _unsafe_view reshape flatten unflatten squeeze unsqueeze permute transpose t
    expand select slice narrow split split_with_sizes chunk unbind alias detach contiguous movedim
    to""".split()
# in-place: allowed only on a tensor the graph computed itself (never on an input, a weight,
# a buffer or a constant, nor a view of one)
_ATEN_INPLACE = """relu_ add_ mul_ sub_ div_ hardtanh_ clamp_ clamp_min_ clamp_max_ silu_ sigmoid_
    tanh_ hardswish_ leaky_relu_ fill_ zero_""".split()
#: arguments that must hold a value: these ops update running statistics / draw random numbers otherwise
_ATEN_ARG = {"batch_norm": ("training", False), "dropout": ("train", False)}
_SYM_PY = frozenset(
    [f"_operator.{n}" for n in "add sub mul floordiv truediv mod neg pow eq ne lt le gt ge and_ or_ not_".split()]
    + [f"torch.{n}" for n in "sym_float sym_int sym_max sym_min sym_not sym_sqrt sym_ite".split()]
    + [f"math.{n}" for n in "ceil floor trunc sqrt".split()])
#: the operators a .pt2 graph may call: aten op names (any overload but ``out``) and shape arithmetic
PT2_OPS: frozenset[str] = frozenset(_ATEN_PURE + _ATEN_VIEWS + _ATEN_INPLACE) | _SYM_PY
#: argument kinds a node may take (graphs, custom objects and operators as arguments are refused)
_PT2_ARGS = frozenset("""as_none as_tensor as_tensors as_int as_ints as_float as_floats as_string as_strings
    as_sym_int as_sym_ints as_scalar_type as_memory_format as_layout as_device as_bool as_bools as_sym_bool
    as_sym_bools as_optional_tensors as_sym_float as_sym_floats as_optional_tensor as_complex as_int_lists
    as_float_lists""".split())
_PT2_INPUT_SPECS = frozenset({"user_input", "parameter", "buffer", "tensor_constant", "constant_input"})
_ATEN = re.compile(r"torch\.ops\.aten\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")


def one_line(e: BaseException) -> str:
    """One short line of an exception's text (torch's are often many lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    line = lines[0] if lines else type(e).__name__
    if line.startswith("The following operation failed in the TorchScript interpreter"):
        line = lines[-1]  # the scripted traceback ends with the error itself
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


def _tensor_names(arg: Any) -> list[str]:
    """The tensor names one serialized argument (or node output) refers to."""
    names: list[Any] = []
    for kind, v in (arg.items() if isinstance(arg, dict) else ()):
        if kind == "as_tensor" and isinstance(v, dict):
            names.append(v.get("name"))
        elif kind == "as_tensors" and isinstance(v, list):
            names += [t.get("name") for t in v if isinstance(t, dict)]
        elif kind == "as_optional_tensor":
            names += _tensor_names(v)
        elif kind == "as_optional_tensors" and isinstance(v, list):
            names += [n for t in v for n in _tensor_names(t)]
    return [n for n in names if isinstance(n, str)]


def _check_pt2_ops(program: dict, p: str) -> None:
    """models/model.json's graph: every node calls an operator of :data:`PT2_OPS` with plain
    arguments; in-place ops write only into tensors the graph computed; the signature feeds the
    graph weights, buffers, constants and the clip, and takes back only the outputs (no buffer
    or input mutation)."""
    gm = program.get("graph_module")
    graph = gm.get("graph") if isinstance(gm, dict) else None
    sig = gm.get("signature") if isinstance(gm, dict) else None
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) or not isinstance(sig, dict):
        raise _refused(p, "models/model.json has no graph")
    for key, allowed in (("input_specs", _PT2_INPUT_SPECS), ("output_specs", {"user_output"})):
        specs = sig.get(key)
        bad = next((k for s in (specs if isinstance(specs, list) else [None])
                    for k in (s if isinstance(s, dict) else {"(not an object)": 0}) if k not in allowed), None)
        if bad is not None:
            raise _refused(p, f"the graph signature has a {_show(str(bad), 40)} entry in {key} (allowed: "
                              f"{', '.join(sorted(allowed))}): the exported program must only compute its outputs")
    # where each tensor's memory comes from: a graph input (weight, buffer, constant, the clip) or the graph
    from_input = {n for a in graph.get("inputs") or [] for n in _tensor_names(a)}
    for node in graph["nodes"]:
        target = node.get("target") if isinstance(node, dict) else None
        if not isinstance(target, str):
            raise _refused(p, "models/model.json has a graph node without an operator")
        m = _ATEN.fullmatch(target)
        op = m.group(1) if m else target
        shown = f"aten.{m.group(1)}.{m.group(2)}" if m else _show(target, 60)
        if op not in PT2_OPS or (m is None) != (op in _SYM_PY) or (m and m.group(2).endswith("out")):
            raise _refused(p, f"the graph calls {shown}, which is not one of the pure tensor operators bebias "
                              "runs (no file, storage, random-state or out= ops)")
        inputs = node.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and isinstance(i.get("arg"), dict)
                                                   for i in inputs):
            raise _refused(p, f"the graph's {shown} node has malformed arguments")
        args = {i.get("name"): i["arg"] for i in inputs}
        odd = next((k for a in args.values() for k in a if k not in _PT2_ARGS), None)
        if odd is not None:
            raise _refused(p, f"the graph's {shown} node takes a {_show(str(odd), 40)} argument (a graph, object "
                              "or operator), which bebias does not run")
        if op in _ATEN_ARG:
            name, value = _ATEN_ARG[op]
            if args.get(name, {}).get("as_bool", None) is not value:
                raise _refused(p, f"the graph calls {shown} with {name} not {value} (it would update running "
                                  "statistics or draw random numbers)")
        first = next((n for i in inputs for n in _tensor_names(i["arg"])), None)
        if op in _ATEN_INPLACE and (first is None or first in from_input):
            raise _refused(p, f"the graph calls the in-place {shown} on {_show(str(first), 40)}, an input, weight, "
                              "buffer or constant (or a view of one): in-place ops may only write into tensors "
                              "the graph computed")
        if op in _ATEN_VIEWS or op in _ATEN_INPLACE:  # the result shares the first argument's memory
            if first in from_input:
                outs = node.get("outputs") if isinstance(node.get("outputs"), list) else []
                from_input.update(n for o in outs for n in _tensor_names(o))


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
    program = load_json("models/model.json")
    _check_pt2_program(program, p)
    _check_pt2_ops(program, p)
