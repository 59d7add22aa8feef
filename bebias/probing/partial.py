"""A probe's resumable state: the per-(video, variant) rows so far, per-video mask records
and counters, saved atomically to ``partial.npz`` after chunks of videos.

An interrupted probe resumes from the last finished chunk; a partial file written by a
different probe (another checkpoint, data, suite or seed: its ``fingerprint``) is ignored,
and one that cannot be read back (truncated, empty, corrupt: :class:`CorruptPartial`) is
set aside as ``<name>.corrupt`` and the probe starts over.
Under torchrun every rank keeps its own file and :func:`merge_shards` puts the ranks'
rows back into the single-process order.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field, fields

import numpy as np

from bebias.atomic import atomic_path
from bebias.errors import BebiasError
from bebias.parse import parse_json
from bebias.probing.suite import ALL_VARIANTS

PARTIAL = "partial.npz"
#: variant name -> the integer code stored in the rows
CODE = {name: c for c, name in enumerate(ALL_VARIANTS)}


@dataclass
class Rows:
    """Per-(video, variant) results, in processing order (what partial.npz stores)."""

    video: list[int] = field(default_factory=list)
    variant: list[int] = field(default_factory=list)
    bg: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    donor: list[int] = field(default_factory=list)
    out: list[np.ndarray] = field(default_factory=list)  # probs (classifier) or nothing
    feats: list[np.ndarray] = field(default_factory=list)


def merge_shards(shards: list[tuple[Rows, dict, dict]]) -> tuple[Rows, dict, dict]:
    """The ranks' (rows, videos, exclusion counts), in rank order = the single-process order
    (each rank probed a contiguous share of the videos)."""
    rows, vids, excluded = Rows(), {k: [] for k in shards[0][1]}, {}
    for r, v, ex in shards:
        for f in fields(Rows):
            getattr(rows, f.name).extend(getattr(r, f.name))
        for k in vids:
            vids[k].extend(v[k])
        for variant, reasons in ex.items():
            for reason, n in reasons.items():
                excluded.setdefault(variant, {}).setdefault(reason, 0)
                excluded[variant][reason] += n
    return rows, vids, excluded


#: per-video lists of ``--cam`` (empty without it): the predicted class's CAM's actor share
#: (NaN: no usable mask or an all-zero CAM), the chance level (the mask's mean in the
#: model's view), the true class's share (NaN also without a head) and the layer's ceiling
#: (:mod:`bebias.models.cam_measure`)
CAM_KEYS = ("cam_share", "cam_chance", "cam_share_true", "cam_ceiling")


def empty() -> tuple[Rows, dict, dict]:
    vids = {"index": [], "source": [], "usable": [], "iou": [], "fraction": [], "stability": [], "failed_index": [],
            "failed_error": [], **{k: [] for k in CAM_KEYS}}
    state = {"chunks_done": 0, "excluded": {}, "gallery_feats": None, "gallery_labels": None, "gallery_failed": 0,
             "committed": (0, 0, 0), "committed_excluded": "{}"}
    return Rows(), vids, state


def stack(arrays: list[np.ndarray], dtype, width: int = 0) -> np.ndarray:
    """A list of (C,) rows -> (R, C); (0, width) when empty."""
    return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, width), dtype)


def commit(rows: Rows, vids: dict, state: dict) -> None:
    """Mark everything so far as finished (the end of a chunk)."""
    state["committed"] = (len(rows.video), len(vids["index"]), len(vids["failed_index"]))
    state["committed_excluded"] = json.dumps(state["excluded"])


def truncate(rows: Rows, vids: dict, state: dict) -> None:
    """Back to the last finished chunk (an interrupt mid-chunk)."""
    nr, nv, nf = state["committed"]
    for lst in (rows.video, rows.variant, rows.bg, rows.source, rows.donor):
        del lst[nr:]
    del rows.feats[nr:]
    del rows.out[nr:]
    for k in ("index", "source", "usable", "iou", "fraction", "stability", *CAM_KEYS):
        del vids[k][nv:]
    del vids["failed_index"][nf:]
    del vids["failed_error"][nf:]
    state["excluded"] = json.loads(state["committed_excluded"])


def save_partial(path: str, fingerprint: str, rows: Rows, vids: dict, state: dict) -> None:
    arrays = {
        "fingerprint": np.array(fingerprint),
        "chunks_done": np.array(state["chunks_done"], np.int64),
        "excluded": np.array(json.dumps(state["excluded"], sort_keys=True)),
        "row_video": np.asarray(rows.video, np.int64), "row_variant": np.asarray(rows.variant, np.int64),
        "row_bg": np.asarray(rows.bg, np.int64), "row_source": np.asarray(rows.source, np.int64),
        "row_donor": np.asarray(rows.donor, np.int64),
        "row_feats": stack(rows.feats, np.float32),
        "row_probs": stack(rows.out, np.float32),
        "vid_index": np.asarray(vids["index"], np.int64), "vid_source": np.asarray(vids["source"], np.int64),
        "vid_usable": np.asarray(vids["usable"], bool), "vid_iou": np.asarray(vids["iou"], np.float64),
        "vid_fraction": np.asarray(vids["fraction"], np.float64),
        "vid_stability": np.asarray(vids["stability"], np.float64),
        **{f"vid_{k}": np.asarray(vids[k], np.float64) for k in CAM_KEYS},
        "failed_index": np.asarray(vids["failed_index"], np.int64),
        "failed_error": np.asarray(vids["failed_error"], dtype=np.str_),
    }
    if state.get("gallery_feats") is not None:
        arrays["gallery_feats"] = state["gallery_feats"]
        arrays["gallery_labels"] = state["gallery_labels"]
        arrays["gallery_failed"] = np.array(state["gallery_failed"], np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


class CorruptPartial(Exception):
    """A resume file whose content cannot be read back (truncated, empty, bit-flipped,
    inconsistent): ``reason`` says what is wrong. Not a user error: the probe sets the file
    aside (:func:`set_aside`) and starts over."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def set_aside(path: str) -> str:
    """Move an unreadable resume file out of the way (``<path>.corrupt``, replacing an older
    one) so that the run can start over without losing it; returns where it went."""
    aside = path + ".corrupt"
    try:
        os.replace(path, aside)
    except OSError as e:
        raise BebiasError(f"unreadable partial results, and cannot move them aside ({e.strerror or e}); delete "
                          "the file to start over", path) from None
    return aside


def _consistent(rows: Rows, vids: dict, state: dict) -> None:
    """The loaded arrays describe one set of rows and videos (else :class:`CorruptPartial`)."""
    n = len(rows.video)
    if any(len(x) != n for x in (rows.variant, rows.bg, rows.source, rows.donor, rows.feats)) or \
            len(rows.out) not in (0, n):
        raise CorruptPartial("its row arrays have different lengths")
    nv = len(vids["index"])
    if any(len(vids[k]) != nv for k in ("source", "usable", "iou", "fraction", "stability")) or \
            any(len(vids[k]) not in (0, nv) for k in CAM_KEYS) or \
            len(vids["failed_index"]) != len(vids["failed_error"]):
        raise CorruptPartial("its per-video arrays have different lengths")
    if state["chunks_done"] < 0 or not isinstance(state["excluded"], dict):
        raise CorruptPartial("its counters are malformed")


def load_partial(path: str, fingerprint: str) -> tuple[Rows, dict, dict, bool]:
    """The results saved by an earlier run of the SAME probe; else empty (and whether a
    partial file of a different probe was found and ignored).

    Raises :class:`CorruptPartial` when the file's content cannot be read back (the caller
    sets it aside and starts over), :class:`BebiasError` when the file cannot be opened."""
    rows, vids, state = empty()
    if not os.path.lexists(path):
        return rows, vids, state, False
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open, a device never end
            raise BebiasError("the partial results are not a regular file; remove it to start over", path)
        f = open(path, "rb")
    except OSError as e:  # a directory, no permission, a dangling link: nothing to set aside safely
        raise BebiasError(f"cannot read the partial results ({e.strerror or e}); delete it to start over",
                          path) from None
    try:
        with f, np.load(f, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return rows, vids, state, True
            # the rows hold probabilities as float32, exactly as a fresh run does
            rows.video = z["row_video"].tolist()
            rows.variant = z["row_variant"].tolist()
            rows.bg = z["row_bg"].tolist()
            rows.source = z["row_source"].tolist()
            rows.donor = z["row_donor"].tolist()
            rows.feats = list(z["row_feats"])
            rows.out = list(z["row_probs"])
            vids["index"] = z["vid_index"].tolist()
            vids["source"] = z["vid_source"].tolist()
            vids["usable"] = z["vid_usable"].tolist()
            vids["iou"] = z["vid_iou"].tolist()
            vids["fraction"] = z["vid_fraction"].tolist()
            vids["stability"] = z["vid_stability"].tolist()
            for k in CAM_KEYS:  # absent in files of probes without --cam (their fingerprint differs)
                vids[k] = z[f"vid_{k}"].tolist() if f"vid_{k}" in z else []
            vids["failed_index"] = z["failed_index"].tolist()
            vids["failed_error"] = z["failed_error"].tolist()
            state["chunks_done"] = int(z["chunks_done"])
            state["excluded"] = parse_json(str(z["excluded"]), path, "partial results")
            if "gallery_feats" in z:
                state["gallery_feats"] = z["gallery_feats"]
                state["gallery_labels"] = z["gallery_labels"]
                state["gallery_failed"] = int(z["gallery_failed"])
    except Exception as e:  # noqa: BLE001 - a truncated/empty zip raises BadZipFile, EOFError, ValueError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CorruptPartial(f"{type(e).__name__}{': ' + first[:120] if first else ''}") from None
    _consistent(rows, vids, state)
    commit(rows, vids, state)
    return rows, vids, state, False
