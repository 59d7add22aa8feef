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


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (plain data + tensors) with format/version stamps."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "bebias_version": __version__, **payload}
    # serialised in memory first: a failed write(2) (disk full, size limit) then surfaces as the
    # OSError that atomic_path reports, where torch's zip writer would raise an opaque RuntimeError
    buf = io.BytesIO()
    torch.save(data, buf)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def load_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with user-facing errors.

    Raises :class:`BebiasError` if the file is missing, is not a torch file, or needs
    arbitrary unpickling (it carries code or custom objects: refused, never executed).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise BebiasError("checkpoint does not exist", p)
    if os.path.isdir(p):
        raise BebiasError("is a directory, not a checkpoint file", p)
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
    return data


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (provenance of evaluated/probed checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
