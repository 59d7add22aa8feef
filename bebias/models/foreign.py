"""Weights from other codebases: foreign state_dicts for a known arch, and TorchScript models.

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
pickled code is refused) or a TorchScript archive, a model taking a normalised clip
``(B, 3, T, H, W)`` and returning logits ``(B, K)``; an archive may carry its input spec in
an extra file ``bebias.json`` (``{"input": {...}, "classes": [...]}``).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import torch
from torch import Tensor, nn

from bebias.errors import BebiasError

__all__ = ["CONTAINER_KEYS", "PREFIXES", "ScriptedClassifier", "adapt_state_dict", "is_torchscript",
           "load_foreign"]

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
                           "fc8.weight")
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


class ScriptedClassifier(nn.Module):
    """A TorchScript model ``(B, 3, T, H, W)`` normalised clip -> logits ``(B, K)``."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, clip: Tensor) -> Tensor:
        out = self.module(clip)
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != clip.shape[0]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise BebiasError(f"the TorchScript model must return logits (B, num_classes); got {got}")
        return out


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


def load_foreign(path: str | os.PathLike, arch: str | None, *, raw: Any = None) -> tuple[nn.Module, dict[str, Any]]:
    """A foreign file -> (model in eval mode, meta).

    - TorchScript archive: a :class:`ScriptedClassifier` (``arch`` is ignored);
      ``meta["kind"] = "torchscript"``.
    - state_dict: a :class:`~bebias.models.classifier.VideoClassifier` when it has a
      classification head (``meta["kind"] = "classifier"``, ``meta["num_classes"]``), else
      the bare backbone (``"pretrain"``). Needs ``arch``.

    ``meta`` also has ``arch``, ``input`` / ``classes`` where the file records them, and
    ``foreign`` (the :func:`adapt_state_dict` report). ``raw``: the file's contents when
    the caller has already read them with :func:`bebias.checkpoint.load_file`. Errors are
    :class:`BebiasError`.
    """
    from bebias.checkpoint import load_file
    from bebias.models.backbones import build_backbone
    from bebias.models.classifier import VideoClassifier

    p = os.fspath(path)
    if is_torchscript(p):
        extra = {"bebias.json": ""}
        try:
            module = torch.jit.load(p, map_location="cpu", _extra_files=extra)
        except Exception as e:  # noqa: BLE001 - many kinds from a bad archive
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BebiasError(f"not a loadable TorchScript archive ({first[:160]})", p) from None
        meta: dict[str, Any] = {"kind": "torchscript", "arch": "torchscript", "foreign": {"layout": "torchscript"}}
        if extra["bebias.json"]:
            try:
                meta.update(_meta_from(json.loads(extra["bebias.json"])))
            except (ValueError, TypeError):
                raise BebiasError("malformed extra file bebias.json in the TorchScript archive", p) from None
        return ScriptedClassifier(module).eval(), meta
    if not arch:
        raise BebiasError("not a bebias checkpoint: a state_dict from another codebase needs --arch "
                          "(r3d_18, s3d, ...) to know which network it holds", p)
    if raw is None:
        raw = load_file(p)
    try:
        bsd, head, report = adapt_state_dict(raw, arch)
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
