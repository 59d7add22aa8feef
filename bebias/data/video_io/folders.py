"""Frame folders: directories of numbered images, as frame-extracted releases of UCF101,
HMDB51 and Diving48 ship them. One ``str.format`` template with a single integer field
(``"img_{:05d}.jpg"``) names the frames, numbered from 0 or 1 without gaps; frame index
``i`` is the ``i``-th image."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bebias.atomic import atomic_path
from bebias.data.video_io.common import _check_frames, _out_of_range, _quiet_opencv, _to_rgb, check_out, shrink
from bebias.errors import BebiasError, VideoReadError

#: File-name templates of the common frame-extracted dataset releases, tried first when
#: auto-detecting a frame folder's numbering.
FRAME_TEMPLATES: dict[str, str] = {
    "ucf101": "frame{:06d}.jpg",
    "hmdb51": "img_{:05d}.jpg",
    "diving48": "image_{:05d}.jpg",
}

# Generic numbered image: the numeric run right before the extension is the frame number.
_NUMBERED_IMAGE = re.compile(
    r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>\.(?:jpe?g|png))$", re.IGNORECASE
)


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True if ``path`` is a directory holding at least one numbered .jpg/.png image."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return False
    with os.scandir(path) as it:
        return any(e.is_file() and _NUMBERED_IMAGE.match(e.name) for e in it)


def _template_regex(template: str) -> re.Pattern[str]:
    """Regex matching file names produced by ``template`` (one integer field)."""
    bad = BebiasError(
        f"invalid frame template {template!r}: need one integer field such as 'img_{{:05d}}.jpg'"
    )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:  # an unmatched brace
        raise bad from None
    fields = [k for k, p in enumerate(parts) if p[1] is not None]
    if len(fields) != 1:
        raise bad
    # literal text before / after the field ('{{' already unescaped by the parser)
    pre = "".join(p[0] for p in parts[: fields[0] + 1])
    suf = "".join(p[0] for p in parts[fields[0] + 1 :])
    rx = re.compile(re.escape(pre) + r"(\d+)" + re.escape(suf))
    for i in (0, 7, 123456):
        try:
            name = template.format(i)
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as e:
            raise bad from e
        m = rx.fullmatch(name)
        if m is None or int(m.group(1)) != i or os.sep in name:
            raise bad
    return rx


def _numbers(template: str, names: Sequence[str]) -> list[int]:
    """Frame numbers of the files in ``names`` that ``template`` produces exactly."""
    rx = _template_regex(template)
    out = []
    for name in names:
        m = rx.fullmatch(name)
        # the round trip rejects other paddings, e.g. 'img_001.jpg' for 'img_{:05d}.jpg'
        if m is not None and template.format(int(m.group(1))) == name:
            out.append(int(m.group(1)))
    return out


def _detect_template(folder: str, names: Sequence[str]) -> str:
    """Infer the numbering template of a frame folder (known dataset templates first)."""
    best = max(FRAME_TEMPLATES.values(), key=lambda t: len(_numbers(t, names)))
    if _numbers(best, names):
        return best
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        m = _NUMBERED_IMAGE.match(name)
        if m:
            groups.setdefault((m["prefix"], m["ext"]), []).append(m["num"])
    if not groups:
        raise VideoReadError("frame folder contains no numbered .jpg/.png images", folder)
    if len(groups) > 1:
        pats = ", ".join(sorted(f"{p}<N>{e}" for p, e in groups))
        raise VideoReadError(
            f"frame folder mixes several numbered patterns ({pats}); name one with --frame-template "
            "'img_{:05d}.jpg' (bebias data info) or frame_template in a --config file", folder
        )
    (prefix, ext), nums = next(iter(groups.items()))
    # Zero-padded names all have at least the padding width; unpadded ones give width 1.
    width = min(len(s) for s in nums)
    template = prefix.replace("{", "{{").replace("}", "}}") + f"{{:0{width}d}}" + ext
    if len(_numbers(template, names)) != len(nums):
        raise VideoReadError(
            f"frame folder has inconsistent zero-padding in its numbering ({prefix}<N>{ext})",
            folder,
        )
    return template


@dataclass(frozen=True)
class _FrameFolder:
    path: str
    template: str
    start: int  # number of the first frame (0 or 1)
    num_frames: int

    def file(self, index: int) -> str:
        return os.path.join(self.path, self.template.format(self.start + index))


def _open_folder(path: str, template: str | None) -> _FrameFolder:
    """List and validate a frame folder: one template, starting at 0 or 1, no gaps."""
    names = [e.name for e in os.scandir(path) if e.is_file()]
    if template is None:
        template = _detect_template(path, names)
    nums = sorted(_numbers(template, names))
    if not nums:
        raise VideoReadError(f"frame folder has no images matching {template!r}", path)
    start = nums[0]
    if start > 1:  # numbering must start at 0 or 1: report the first frame as missing
        raise VideoReadError(
            f"frame folder has a gap: {template.format(1)} is missing "
            f"(numbering starts at {template.format(start)})",
            path,
        )
    if nums[-1] - start + 1 != len(nums):
        prev = next(a for a, b in zip(nums, nums[1:]) if b != a + 1)
        raise VideoReadError(
            f"frame folder has a gap: {template.format(prev + 1)} is missing "
            f"(after {template.format(prev)})",
            path,
        )
    return _FrameFolder(path, template, start, len(nums))


def _imread_rgb(file: str) -> np.ndarray:
    with _quiet_opencv():
        img = cv2.imread(file, cv2.IMREAD_COLOR)  # always 3-channel 8-bit BGR
    if img is None:
        raise VideoReadError("image cannot be read (corrupt or unsupported)", file)
    return _to_rgb(img)


def _read_folder_frames(ff: _FrameFolder, idx: np.ndarray, out: np.ndarray | None = None, short: int | None = None
                        ) -> np.ndarray:
    if idx.size and (idx.min() < 0 or idx.max() >= ff.num_frames):
        raise _out_of_range(ff.path, idx, ff.num_frames)
    if not idx.size:
        h, w = shrink(_imread_rgb(ff.file(0)), short).shape[:2]
        return np.zeros((0, h, w, 3), np.uint8)
    # each distinct image is read once, however often (looped clips) it is requested
    frames = {int(i): shrink(_imread_rgb(ff.file(int(i))), short) for i in np.unique(idx)}
    shape = frames[int(idx[0])].shape
    for i, f in frames.items():
        if f.shape != shape:
            raise VideoReadError(
                f"frame size {f.shape[1]}x{f.shape[0]} differs from {shape[1]}x{shape[0]}",
                ff.file(i),
            )
    if out is not None:
        check_out(out, (len(idx), *shape))
    return np.stack([frames[int(i)] for i in idx], out=out)


def write_frame_folder(
    path: str | os.PathLike,
    frames: np.ndarray,
    template: str = "frame{:06d}.png",
    start_index: int = 1,
) -> None:
    """Write ``frames`` as numbered images into folder ``path``, atomically.

    With a ``.png`` template the folder reads back bit-exactly. An existing folder at
    ``path`` is replaced as a whole.

    Args:
        path: output folder.
        frames: ``(T, H, W, 3)`` uint8 RGB, ``T >= 1``.
        template: file-name template with one integer field.
        start_index: number of the first frame (0 or 1 reads back without gaps).

    Raises:
        ValueError: bad ``frames``.
        BebiasError: invalid template, or an image that OpenCV fails to write.
    """
    path = os.fspath(path)
    _check_frames(frames)
    _template_regex(template)  # validates
    with atomic_path(path, is_dir=True) as tmp:
        for i, frame in enumerate(frames):
            name = template.format(start_index + i)
            with _quiet_opencv():
                ok = cv2.imwrite(os.path.join(tmp, name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if not ok:
                raise BebiasError(f"OpenCV failed to write frame {i} as {name}", path)
