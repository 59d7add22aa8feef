"""Resolve a ``--data`` argument into records + a decoder.

``--data`` accepts:

- ``synthetic`` (default): the embedded benchmark, rendered in memory; options as
  ``synthetic:bias=0.7,seed=1,size=64`` (any :class:`~bebias.data.synth.SynthConfig` field);
- a directory written by ``bebias data synth`` (recognised by its ``bebias-synth.json``);
- a CSV manifest (``path,label[,start,end][,split]``);
- a dataset folder with ``--dataset ucf101|hmdb51|diving48|kinetics400|kinetics600|kinetics700|
  ssv2|mimetics`` (the official or mmaction2 layout, or the video folder itself; ``--annotations
  DIR`` names the split files' folder when it is elsewhere; see ``docs/datasets.md``), or a
  class-per-folder directory.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bebias.data.decoders import Decoder, FileDecoder, SynthDecoder, synth_path
from bebias.data.records import LabeledVideos, VideoRecord, drop_duplicates
from bebias.data.sources import csv_manifest, hflip_safe, load_source
from bebias.data.synth import SPLITS, SynthBenchmark, SynthConfig, check_split
from bebias.data import synth_disk
from bebias.errors import BebiasError


@dataclass
class Data:
    """One split, ready for a :class:`~bebias.data.dataset.ClipDataset`.

    Attributes:
        videos: the labelled records.
        decoder: how to read their frames.
        description: what ``--data`` resolved to, for logs and provenance.
        hflip_safe: whether horizontal flips preserve labels (False for the benchmark and
            for Something-Something v2, whose classes name left and right).
        synth: the in-memory benchmark, when ``--data synthetic``.
        meta: the benchmark's metadata when reading one from disk.
    """

    videos: LabeledVideos
    decoder: Decoder
    description: str
    hflip_safe: bool = True
    synth: SynthBenchmark | None = None
    meta: dict = field(default_factory=dict)

    @property
    def data_kind(self) -> str:
        """``synthetic`` (the benchmark in memory), ``benchmark`` (on disk, with its masks
        and plates) or ``dataset``: what provenance records as ``data_kind``."""
        return ("synthetic" if self.synth is not None else
                "benchmark" if getattr(self.decoder, "has_masks", False) else "dataset")

    def scenes(self) -> tuple[np.ndarray, str | None]:
        """(N,) int64 scene class of each video, -1 where unknown, and where they come from:
        the benchmark's background families, a manifest's ``bg_label`` column, or None
        (no video has one)."""
        recs = self.videos.records
        if self.data_kind != "dataset":
            return np.array([int(r.meta["family"]) for r in recs], np.int64), "benchmark families"
        scene = _bg_labels(recs, len(self.videos.classes))
        return scene, "manifest bg_label" if (scene >= 0).any() else None


def _bg_labels(records: Sequence[VideoRecord], num_classes: int) -> np.ndarray:
    """(N,) scene class of each video from a manifest's ``bg_label`` column (-1 where empty or
    absent); a cell that is not a class index is a user error naming the video."""
    out = np.full(len(records), -1, np.int64)
    for k, r in enumerate(records):
        cell = str(r.meta.get("bg_label") or "").strip()
        if not cell:
            continue
        if not cell.isdigit() or int(cell) >= num_classes:
            raise BebiasError(f"bg_label {cell!r} is not a class index (0..{num_classes - 1})", r.path)
        out[k] = int(cell)
    return out


def parse_synth_spec(data: str) -> SynthConfig:
    """``synthetic`` or ``synthetic:key=value,...`` -> :class:`SynthConfig`
    (e.g. ``synthetic:version=v2,camera=off``)."""
    _, _, opts = data.partition(":")
    fields = {f.name: str(f.type) for f in dataclasses.fields(SynthConfig)}
    kwargs: dict = {}
    for item in filter(None, (o.strip() for o in opts.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        value = value.strip()
        if not eq or key not in fields:
            raise BebiasError(f"bad synthetic option {item!r}; use key=value with key in {', '.join(fields)}")
        kind = fields[key].split(" |")[0]  # "bool | None" -> "bool"
        try:
            if kind == "bool":
                if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    raise ValueError(value)
                kwargs[key] = value.lower() in ("1", "true", "yes", "on")
            elif kind == "float":
                kwargs[key] = float(value)
            elif kind == "str":
                kwargs[key] = value
            else:
                kwargs[key] = int(value)
        except ValueError:
            raise BebiasError(f"bad value in synthetic option {item!r}") from None
    return SynthConfig(**kwargs)


def synth_videos(benchmark: SynthBenchmark, split: str) -> LabeledVideos:
    cfg = benchmark.cfg
    recs = [VideoRecord(synth_path(split, s.index), s.label,
                        meta={"split": split, "class_name": cfg.class_names[s.label], "family": s.family,
                              "family_name": cfg.family_names[s.family]})
            for s in benchmark.specs(split)]
    return LabeledVideos(recs, cfg.class_names, name=f"synthetic/{split}")


def is_benchmark(data: str, dataset: str | None = None) -> bool:
    """Whether ``--data`` is the embedded benchmark: in memory (``synthetic[:...]``) or a
    directory written by ``bebias data synth`` (whose splits are iid / conflict, not test)."""
    if data == "synthetic" or data.startswith("synthetic:"):
        return True
    return dataset is None and os.path.isdir(data) and synth_disk.is_synth_dir(data)


def default_split(data: str, dataset: str | None = None, *, evaluate: bool = False) -> str:
    """The split a command reads when none is given, the one rule for all of them: on the
    embedded benchmark ``conflict`` (``bebias eval``: ``iid,conflict``, both), elsewhere ``test``."""
    if is_benchmark(data, dataset):
        return "iid,conflict" if evaluate else "conflict"
    return "test"


def open_data(data: str = "synthetic", *, split: str = "train", dataset: str | None = None, fold: int = 1,
              annotations: str | None = None, frame_template: str | None = None,
              benchmark: SynthBenchmark | None = None, masks: str | None = None) -> Data:
    """Resolve ``data`` (see module docstring) and select ``split``.

    ``masks`` (``--masks DIR``): a folder of per-video foreground masks mirroring the data
    root (or the CSV's folder), :func:`bebias.data.masks.attach_masks`; records that get one
    carry its path in ``meta["mask"]`` (as a manifest's ``mask`` column does).

    Pass ``benchmark`` to share one in-memory benchmark (and its render cache) between splits.
    ``annotations`` (``--annotations DIR``) is where a ``--dataset``'s split files are when
    they are not found from ``data``; it is an error for any other kind of ``--data``.
    """
    if annotations is not None and dataset is None:
        raise BebiasError("--annotations DIR only applies with --dataset (the folder of a dataset's "
                          "split files)", annotations)
    if data == "synthetic" or data.startswith("synthetic:"):
        if masks is not None:
            raise BebiasError("--masks: the embedded benchmark records its own ground-truth masks", masks)
        benchmark = benchmark or SynthBenchmark(parse_synth_spec(data))
        return Data(synth_videos(benchmark, check_split(split, benchmark.cfg)), SynthDecoder(benchmark), data,
                    hflip_safe=False, synth=benchmark)
    if not os.path.exists(data):
        raise BebiasError("--data does not exist (expected 'synthetic', a benchmark directory, "
                          "a CSV manifest or a dataset root)", data)
    if dataset is None and os.path.isdir(data) and synth_disk.is_synth_dir(data):
        if masks is not None:
            raise BebiasError("--masks: a benchmark directory records its own ground-truth masks", masks)
        meta = synth_disk.read_meta(data)
        manifest = os.path.join(data, synth_disk.MANIFEST)
        if not os.path.exists(manifest):
            raise BebiasError("incomplete benchmark (no manifest.csv); run `bebias data synth --out` on it again "
                              "to finish it", data)
        if split not in (meta.get("splits") or dict.fromkeys(SPLITS)):
            check_split(split)
            raise BebiasError(f"the benchmark directory has no split {split!r}", data)
        videos = csv_manifest(manifest, split)
        # its masks and plates where every video names one (a hand-cut manifest may not)
        decoder = (synth_disk.DiskDecoder(data, frame_template) if all(r.meta.get("mask_path") for r in videos.records)
                   else FileDecoder(frame_template))
        return Data(videos, decoder, data, hflip_safe=bool(meta.get("hflip_safe", True)), meta=meta)
    videos = drop_duplicates(load_source(data, dataset=dataset, split=split, fold=fold, annotations=annotations),
                             data)
    if videos.duplicates:  # one line, as bebias's other notes (the bf16 one of bebias.training.precision)
        print(f"note: {videos.name or data}: {videos.duplicates} duplicate row(s) dropped (a video listed more "
              "than once, same label, would count more than once)", file=sys.stderr, flush=True)
    if masks is not None:
        from bebias.data.masks import attach_masks

        videos = attach_masks(videos, masks, data if os.path.isdir(data) else os.path.dirname(os.path.abspath(data)))
    return Data(videos, FileDecoder(frame_template), data, hflip_safe=hflip_safe(dataset))
