"""Weights from other codebases: foreign state_dicts for a known arch, TorchScript and
``torch.export`` models.

:func:`adapt_state_dict` turns a state_dict saved by another codebase into bebias's
backbone (+ optional linear head) layout, for one of :data:`~bebias.models.backbones.ARCHS`:

- containers are unwrapped: ``{"state_dict": ...}`` (Lightning, MMAction), ``{"model": ...}``,
  ``{"model_state": ...}``, ``{"net": ...}`` (nested any number of times);
- prefixes are stripped: ``module.`` (DataParallel / DDP), ``model.`` (Lightning),
  ``backbone.``, ``encoder.``, ``net.``; for a MoCo layout (``encoder_q.`` / ``backbone_q.``)
  only the QUERY encoder is kept: the key encoder, the queue and its projection head are dropped;
- a classification head is recognised (``fc``, ``head``, ``head.fc``, ``head.proj``,
  ``classifier``, ``classifier.1`` = torchvision S3D's 1x1x1 conv, ``logits.conv3d`` =
  pytorch-i3d's) and turned into a linear layer; the class count is read from its weight;
- the remaining keys must match ``build_backbone(arch).state_dict()`` exactly: a missing,
  unexpected or shape-mismatched key is a :class:`BebiasError` naming counts and the first
  keys, never a silent partial load. (Only BatchNorm's ``num_batches_tracked`` counters,
  absent from checkpoints of PyTorch < 0.4.1, are filled in; the report says so.)

:func:`load_foreign` reads a file: a foreign state_dict (``torch.load(weights_only=True)``:
pickled code is refused) or a whole-model archive -- TorchScript (``torch.jit.save``) or
``torch.export`` (``torch.export.save``, ``.pt2``) -- taking a normalised clip
``(B, 3, T, H, W)`` and returning logits ``(B, K)``. An archive may carry its input spec in
an extra file ``bebias.json`` (``{"input": {...}, "classes": [...]}``); an exported program
with static frame and spatial sizes gives ``frames`` and ``size`` by itself.

``torch.export.load`` unpickles some payloads without restriction (and ``sympify``/``exec``s
parts of the program), so :func:`load_foreign` first checks a ``.pt2`` archive against an
allowlist of what ``torch.export.save`` writes (:data:`PT2_ALLOWLIST`; see the notes in
:mod:`bebias.models.pt2_check`): any other entry, custom / opaque object constants, every pickle that
``torch.load(weights_only=True)`` refuses, and symbolic sizes or guards that are not plain
arithmetic are refused -- one-line :class:`BebiasError` -- before torch.export.load runs.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import warnings
import zipfile
from typing import Any

import torch
from torch import Tensor, nn

from bebias.errors import BebiasError
from bebias.parse import parse_json
from bebias.models.pt2_check import PT2_ALLOWLIST, check_pt2, one_line

__all__ = ["CONTAINER_KEYS", "PREFIXES", "PT2_ALLOWLIST", "ArchiveClassifier", "adapt_state_dict", "archive_layout",
           "is_torchscript", "load_foreign"]

#: dict entries that hold the weights, tried in this order (nested containers are unwrapped)
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model_state", "model", "net", "network")
#: prefixes stripped when every (non-head) key carries them
PREFIXES: tuple[str, ...] = ("module.", "model.", "encoder_q.", "backbone_q.", "backbone.", "encoder.", "net.")
#: query-encoder prefixes of a MoCo layout: only their keys are kept
_QUERY = ("encoder_q.", "backbone_q.")
#: MoCo's non-query parts (after a leading ``module.``)
_MOCO_DROP = ("encoder_k.", "backbone_k.", "queue", "queue_ptr", "queue_label", "predictor.", "projector.",
              "head_q.", "head_k.")
#: candidate classification heads: the weight key (bias = same with ``.bias``)
_HEADS: tuple[str, ...] = ("fc.weight", "head.weight", "head.fc.weight", "head.proj.weight", "head.linear.weight",
                           "classifier.weight", "classifier.1.weight", "logits.conv3d.weight", "logits.weight",
                           "fc8.weight", "head.1.weight")  # head.1: torchvision MViT's (Dropout, Linear)
_HEAD_ROOTS = ("fc.", "fc8.", "head.", "classifier.", "logits.", "heads.", "cls_head.")

_BN_COUNTER = "num_batches_tracked"


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (" ..." if len(keys) > n else "")


def _unwrap(obj: Any) -> tuple[dict[str, Tensor], list[str]]:
    """-> (the tensors of the innermost state_dict, the container keys descended through)."""
    path: list[str] = []
    for _ in range(8):
        if not isinstance(obj, dict):
            break
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            break
        nxt = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), dict) and obj[k]), None)
        if nxt is None:
            break
        path.append(nxt)
        obj = obj[nxt]
    if not isinstance(obj, dict):
        raise BebiasError(f"not a state_dict (a {type(obj).__name__}); expected a dict of tensors")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not sd:
        raise BebiasError("no weights found: expected a dict of tensors, or one under "
                          f"{'/'.join(CONTAINER_KEYS)} (keys: {_few(sorted(map(str, obj)))})")
    return sd, path


def _is_head_key(k: str) -> bool:
    return k.startswith(_HEAD_ROOTS)


def adapt_state_dict(sd: dict, arch: str) -> tuple[dict[str, Tensor], dict[str, Tensor] | None, dict[str, Any]]:
    """A foreign state_dict -> (backbone state_dict, head ``{"weight": (K, dim), "bias": (K,)}`` or None, report).

    ``report``: ``container`` (keys unwrapped), ``prefixes`` (stripped, in order),
    ``layout`` (``plain`` / ``dataparallel`` / ``lightning`` / ``moco``), ``head`` (its key)
    and ``num_classes`` (None without head), ``dropped`` (count) and ``dropped_keys`` (the
    first few: key encoder, queue, projection heads), ``filled`` (BatchNorm counters added).
    See the module docstring; raises :class:`BebiasError` when the weights do not match.
    """
    from bebias.models.backbones import build_backbone

    net = build_backbone(arch)
    own, dim = net.state_dict(), net.dim
    arch = arch.strip().lower()
    sd, container = _unwrap(sd)
    prefixes: list[str] = []
    dropped: list[str] = []
    moco = False

    def own_hits(d: dict) -> int:
        return sum(k in own for k in d)

    for _ in range(len(PREFIXES) + 2):
        if own_hits(sd) == len(own) or own_hits(sd) == len(sd):
            break
        # MoCo: keep the query encoder only
        q = next((p for p in _QUERY if any(k.startswith(p) for k in sd)), None)
        if q is not None:
            moco = True
            dropped += [k for k in sd if not k.startswith(q)]
            sd = {k[len(q):]: v for k, v in sd.items() if k.startswith(q)}
            prefixes.append(q)
            continue
        for p in PREFIXES:
            body = [k for k in sd if k.startswith(p)]
            rest = [k for k in sd if not k.startswith(p)]
            if body and all(_is_head_key(k) or k.startswith(_MOCO_DROP) for k in rest):
                moco = moco or any(k.startswith(_MOCO_DROP) for k in rest)
                dropped += [k for k in rest if k.startswith(_MOCO_DROP)]
                sd = {(k[len(p):] if k.startswith(p) else k): v for k, v in sd.items() if not k.startswith(_MOCO_DROP)}
                prefixes.append(p)
                break
        else:
            break
    if arch == "i3d" and own_hits(sd) < len(own) and own_hits({k.lower(): 0 for k in sd}) > own_hits(sd):
        sd = {k.lower(): v for k, v in sd.items()}  # pytorch-i3d: Mixed_3b -> mixed_3b
        prefixes.append("(lowercased)")

    # the classification head (not for MoCo: its fc is a projection head), set aside
    head_like = [k for k in sd if k not in own and _is_head_key(k)]
    wkey = next((h for h in _HEADS if h in sd), None) if head_like and not moco else None
    bkey = wkey[:-len("weight")] + "bias" if wkey else None
    if wkey and not set(head_like) <= {wkey, bkey}:
        wkey = bkey = None  # several layers: a projection head, not a classifier
    if not wkey:
        dropped += head_like
    head_raw = {k: sd[k] for k in head_like}
    sd = {k: v for k, v in sd.items() if k not in head_like}

    # the backbone must match exactly
    filled = [k for k in own if k not in sd and k.endswith(_BN_COUNTER)]
    for k in filled:
        sd[k] = own[k].clone()
    missing = sorted(k for k in own if k not in sd)
    unexpected = sorted(k for k in sd if k not in own)
    shape = sorted(k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or shape:
        parts = [f"{len(keys)} {name}: {_few(keys)}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", shape))
                 if keys]
        how = f" after stripping {''.join(prefixes)}" if prefixes else ""
        raise BebiasError(f"weights do not match arch {arch!r}{how} (" + "; ".join(parts) + ")")

    head: dict[str, Tensor] | None = None
    if wkey:
        w = head_raw[wkey]
        if w.dim() == 5 and tuple(w.shape[2:]) == (1, 1, 1):
            w = w.flatten(1)  # a 1x1x1 conv over pooled features is a linear layer
        if w.dim() != 2 or w.shape[1] != dim:
            raise BebiasError(f"head {wkey} has shape {tuple(head_raw[wkey].shape)}; a linear head on {arch!r} "
                              f"needs (num_classes, {dim})")
        b = head_raw.get(bkey)
        if b is None:
            b = torch.zeros(w.shape[0], dtype=w.dtype)
        if tuple(b.shape) != (w.shape[0],):
            raise BebiasError(f"head bias {bkey} has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
        head = {"weight": w.contiguous(), "bias": b.contiguous()}
    layout = ("moco" if moco else "lightning" if "state_dict" in container and "model." in prefixes
              else "dataparallel" if "module." in prefixes else "plain")
    report = {"container": container, "prefixes": prefixes, "layout": layout, "head": wkey,
              "num_classes": None if head is None else int(head["weight"].shape[0]),
              "dropped": len(dropped), "dropped_keys": dropped[:8], "filled": len(filled)}
    return {k: sd[k] for k in own}, head, report


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------

def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``constants.pkl`` or ``code/``;
    ``torch.save`` zips have neither)."""
    p = os.fspath(path)
    if not os.path.isfile(p) or not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _is_pt2(p: str) -> bool:
    """Whether ``p`` is a ``torch.export.save`` archive (a zip with ``<name>/archive_format`` = ``pt2``).
    Reads that one entry only: nothing is unpickled or loaded."""
    if not os.path.isfile(p) or not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as z:
            fmt = [n for n in z.namelist() if n.endswith("/archive_format") or n == "archive_format"]
            return bool(fmt) and z.read(fmt[0]).strip() == b"pt2"
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def archive_layout(path: str | os.PathLike) -> str | None:
    """``"torch.export"`` or ``"torchscript"`` for a whole-model archive, else None.

    Only looks at the zip's directory (and a ``.pt2``'s ``archive_format`` entry): the
    archive is neither checked nor loaded here; :func:`load_foreign` does both, once.
    """
    p = os.fspath(path)
    if _is_pt2(p):
        return "torch.export"
    if is_torchscript(p):
        return "torchscript"
    return None


#: seconds an archive's FIRST forward may take (bebias probe's one-clip check) before the model is
#: reported as hanging: TorchScript runs in C++ and cannot be interrupted (not even by Ctrl-C), so
#: the call runs in a thread that is abandoned past this bound. A first call on one clip of
#: bebias's largest architecture takes seconds on a CPU.
FIRST_CALL_TIMEOUT_S = 120.0


class ArchiveClassifier(nn.Module):
    """A whole model from an archive: normalised clip ``(B, 3, T, H, W)`` -> logits ``(B, K)``.

    ``batch``: the batch size an exported program was traced with when it is static; other
    batch sizes are then run in chunks of it (the last one zero-padded, its extra rows dropped).
    Whatever the archive's code raises is one :class:`BebiasError` naming ``path`` and the
    batch shape; the first call is bounded by :data:`FIRST_CALL_TIMEOUT_S`.
    """

    def __init__(self, module: nn.Module, layout: str, batch: int | None = None, path: str | None = None) -> None:
        super().__init__()
        self.module, self.layout, self.batch, self.path = module, layout, batch, path
        self._called = False

    def train(self, mode: bool = True) -> "ArchiveClassifier":
        # an archive is frozen in the mode it was saved in (exported programs refuse .train())
        self.training = mode
        return self

    def _call(self, x: Tensor) -> Any:
        try:
            return self.module(x)
        except BebiasError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the archive's code raises (torch.jit.Error, ...)
            raise BebiasError(f"the {self.layout} model fails on a {tuple(x.shape)} batch ({one_line(e)})",
                              self.path) from None

    def _first_call(self, x: Tensor) -> Any:
        box: dict[str, Any] = {}
        grad = torch.is_grad_enabled()  # thread-local in torch: carried over

        def work() -> None:
            try:
                with torch.set_grad_enabled(grad):
                    box["out"] = self._call(x)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = e

        t = threading.Thread(target=work, name="bebias-archive-first-call", daemon=True)
        t.start()
        t.join(FIRST_CALL_TIMEOUT_S)
        if t.is_alive():
            err = BebiasError(f"the {self.layout} model did not return within {FIRST_CALL_TIMEOUT_S:g} s on a "
                              f"{tuple(x.shape)} batch (a loop that never ends?); stopped", self.path)
            err.abandoned_thread = True  # type: ignore[attr-defined]  # the CLI then exits without joining it
            raise err
        if "error" in box:
            raise box["error"]
        self._called = True
        return box["out"]

    def forward(self, clip: Tensor) -> Tensor:
        run = self._call if self._called else self._first_call
        if self.batch is None or clip.shape[0] == self.batch:
            out = run(clip)
        else:
            parts = []
            for s in range(0, clip.shape[0], self.batch):
                x = clip[s:s + self.batch]
                n = x.shape[0]
                if n < self.batch:
                    x = torch.cat([x, x.new_zeros((self.batch - n, *x.shape[1:]))])
                parts.append(run(x)[:n])
                run = self._call if self._called else self._first_call
            out = torch.cat(parts)
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != clip.shape[0]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise BebiasError(f"the {self.layout} model must return logits (B, num_classes); got {got}", self.path)
        return out


# --------------------------------------------------------------------------------------
# loading: torch.export archives (checked first), TorchScript archives, state_dicts
# --------------------------------------------------------------------------------------

class _Mute(logging.Filter):
    """Drops torch.export.load's multi-line "error when deserializing" warning: the error
    that follows it is reported as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _load_exported(p: str) -> tuple[nn.Module, dict[str, Any]]:
    try:
        with open(p, "rb") as f:
            data = f.read()  # checked and loaded from this one copy
    except OSError as e:
        raise BebiasError(f"cannot read the torch.export archive ({e.strerror})", p) from None
    check_pt2(data, p)
    extra = {"bebias.json": ""}
    log, mute = logging.getLogger("torch.export"), _Mute()
    log.addFilter(mute)
    try:
        ep = torch.export.load(io.BytesIO(data), extra_files=extra)
    except Exception as e:  # noqa: BLE001 - many kinds from a bad archive
        raise BebiasError(f"not a loadable torch.export archive ({one_line(e)})", p) from None
    finally:
        log.removeFilter(mute)
    # ep.module() turns the signature into code: one positional tensor, nothing else
    if getattr(ep.call_spec, "in_spec", None) != torch.utils._pytree.tree_structure(((0,), {})):
        raise BebiasError("the exported program must take one (B, 3, T, H, W) clip, as its only argument", p)
    inputs = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    if len(inputs) != 1 or not hasattr(inputs[0].meta.get("val"), "shape") or inputs[0].meta["val"].dim() != 5:
        raise BebiasError("the exported program must take one (B, 3, T, H, W) clip", p)
    shape = [d if isinstance(d, int) else None for d in inputs[0].meta["val"].shape]
    meta: dict[str, Any] = {"kind": "archive", "arch": "torch.export", "foreign": {"layout": "torch.export"}}
    spec: dict[str, Any] = {}
    if shape[2] is not None:
        spec["frames"] = shape[2]
    if shape[3] is not None and shape[3] == shape[4]:
        spec["size"] = shape[3]
    if spec:
        meta["input"] = spec
    if shape[0] is not None:
        meta["foreign"]["static_batch"] = shape[0]
    if extra["bebias.json"]:
        try:
            given = _meta_from(parse_json(extra["bebias.json"], p, "bebias.json"))
        except (BebiasError, ValueError, TypeError):
            raise BebiasError("malformed extra file bebias.json in the torch.export archive", p) from None
        if "input" in given:
            given["input"] = {**spec, **given["input"]}
        meta.update(given)
    try:
        module = ep.module()
    except Exception as e:  # noqa: BLE001 - an archive that passed the checks but is inconsistent
        raise BebiasError(f"not a loadable torch.export archive ({one_line(e)})", p) from None
    return ArchiveClassifier(module, "torch.export", shape[0], p).eval(), meta


#: why a TorchScript archive is refused unless the user trusts it (as ``trust_remote_code``)
TORCHSCRIPT_POLICY = ("is a TorchScript archive: loading and running it executes the code it carries (its scripted "
                      "methods), which bebias cannot check; refused. If you trust its author, pass --trust-code")
_SETSTATE = re.compile(rb"__setstate__")


def _load_torchscript(p: str, trust_code: bool) -> tuple[nn.Module, dict[str, Any]]:
    """A TorchScript archive, only with ``trust_code``; its ``code/`` entries are read first
    (with torch's own zip reader, from the bytes then loaded) and a ``__setstate__`` -- code
    torch.jit.load runs while loading, before anything can be checked -- is refused even then:
    a model for inference needs none (torch's own modules, quantized ones included, have none)."""
    if not trust_code:
        raise BebiasError(TORCHSCRIPT_POLICY, p)
    try:
        with open(p, "rb") as f:
            data = f.read()  # inspected and loaded from this one copy
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        code = [n for n in reader.get_all_records() if n.startswith("code/") or n.endswith(".py")]
        hit = next((n for n in code if _SETSTATE.search(bytes(reader.get_record(n)))), None)
    except OSError as e:
        raise BebiasError(f"cannot read the TorchScript archive ({e.strerror})", p) from None
    except Exception as e:  # noqa: BLE001 - torch's zip reader, whatever it raises
        raise BebiasError(f"not a readable TorchScript archive ({one_line(e)})", p) from None
    if hit is not None:
        raise BebiasError(f"TorchScript archive refused even with --trust-code: {hit} defines __setstate__, code "
                          "that torch.jit.load runs while loading; a model for inference needs none", p)
    extra = {"bebias.json": ""}
    try:
        with warnings.catch_warnings():  # torch's deprecation notice is for archive authors, not our user
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
            module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    except Exception as e:  # noqa: BLE001 - many kinds from a bad archive
        raise BebiasError(f"not a loadable TorchScript archive ({one_line(e)})", p) from None
    meta: dict[str, Any] = {"kind": "archive", "arch": "torchscript", "foreign": {"layout": "torchscript"}}
    if extra["bebias.json"]:
        try:
            meta.update(_meta_from(parse_json(extra["bebias.json"], p, "bebias.json")))
        except (BebiasError, ValueError, TypeError):
            raise BebiasError("malformed extra file bebias.json in the TorchScript archive", p) from None
    return ArchiveClassifier(module, "torchscript", path=p).eval(), meta


_SPEC_KEYS = ("frames", "stride", "size", "mean", "std")


def _meta_from(obj: Any) -> dict[str, Any]:
    """The input spec / class names a foreign file records (top level or Lightning hyper_parameters)."""
    meta: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return meta
    for d in (obj, obj.get("hyper_parameters"), obj.get("meta")):
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("input"), dict) and "input" not in meta:
            meta["input"] = {k: d["input"][k] for k in _SPEC_KEYS if k in d["input"]}
        if isinstance(d.get("classes"), (list, tuple)) and all(isinstance(c, str) for c in d["classes"]) \
                and "classes" not in meta:
            meta["classes"] = list(d["classes"])
    return meta


def load_foreign(path: str | os.PathLike, arch: str | None, *, raw: Any = None,
                 trust_code: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """A foreign file -> (model in eval mode, meta).

    - TorchScript or ``torch.export`` archive: an :class:`ArchiveClassifier` (``arch`` is
      ignored); ``meta["kind"] = "archive"``, ``meta["foreign"]["layout"]`` says which.
    - state_dict: a :class:`~bebias.models.classifier.VideoClassifier` when it has a
      classification head (``meta["kind"] = "classifier"``, ``meta["num_classes"]``), else
      the bare backbone (``"pretrain"``). Needs ``arch``.

    ``meta`` also has ``arch``, ``input`` / ``classes`` where the file records them, and
    ``foreign`` (the :func:`adapt_state_dict` report). ``raw``: the file's contents when
    the caller has already read them with :func:`bebias.checkpoint.load_file`.
    ``trust_code``: accept a TorchScript archive (:data:`TORCHSCRIPT_POLICY`). Errors are
    :class:`BebiasError`.
    """
    from bebias.checkpoint import load_file
    from bebias.models.backbones import build_backbone
    from bebias.models.classifier import VideoClassifier

    p = os.fspath(path)
    if _is_pt2(p):
        return _load_exported(p)
    if is_torchscript(p):
        return _load_torchscript(p, trust_code)
    if not arch:
        raise BebiasError("not a bebias checkpoint: a state_dict from another codebase needs --arch "
                          "(r3d_18, s3d, ...) to know which network it holds", p)
    if raw is None:
        raw = load_file(p)
    try:
        from bebias.models.toolkits import translate  # mmaction2 / ALBAR key maps

        mapped, toolkit = translate(raw, arch)
        bsd, head, report = adapt_state_dict(mapped, arch)
        report.update(toolkit or {})
    except BebiasError as e:
        raise BebiasError(str(e), p) from None
    backbone = build_backbone(arch)
    backbone.load_state_dict(bsd, strict=True)
    meta = {"arch": arch.strip().lower(), "foreign": report, **_meta_from(raw)}
    if head is None:
        meta["kind"] = "pretrain"
        return backbone.eval(), meta
    model = VideoClassifier(backbone, int(head["weight"].shape[0]))
    model.fc.load_state_dict(head, strict=True)
    meta.update(kind="classifier", num_classes=int(head["weight"].shape[0]))
    return model.eval(), meta
