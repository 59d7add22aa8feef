"""``bebias train``, ``compare``, ``finetune`` and ``eval``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from bebias.cli.common import (AnnotationsOpt, BatchOpt, DatasetOpt, DeviceOpt, EpochsOpt, FramesOpt, LrOpt, MaxSkipsOpt, MaxStepsOpt,
                               SeedOpt, SizeOpt, StrideOpt, WorkersOpt, app, console, print_table, report_run)
from bebias.cli.progress import progress_display
from bebias.errors import BebiasError


def _int_list(text: Optional[str], flag: str) -> Optional[list[int]]:
    """'120,160' -> [120, 160] (None stays None: the config file's / default value)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BebiasError(f"{flag} must be comma-separated integers, got {text!r}") from None


PretrainedOpt = Annotated[Optional[bool], typer.Option("--pretrained", help="Start from torchvision's Kinetics-400 "
                                                      "weights (r3d_18, mc3_18, r2plus1d_18, s3d), read from torch's "
                                                      "local cache ($TORCH_HOME/hub/checkpoints); never "
                                                      "downloaded.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace the run in --out (its last.pth is removed "
                                                               "first, its model.pth replaced at the end); without "
                                                               "it or --resume an --out holding a run is refused.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check the config against --data (split files, "
                                                           "videos), build everything, time a few steps on this "
                                                           "device and print the projected wall time; trains "
                                                           "nothing.")]


def _dry_run(cfg, config: Optional[str]) -> None:
    from bebias.training.config import config_reference
    from bebias.training.dryrun import dry_run, human_duration

    r = dry_run(cfg)
    console.print(f"data: {r['videos']} videos in split {r['split']!r} of {cfg.data}"
                  + (f" ({cfg.dataset}, fold {cfg.fold})" if cfg.dataset else "") + " -- OK")
    console.print(f"{cfg.arch}, batch {cfg.batch_size} x {r['world_size']} process(es), "
                  f"{cfg.clip.frames} frames x {cfg.clip.size} px, {cfg.precision}: {r['seconds_per_step']:.2f} s per step "
                  f"(median of {r['timed_steps'] - 1} timed steps after the first)")
    console.print(f"[bold]projected: {r['total_steps']:,} steps ({r['epochs']} epochs x {r['steps_per_epoch']:,}) "
                  f"= {human_duration(r['projected_seconds'])} on this device[/]")
    ref = config_reference(config) if config else {}
    for key in ("source", "reported", "cost"):
        if key in ref:
            val = ref[key]
            text = ", ".join(f"{k} {v}" for k, v in val.items()) if isinstance(val, dict) else str(val)
            console.print(f"{key}: {text}")


def _merge(config: Optional[str], flags: dict) -> dict:
    """defaults <- config file (TOML/JSON) <- flags given on the command line (flags win)."""
    from bebias.training.config import config_from_file

    merged = config_from_file(config) if config else {}
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged


def _announce_preset(cfg) -> None:
    """Say where the clip's defaults came from when they are an architecture's preset, as
    bebias probe says it for a checkpoint that records no input."""
    from bebias.training.config import clip_preset

    p = clip_preset(cfg.arch, cfg.pretrained)
    if p is not None:
        console.print(f"input spec defaults: the {p.describe()} (--frames, --stride, --size override them); "
                      f"this run: {cfg.clip.frames} frames at stride {cfg.clip.stride}, {cfg.clip.size} px")


@app.command("train")
def train_cmd(
    config: Annotated[Optional[str], typer.Option(help="TOML/JSON config; flags override it "
                                                       "(configs/be-official.toml: the paper's recipe).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Default: synthetic (the embedded benchmark).")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Pre-training split (default train).")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Backbone: small3d | r3d_18 | mc3_18 | r2plus1d_18 | s3d | "
                                                     "c3d | i3d | swin3d_t | swin3d_s | swin3d_b | mvit_v1_b | "
                                                     "mvit_v2_s (default small3d).")] = None,
    pretrained: PretrainedOpt = None,
    method: Annotated[Optional[str], typer.Option(help="moco | be | fame (default be).")] = None,
    be_lambda_max: Annotated[Optional[float], typer.Option(help="BE: lambda ~ U[0, max) (default 0.3).")] = None,
    be_per_clip: Annotated[Optional[bool], typer.Option("--be-per-clip/--be-per-batch",
                                                        help="BE: one lambda per clip or per batch.")] = None,
    be_source: Annotated[Optional[str], typer.Option(help="BE: static frame from the 'same' clip or an 'other' "
                                                          "clip.")] = None,
    intra_negative: Annotated[Optional[bool], typer.Option("--intra-negative/--no-intra-negative",
                                                           help="Same-video clip at another start as an extra "
                                                                "negative (default: on for be).")] = None,
    other_negative: Annotated[Optional[bool], typer.Option("--other-negative/--no-other-negative",
                                                           help="A clip of another video of the batch as the extra "
                                                                "negative (the official MoCo baseline's; default "
                                                                "off).")] = None,
    intra_min_gap: Annotated[Optional[int], typer.Option(help="Frames between the starts of a clip and its "
                                                              "intra-video negative (default 2).")] = None,
    oracle: Annotated[Optional[str], typer.Option(help="Benchmark-v2 calibration oracle (with --method moco): none | "
                                                       "actor-swap (query: the true actor on another video's scene) | "
                                                       "one-frame (query: one frame repeated).")] = None,
    augment: Annotated[Optional[str], typer.Option(help="default | official (FingerRec/BE's rotation ±10°, resize, "
                                                        "random crop, colour jitter; no flip).")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(help="cosine (warm-up + cosine, default) | step (x "
                                                            "--lr-gamma at each of --lr-steps).")] = None,
    lr_steps: Annotated[Optional[str], typer.Option(help="Step schedule: comma-separated epochs at which the LR "
                                                         "decays (default 120,160).")] = None,
    lr_gamma: Annotated[Optional[float], typer.Option(help="Step schedule: decay factor (default 0.1).")] = None,
    warmup: Annotated[Optional[float], typer.Option(help="Fraction of steps with linearly rising LR (default "
                                                         "0.05; the official recipe has none: 0).")] = None,
    queue_size: Annotated[Optional[int], typer.Option(help="MoCo queue length K.")] = None,
    momentum: Annotated[Optional[float], typer.Option(help="Key-encoder EMA momentum.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Softmax temperature.")] = None,
    mlp: Annotated[Optional[bool], typer.Option("--mlp/--linear-head", help="MoCo v2 MLP head or linear head.")] = None,
    symmetric: Annotated[Optional[bool], typer.Option("--symmetric/--asymmetric", help="Symmetric loss.")] = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    frames: FramesOpt = None,
    stride: StrideOpt = None,
    size: SizeOpt = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32 | bf16 (default fp32; see README: bf16 on CPU).")] = None,
    max_skips: MaxSkipsOpt = None,
    device: DeviceOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default runs/train).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")] = False,
    overwrite: OverwriteOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Self-supervised pre-training: MoCo, MoCo + Background Erasing (default), MoCo + FAME.

    With no arguments: MoCo+BE on the embedded benchmark, CPU-sized (minutes).
    Multi-process: torchrun --nproc_per_node N -m bebias train ...
    """
    from bebias.models.device import end_distributed
    from bebias.training.pretrain import PretrainConfig, pretrain

    flags = dict(data=data, dataset=dataset, annotations=annotations, split=split, arch=arch, pretrained=pretrained,
                 method=method,
                 be_lambda_max=be_lambda_max, be_per_clip=be_per_clip, be_source=be_source, intra_negative=intra_negative,
                 other_negative=other_negative, intra_min_gap=intra_min_gap, oracle=oracle, augment=augment,
                 lr_schedule=lr_schedule,
                 lr_steps=_int_list(lr_steps, "--lr-steps"), lr_gamma=lr_gamma, warmup=warmup, queue_size=queue_size,
                 momentum=momentum, temperature=temperature, mlp=mlp, symmetric=symmetric, epochs=epochs,
                 max_steps=max_steps, batch_size=batch_size, lr=lr, frames=frames, stride=stride, size=size,
                 precision=precision, max_skips=max_skips, device=device, workers=workers, seed=seed, out=out)
    cfg = PretrainConfig.from_dict(_merge(config, flags))
    _announce_preset(cfg)
    if dry_run:
        return _dry_run(cfg, config)
    with progress_display() as show:
        res = pretrain(cfg, resume=resume, overwrite=overwrite, progress=show)
    end_distributed()
    report_run(res)
    console.print(f"next: bebias finetune {res.model_path} --linear --split train-unbiased")


@app.command("compare")
def compare_cmd(
    out: Annotated[str, typer.Option(help="Output directory (resumable).")] = "reports/compare",
    variants: Annotated[Optional[str], typer.Option(help="Comma-separated subset of: random-init, moco, "
                                                         "moco+intra-neg, moco+be, moco+be+intra-neg, moco+fame.")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    config: Annotated[Optional[str], typer.Option(help="TOML/JSON pre-training config shared by all variants.")] = None,
    data: Annotated[Optional[str], typer.Option(help="synthetic[:options] (default synthetic).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Pre-training epochs (same for every variant).")] = None,
    max_steps: Annotated[Optional[int], typer.Option()] = None,
    workers: Annotated[Optional[int], typer.Option()] = None,
) -> None:
    """MoCo vs MoCo+BE and the ablations on the embedded benchmark: linear probes on biased
    and unbiased labels, top-1 on iid / conflict and background-follow, mean ± std over seeds."""
    from bebias.training.compare import VARIANTS, compare, to_markdown
    from bebias.training.pretrain import PretrainConfig

    base = PretrainConfig.from_dict(_merge(config, dict(data=data, epochs=epochs, max_steps=max_steps,
                                                        workers=workers)))
    try:
        sl = tuple(int(x) for x in seeds.split(","))
    except ValueError:
        raise BebiasError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
    vl = tuple(variants.split(",")) if variants else tuple(VARIANTS)
    with progress_display() as show:
        res = compare(out, variants=vl, seeds=sl, base=base, progress=show)
    console.print(to_markdown(res))


@app.command("finetune")
def finetune_cmd(
    ckpt: Annotated[Optional[str], typer.Argument(help="bebias checkpoint to start from; omit to train from "
                                                       "random initialisation.")] = None,
    config: Annotated[Optional[str], typer.Option(help="TOML/JSON config; flags override it.")] = None,
    data: Annotated[Optional[str], typer.Option(help="See `bebias data info --help`. Default: synthetic.")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Training split (default train).")] = None,
    fold: Annotated[Optional[int], typer.Option(help="Official split number.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Backbone (default small3d).")] = None,
    pretrained: PretrainedOpt = None,
    linear: Annotated[Optional[bool], typer.Option("--linear/--full", help="Linear probe on a frozen backbone, "
                                                                            "or full fine-tuning.")] = None,
    debias: Annotated[Optional[str], typer.Option(help="Label-keeping debiasing augmentation: be (a static frame "
                                                       "of the same clip), stillmix (a static frame of another "
                                                       "video), fame (the foreground on another video's "
                                                       "background); each with its source's settings.")] = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    frames: FramesOpt = None,
    stride: StrideOpt = None,
    size: SizeOpt = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32 | bf16")] = None,
    max_skips: MaxSkipsOpt = None,
    device: DeviceOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default runs/finetune).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    overwrite: OverwriteOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Train a classifier: fine-tune CKPT, linear-probe it (--linear), or train from scratch."""
    from bebias.training.finetune import FinetuneConfig, check_init, finetune

    flags = dict(init=ckpt, data=data, dataset=dataset, annotations=annotations, split=split, fold=fold, arch=arch,
                 pretrained=pretrained, linear=linear, debias=debias, epochs=epochs, max_steps=max_steps,
                 batch_size=batch_size, lr=lr, frames=frames, stride=stride, size=size, precision=precision,
                 max_skips=max_skips, device=device, workers=workers, seed=seed, out=out)
    merged = _merge(config, flags)
    if ckpt and "arch" not in merged:  # the checkpoint knows its architecture
        from bebias.checkpoint import read_meta

        check_init(ckpt)  # a directory: said as such before read_meta's generic refusal

        merged["arch"] = read_meta(ckpt).arch
    cfg = FinetuneConfig.from_dict(merged)
    _announce_preset(cfg)
    if dry_run:
        return _dry_run(cfg, config)
    with progress_display() as show:
        res = finetune(cfg, resume=resume, overwrite=overwrite, progress=show)
    report_run(res)


@app.command("eval")
def eval_cmd(
    ckpt: Annotated[str, typer.Argument(help="A classifier checkpoint (from bebias finetune).")],
    data: Annotated[Optional[str], typer.Option(help="Default: the data the checkpoint was trained on.")] = None,
    dataset: DatasetOpt = None,
    annotations: AnnotationsOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Comma-separated splits (default: iid,conflict for the "
                                                      "benchmark, test otherwise).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    clips: Annotated[int, typer.Option(help="Clips per video; softmax averaged.")] = 1,
    knn: Annotated[bool, typer.Option("--knn", help="Also kNN retrieval R@1/5/10/20/50 against --gallery.")] = False,
    gallery: Annotated[str, typer.Option(help="Gallery split for --knn.")] = "train",
    batch_size: Annotated[int, typer.Option()] = 32,
    device: Annotated[str, typer.Option()] = "auto",
    workers: WorkersOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Write results JSON here (default: next to CKPT).")] = None,
) -> None:
    """Top-1 / top-5 / mean-class accuracy (multi-clip), background-follow rate where the data
    records backgrounds, and optional kNN retrieval."""
    import os

    from bebias.cli.common import err_console
    from bebias.training.evaluate import evaluate_checkpoint

    path = out or os.path.join(os.path.dirname(os.path.abspath(ckpt)), "eval.json")
    if os.path.isdir(path):  # refused before the evaluation, not after it
        raise BebiasError("is a directory; give --out a file path for the results JSON (e.g. "
                          f"{os.path.join(path, 'eval.json')})", path)
    with progress_display(transient=True) as show:  # the table follows
        res = evaluate_checkpoint(ckpt, data=data, dataset=dataset, annotations=annotations, splits=split,
                                  fold=fold, num_clips=clips, knn=knn, gallery=gallery, batch_size=batch_size,
                                  device=device, workers=workers, progress=show,
                                  log=lambda line: err_console.print(line, highlight=False, soft_wrap=True))
    from bebias.atomic import write_json

    write_json(path, res)
    table = Table(title=f"{ckpt}  ({res['data']})")
    for col in ("split", "videos", "top-1", "top-5", "mean-class", "bg-follow"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for name, r in res["splits"].items():
        bf = r.get("background_follow")
        table.add_row(name, str(r["n"]), f"{100 * r['top1']:.1f}", f"{100 * r['top5']:.1f}",
                      f"{100 * r['mean_class']:.1f}", "-" if bf is None else f"{100 * bf:.1f}")
    k = next((r["num_classes"] for r in res["splits"].values() if r.get("num_classes")), None)
    if k:  # what random decisions score
        table.caption = (f"chance: top-1, mean-class and bg-follow 1/K = {100 / k:.1f} %, top-5 min(5, K)/K = "
                         f"{100 * min(5, k) / k:.1f} % (K = {k})")
    print_table(table)
    for name, r in res["splits"].items():
        if "retrieval" in r:
            console.print(f"{name} retrieval vs {gallery}: " +
                          "  ".join(f"{k} {100 * v:.1f}" for k, v in r["retrieval"].items()))
    console.print(f"results: {path}")
