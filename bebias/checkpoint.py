"""Self-describing, safe checkpoints.

A bebias checkpoint is a dict of plain data (str/int/float/bool/None, lists, dicts and
tensors), so it loads with ``torch.load(weights_only=True)``: a file that carries pickled
code is refused and nothing in it executes. It records what is needed to use it without
guessing: the architecture, the method, the full effective config, the input spec
(frames, stride, size, mean/std), class names where known, and the bebias version.
Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import warnings
from typing import Any

import torch

from bebias import __version__
from bebias.atomic import atomic_path
from bebias.errors import BebiasError

FORMAT = "bebias-checkpoint"
FORMAT_VERSION = 1

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
