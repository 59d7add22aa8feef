"""``bebias cam``'s outputs: Grad-CAM overlays of one or more checkpoints on the same clips,
and ``cam.json`` with the share of each CAM on the actor.

This module renders what :mod:`bebias.models.cam_explain` computed (a
:class:`~bebias.models.cam_result.ClipCams` per clip, a
:class:`~bebias.models.cam_result.CamSummary` over them; :func:`bebias.workflows.cam.explain`
joins the two) and writes, under ``out``:

- ``strips/<i>-<name>.png`` (:func:`render_clip`): row 1 the clip's frames (at most 8,
  evenly spaced; the actor's mask outlined in green), then one row of overlays per
  checkpoint (the mask outlined in white), labelled with its share of CAM on the actor
  (the paper's "where MoCo and MoCo+BE look" figure);
- ``gifs/<i>-<name>.gif`` and/or ``mp4/<i>-<name>.mp4``: every frame, input | overlays side by side;
- ``cam.json`` (``"kind": "bebias-cam"``, :func:`write_cam`): checkpoints, layer, per-video
  files and actor shares, and per checkpoint the mean actor share with a bootstrap CI, plus
  the chance level (the masks' mean foreground fraction: what a uniform CAM scores); and
  per checkpoint ``measure``: share, chance, the layer's ceiling and the normalised score of
  the predicted and of the true class's map, each with its CI (computed by
  :mod:`bebias.models.cam_measure`).

Everything is shown in the geometry the model sees (the eval transform's resize and
centre crop, :func:`bebias.models.cam.input_view`), enlarged for display. Overlay colours:
OpenCV's ``turbo`` colour map, blue = 0 to red = the clip's peak, over the frame in grey;
the colour is blended more strongly where the CAM is high, so the frame stays readable
under low values. Nothing here runs a model or imports torch.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import cv2
import numpy as np

from bebias import __version__
from bebias.atomic import atomic_path, write_json
from bebias.data.video_io import write_video
from bebias.errors import BebiasError
from bebias.models.cam_result import CamSummary, ClipCams

__all__ = ["FORMATS", "cam_document", "check_formats", "colorize", "overlay", "render_clip", "strip_image",
           "write_cam"]

#: animation formats :func:`render_clip` writes
FORMATS: tuple[str, ...] = ("gif", "mp4")
#: at most this many frames per strip
STRIP_FRAMES = 8
#: display cells are enlarged to at least this many pixels (32 px clips are unreadable as is)
MIN_CELL = 112
_LABEL_W = 150  # the strip's label column, pixels
_GREEN = (40, 220, 90)


# --------------------------------------------------------------------------------------
# pure rendering
# --------------------------------------------------------------------------------------

def colorize(cam: np.ndarray) -> np.ndarray:
    """(..., H, W) CAM in [0, 1] -> (..., H, W, 3) uint8 RGB: turbo from dark blue (0) to
    bright red (1); turbo's last tenth, red fading to near black, is left out so that the
    peak stands out."""
    c = np.clip(np.asarray(cam, np.float32), 0.0, 1.0) * 0.9
    u8 = np.round(c * 255).astype(np.uint8).reshape(-1, c.shape[-1])
    bgr = cv2.applyColorMap(u8, cv2.COLORMAP_TURBO)
    return bgr[..., ::-1].reshape(*c.shape, 3)


def overlay(frames: np.ndarray, cam: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """(T, H, W, 3) uint8 frames + (T, H, W) CAM in [0, 1] -> (T, H, W, 3) uint8.

    The colours go over the frames in grey (the scene's own colours would compete with
    the colour map), and their opacity grows with the CAM (0.3 at 0, ``strength`` at the
    peak), so what the model ignores stays visible under a light tint.
    """
    if frames.shape[:3] != cam.shape:
        raise ValueError(f"frames {frames.shape} and cam {cam.shape} differ in (T, H, W)")
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    a = (0.3 + (strength - 0.3) * np.clip(cam, 0, 1))[..., None]
    out = grey[..., None] * (1 - a) + colorize(cam).astype(np.float32) * a
    return np.round(out).astype(np.uint8)


def _enlarge(x: np.ndarray, cell: int, nearest: bool) -> np.ndarray:
    """(T, S, S[, 3]) -> (T, cell, cell[, 3])."""
    if x.shape[1] == cell:
        return x
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (cell, cell), interpolation=interp) for f in x])


def _outline(frames: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = _GREEN) -> np.ndarray:
    """Draw the (T, H, W) mask's contours on (T, H, W, 3) frames (a copy)."""
    out = frames.copy()
    for f, m in zip(out, mask):
        contours, _ = cv2.findContours((m > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(f, contours, -1, colour, 1)
    return out


def _text(img: np.ndarray, lines: Sequence[str], x: int, y: int, scale: float = 0.42) -> None:
    for k, line in enumerate(lines):
        cv2.putText(img, line, (x, y + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)


def _short(s: str, n: int = 20) -> str:
    return s if len(s) <= n else s[:n - 1] + "~"


def _display(frames: np.ndarray, mask: np.ndarray | None, cams: Sequence[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Enlarged input frames (mask outlined in green) and overlays (mask outlined in white),
    (T, cell, cell, 3) each."""
    S = frames.shape[1]
    cell = S * max(1, math.ceil(MIN_CELL / S))
    big = _enlarge(frames, cell, nearest=True)  # pixel-true frames
    overlays = [overlay(big, _enlarge(c.astype(np.float32), cell, nearest=False)) for c in cams]
    if mask is None:
        return big, overlays
    m = _enlarge(mask.astype(np.float32), cell, nearest=False)
    return _outline(big, m), [_outline(o, m, (255, 255, 255)) for o in overlays]


def strip_image(frames: np.ndarray, mask: np.ndarray | None, rows: Sequence[tuple[Sequence[str], np.ndarray]],
                title: Sequence[str] = ()) -> np.ndarray:
    """The PNG strip: (H, W, 3) uint8 RGB.

    ``frames`` (T, S, S, 3) uint8 in the model's geometry; ``mask`` (T, S, S) in [0, 1] or
    None; ``rows``: per checkpoint ``(label lines, cam (T, S, S) in [0, 1])``; ``title``:
    lines for the input row's label. At most :data:`STRIP_FRAMES` evenly spaced frames.
    """
    T = frames.shape[0]
    idx = np.unique(np.round(np.linspace(0, T - 1, min(T, STRIP_FRAMES))).astype(int))
    shown, overlays = _display(frames[idx], None if mask is None else mask[idx], [c[idx] for _, c in rows])
    cell, gap, head = shown.shape[1], 2, 18
    n_rows = 1 + len(rows)
    H = head + n_rows * (cell + gap) + 26
    W = _LABEL_W + len(idx) * (cell + gap)
    img = np.full((H, W, 3), 255, np.uint8)
    for k, t in enumerate(idx):
        _text(img, [f"t={t}"], _LABEL_W + k * (cell + gap) + 4, 13)
    for r, (labels, panels) in enumerate([(list(title) or ["input"], shown)]
                                         + [(lines, ov) for (lines, _), ov in zip(rows, overlays)]):
        y = head + r * (cell + gap)
        for k in range(len(idx)):
            x = _LABEL_W + k * (cell + gap)
            img[y:y + cell, x:x + cell] = panels[k]
        _text(img, [_short(s) for s in labels], 6, y + 18)
    # colour key: blue = 0, red = the clip's peak
    y = H - 18
    bar = colorize(np.tile(np.linspace(0, 1, 120, dtype=np.float32), (10, 1)))
    img[y:y + 10, _LABEL_W:_LABEL_W + 120] = bar
    _text(img, ["CAM 0"], _LABEL_W - 52, y + 9, 0.38)
    _text(img, ["peak (per clip)"], _LABEL_W + 126, y + 9, 0.38)
    return img


def _animation(frames: np.ndarray, mask: np.ndarray | None, cams: Sequence[np.ndarray],
               labels: Sequence[str]) -> np.ndarray:
    """(T, h, w, 3) uint8: per frame, input | one overlay per checkpoint, captioned."""
    shown, overlays = _display(frames, mask, cams)
    T, cell = shown.shape[:2]
    head, gap = 18, 2
    panels = [shown, *overlays]
    W = len(panels) * (cell + gap) - gap
    W += W % 2  # even sizes for video codecs
    out = np.full((T, head + cell + (head + cell) % 2, W, 3), 255, np.uint8)
    for p, (name, pan) in enumerate(zip(["input", *labels], panels)):
        x = p * (cell + gap)
        out[:, head:head + cell, x:x + cell] = pan
        for t in range(T):
            _text(out[t], [_short(name, max(4, cell // 8))], x + 3, 13, 0.4)
    return out


# --------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------

def _write_png(path: str, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        # the strongest zlib level: a third of OpenCV's default size on these strips, still lossless
        if not cv2.imwrite(tmp, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise BebiasError("OpenCV cannot write this PNG", path)


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=int(round(1000 / fps)), loop=0)


def _safe(name: str) -> str:
    """A file-name stem for a video: its base name (``synthetic:conflict/7`` -> ``conflict-7``)."""
    stem = (name.partition(":")[2].replace("/", "-") if name.startswith("synthetic:")
            else os.path.splitext(os.path.basename(name.rstrip("/")))[0])
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:40] or "video"


# --------------------------------------------------------------------------------------
# one clip, and cam.json
# --------------------------------------------------------------------------------------

def check_formats(formats: Sequence[str]) -> None:
    """A :class:`BebiasError` for an animation format not in :data:`FORMATS`."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise BebiasError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")


def render_clip(out: str, item: ClipCams, labels: Sequence[str], formats: Sequence[str] = ("gif",),
                fps: float = 4.0) -> dict:
    """Write one clip's strip (and its animations, any of :data:`FORMATS`) under ``out``;
    returns its ``cam.json`` entry (files, and per checkpoint the shown share, the target's
    name and the clip's terms). ``labels``: the checkpoints' labels, in ``item.cams``' order."""
    c, frames, mask = item.clip, item.frames, item.mask
    per = {label: mc.share for label, mc in zip(labels, item.cams)}
    rows = [([label, "on actor " + ("-" if mc.share is None else f"{mc.share:.2f}"), f"cam of {mc.target_name}"],
             mc.cam) for label, mc in zip(labels, item.cams)]
    stem = f"{item.index:03d}-{_safe(c.path)}"
    title = ["input", c.class_name or "", "" if mask is None else f"actor {item.mask_fraction:.0%} of px"]
    strip = os.path.join("strips", stem + ".png")
    _write_png(os.path.join(out, strip), strip_image(frames, mask, rows, [t for t in title if t]))
    entry = {"path": c.path, "label": c.class_name if c.class_name is not None else c.label,
             "strip": strip, "gif": None, "actor_share": per,
             "target": {label: mc.target_name for label, mc in zip(labels, item.cams)},
             "measure": {label: mc.terms_json for label, mc in zip(labels, item.cams)},
             "mask_source": c.mask_source or None, "mask_fraction": item.mask_fraction}
    if formats:
        anim = _animation(frames, mask, [r[1] for r in rows], list(labels))
        if "gif" in formats:
            entry["gif"] = os.path.join("gifs", stem + ".gif")
            _write_gif(os.path.join(out, entry["gif"]), anim, fps)
        if "mp4" in formats:
            entry["mp4"] = os.path.join("mp4", stem + ".mp4")
            write_video(os.path.join(out, entry["mp4"]), anim, fps=fps)
    return entry


def cam_document(summary: CamSummary, videos: Sequence[dict], extra: dict | None = None) -> dict:
    """The ``cam.json`` content: the summary, the clips' entries (:func:`render_clip`) and
    ``extra`` top-level keys (provenance)."""
    cps = summary.checkpoints
    layers = {c.layer for c in cps}
    return {
        "kind": "bebias-cam", "bebias_version": __version__,
        "checkpoints": [{"path": c.path, "label": c.label, "arch": c.arch, "method": c.method, "layer": c.layer}
                        for c in cps],
        "layer": layers.pop() if len(layers) == 1 else ", ".join(f"{c.label}: {c.layer}" for c in cps),
        "target": summary.target, "per_time": bool(cps[0].per_time),
        "videos": list(videos),
        # the shown map's share (the same videos: a share is defined only where the mask is)
        "actor_share": {c.label: summary.actor_share(c.label) for c in cps},
        "chance": {"value": summary.chance, "n": summary.n_masks,
                   "what": "mean foreground fraction of the masks: the actor share of a uniform CAM"},
        "measure": summary.measure,
        **(extra or {}),
    }


def write_cam(out: str, summary: CamSummary, videos: Sequence[dict], extra: dict | None = None) -> dict:
    """Write ``out/cam.json`` (:func:`cam_document`, atomically); returns its content."""
    res = cam_document(summary, videos, extra)
    write_json(os.path.join(out, "cam.json"), res)
    return res
