"""Open any checkpoint a user may hand us, one way for every command (eval, probe, cam).

:func:`open_model` takes

- a bebias checkpoint (``bebias train`` -> a pre-trained encoder, ``bebias finetune`` -> a
  classifier); its metadata names the architecture, so ``arch`` is only checked against it;
- a state_dict from another codebase (torchvision, FingerRec/BE, pytorchvideo, mmaction2,
  ...), which needs ``arch`` (:func:`bebias.models.foreign.load_foreign`; renamed keys are
  mapped, and a partial match is an error, never a silent partial load);
- a TorchScript or ``torch.export`` archive: the whole model, opaque (no layers to hook);
- a Hugging Face model directory (``config.json`` + weights + processor config):
  :mod:`bebias.models.hf` (VideoMAE, TimeSformer, ViViT, V-JEPA 2; offline);
- with ``model="module:function"`` (``--model``), a state_dict for a network the user's own
  function builds (:mod:`bebias.models.user_model`), filled strictly.

Every file is read with ``torch.load(weights_only=True)`` (its declared record sizes checked
first) or the ``.pt2`` allowlist: a file that carries code is refused, never executed -- but a
TorchScript archive, which is code, with ``trust_code`` (``--trust-code``). A bebias
checkpoint's metadata is checked once, here. Errors are one-line :class:`BebiasError`\\ s
naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bebias.checkpoint import FORMAT, CheckpointMeta, check_input_spec, load_file
from bebias.data.open import default_split
from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError
from bebias.models.backbones import ARCHS, build_backbone
from bebias.models.classifier import VideoClassifier
from bebias.models.foreign import archive_layout, load_foreign
from bebias.models.hf import is_hf_dir, open_hf
from bebias.models.presets import preset_for

@dataclass
class OpenedModel:
    """A checkpoint opened for inference.

    ``backbone``: clip (B, 3, T, H, W), normalised -> pooled features (B, C); for an
    archive, the whole model (-> logits). ``head``: features -> logits (B, K), or ``None``
    for a pre-trained encoder. ``meta``: what the file records besides weights
    (:class:`~bebias.checkpoint.CheckpointMeta`); for a foreign state_dict that records no
    input spec, ``meta.input`` is its architecture's preset (:mod:`bebias.models.presets`)
    and ``meta.input_preset`` says which.
    ``archive``: ``"torchscript"`` / ``"torch.export"`` for an opaque whole-model archive.

    The one path from a checkpoint to inference: :meth:`input_spec` (the recorded spec with
    the user's overrides), :meth:`resolve_data` (the data, its settings and the split).
    """

    path: str
    kind: str  # "classifier" | "pretrain"
    backbone: nn.Module
    head: nn.Module | None
    meta: CheckpointMeta
    archive: str | None = None
    net: VideoClassifier | None = None  # backbone + head as one module, for a classifier

    def input_spec(self, overrides: Mapping[str, Any] | None = None) -> ClipSpec:
        """The recorded input spec with ``overrides`` (``--frames --stride --size --mean --std``;
        None values are not given) applied. A file that records no spec needs at least
        ``frames`` and ``size`` given; a bad combination is one :class:`BebiasError` naming the file."""
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if self.meta.input is None and not {"frames", "size"} <= set(given):
            raise BebiasError("checkpoint records no input spec ('input': frames, stride, size, mean, std); give "
                              "--frames and --size (and --stride, --mean, --std: default 1 and Kinetics')", self.path)
        spec_d = {**(self.meta.input or {}), **given}
        try:
            return ClipSpec.from_dict(spec_d)
        except (TypeError, ValueError) as e:  # also a recorded spec beyond this machine's memory
            raise BebiasError(f"bad input spec {spec_d} ({e})", self.path) from None

    def announce_spec(self, overrides: Mapping[str, Any] | None = None, label: str | None = None) -> str | None:
        """The line that says where the input spec came from when the file records none
        (``input spec: the <preset>; overridden: ...``), or None when it records its own."""
        if not self.meta.input_preset:
            return None
        given = sorted(k for k, v in (overrides or {}).items() if v is not None)
        return ((f"{label}: " if label else "") + f"input spec: the {self.meta.input_preset}"
                + (f"; overridden: {', '.join(given)}" if given else "")
                + " (override with --frames, --stride, --size, --mean, --std)")

    def resolve_data(self, data: str | None, dataset: str | None = None, annotations: str | None = None,
                     split: str | None = None, *, evaluate: bool = False) -> tuple[str, str | None, str | None, str]:
        """``(data, dataset, annotations, split)``: what the user gave, else the checkpoint's own
        training data (its dataset settings apply only when the data is its own), and the split
        given, else :func:`~bebias.data.open.default_split` (``evaluate``: ``bebias eval``'s)."""
        cfg = self.meta.config or {}
        data_arg = data or cfg.get("data") or "synthetic"
        own = data_arg == cfg.get("data")
        dataset = dataset if dataset is not None else (cfg.get("dataset") if own else None)
        annotations = annotations if annotations is not None else (cfg.get("annotations") if own else None)
        return data_arg, dataset, annotations, split or default_split(data_arg, dataset, evaluate=evaluate)

    def classifier(self) -> VideoClassifier:
        """The model as a :class:`VideoClassifier` (backbone + head, eval mode)."""
        if self.archive:
            raise BebiasError(f"a {self.archive} archive is a whole model, not a backbone + head; probe it with "
                              "`bebias probe` (no --arch)", self.path)
        if self.head is None:
            what = ("a pre-trained encoder" if self.meta.method != "foreign"
                    else f"{self.meta.arch} weights with no classification head (fc/head/classifier)")
            raise BebiasError(f"is {what}, not a classifier; fine-tune it first (bebias finetune CKPT)", self.path)
        if self.net is None:
            raise BebiasError(f"--model {self.meta.model} is a whole model, not a backbone + head; probe it "
                              "with `bebias probe` or explain it with `bebias cam`", self.path)
        return self.net.eval()


def load_weights(module: nn.Module, state: Any, what: str, path: str) -> None:
    """``module.load_state_dict(state)``, all or nothing: a missing or unexpected key, or a
    shape mismatch, is one error line naming them (never a silent partial load)."""
    if not isinstance(state, dict):
        raise BebiasError(f"checkpoint has no {what!r} weights", path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state)
                   if not isinstance(state[k], torch.Tensor) or own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        parts = [f"{n} {name}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", shape))
                 for n in [len(keys)] if keys]
        raise BebiasError(f"{what} weights do not match the architecture (" + "; ".join(parts) + ")", path)
    module.load_state_dict(state, strict=True)


def _check_bebias_meta(ck: dict, path: str) -> CheckpointMeta:
    """The metadata of a bebias checkpoint (:meth:`CheckpointMeta.from_dict`), its architecture
    one of :data:`ARCHS` and a classifier's head there, before anything is built from it."""
    meta = CheckpointMeta.from_dict(ck, path)
    if meta.arch not in ARCHS:
        raise BebiasError(f"malformed checkpoint metadata: arch is {meta.arch!r}, expected one of {', '.join(ARCHS)}",
                          path)
    head = ck.get("head")
    if meta.kind == "classifier" and not isinstance(head.get("weight") if isinstance(head, dict) else None,
                                                    torch.Tensor):
        raise BebiasError("checkpoint has no 'head' weights", path)
    return meta


def _open_bebias(ck: dict, path: str, arch: str | None) -> OpenedModel:
    meta = _check_bebias_meta(ck, path)
    kind, ck_arch = meta.kind, meta.arch
    if arch and str(arch).strip().lower() != ck_arch:
        raise BebiasError(f"checkpoint architecture is {ck_arch!r}, but --arch is {arch!r}", path)
    backbone = build_backbone(ck_arch)
    load_weights(backbone, ck.get("backbone"), "backbone", path)
    if kind == "pretrain":
        return OpenedModel(path, kind, backbone, None, meta)
    net = VideoClassifier(backbone, int(meta.num_classes))
    load_weights(net.fc, ck.get("head"), "head", path)
    return OpenedModel(path, kind, backbone, net.fc, meta, net=net)


def _names(classes: Any) -> tuple[str, ...] | None:
    return tuple(classes) if classes is not None else None


def _foreign_meta(meta: dict) -> CheckpointMeta:
    """The :class:`CheckpointMeta` of a file that is no bebias checkpoint, from what its reader
    found (:func:`~bebias.models.foreign.load_foreign`, :func:`~bebias.models.hf.open_hf`);
    ``method`` is ``foreign`` unless the reader names one."""
    return CheckpointMeta(meta["kind"], meta["arch"], meta.get("method") or "foreign", input=meta.get("input"),
                          classes=_names(meta.get("classes")), num_classes=meta.get("num_classes"),
                          foreign=meta.get("foreign"), input_preset=meta.get("input_preset"))


def _size_caps(arch: str | None) -> dict[str, Any]:
    """:func:`bebias.checkpoint.load_file`'s record-size caps for a file said to hold ``arch``:
    one record at most twice its fp32 parameters (+ 16 MiB for a head), all of them 8x (+ 64 MiB),
    as the fixed caps are for the largest arch (:data:`bebias.checkpoint.MAX_TOTAL_BYTES`).
    Counted on the meta device: nothing is allocated."""
    key = str(arch).strip().lower() if arch else None
    if key not in ARCHS:
        return {}
    with torch.device("meta"):
        n = sum(v.numel() * v.element_size() for v in build_backbone(key).state_dict().values())
    return {"max_record": 2 * n + (16 << 20), "max_total": 8 * n + (64 << 20),
            "what": f"a checkpoint of arch {key!r} ({n / (1 << 20):.1f} MiB of parameters)"}


def _open_user_model(p: str, model: str, arch: str | None) -> OpenedModel:
    """``--model module:function`` (:mod:`bebias.models.user_model`) filled from the state_dict in ``p``."""
    from bebias.models.foreign import _meta_from
    from bebias.models.user_model import build_user_model, fill_user_model

    if arch:
        raise BebiasError(f"--arch {arch} and --model {model} are alternatives: give one", p)
    layout = archive_layout(p)
    if layout:
        raise BebiasError(f"is a {layout} archive, a whole model: drop --model", p)
    raw = load_file(p)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        raise BebiasError("is a bebias checkpoint, which knows its architecture: drop --model", p)
    net = build_user_model(model)
    try:
        report = fill_user_model(net, raw, model)
    except BebiasError as e:
        raise BebiasError(str(e), p) from None
    meta = _meta_from(raw)
    if meta.get("input") is not None:
        check_input_spec(meta["input"], p)
    # num_classes: read off the first forward pass (bebias.probing.run), as for an archive
    ck = CheckpointMeta("classifier", model, "foreign", input=meta.get("input"), classes=_names(meta.get("classes")),
                        foreign=report, model=model)
    return OpenedModel(p, "classifier", net, nn.Identity(), ck)


def open_model(path: str | os.PathLike, arch: str | None = None,
               device: torch.device | str = "cpu", *, trust_code: bool = False, model: str | None = None
               ) -> OpenedModel:
    """Open a checkpoint of any kind (see the module docstring), in eval mode on ``device``.
    ``trust_code``: accept a TorchScript archive (:data:`bebias.models.foreign.TORCHSCRIPT_POLICY`).
    ``model``: ``module:function`` building the network whose state_dict the file holds
    (:mod:`bebias.models.user_model`; instead of ``arch``)."""
    p = os.fspath(path)
    if is_hf_dir(p):  # a Hugging Face directory: its config.json names the architecture
        if arch or model:
            given = f"--arch {arch!r}" if arch else f"--model {model!r}"
            raise BebiasError(f"{given} is for state_dicts; a Hugging Face model directory names its "
                              "architecture in config.json", p)
        net, meta = open_hf(p)
        m = OpenedModel(p, "classifier", net.backbone, net.fc, _foreign_meta(meta), net=net)
        m.backbone, m.head = m.backbone.to(device).eval(), m.head.to(device).eval()
        return m
    raw = None if model or archive_layout(p) else load_file(p, **_size_caps(arch))
    if model:
        m = _open_user_model(p, model, arch)
    elif isinstance(raw, dict) and raw.get("format") == FORMAT:
        m = _open_bebias(raw, p, arch)
    else:
        model, meta = load_foreign(p, arch, raw=raw, trust_code=trust_code)
        if meta.get("input") is not None:
            check_input_spec(meta["input"], p)
        preset = preset_for(meta["arch"]) if meta["kind"] != "archive" and not meta.get("input") else None
        if preset is not None:  # the file records no input spec: the one its architecture's weights use
            meta = {**meta, "input": dict(preset.spec), "input_preset": preset.describe()}
        if meta["kind"] == "archive":  # the whole model: its "features" are its logits
            ck = _foreign_meta({**meta, "kind": "classifier", "num_classes": None})
            m = OpenedModel(p, "classifier", model, nn.Identity(), ck, archive=meta["foreign"].get("layout"))
        elif meta["kind"] == "classifier":
            m = OpenedModel(p, "classifier", model.backbone, model.fc, _foreign_meta(meta), net=model)
        else:
            m = OpenedModel(p, "pretrain", model, None, _foreign_meta({**meta, "num_classes": None}))
    m.backbone = m.backbone.to(device).eval()
    if m.head is not None:
        m.head = m.head.to(device).eval()
    return m


def refuse_archive(path: str | os.PathLike, why: str) -> None:
    """Raise ``why`` (naming the file) if ``path`` is a TorchScript / torch.export archive, for a
    command that cannot use a whole model: before the archive is loaded, so that none of its code
    runs and no --trust-code is asked for."""
    layout = archive_layout(path)
    if layout:
        raise BebiasError(f"is a {layout} archive: {why}", path)


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu",
                    arch: str | None = None) -> tuple[VideoClassifier, CheckpointMeta]:
    """A classifier checkpoint (bebias, or a foreign state_dict with a head given ``arch``)
    -> (model in eval mode, metadata without weights). Archives are refused before loading."""
    refuse_archive(path, "a whole model, not a backbone + head; probe it with `bebias probe` (no --arch)")
    m = open_model(path, arch, device)
    return m.classifier(), m.meta
