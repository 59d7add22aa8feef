"""Self-describing, safe checkpoints.

A bebias checkpoint is a dict of plain data (str/int/float/bool/None, lists, dicts and
tensors), so it loads with ``torch.load(weights_only=True)``: a file that carries pickled
code is refused and nothing in it executes. It records what is needed to use it without
guessing: the architecture, the method, the full effective config, the input spec
(frames, stride, size, mean/std), class names where known, and the bebias version.
Writes are atomic (temporary file + rename).

:class:`CheckpointMeta` is that metadata, typed: pre-training and fine-tuning write it
(:meth:`CheckpointMeta.to_dict`, merged with the weights), and every reader
(:func:`bebias.models.open.open_model`, the report's provenance, the CLI) reads it back
through :meth:`CheckpointMeta.from_dict` (or :func:`read_meta`), which checks every field once
and names the file and the field in a one-line error.
"""

from __future__ import annotations

import hashlib
import io
import os
import math
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from bebias import __version__
from bebias.atomic import atomic_path
from bebias.data.transforms import ClipSpec
from bebias.errors import BebiasError

FORMAT = "bebias-checkpoint"
FORMAT_VERSION = 1
#: what a checkpoint may be: a classifier (``bebias finetune``) or a pre-trained encoder (``bebias train``)
KINDS = ("classifier", "pretrain")
#: checkpoint entries that are weights or training state, not metadata
STATE_KEYS = ("backbone", "head", "moco", "optimizer", "rng")

_MiB = 1 << 20
#: the most one record (one tensor's storage) of a checkpoint may declare, uncompressed: twice the
#: fp32 parameters of bebias's largest architecture (swin3d_b, 362.5 MiB): a whole model flattened
#: into one buffer, even in fp64. tests/test_hostile_models.py checks it against every arch.
MAX_RECORD_BYTES = 768 * _MiB
#: the most all records together may declare: 8x the largest architecture's parameters. The
#: largest state bebias writes (a MoCo last.pth: query + key encoders, momentum, queue) holds
#: about 3-4 copies; a foreign file adds an EMA copy or Adam's two moments at most.
MAX_TOTAL_BYTES = 3072 * _MiB


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (plain data + tensors) with format/version stamps."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "bebias_version": __version__, **payload}
    # serialised in memory first: a failed write(2) (disk full, size limit) then surfaces as the
    # OSError that atomic_path reports, where torch's zip writer would raise an opaque RuntimeError
    buf = io.BytesIO()
    torch.save(data, buf)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def _check_record_sizes(p: str, max_record: int, max_total: int, what: str) -> None:
    """Refuse a zip checkpoint whose records declare more bytes, uncompressed, than ``max_record``
    each or ``max_total`` together: torch.load inflates every record into memory before anything
    can be checked (a 2 MB file of deflated zeros can declare 2 GB). Reads the zip's central
    directory only, with torch's own zip reader (the one torch.load then uses): nothing is inflated."""
    try:
        with open(p, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # torch.load's own test: the legacy format is not a zip
                return
        reader = torch._C.PyTorchFileReader(p)
        sizes = {n: int(reader.get_record_size(n)) for n in reader.get_all_records()}
    except Exception:  # noqa: BLE001 - not an archive torch can read: torch.load says so, in one line
        return
    name, big = max(sizes.items(), key=lambda kv: kv[1], default=("", 0))
    total = sum(sizes.values())
    if big > max_record or total > max_total:
        raise BebiasError(f"refused before loading: record {name} declares {big / _MiB:.0f} MiB uncompressed "
                          f"({total / _MiB:.0f} MiB in all), more than {what} can hold ({max_record / _MiB:.0f} MiB "
                          f"per tensor, {max_total / _MiB:.0f} MiB in all); torch.load would inflate it into "
                          "memory", p)


def load_file(path: str | os.PathLike, *, max_record: int = MAX_RECORD_BYTES, max_total: int = MAX_TOTAL_BYTES,
              what: str = "a checkpoint of any bebias architecture") -> Any:
    """``torch.load(path, weights_only=True)`` with user-facing errors.

    Raises :class:`BebiasError` if the file is missing, is not a torch file, needs
    arbitrary unpickling (it carries code or custom objects: refused, never executed), or its
    records declare more than ``max_record`` bytes each / ``max_total`` together (checked
    before anything is inflated; ``what`` names the bound in the message).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise BebiasError("checkpoint does not exist", p)
    if os.path.isdir(p):
        raise BebiasError("is a directory, not a checkpoint file", p)
    _check_record_sizes(p, max_record, max_total, what)
    try:
        with warnings.catch_warnings():  # a file of another pickle protocol is refused or loaded: no aside needed
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BebiasError(f"refused: the file carries pickled objects that are not plain weights "
                          f"(weights_only load failed: {first[:160]})", p) from None
    except Exception as e:  # torch.load on arbitrary bytes raises many kinds (KeyError, EOFError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BebiasError(f"not a readable PyTorch checkpoint ({first[:160]})", p) from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a bebias checkpoint (see :func:`load_file`); error if it is some other file."""
    data = load_file(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BebiasError("not a bebias checkpoint (no 'format: bebias-checkpoint' entry); for weights from "
                          "other codebases use `bebias probe --arch`", path)
    for key in ("kind", "arch"):  # what every reader of a checkpoint looks at first (open.py checks the rest)
        if not isinstance(data.get(key), str):
            raise BebiasError(f"malformed checkpoint metadata: {key} is {str(data.get(key))[:60]!r}, expected a name",
                              path)
    return data


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (provenance of evaluated/probed checkpoints).
    Of a directory (a Hugging Face model), the SHA-256 of its files' relative paths and
    SHA-256s, in sorted order: the same for a copy, another when any file changes."""
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                h.update(f"{rel}\0{file_sha256(full)}\n".encode())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# the metadata: one typed record, written by pre-training and fine-tuning, read by every reader
# --------------------------------------------------------------------------------------

def _bad(name: str, value: Any, want: str, path: str | None) -> BebiasError:
    shown = repr(value)
    return BebiasError(f"malformed checkpoint metadata: {name} is {shown[:60] + ('...' if len(shown) > 60 else '')}, "
                       f"expected {want}", path)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_input_spec(spec: Any, path: str | None, name: str = "input") -> None:
    """A recorded input spec (all keys optional): ints >= 1 for frames / stride / size, an int
    >= 0 for resize, three finite numbers for mean and three positive ones for std; else a
    one-line :class:`BebiasError` naming ``path`` and the field (``name.key``)."""
    if not isinstance(spec, dict):
        raise _bad(name, spec, "a table of frames, stride, size, mean, std", path)
    known = {f.name for f in fields(ClipSpec)}
    for k, v in spec.items():
        if k not in known:
            raise _bad(f"{name} key", k, f"one of {', '.join(sorted(known))}", path)
        if k in ("frames", "stride", "size", "resize") and not (_is_int(v) and 0 <= v <= 1 << 20 and (v or k == "resize")):
            raise _bad(f"{name}.{k}", v, "a positive integer" if k != "resize" else "an integer >= 0", path)
        if k in ("mean", "std") and not (isinstance(v, (list, tuple)) and len(v) == 3 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 or k == "mean")
                for x in v)):
            raise _bad(f"{name}.{k}", v, "three finite numbers" + (" > 0" if k == "std" else ""), path)


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint records besides its weights, or what :func:`bebias.models.open.open_model`
    knows of a file that records less (a foreign state_dict, an archive, a Hugging Face model).

    Attributes:
        kind: ``"classifier"`` or ``"pretrain"`` (:data:`KINDS`).
        arch: the architecture (a :data:`bebias.models.backbones.ARCHS` name for a bebias file;
            ``torchscript`` / ``torch.export``, a Hugging Face family or ``module:function`` otherwise).
        method: ``moco`` ... for an encoder, ``linear`` / ``supervised`` for a classifier,
            ``foreign`` / ``huggingface`` for other files; None where unrecorded.
        config: the training run's full effective config (``RunConfig.to_dict``), or None.
        input: the recorded input spec in :meth:`ClipSpec.to_dict` form; every key optional
            (a foreign file may record only some), None where nothing is recorded.
        classes: class names, one per output for a classifier, or None.
        num_classes: outputs of a classifier's head (None for an encoder, or until an opaque
            model's first forward pass tells).
        foreign: how a file of another codebase was read (layout, key maps), or None.
        input_preset: where ``input`` came from when the file records none (an architecture's
            weights, a processor config): the line ``bebias probe`` announces.
        model: ``module:function`` of ``--model``, or None.
        extra: the file's other non-weight entries (format stamps, step, epoch, train_seconds ...).
    """

    kind: str
    arch: str
    method: str | None = None
    config: Mapping[str, Any] | None = None
    input: Mapping[str, Any] | None = None
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None
    foreign: Mapping[str, Any] | None = None
    input_preset: str | None = None
    model: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The metadata as a checkpoint's entries (plain data; None fields left out), in the
        order the writers have always used: ``kind, arch, method, config, input, classes,
        num_classes`` then the rest."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "extra" or v is None:
                continue
            out[f.name] = list(v) if f.name == "classes" else dict(v) if isinstance(v, Mapping) else v
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: Any, path: str | os.PathLike | None = None) -> "CheckpointMeta":
        """The metadata of a bebias checkpoint's payload ``d``, every field checked: a hand-edited
        file can hold anything ``torch.load(weights_only=True)`` accepts. Weights and training
        state are ignored, but for a classifier's head rows, checked against ``num_classes``. A bad
        field is one :class:`BebiasError` naming ``path`` and the field. Files written by every
        bebias version so far read back."""
        p = os.fspath(path) if path is not None else None
        if not isinstance(d, dict):
            raise BebiasError(f"malformed checkpoint: a {type(d).__name__}, not a table of entries", p)
        kind, arch = d.get("kind"), d.get("arch")
        if kind not in KINDS:
            raise BebiasError(f"is a {kind!r} checkpoint; expected a classifier (bebias finetune) or a "
                              "pre-trained encoder (bebias train)", p)
        if not isinstance(arch, str) or not arch:
            raise _bad("arch", arch, "a name", p)
        for key in ("config", "foreign"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise _bad(key, d[key], "a table", p)
        for key in ("method", "input_preset", "model"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise _bad(key, d[key], "a name" if key != "input_preset" else "a description", p)
        if "input" not in d:
            raise BebiasError("malformed checkpoint metadata: no input spec ('input')", p)
        check_input_spec(d["input"], p)
        n = d.get("num_classes")
        if kind == "classifier" and not (_is_int(n) and n >= 1):
            raise _bad("num_classes", n, "a positive integer", p)
        head = d.get("head")
        rows = head.get("weight") if isinstance(head, dict) else None  # the weights, where the payload has them
        if kind == "classifier" and isinstance(rows, torch.Tensor) and rows.dim() == 2 and rows.shape[0] != n:
            raise _bad("num_classes", n, f"{rows.shape[0]}, the rows of its head", p)
        if kind == "pretrain" and n is not None and not (_is_int(n) and n >= 1):
            raise _bad("num_classes", n, "a positive integer or nothing", p)
        classes = d.get("classes")
        if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)
                                        and (kind != "classifier" or len(classes) == n)):
            raise _bad("classes", classes, "a list of class names, one per output" if kind == "classifier"
                       else "a list of class names", p)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(kind, arch, d.get("method"), d.get("config"), dict(d["input"]),
                   tuple(classes) if classes is not None else None, n, d.get("foreign"), d.get("input_preset"),
                   d.get("model"), {k: v for k, v in d.items() if k not in known and k not in STATE_KEYS})


def read_meta(path: str | os.PathLike) -> CheckpointMeta:
    """The checked metadata of the bebias checkpoint at ``path`` (:func:`load_checkpoint`,
    then :meth:`CheckpointMeta.from_dict`)."""
    return CheckpointMeta.from_dict(load_checkpoint(path), path)
