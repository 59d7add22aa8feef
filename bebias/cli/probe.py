"""``bebias probe`` and ``bebias testset``: counterfactual test sets and what a model does on them."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.table import Table

from bebias.cli.common import (AnnotationsOpt, DataOpt, DatasetOpt, MasksOpt, ModelOpt, TrustCodeOpt, app, cam_lines,
                               console, err_console, print_table)
from bebias.cli.progress import progress_display
from bebias.errors import BebiasError
from bebias.reporting import chance


@app.command("probe")
def probe_cmd(
    ckpts: Annotated[list[str], typer.Argument(help="A classifier checkpoint (bebias finetune) or a pre-trained "
                                                   "encoder (bebias train: probed by kNN on its features); several: "
                                                   "probed in one pass (each video decoded, varied and masked once), "
                                                   "one folder each under --out and a leaderboard.",
                                              metavar="CKPT")],
    swap_backgrounds: Annotated[bool, typer.Option("--swap-backgrounds", help="Moving foreground on another "
                                                   "video's background, and one frame of it (SCUBA/SCUFO).")] = False,
    static_frame: Annotated[bool, typer.Option("--static-frame", help="One frame repeated: no motion.")] = False,
    background_only: Annotated[bool, typer.Option("--background-only", help="The actor removed.")] = False,
    foreground_only: Annotated[bool, typer.Option("--foreground-only", help="The background blanked.")] = False,
    shuffle: Annotated[bool, typer.Option("--shuffle", help="Frames in a random order.")] = False,
    reverse: Annotated[bool, typer.Option("--reverse", help="Frames in reverse order.")] = False,
    conflict_foreground: Annotated[bool, typer.Option("--conflict-foreground", help="Moving foreground over "
                                                      "another video's static foreground and scene.")] = False,
    be_distraction: Annotated[bool, typer.Option("--be-distraction", help="Background Erasing at test "
                                                 "time.")] = False,
    suite: Annotated[Optional[str], typer.Option("--suite", help="A suite file, or a built-in suite (quick, "
                                                 "full): variants and parameters. Variant flags replace its variant "
                                                 "list and keep its parameters. Default: every variant.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Default: the data the checkpoint was trained on "
                                                     "(the embedded benchmark).")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    masks: MasksOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    max_videos: Annotated[Optional[int], typer.Option(help="At most N videos, class-balanced (0 = all; "
                                                           "default: the suite's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every variant, donor choice and bootstrap.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 | bf16")] = "fp32",
    workers: Annotated[int, typer.Option(help="DataLoader workers for the kNN gallery.")] = 0,
    out: Annotated[str, typer.Option(help="Output directory (resumable); with several checkpoints "
                                          "<out>/<checkpoint stem> each, and <out>/leaderboard.md.")] = "runs/probe",
    arch: Annotated[Optional[str], typer.Option(help="Architecture of a state_dict from another codebase "
                                                     "(module./encoder_q./backbone./model. prefixes, MoCo and "
                                                     "Lightning layouts handled). Not needed for bebias "
                                                     "checkpoints, TorchScript or torch.export archives.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Input spec override: frames per clip.")] = None,
    stride: Annotated[Optional[int], typer.Option(help="Input spec override: frame stride.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Input spec override: clip size in pixels.")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Input spec override: R,G,B mean of [0, 1] pixels.")] = None,
    std: Annotated[Optional[str], typer.Option(help="Input spec override: R,G,B std.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="The model's class names in output order: comma-separated, "
                                                        "or a text file with one per line. Default: the "
                                                        "checkpoint's, else the data's order.")] = None,
    cam: Annotated[bool, typer.Option("--cam", help="Also Grad-CAM every original clip: the share of the CAM on "
                                                    "the actor (foreground mask), its chance, the layer's ceiling "
                                                    "and the normalised score, with CIs (metrics.json 'cam').")] = False,
    cam_layer: Annotated[Optional[str], typer.Option(help="--cam's layer (module name; implies --cam); default: the "
                                                          "deepest block whose map has >= 4x4 cells at the input "
                                                          "size (docs/cam.md).")] = None,
    trust_code: TrustCodeOpt = False,
    model: ModelOpt = None,
) -> None:
    """Counterfactual test sets (background swaps, static frames, actor removed, shuffles, ...)
    and how much the model's decisions rest on the background: predictions.csv, metrics.json.
    Several checkpoints: one pass, one folder each and a leaderboard ranked by background reliance."""
    from bebias.probing.run import ProbeConfig, run_probe
    from bebias.probing.suite import FLAG_VARIANTS, ProbeSuite, load_suite
    from bebias.models.device import end_distributed

    flags = dict(swap_backgrounds=swap_backgrounds, static_frame=static_frame, background_only=background_only,
                 foreground_only=foreground_only, shuffle=shuffle, reverse=reverse,
                 conflict_foreground=conflict_foreground, be_distraction=be_distraction)
    chosen = tuple(v for k, on in flags.items() if on for v in FLAG_VARIANTS[k]) or None
    s, path = load_suite(suite) if suite else (ProbeSuite(), None)
    spec = {"frames": frames, "stride": stride, "size": size, "mean": _triple_opt("--mean", mean),
            "std": _triple_opt("--std", std)}
    cfg = ProbeConfig(checkpoint=ckpts[0], data=data, dataset=dataset, annotations=annotations, masks=masks, split=split,
                      fold=fold,
                      suite=s, suite_path=path,
                      variants=chosen, max_videos=max_videos, seed=seed, out=out, device=device, precision=precision,
                      workers=workers, arch=arch, input={k: v for k, v in spec.items() if v is not None},
                      classes=_class_names(classes), cam=cam or cam_layer is not None,
                      cam_layer=cam_layer, trust_code=trust_code, model=model)
    # the bar starts with the first video (after the checks: a user error stays one line) and
    # goes away at the end (the table follows)
    with progress_display(transient=True) as show:
        kw = dict(progress=show if os.environ.get("RANK", "0") == "0" else None,
                  log=lambda line: err_console.print(line, highlight=False, soft_wrap=True))
        if len(ckpts) == 1:
            res = run_probe(cfg, **kw)
        else:
            from bebias.workflows.probe_many import probe_many

            many = probe_many(cfg, ckpts, **kw)
    end_distributed()
    if os.environ.get("RANK", "0") == "0":  # torchrun: one table, from the rank that gathered
        if len(ckpts) == 1:
            _print_probe(res)
        else:
            _print_leaderboard(many)


def _print_leaderboard(many) -> None:
    """The ranked checkpoints of a multi-checkpoint probe, and where their results are."""
    def f(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    table = Table(title=f"{len(many.results)} checkpoints, one pass (ranked by background reliance, chance 0)")
    for col in ("rank", "checkpoint", "background reliance [95 % CI]", "n", "top-1"):
        table.add_column(col, justify="left" if col == "checkpoint" else "right")
    for r in many.leaderboard:
        ci = f" [{f(r['reliance_ci'][0])}, {f(r['reliance_ci'][1])}]" if r["reliance_ci"] else ""
        rel = ("undefined" if r["reliance"] is None else f(r["reliance"]) + ci) + (" no signal" if r["no_signal"] else "")
        table.add_row(str(r["rank"] or "-"), r["name"], rel, str(r["reliance_n"] or "-"),
                      "-" if r["top1"] is None else f"{100 * r['top1']:.1f} %")
    print_table(table)
    chance_top1 = next((r["top1_chance"] for r in many.leaderboard if r["top1_chance"] is not None), None)
    if chance_top1 is not None:
        console.print(f"top-1 chance {100 * chance_top1:.1f} %")
    for res, name in zip(many.results, many.names):
        note = f" (resumed {res.resumed} video(s))" if res.resumed else ""
        note += " [yellow](ignored a partial.npz of a different probe)[/]" if res.discarded_partial else ""
        console.print(f"{name}: {res.metrics_path}{note}", highlight=False)
    console.print(f"leaderboard: {many.md_path}, {many.json_path}")


@app.command("testset")
def testset_cmd(
    kind: Annotated[str, typer.Option("--kind", help="The variant to write: original (the matched clean set), "
                                                     "swap-background, swap-background-static, static-frame, "
                                                     "background-only[-inpaint], foreground-only[-noise], shuffle, "
                                                     "reverse, be, conflict-foreground.")],
    out: Annotated[str, typer.Option("--out", help="Output directory (resumable: run the same command again).")],
    data: DataOpt = "synthetic",
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    masks: MasksOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    fmt: Annotated[str, typer.Option("--format", help="png (lossless frame folders) | mkv (FFV1, lossless) | "
                                                      "mp4 (mp4v, lossy)")] = "png",
    suite: Annotated[Optional[str], typer.Option("--suite", help="A suite file, or a built-in suite (quick, "
                                                 "full): mask, swap and BE parameters (the flags below "
                                                 "override it).")] = None,
    max_videos: Annotated[Optional[int], typer.Option(help="At most N videos, class-balanced as in the probe "
                                                           "(0 = all; default: the suite's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every variant and donor choice (as bebias probe).")] = 0,
    frames: Annotated[int, typer.Option(help="Frames per clip (the centre clip is decoded).")] = 16,
    stride: Annotated[int, typer.Option(help="Frame stride.")] = 1,
    size: Annotated[Optional[int], typer.Option(help="Resize the written frames, short side to N (default: "
                                                     "native size, bit-identical to the probe's frames).")] = None,
    mask: Annotated[Optional[str], typer.Option(help="auto (recorded or given masks, else motion) | ground-truth | "
                                                     "a motion method: grabcut-refine | grabcut | diff | mog2 "
                                                     "(default: the suite's, auto).")] = None,
    swap_background: Annotated[Optional[str], typer.Option(help="Background of the swaps: donor | stripes | "
                                                                "images (default donor).")] = None,
    images: Annotated[Optional[str], typer.Option(help="Folder of background images for --swap-background "
                                                       "images.")] = None,
    be_lambda: Annotated[Optional[float], typer.Option(help="Mixing weight of --kind be (default 0.3).")] = None,
) -> None:
    """Write one probe variant of every video of a split to disk (videos, masks, manifest.csv,
    provenance.json), with exactly the frames bebias probe uses, for models of any framework."""
    from bebias.probing.materialize import TestsetConfig, image_files, materialize
    from bebias.probing.suite import ProbeSuite, load_suite

    s, path = load_suite(suite) if suite else (ProbeSuite(), None)
    cfg = TestsetConfig(variant=kind, out=out, data=data, dataset=dataset, annotations=annotations, masks=masks,
                        split=split, fold=fold, suite=s,
                        suite_path=path, max_videos=max_videos, mask=mask, swap_background=swap_background,
                        images=image_files(images) if images else None, be_lambda=be_lambda, seed=seed,
                        frames=frames, stride=stride, short_side=size, video_format=fmt)
    with progress_display(transient=True) as show:  # from the first video: a user error stays one line
        res = materialize(cfg, progress=show)
    pv = res.provenance
    console.print(f"wrote {res.videos} {kind} video(s) of split {pv['split']} to [bold]{res.out}[/]"
                  + (f" ({res.resumed} kept from an earlier run)" if res.resumed else ""))
    skipped = {k: v for k, v in res.skipped.items() if v}
    if skipped:
        console.print("[yellow]skipped[/] " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items())
                      + (f"; e.g. {pv['videos']['unreadable'][0]['error']}" if pv["videos"]["unreadable"] else ""))
    console.print(f"manifest: {res.manifest_path} (use it with --data {res.out}); provenance: {res.provenance_path}")


def _triple_opt(flag: str, value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        t = tuple(float(x) for x in value.split(","))
    except ValueError:
        t = ()
    if len(t) != 3:
        raise BebiasError(f"{flag} must be three comma-separated numbers (R,G,B), got {value!r}")
    return t  # type: ignore[return-value]


def _class_names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    import os

    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            names = [ln.strip() for ln in f if ln.strip()]
    else:
        names = [c.strip() for c in value.split(",") if c.strip()]
    if not names or len(set(names)) != len(names):
        raise BebiasError(f"--classes needs distinct class names, got {value!r}")
    return tuple(names)


def reliance_summary(rel: dict) -> str:
    """The headline line: the score with its CI over test videos, ``no signal`` when neither
    cue is followed beyond chance, then each component as ``value (null x)``."""
    def f(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    ci = f" [{f(rel['ci_low'])}, {f(rel['ci_high'])}]" if rel.get("ci_low") is not None else ""
    val = "undefined" if rel["value"] is None else f(rel["value"])
    flag = " [bold yellow]no signal[/] (neither cue is followed beyond chance)" if rel.get("no_signal") else ""
    comps = "; ".join(f"{k.replace('_', ' ')} {f(c['value'])} (null {f(c['null'])})"
                      for k, c in rel["components"].items() if c is not None)
    return f"[bold]background reliance[/] {val}{ci}{flag}  ({comps}; n {rel['n']})"


def _print_probe(res) -> None:
    from bebias.results import SCALARS, VIDEO_CI

    m = res.results  # metrics.json through its one schema (bebias.results.ProbeMetrics)
    pv, vb = m.provenance, m.videos

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    table = Table(title=f"{pv['checkpoint']}  ({pv['data']}, {pv['split']}, {pv['level']} level)")
    for col in ("variant", "videos", "top-1", "drop", "bg-follow", "agreement", "cos-sim"):
        table.add_column(col, justify="right" if col != "variant" else "left", no_wrap=col == "variant")
    for name in m.variants():
        r = m.variant_row(name)
        sim = r["similarity"].value
        table.add_row(name, str(r["top1"].n), pct(r["top1"].value), pct(r["drop"].value), pct(r["bg_follow"].value),
                      pct(r["agreement"].value), "-" if sim is None else f"{sim:.3f}")
    print_table(table)
    rel = m.reliance_block()
    if rel:
        console.print(reliance_summary(rel) + f" (brackets: {VIDEO_CI})")
    else:
        console.print("background reliance: undefined (needs swap-background with donor backgrounds and "
                      "background-only clips of the donors)")
    k = chance.num_classes(m.classes)
    # what random decisions score (bebias.reporting.chance; K from the probe's classes)
    kinds = {"contrasted": "contrasted", "static": "top1", "background_only": "top1"}
    conflict_set = chance.is_conflict_set({"conflict": m.conflict, "provenance": m.provenance})
    got = m.scalars()
    for s in SCALARS:  # the other headline rates (top-1, bg-follow and CAM are shown above and below)
        if s.key not in ("top1", "reliance", "swap_bg_follow", "cam", "cam_norm") and got.get(s.key, None) is not None \
                and got[s.key].value is not None:
            lvl = chance.reference(kinds[s.key], k)[0] if k and s.key in kinds else None
            note = f" (chance {pct(lvl)} %)" if lvl is not None else ""
            if s.key == "static" and conflict_set:
                note += "; on cue conflicts a scene reader scores ~0 too: read the static-frame kappa"
            console.print(f"{s.label}: {pct(got[s.key].value)} %{note}")
    kappa = (m.agreement.get("static-frame") or {}).get("kappa") or {}
    if kappa.get("value") is not None:
        console.print(f"static-frame kappa vs original decisions: {kappa['value']:.2f} (chance 0, 1 = the same "
                      "decisions without motion)")
    cam = m.cam
    if cam:
        console.print(f"[bold]CAM on the actor[/] at layer {cam['layer']} ({cam['method']}):", highlight=False)
        for part, what in (("pred", "predicted class"), ("true", "true class")):
            if part in cam and (part == "pred" or cam[part] is not None):
                for line in cam_lines(cam[part], what):
                    console.print(line, highlight=False)
    without = m.swaps_without_donor()
    if without:
        console.print(f"[yellow]{without} swap(s) left out[/]: no donor of another motion and scene class "
                      f"({m.swaps.get('scene_labels')})")
    mk = vb["masks"]
    iou = mk["motion_iou"]
    console.print(f"videos: {vb['probed']} probed of {vb['selected']} selected; masks {mk['sources']}, "
                  f"{mk['not_usable']} not usable (kept out of the mask-based variants)"
                  + (f"; motion-mask IoU vs ground truth {iou['mean']:.2f}" if iou else ""))
    if vb["unreadable"]:
        console.print(f"[yellow]skipped {len(vb['unreadable'])} unreadable video(s)[/], e.g. "
                      f"{vb['unreadable'][0]['error']}")
    if res.resumed:
        console.print(f"resumed: {res.resumed} video(s) from {res.out}/partial.npz")
    if res.discarded_partial:
        console.print(f"[yellow]ignored {res.out}/partial.npz: it holds results of a different probe[/]")
    console.print(f"results: {res.metrics_path}, {res.predictions_path}")
