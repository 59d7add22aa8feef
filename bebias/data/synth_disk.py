"""The embedded benchmark on disk: ``bebias data synth --out DIR``.

Layout (``--data DIR`` reads it back with no further flags)::

    DIR/bebias-synth.json            config, class and family names, format version
    DIR/manifest.csv                 path,label,split,class_name,family,family_name,mask_path,background_path
    DIR/videos/<split>/<split>_NNNNN.mkv   frames (FFV1 = lossless by default; mp4 or PNG folders on request)
    DIR/masks/<split>/<split>_NNNNN.npz    ground-truth foreground masks, (T,H,W) bool, compressed
    DIR/backgrounds/<split>/<split>_NNNNN.png  the clean background plate under frame 0

Every file is written atomically, so an interrupted run is resumed by running the same
command again: finished videos are kept, the rest are rendered. The manifest is written
last; a directory without it is reported as incomplete.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from bebias import __version__
from bebias.atomic import atomic_path, output_dir, write_json, write_text
from bebias.data import video_io
from bebias.data.decoders import FileDecoder
from bebias.data.records import VideoRecord
from bebias.data.synth import SynthConfig, VideoSpec, render_video, split_specs
from bebias.errors import BebiasError
from bebias.limits import MAX_WORKERS, check_int
from bebias.parse import read_json
from bebias.progress import Progress, ProgressFn

META_FILE = "bebias-synth.json"
MANIFEST = "manifest.csv"
FORMAT_VERSION = 1
VIDEO_FORMATS = {"mkv": ".mkv", "mp4": ".mp4", "png": ""}  # "" = PNG frame folder


def _paths(spec: VideoSpec, video_format: str) -> dict[str, str]:
    return {
        "path": f"videos/{spec.split}/{spec.name}{VIDEO_FORMATS[video_format]}",
        "mask_path": f"masks/{spec.split}/{spec.name}.npz",
        "background_path": f"backgrounds/{spec.split}/{spec.name}.png",
    }


def _write_one(args: tuple[SynthConfig, VideoSpec, str, str]) -> None:
    cfg, spec, out, video_format = args
    rel = _paths(spec, video_format)
    if all(os.path.exists(os.path.join(out, p)) for p in rel.values()):
        return  # finished by an earlier (interrupted) run
    v = render_video(cfg, spec)
    vid = os.path.join(out, rel["path"])
    if video_format == "png":
        video_io.write_frame_folder(vid, v.frames, template="frame{:06d}.png", start_index=1)
    else:
        video_io.write_video(vid, v.frames, fps=25.0)
    save_masks(os.path.join(out, rel["mask_path"]), v.masks)
    with atomic_path(os.path.join(out, rel["background_path"])) as tmp:
        if not cv2.imwrite(tmp, v.background[:, :, ::-1]):
            raise BebiasError("cannot write the background plate", tmp)


def synth_meta(cfg: SynthConfig, video_format: str) -> dict:
    return {
        "format": "bebias-synth",
        "format_version": FORMAT_VERSION,
        "bebias_version": __version__,
        "config": cfg.to_dict(),
        "classes": cfg.class_names,
        "families": cfg.family_names,
        "video_format": video_format,
        # left/right and clockwise/counter-clockwise are classes: horizontal flips change labels
        "hflip_safe": False,
        "splits": {s: cfg.split_size(s) for s in cfg.splits},
    }


def write_benchmark(cfg: SynthConfig, out: str, *, video_format: str = "mkv", workers: int = 1,
                    progress: ProgressFn | None = None) -> dict:
    """Render every split of the benchmark to ``out`` (resumable); return the metadata written.
    ``workers``: rendering processes (0 or 1: in this one). ``progress``: a ``rendering``
    stage, videos written."""
    check_int("--workers", workers, 0, MAX_WORKERS)
    if video_format not in VIDEO_FORMATS:
        raise BebiasError(f"unknown --format {video_format!r}; choose from {', '.join(VIDEO_FORMATS)}")
    meta = synth_meta(cfg, video_format)
    meta_path = os.path.join(out, META_FILE)
    if os.path.exists(meta_path):
        old = read_meta(out)
        if not _same_config(old.get("config"), cfg) or old.get("video_format") != video_format:
            raise BebiasError("holds a benchmark with a different configuration; choose another --out "
                              "or delete it", out)
    elif os.path.isdir(out) and os.listdir(out):
        raise BebiasError("exists and is not a bebias benchmark directory; choose an empty or new --out", out)
    output_dir(out)
    write_json(meta_path, meta)
    specs = [s for split in cfg.splits for s in split_specs(cfg, split)]
    jobs = [(cfg, s, out, video_format) for s in specs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for i, _ in enumerate(pool.map(_write_one, jobs, chunksize=8)):
                if progress:
                    progress(Progress("rendering", i + 1, len(jobs)))
    else:
        for i, job in enumerate(jobs):
            _write_one(job)
            if progress:
                progress(Progress("rendering", i + 1, len(jobs)))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "split", "class_name", "family", "family_name", "mask_path", "background_path"])
    for s in specs:
        p = _paths(s, video_format)
        w.writerow([p["path"], s.label, s.split, cfg.class_names[s.label], s.family, cfg.family_names[s.family],
                    p["mask_path"], p["background_path"]])
    write_text(os.path.join(out, MANIFEST), buf.getvalue())
    return meta


def _same_config(old: object, cfg: SynthConfig) -> bool:
    """Whether a directory's recorded config is ``cfg``: read through :class:`SynthConfig`, so
    a directory written before a field existed (its v1 value) still matches."""
    if not isinstance(old, dict):
        return False
    try:
        return SynthConfig(**old) == cfg
    except (TypeError, BebiasError):
        return False


def is_synth_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, META_FILE))


def read_meta(path: str) -> dict:
    """The metadata of a benchmark directory; errors if it is not one or is incomplete."""
    meta_path = os.path.join(path, META_FILE)
    if not os.path.lexists(meta_path):
        raise BebiasError(f"not a benchmark directory (no {META_FILE})", path)
    meta = read_json(meta_path, "benchmark metadata")
    if not isinstance(meta, dict) or meta.get("format") != "bebias-synth":
        raise BebiasError("not a bebias-synth metadata file", meta_path)
    return meta


def save_masks(path: str, masks: np.ndarray) -> None:
    """Write (T, H, W) bool masks as a compressed ``.npz`` (key ``masks``), atomically and
    byte-for-byte reproducibly (a fixed zip timestamp, unlike ``np.savez_compressed``).
    Read back with :func:`load_masks` (or ``np.load(path)["masks"]``)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("masks.npy", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.ascontiguousarray(masks, dtype=bool), allow_pickle=False)


class DiskDecoder(FileDecoder):
    """A benchmark directory's videos, read as files, with the ground-truth masks and
    background plates it records (the manifest's ``mask_path`` and ``background_path``,
    relative to ``root``)."""

    has_masks = True

    def __init__(self, root: str, template: str | None = None) -> None:
        super().__init__(template)
        self.root = root

    def _path(self, p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(self.root, p)

    def masks(self, rec: VideoRecord, indices) -> np.ndarray:
        """(len(indices), H, W) bool, from the video's ``.npz`` (:func:`load_masks`)."""
        m = load_masks(self._path(rec.meta["mask_path"]))
        start = rec.start or 0
        return m[[start + int(k) for k in indices]]

    def plate(self, rec: VideoRecord) -> np.ndarray:
        """(H, W, 3) uint8 RGB, from the video's background image."""
        path = self._path(rec.meta["background_path"])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise BebiasError("cannot read the background plate", path)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_masks(path: str) -> np.ndarray:
    """(T, H, W) bool masks from a ``.npz`` written by :func:`save_masks`."""
    try:
        with np.load(path) as z:
            return z["masks"].astype(bool)
    except (OSError, ValueError, KeyError) as e:
        raise BebiasError(f"unreadable mask file ({e})", path) from None
