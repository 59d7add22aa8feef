"""``bebias cam``: where a model looks (Grad-CAM), and how much of it falls on the actor
(:mod:`bebias.workflows.cam`)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from bebias.cli.common import AnnotationsOpt, DatasetOpt, MasksOpt, ModelOpt, app, cam_lines, console, err_console
from bebias.cli.probe import _triple_opt
from bebias.cli.progress import progress_display
from bebias.errors import BebiasError
from bebias.workflows.cam import explain, open_cam_model, sample_clips


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
                                                      "layer3). Default: the deepest block whose map has >= "
                                                      "4x4 cells at the input size (docs/cam.md).")] = None,
    per_time: Annotated[bool, typer.Option("--per-time", help="One weight vector per time slice instead of one "
                                                              "for the whole clip.")] = False,
    target: Annotated[str, typer.Option(help="The map shown: pred (the predicted class) | label (the true class); "
                                             "cam.json measures both.")] = "pred",
    data: Annotated[Optional[str], typer.Option(help="Sample videos of this data (default: the checkpoint's own "
                                                     "training data).")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    masks: MasksOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    n: Annotated[int, typer.Option("--n", help="Videos sampled from --data, class-balanced.")] = 8,
    mask: Annotated[str, typer.Option(help="auto (recorded or given masks, else motion) | ground-truth | a "
                                           "motion method: grabcut-refine | grabcut | diff | mog2.")] = "auto",
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
    model: ModelOpt = None,
) -> None:
    """Grad-CAM overlays (PNG strips, GIF/MP4) of one or more checkpoints on the same clips,
    and the share of each CAM on the actor with a bootstrap CI: OUT/cam.json."""
    from bebias.models.device import pick_device
    from bebias.limits import check_int, check_seed
    from bebias.stats import check_n_boot

    check_n_boot(n_boot)
    check_int("--n", n)
    check_int("--batch-size", batch_size)
    check_seed("--seed", seed)
    paths = [ckpt, *(compare or [])]
    names = _labels(paths, labels)
    formats = [] if fmt.strip().lower() == "none" else [f.strip().lower() for f in fmt.split(",") if f.strip()]
    if videos and (data or dataset or split or annotations or masks):
        raise BebiasError("give VIDEO paths or --data, not both")
    dev = pick_device(device)
    given = {"frames": frames, "stride": stride, "size": size, "mean": _triple_opt("--mean", mean),
             "std": _triple_opt("--std", std)}
    opened = [open_cam_model(p, name, arch, layer, per_time, {k: v for k, v in given.items() if v is not None},
                             dev, log=lambda line: err_console.print(line, highlight=False, soft_wrap=True),
                             model=model)
              for p, name in zip(paths, names)]
    models = [m for m, _ in opened]
    clips, unreadable, where = sample_clips(models[0].spec, opened[0][1], videos or [], data, dataset, annotations, split,
                                      fold, n, mask, masks)
    for u in unreadable:
        err_console.print(f"[yellow]skipped[/] {u['path']}: {u['error']}", highlight=False)

    with progress_display(transient=True) as show:  # the measures follow
        res = explain(models, clips, out, n_boot=n_boot, seed=seed, target=target, formats=formats,
                      batch_size=batch_size, device=dev,
                      extra={"source": where, "unreadable": unreadable, "seed": seed, "n_boot": n_boot}, progress=show)
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


def _print(res: dict, out: str) -> None:
    for c in res["checkpoints"]:
        m = res["measure"][c["label"]]
        grid = "x".join(str(g) for g in m["grid"] or [])
        console.print(f"[bold]{c['label']}[/] ({c['arch']}, {c['method']}, layer {c['layer']}, grid {grid}): "
                      "CAM on the actor",
                      highlight=False)
        for part, what in (("pred", "predicted class"), ("true", "true class")):
            if part == "pred" or m[part] is not None:
                for line in cam_lines(m[part], what):
                    console.print(line, highlight=False)
    console.print(f"{len(res['videos'])} video(s): strips in {os.path.join(out, 'strips')}; "
                  f"results {os.path.join(out, 'cam.json')}")
