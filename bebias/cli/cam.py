"""``bebias cam``: where a model looks (Grad-CAM), and how much of it falls on the actor.

The glue between the data side of the probe (the same centre clip and masks,
:class:`bebias.probing.source.ProbeSource`), the Grad-CAM core
(:mod:`bebias.models.cam`) and the renderer (:func:`bebias.reporting.cam.explain`).
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from bebias.cli.common import AnnotationsOpt, DatasetOpt, app, console, err_console
from bebias.cli.probe import _triple_opt
from bebias.errors import BebiasError


@app.command("cam")
def cam_cmd(
    ckpt: Annotated[str, typer.Argument(help="A classifier (bebias finetune), a pre-trained encoder (bebias train: "
                                             "CAM of its feature norm) or a state_dict with --arch.")],
    videos: Annotated[Optional[list[str]], typer.Argument(help="Video files or frame folders (masks from motion). "
                                                               "None: a class-balanced sample of --data.")] = None,
    compare: Annotated[Optional[list[str]], typer.Option("--compare", help="Another checkpoint, one row of overlays "
                                                         "each on the same clips (repeat the flag).")] = None,
    labels: Annotated[Optional[str], typer.Option(help="Comma-separated names of CKPT and the --compare checkpoints "
                                                       "(default: their folder or file names).")] = None,
    layer: Annotated[Optional[str], typer.Option(help="Module name to explain (as in named_modules(); e.g. "
                                                      "layer3). Default: the backbone's last spatio-temporal "
                                                      "block.")] = None,
    per_time: Annotated[bool, typer.Option("--per-time", help="One weight vector per time slice instead of one "
                                                              "for the whole clip.")] = False,
    target: Annotated[str, typer.Option(help="pred (the predicted class) | label (the true class).")] = "pred",
    data: Annotated[Optional[str], typer.Option(help="Sample videos of this data (default: the checkpoint's own "
                                                     "training data).")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    n: Annotated[int, typer.Option("--n", help="Videos sampled from --data, class-balanced.")] = 8,
    mask: Annotated[str, typer.Option(help="auto (ground truth where the data has it, else motion) | "
                                           "ground-truth | diff | mog2.")] = "auto",
    fmt: Annotated[str, typer.Option("--format", help="Animations: gif, mp4, gif,mp4 or none.")] = "gif",
    out: Annotated[str, typer.Option(help="Output directory.")] = "runs/cam",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates of the actor-share CI.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Clips per forward/backward pass.")] = 8,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    arch: Annotated[Optional[str], typer.Option(help="Architecture of a state_dict from another codebase (applies to "
                                                     "every checkpoint given).")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Input spec override: frames per clip.")] = None,
    stride: Annotated[Optional[int], typer.Option(help="Input spec override: frame stride.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Input spec override: clip size in pixels.")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Input spec override: R,G,B mean of [0, 1] pixels.")] = None,
    std: Annotated[Optional[str], typer.Option(help="Input spec override: R,G,B std.")] = None,
) -> None:
    """Grad-CAM overlays (PNG strips, GIF/MP4) of one or more checkpoints on the same clips,
    and the share of each CAM on the actor with a bootstrap CI: OUT/cam.json."""
    from bebias import runtime
    from bebias.probing.metrics import bootstrap_ci
    from bebias.reporting.cam import explain

    paths = [ckpt, *(compare or [])]
    names = _labels(paths, labels)
    formats = [] if fmt.strip().lower() == "none" else [f.strip().lower() for f in fmt.split(",") if f.strip()]
    if videos and (data or dataset or split or annotations):
        raise BebiasError("give VIDEO paths or --data, not both")
    dev = runtime.pick_device(device)
    given = {"frames": frames, "stride": stride, "size": size, "mean": _triple_opt("--mean", mean),
             "std": _triple_opt("--std", std)}
    opened = [_model(p, name, arch, layer, per_time, {k: v for k, v in given.items() if v is not None}, dev)
              for p, name in zip(paths, names)]
    models = [m for m, _ in opened]
    clips, unreadable, where = _clips(models[0].spec, opened[0][1], videos or [], data, dataset, annotations, split,
                                      fold, n, mask)
    for u in unreadable:
        err_console.print(f"[yellow]skipped[/] {u['path']}: {u['error']}", highlight=False)

    def ci(v):
        return bootstrap_ci(v, n_boot=n_boot, seed=seed)

    res = explain(models, clips, out, ci=ci, target=target, formats=formats, batch_size=batch_size, device=dev,
                  extra={"source": where, "unreadable": unreadable, "seed": seed, "n_boot": n_boot})
    _print(res, out)


def _labels(paths: list[str], given: str | None) -> list[str]:
    if given is not None:
        names = [s.strip() for s in given.split(",") if s.strip()]
        if len(names) != len(paths) or len(set(names)) != len(names):
            raise BebiasError(f"--labels needs {len(paths)} distinct names (CKPT and each --compare), got {given!r}")
        return names
    names = []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        base = os.path.basename(os.path.dirname(os.path.abspath(p))) if stem in ("model", "last") else stem
        name, k = base or stem, 2
        while name in names:
            name, k = f"{base}#{k}", k + 1
        names.append(name)
    return names


def _model(path: str, label: str, arch: str | None, layer: str | None, per_time: bool, given: dict, device):
    """(:class:`CamModel`, the opened checkpoint) of one checkpoint; archives refused."""
    from bebias.data.transforms import ClipSpec
    from bebias.models.cam import GradCam
    from bebias.models.open import open_model
    from bebias.reporting.cam import CamModel

    m = open_model(path, arch, device)
    if m.archive:
        raise BebiasError(f"is a {m.archive} archive: a whole model with no layers to hook, so Grad-CAM cannot "
                          "explain it; give its state_dict with --arch instead", path)
    spec_d = {**(m.meta.get("input") or {}), **given}
    if not {"frames", "size"} <= set(spec_d):
        raise BebiasError("checkpoint records no input spec; give --frames and --size (and --stride, --mean, --std: "
                          "default 1 and Kinetics')", path)
    try:
        spec = ClipSpec.from_dict(spec_d)
    except (TypeError, ValueError) as e:
        raise BebiasError(f"bad input spec {spec_d} ({e})", path) from None
    if m.meta.get("input_preset"):
        err_console.print(f"{label}: input spec: the {m.meta['input_preset']}" +
                          (f"; overridden: {', '.join(sorted(given))}" if given else "") +
                          " (override with --frames, --stride, --size, --mean, --std)", highlight=False)
    classes = m.meta.get("classes")
    if m.head is not None and (not classes or len(classes) != int(m.meta.get("num_classes") or -1)):
        classes = None
    return (CamModel(label, path, str(m.meta.get("arch")), GradCam(m.backbone, m.head, layer, per_time), spec,
                     list(classes) if classes else None), m)


def _clips(spec, opened, videos: list[str], data: str | None, dataset: str | None, annotations: str | None,
           split: str | None, fold: int, n: int, mask_mode: str):
    """(clips, unreadable, source description): the probe's centre clip and mask of each video."""
    from bebias.data.decoders import FileDecoder
    from bebias.data.open import Data, is_benchmark, open_data
    from bebias.data.records import LabeledVideos, VideoRecord
    from bebias.probing.source import ProbeSource
    from bebias.probing.suite import MASK_MODES, ProbeSuite, select_videos
    from bebias.reporting.cam import CamClip

    if mask_mode not in MASK_MODES:
        raise BebiasError(f"--mask must be one of {', '.join(MASK_MODES)}, got {mask_mode!r}")
    if videos:
        missing = [v for v in videos if not os.path.exists(v)]
        if missing:
            raise BebiasError("no such video file or frame folder", missing[0])
        d = Data(LabeledVideos([VideoRecord(v, 0) for v in videos], ["?"], name="files"), FileDecoder(), "files")
        chosen, where = list(range(len(videos))), {"videos": list(videos)}
    else:
        if n < 1:
            raise BebiasError(f"--n must be >= 1, got {n}")
        data_arg, ds, notes = opened.resolve_data(data, dataset, annotations)
        sp = split or ("conflict" if is_benchmark(data_arg, ds) else "test")
        d = open_data(data_arg, split=sp, dataset=ds, fold=fold, annotations=notes)
        if len(d.videos) == 0:
            raise BebiasError(f"no videos in split {sp!r}", data_arg)
        where = {"data": data_arg, "dataset": ds, "split": sp, "n": n}
    src = ProbeSource(d, spec, ProbeSuite(mask=mask_mode), need_mask=True)
    if mask_mode == "ground-truth" and not src.has_gt:
        raise BebiasError("--mask ground-truth, but the videos have no ground-truth masks (use auto)")
    if not videos:
        chosen = select_videos(src.labels, n)
    clips, unreadable = [], []
    for i in chosen:
        rec = d.videos.records[i]
        try:
            v = src.video(i)
        except BebiasError as e:
            unreadable.append({"path": rec.path, "error": str(e)})
            continue
        labelled = not videos
        clips.append(CamClip(rec.path, v.clip, v.mask if v.usable else None, v.source if v.usable else "",
                             int(rec.label) if labelled else None,
                             d.videos.classes[rec.label] if labelled else None))
    return clips, unreadable, where


def _print(res: dict, out: str) -> None:
    ch = res["chance"]["value"]
    for c in res["checkpoints"]:
        s = res["actor_share"][c["label"]]
        if s["value"] is None:
            console.print(f"{c['label']}: no actor share (no usable mask or an all-zero CAM)")
            continue
        ci = f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s["ci_low"] is not None else ""
        console.print(f"[bold]{c['label']}[/] ({c['arch']}, {c['method']}, layer {c['layer']}): CAM on the actor "
                      f"{s['value']:.3f}{ci} over {s['n']} video(s)" + (f"; chance {ch:.3f}" if ch is not None else ""))
    console.print(f"{len(res['videos'])} video(s): strips in {os.path.join(out, 'strips')}; "
                  f"results {os.path.join(out, 'cam.json')}")
