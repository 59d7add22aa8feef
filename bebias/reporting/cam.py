"""``bebias cam``: Grad-CAM overlays of one or more checkpoints on the same clips, and the
share of each CAM on the actor.

:func:`explain` takes opened models (:class:`CamModel`) and decoded clips with their
foreground masks (:class:`CamClip`; the command gets them from the probe's data side, so
the clip is the probe's centre clip and the mask its ground truth or motion mask) and
writes, under ``out``:

- ``strips/<i>-<name>.png``: row 1 the clip's frames (at most 8, evenly spaced; the
  actor's mask outlined in green), then one row of overlays per checkpoint (the mask
  outlined in white), labelled with
  its share of CAM on the actor (the paper's "where MoCo and MoCo+BE look" figure);
- ``gifs/<i>-<name>.gif`` and/or ``mp4/<i>-<name>.mp4``: every frame, input | overlays side by side;
- ``cam.json`` (``"kind": "bebias-cam"``): checkpoints, layer, per-video files and
  actor shares, and per checkpoint the mean actor share with a bootstrap CI, plus the
  chance level (the masks' mean foreground fraction: what a uniform CAM scores); and per
  checkpoint ``measure``: share, chance, the layer's ceiling and the normalised score of
  the predicted and of the true class's map, each with its CI (computed by
  :mod:`bebias.models.cam_measure`; this module renders and writes them).

Everything is shown in the geometry the model sees (the eval transform's resize and
centre crop, :func:`bebias.models.cam.input_view`), enlarged for display. Overlay colours:
OpenCV's ``turbo`` colour map, blue = 0 to red = the clip's peak, over the frame in grey;
the colour is blended more strongly where the CAM is high, so the frame stays readable
under low values.

The intervals are :func:`bebias.stats.bootstrap_ci`, the probe's own resampling.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from bebias import __version__
from bebias.atomic import atomic_path, write_json
from bebias.data.transforms import ClipSpec, eval_transform
from bebias.data.video_io import write_video
from bebias.errors import BebiasError
from bebias.models.cam import GradCam, chance_level, input_view
from bebias.models.cam_measure import measure_batch, summarise

__all__ = ["CamClip", "CamModel", "FORMATS", "colorize", "explain", "overlay", "strip_image"]

#: animation formats :func:`explain` writes
FORMATS: tuple[str, ...] = ("gif", "mp4")
#: at most this many frames per strip
STRIP_FRAMES = 8
#: display cells are enlarged to at least this many pixels (32 px clips are unreadable as is)
MIN_CELL = 112
_LABEL_W = 150  # the strip's label column, pixels
_GREEN = (40, 220, 90)


@dataclass
class CamModel:
    """One opened checkpoint to explain.

    ``label``: its name in the outputs (unique); ``cam``: its :class:`GradCam`; ``spec``:
    its input spec; ``classes``: its output class names, in order (None = unknown).
    """

    label: str
    path: str
    arch: str
    cam: GradCam
    spec: ClipSpec
    classes: list[str] | None = None


@dataclass
class CamClip:
    """One decoded clip: ``frames`` (T, H, W, 3) uint8 RGB at the video's native size (the
    centre clip of the input spec); ``mask`` (T, H, W) bool foreground or None (no usable
    mask: no actor share); ``label`` / ``class_name`` the true class where known."""

    path: str
    frames: np.ndarray
    mask: np.ndarray | None
    mask_source: str = ""
    label: int | None = None
    class_name: str | None = None


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
# explain
# --------------------------------------------------------------------------------------

def _shown(measure: dict, target: str) -> dict:
    """The shown map's share term (``{"value", "ci_low", "ci_high", "n"}``)."""
    part = measure["true"] if target == "label" and measure["true"] is not None else measure["pred"]
    return part["share"]


def _label_of(m: CamModel, clip: CamClip) -> int | None:
    """The clip's true class in ``m``'s output order; None where unknown (no label, or a
    class name the model does not have)."""
    if m.cam.head is None or clip.label is None:
        return None
    if m.classes and clip.class_name is not None:
        return m.classes.index(clip.class_name) if clip.class_name in m.classes else None
    return int(clip.label)


def _target_of(m: CamModel, clip: CamClip, target: str) -> int | None:
    """The class index to explain in ``m``'s output order (None = its prediction)."""
    if target == "pred" or m.cam.head is None:
        return None
    if clip.label is None:
        raise BebiasError(f"--target label needs labelled videos; {clip.path} has no label (use --data, or "
                          "--target pred)")
    if m.classes and clip.class_name is not None:
        if clip.class_name not in m.classes:
            raise BebiasError(f"class {clip.class_name!r} of {clip.path} is not one of the model's classes", m.path)
        return m.classes.index(clip.class_name)
    return int(clip.label)


def explain(models: Sequence[CamModel], clips: Sequence[CamClip], out: str, *,
            n_boot: int = 1000, seed: int = 0, target: str = "pred",
            formats: Sequence[str] = ("gif",), batch_size: int = 8, fps: float = 4.0,
            device: torch.device | str = "cpu", extra: dict | None = None) -> dict:
    """Grad-CAM of every model on every clip; overlays, strips and ``out/cam.json`` (module
    docstring). Returns the ``cam.json`` content.

    Args:
        models: the checkpoints, first = the reference row; every one must take the same
            clip geometry (frames, stride, size: the same clips for all).
        clips: decoded clips with their masks.
        n_boot, seed: the bootstrap over videos of the measure's intervals.
        target: the map shown and ``actor_share``: ``pred`` (each model's predicted
            class) or ``label`` (the true class). ``measure`` holds both either way.
        formats: animations to write, any of :data:`FORMATS` (none = strips only).
        extra: more top-level keys for ``cam.json`` (provenance).
    """
    if not models:
        raise BebiasError("no checkpoint to explain")
    if not clips:
        raise BebiasError("no readable video to explain")
    if target not in ("pred", "label"):
        raise BebiasError(f"--target must be pred or label, got {target!r}")
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise BebiasError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    geo = {m.label: (m.spec.frames, m.spec.stride, m.spec.size) for m in models}
    if len(set(geo.values())) > 1:
        raise BebiasError("the checkpoints take different clips (frames, stride, size): "
                          + ", ".join(f"{k} {v}" for k, v in geo.items()) + "; compare checkpoints of one input spec")
    if len({m.label for m in models}) != len(models):
        raise BebiasError("checkpoint labels must be distinct")
    size = models[0].spec.size
    tfs = [eval_transform(m.spec) for m in models]
    device = torch.device(device)
    videos: list[dict] = []
    terms: dict[str, dict[str, list[float]]] = {m.label: {"share": [], "share_true": [], "chance": [], "ceiling": []}
                                                for m in models}
    grids: dict[str, list[int]] = {}
    fractions: list[float] = []
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        views = [input_view(c.mask, size) if c.mask is not None else None for c in batch]
        results = []  # per model: shown cams (B, T, S, S) numpy, their targets (B,), per-clip terms
        for m, tf in zip(models, tfs):
            x = torch.stack([tf(c.frames) for c in batch]).to(device)
            for c in batch:
                _target_of(m, c, target)  # a user error when --target label has no label to explain
            pred, true, per_clip = measure_batch(m.cam, x, views, [_label_of(m, c) for c in batch])
            if target == "label" and m.cam.head is not None and true is None:
                raise BebiasError("--target label: some of the clips' classes are not the model's classes", m.path)
            shown = true if target == "label" and true is not None else pred
            grids[m.label] = list(pred.raw.shape[1:])
            results.append((shown.cams.cpu().numpy(), shown.target.cpu().tolist(), per_clip))
        for b, c in enumerate(batch):
            i = start + b
            frames = input_view(c.frames, size)
            mask = views[b]
            if mask is not None:
                fractions.append(chance_level(mask))
            rows, per, targets, per_measure = [], {}, {}, {}
            for m, (cams, tgt, per_clip) in zip(models, results):
                t = per_clip[b]
                for k in terms[m.label]:
                    terms[m.label][k].append(getattr(t, k))
                share = t.share_true if target == "label" and m.cam.head is not None else t.share
                per[m.label] = share if math.isfinite(share) else None
                per_measure[m.label] = {k: (v if math.isfinite(v) else None) for k, v in
                                        (("share", t.share), ("share_true", t.share_true), ("ceiling", t.ceiling))}
                name = ("feature norm" if tgt[b] < 0 else m.classes[tgt[b]] if m.classes and tgt[b] < len(m.classes)
                        else f"class {tgt[b]}")
                targets[m.label] = name
                rows.append(([m.label, "on actor " + ("-" if per[m.label] is None else f"{per[m.label]:.2f}"),
                              f"cam of {name}"], cams[b]))
            stem = f"{i:03d}-{_safe(c.path)}"
            title = ["input", c.class_name or "", "" if mask is None else f"actor {chance_level(mask):.0%} of px"]
            strip = os.path.join("strips", stem + ".png")
            _write_png(os.path.join(out, strip), strip_image(frames, mask, rows, [t for t in title if t]))
            entry = {"path": c.path, "label": c.class_name if c.class_name is not None else c.label,
                     "strip": strip, "gif": None, "actor_share": per, "target": targets, "measure": per_measure,
                     "mask_source": c.mask_source or None,
                     "mask_fraction": None if mask is None else chance_level(mask)}
            if formats:
                anim = _animation(frames, mask, [r[1] for r in rows], [m.label for m in models])
                if "gif" in formats:
                    entry["gif"] = os.path.join("gifs", stem + ".gif")
                    _write_gif(os.path.join(out, entry["gif"]), anim, fps)
                if "mp4" in formats:
                    entry["mp4"] = os.path.join("mp4", stem + ".mp4")
                    write_video(os.path.join(out, entry["mp4"]), anim, fps=fps)
            videos.append(entry)
    layers = {m.cam.layer_name for m in models}
    boot = {"n_boot": n_boot, "seed": seed}
    measure = {}
    for m in models:
        t = terms[m.label]
        true_ok = any(math.isfinite(v) for v in t["share_true"])
        measure[m.label] = {"layer": m.cam.layer_name, "grid": grids.get(m.label),
                            "pred": summarise(t["share"], t["chance"], t["ceiling"], **boot),
                            "true": summarise(t["share_true"], t["chance"], t["ceiling"], **boot) if true_ok else None}
    res = {
        "kind": "bebias-cam", "bebias_version": __version__,
        "checkpoints": [{"path": m.path, "label": m.label, "arch": m.arch, "method": m.cam.method,
                         "layer": m.cam.layer_name} for m in models],
        "layer": layers.pop() if len(layers) == 1 else ", ".join(f"{m.label}: {m.cam.layer_name}" for m in models),
        "target": target, "per_time": bool(models[0].cam.per_time),
        "videos": videos,
        # the shown map's share (the same videos: a share is defined only where the mask is)
        "actor_share": {m.label: _shown(measure[m.label], target) for m in models},
        "chance": {"value": float(np.mean(fractions)) if fractions else None, "n": len(fractions),
                   "what": "mean foreground fraction of the masks: the actor share of a uniform CAM"},
        "measure": measure,
        **(extra or {}),
    }
    write_json(os.path.join(out, "cam.json"), res)
    return res
