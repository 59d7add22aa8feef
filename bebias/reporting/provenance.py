"""What a checkpoint is, for a table's row: method, read-out, backbone, pre-training data.

A probe's provenance names the checkpoint's architecture and its own ``method`` field, which
for a classifier is only the read-out (``linear`` / ``supervised``): the pre-training method
(MoCo, MoCo+BE, ...) and its data live in the checkpoint the classifier was initialised
from. :func:`read_checkpoint_meta` therefore opens the checkpoint (metadata only; it is
trusted only if its SHA-256 is the one the result recorded) and the one its config's
``init`` names; :func:`describe` is the pure part.
"""

from __future__ import annotations

import os

from bebias.errors import BebiasError
from bebias.recipes import label_from_config

def data_name(data: str | None, dataset: str | None = None, split: str | None = None) -> str:
    """A short name for a ``--data`` value: ``synthetic`` (with its options), a dataset name,
    or the folder/file's base name; ``split`` in parentheses when given."""
    if not data:
        name = "?"
    elif dataset:
        name = dataset
    elif data.startswith("synthetic"):
        name = data.replace(",", ", ")  # a long option list may wrap
    else:
        name = os.path.basename(os.path.normpath(data)) or data
    return f"{name} ({split})" if split else name


def pretrain_method(meta: dict) -> str:
    """``moco`` / ``moco+be`` / ``moco+fame``, with ``+intra-neg`` / ``+other-neg`` for the extra
    negative the recorded config used, by the training config's own rule
    (:func:`bebias.recipes.pretrain_label`, which ``PretrainConfig.label`` is)."""
    return label_from_config(meta.get("method"), meta.get("config"))


def describe(fallback: dict, meta: dict | None = None, init_meta: dict | None = None) -> dict[str, str]:
    """Method, read-out, backbone and pre-training data of one checkpoint.

    ``fallback``: what the result file itself recorded (``arch``, ``method``, ``kind``
    ``"classifier"|"pretrain"``, ``level``, ``foreign``); ``meta``: the checkpoint's
    metadata where it could be read; ``init_meta``: that of the checkpoint its ``config.init``
    names (the pre-trained encoder under a linear probe or fine-tune).
    """
    arch = (meta or {}).get("arch") or fallback.get("arch") or "?"
    if fallback.get("foreign"):
        f = fallback["foreign"]
        layout = f.get("layout") if isinstance(f, dict) else None
        return {"method": "foreign" + (f" ({layout})" if layout else ""), "readout": "classifier",
                "backbone": arch, "pretrain_data": "–"}
    kind = (meta or {}).get("kind") or fallback.get("kind")
    if kind == "pretrain":
        m = pretrain_method(meta or {"method": fallback.get("method")})
        cfg = (meta or {}).get("config") or {}
        pdata = data_name(cfg.get("data"), cfg.get("dataset"), cfg.get("split")) if cfg else "–"
        return {"method": m, "readout": "kNN", "backbone": arch, "pretrain_data": pdata}
    # a classifier: its read-out, and the method of whatever it started from
    own = (meta or {}).get("method") or fallback.get("method")
    readout = {"linear": "linear", "supervised": "fine-tune"}.get(own or "", own or "?")
    cfg = (meta or {}).get("config") or {}
    if init_meta is not None:
        ic = init_meta.get("config") or {}
        return {"method": pretrain_method(init_meta) if init_meta.get("kind") == "pretrain" else
                describe({}, init_meta)["method"], "readout": readout, "backbone": arch,
                "pretrain_data": data_name(ic.get("data"), ic.get("dataset"), ic.get("split")) if ic else "–"}
    if meta is not None and cfg.get("init"):  # initialised from a file that is gone
        return {"method": "?", "readout": readout, "backbone": arch, "pretrain_data": "?"}
    if cfg.get("pretrained"):
        return {"method": "supervised", "readout": readout, "backbone": arch,
                "pretrain_data": "torchvision weights"}
    if meta is None:  # the checkpoint could not be read: only what the result recorded
        return {"method": "?" if own == "linear" else own or "?", "readout": readout, "backbone": arch,
                "pretrain_data": "?"}
    return {"method": "supervised", "readout": "from scratch" if own == "supervised" else readout,
            "backbone": arch, "pretrain_data": "–"}


def _metadata(path: str) -> dict:
    """The checked metadata (:class:`bebias.checkpoint.CheckpointMeta`) of the bebias checkpoint
    at ``path``, as its plain entries (what :func:`describe` reads)."""
    from bebias.checkpoint import read_meta  # torch: only when a checkpoint is there to read

    return read_meta(path).to_dict()


def _candidates(path: str, near: str) -> list[str]:
    """``path`` as recorded (relative to where the command ran), else next to ``near``."""
    out = [path]
    if not os.path.isabs(path):
        out += [os.path.join(near, path), os.path.join(near, os.path.basename(path))]
    return list(dict.fromkeys(out))


def read_checkpoint_meta(path: str | None, sha256: str | None, near: str) -> tuple[dict | None, dict | None]:
    """(metadata of the checkpoint, metadata of its ``config.init``), each ``None`` where it
    cannot be found or read. The checkpoint counts only if its SHA-256 is ``sha256`` (it may
    have been overwritten since the result was written); ``near``: the result's folder."""
    if not path:
        return None, None
    from bebias.checkpoint import file_sha256

    meta = None
    for cand in _candidates(path, near):
        if not os.path.isfile(cand) or (sha256 and file_sha256(cand) != sha256):
            continue
        try:
            meta = _metadata(cand)
        except BebiasError:  # a foreign state_dict or an archive: no bebias metadata
            return None, None
        path = cand
        break
    if meta is None:
        return None, None
    init = (meta.get("config") or {}).get("init")
    init_meta = None
    seen = {os.path.realpath(path)}
    # the encoder under a classifier: follow init (a classifier may start from a classifier)
    while init:
        found = next((c for c in _candidates(init, os.path.dirname(path)) if os.path.isfile(c)), None)
        if found is None or os.path.realpath(found) in seen:
            break
        try:
            init_meta = _metadata(found)
        except BebiasError:
            init_meta = None
            break
        seen.add(os.path.realpath(found))
        if init_meta.get("kind") == "pretrain":
            break
        init, path = (init_meta.get("config") or {}).get("init"), found
    return meta, init_meta
