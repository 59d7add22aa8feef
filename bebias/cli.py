"""The ``bebias`` command line: a thin typer layer over the library.

User errors (:class:`~bebias.errors.BebiasError`) print one line and exit with code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bebias import __version__
from bebias.errors import BebiasError

app = typer.Typer(help="bebias: does your video model recognise the action, or the place it happens in?",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Datasets and the embedded biased-motion benchmark.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

DataOpt = Annotated[str, typer.Option("--data", help="'synthetic[:key=value,...]', a `bebias data synth` directory, "
                                                     "a CSV manifest, or a dataset root (with --dataset).")]
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="ucf101 | hmdb51 | diving48")]
SplitOpt = Annotated[str, typer.Option("--split", help="train | test (datasets); train | train-unbiased | iid | "
                                                       "conflict (benchmark)")]

# options shared by the training commands (None = take the config file's / default value)
EpochsOpt = Annotated[Optional[int], typer.Option(help="Epochs.")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="Stop after this many steps.")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Clips per batch (per process).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Peak learning rate.")]
FramesOpt = Annotated[Optional[int], typer.Option(help="Frames per clip.")]
StrideOpt = Annotated[Optional[int], typer.Option(help="Frame stride.")]
SizeOpt = Annotated[Optional[int], typer.Option(help="Crop size, pixels.")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto | cpu | cuda[:N]")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    help="DataLoader worker processes (default: 0 on CPU, where torch's threads already use every core; up to 4 "
         "on CUDA).")]
MaxSkipsOpt = Annotated[Optional[int], typer.Option(
    help="Bad steps (non-finite loss/keys/gradient, or one gradient 1e8x the others) to skip, with a warning "
         "each, before the run stops with its last good state (default 0: stop at the first).")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Seed: same seed, same run.")]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err_console, transient=False)


@contextlib.contextmanager
def _step_bar(label: str) -> Iterator[Callable[..., None]]:
    """A progress bar for training steps; yields ``show(row, name=label)``."""
    with _progress() as prog:
        task = prog.add_task(label, total=None)

        def show(row: dict, name: str = label) -> None:
            prog.update(task, completed=row["step"], total=row["total"],
                        description=f"{name}  loss {row['loss']:.3f}  {row['clips_per_s']:.0f} clips/s")

        yield show


def _report_run(res) -> None:
    console.print(f"wrote [bold]{res.model_path}[/] ({res.steps} steps, final loss {res.final_loss:.4f}"
                  + ")")
    if res.skipped_steps:
        console.print(f"[bold red]WARNING: {res.skipped_steps} update(s) skipped for bad steps[/] (non-finite or "
                      f"outlier gradients; listed in {res.out}/failures.json): the weights did not get every update")
    if len(res.failures):
        console.print(res.failures.summary())


def _version(value: bool) -> None:
    if value:
        console.print(f"bebias {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """bebias: background-bias toolkit for video models."""


@data_app.command("synth")
def data_synth(
    out: Annotated[str, typer.Option("--out", help="Output directory (resumable: run again to finish).")],
    seed: Annotated[int, typer.Option(help="Master seed: same seed, same videos.")] = 0,
    classes: Annotated[int, typer.Option(help="Motion classes K = scene families (2..12).")] = 8,
    videos_per_class: Annotated[int, typer.Option(help="Videos per class in train and train-unbiased.")] = 256,
    test_videos_per_class: Annotated[int, typer.Option(help="Videos per class in iid and conflict.")] = 64,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 32,
    size: Annotated[int, typer.Option(help="Frame size in pixels (square).")] = 64,
    bias: Annotated[float, typer.Option(help="rho = P(background family == class) in train and iid.")] = 0.9,
    camera: Annotated[bool, typer.Option("--camera/--no-camera", help="Class-independent camera pan/jitter.")] = True,
    fmt: Annotated[str, typer.Option("--format", help="mkv (FFV1, lossless) | mp4 (mp4v, lossy) | png "
                                                      "(frame folders)")] = "mkv",
    workers: Annotated[int, typer.Option(help="Rendering processes.")] = 2,
) -> None:
    """Write the embedded biased-motion benchmark to disk (videos, masks, manifest)."""
    from bebias.data.synth import SynthConfig
    from bebias.data.synth_disk import write_benchmark

    cfg = SynthConfig(classes=classes, videos_per_class=videos_per_class,
                      test_videos_per_class=test_videos_per_class, frames=frames, size=size, bias=bias,
                      camera=camera, seed=seed)
    with _progress() as prog:
        task = prog.add_task("rendering", total=None)
        write_benchmark(cfg, out, video_format=fmt, workers=workers,
                        progress=lambda i, n: prog.update(task, completed=i, total=n))
    console.print(f"wrote the benchmark to [bold]{out}[/]  (use it with --data {out})")
    _print_synth_summary(cfg)


def _print_synth_summary(cfg) -> None:
    from bebias.data.synth import split_summary

    table = Table(title=f"embedded biased-motion benchmark (seed {cfg.seed}, {cfg.frames} frames, "
                        f"{cfg.size}x{cfg.size} px, camera {'on' if cfg.camera else 'off'})")
    for col in ("split", "videos", "P(family = class) target", "measured"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for r in split_summary(cfg):
        table.add_row(r["split"], str(r["videos"]), f"{r['target_bias']:.3f}", f"{r['measured_bias']:.3f}")
    console.print(table)
    console.print("classes (motion): " + ", ".join(cfg.class_names))
    console.print("scene families:   " + ", ".join(cfg.family_names))


@data_app.command("calibrate")
def data_calibrate(
    out: Annotated[str, typer.Option(help="Output directory (resumable).")] = "reports/calibration",
    biases: Annotated[str, typer.Option(help="Comma-separated rho values for the biased runs.")] = "0.5,0.7,0.9,0.99",
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0",
    epochs: Annotated[int, typer.Option()] = 14,
    precision: Annotated[str, typer.Option(help="fp32 | bf16")] = "fp32",
    workers: WorkersOpt = None,
) -> None:
    """Check that the benchmark can tell models apart: a supervised small model trained on
    train-unbiased (motion learnable?) and on train at several biases (graded bias?)."""
    from bebias.training.calibrate import calibrate
    from bebias.training.finetune import FinetuneConfig

    base = FinetuneConfig(epochs=epochs, precision=precision, workers=workers)
    try:
        bl = tuple(float(b) for b in biases.split(","))
        sl = tuple(int(x) for x in seeds.split(","))
    except ValueError:
        raise BebiasError(f"--biases/--seeds must be comma-separated numbers, got {biases!r} / {seeds!r}") from None
    with _step_bar("calibrating") as show:
        res = calibrate(out, biases=bl, seeds=sl, base=base, progress=lambda name, row: show(row, name))
    from bebias.training.calibrate import to_markdown

    console.print(to_markdown(res))


@data_app.command("info")
def data_info(
    data: DataOpt = "synthetic",
    dataset: DatasetOpt = None,
    split: SplitOpt = "train",
    fold: Annotated[int, typer.Option(help="Official split number (UCF101/HMDB51: 1..3).")] = 1,
    annotations: Annotated[Optional[str], typer.Option(help="Folder of split files, if not under the root.")] = None,
    frame_template: Annotated[Optional[str], typer.Option(help="Frame-folder naming, e.g. 'img_{:05d}.jpg' "
                                                                "(default: auto-detect).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Decode every video and list the unreadable ones.")] = False,
) -> None:
    """Summarise a dataset split: videos, classes, and (with --check) unreadable videos."""
    from collections import Counter

    from bebias.data.open import open_data

    d = open_data(data, split=split, dataset=dataset, fold=fold, annotations=annotations,
                  frame_template=frame_template)
    v = d.videos
    counts = Counter(r.label for r in v.records)
    console.print(f"[bold]{v.name or data}[/]: {len(v)} videos, {v.num_classes} classes "
                  f"(per class: min {min(counts.values(), default=0)}, max {max(counts.values(), default=0)})")
    if d.synth is not None:
        _print_synth_summary(d.synth.cfg)
    if v.missing:
        console.print(f"[yellow]{len(v.missing)} listed video(s) do not exist[/], e.g. {v.missing[0]}")
    if check:
        from bebias.data.dataset import FailureLog

        log = FailureLog()
        with _progress() as prog:
            for rec in prog.track(v.records, description="decoding"):
                try:
                    n = d.decoder.num_frames(rec)
                    d.decoder.read(rec, range(n))
                except BebiasError as e:
                    log.add([(0, rec.path, str(e))])
        console.print(log.summary())
        if len(log):
            raise typer.Exit(1)


def _int_list(text: Optional[str], flag: str) -> Optional[list[int]]:
    """'120,160' -> [120, 160] (None stays None: the config file's / default value)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BebiasError(f"{flag} must be comma-separated integers, got {text!r}") from None


def _merge(config: Optional[str], flags: dict) -> dict:
    """defaults <- config file (TOML/JSON) <- flags given on the command line (flags win)."""
    from bebias.training.config import config_from_file

    merged = config_from_file(config) if config else {}
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged


@app.command("train")
def train_cmd(
    config: Annotated[Optional[str], typer.Option(help="TOML/JSON config; flags override it "
                                                       "(configs/be-official.toml: the paper's recipe).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Default: synthetic (the embedded benchmark).")] = None,
    dataset: DatasetOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Pre-training split (default train).")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Backbone: small3d | r3d_18 | mc3_18 | r2plus1d_18 | s3d | "
                                                     "c3d | i3d (default small3d).")] = None,
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
) -> None:
    """Self-supervised pre-training: MoCo, MoCo + Background Erasing (default), MoCo + FAME.

    With no arguments: MoCo+BE on the embedded benchmark, CPU-sized (minutes).
    Multi-process: torchrun --nproc_per_node N -m bebias train ...
    """
    from bebias.training import runtime
    from bebias.training.pretrain import PretrainConfig, pretrain

    flags = dict(data=data, dataset=dataset, split=split, arch=arch, method=method, be_lambda_max=be_lambda_max,
                 be_per_clip=be_per_clip, be_source=be_source, intra_negative=intra_negative,
                 other_negative=other_negative, augment=augment, lr_schedule=lr_schedule,
                 lr_steps=_int_list(lr_steps, "--lr-steps"), lr_gamma=lr_gamma, warmup=warmup, queue_size=queue_size,
                 momentum=momentum, temperature=temperature, mlp=mlp, symmetric=symmetric, epochs=epochs,
                 max_steps=max_steps, batch_size=batch_size, lr=lr, frames=frames, stride=stride, size=size,
                 precision=precision, max_skips=max_skips, device=device, workers=workers, seed=seed, out=out)
    cfg = PretrainConfig.from_dict(_merge(config, flags))
    with _step_bar(cfg.method) as show:
        res = pretrain(cfg, resume=resume, progress=show)
    runtime.end_distributed()
    _report_run(res)
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
    with _step_bar("comparing") as show:
        res = compare(out, variants=vl, seeds=sl, base=base, progress=lambda name, row: show(row, name))
    console.print(to_markdown(res))


@app.command("finetune")
def finetune_cmd(
    ckpt: Annotated[Optional[str], typer.Argument(help="bebias checkpoint to start from; omit to train from "
                                                       "random initialisation.")] = None,
    config: Annotated[Optional[str], typer.Option(help="TOML/JSON config; flags override it.")] = None,
    data: Annotated[Optional[str], typer.Option(help="See `bebias data info --help`. Default: synthetic.")] = None,
    dataset: DatasetOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Training split (default train).")] = None,
    fold: Annotated[Optional[int], typer.Option(help="Official split number.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Backbone (default small3d).")] = None,
    linear: Annotated[Optional[bool], typer.Option("--linear/--full", help="Linear probe on a frozen backbone, "
                                                                            "or full fine-tuning.")] = None,
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
) -> None:
    """Train a classifier: fine-tune CKPT, linear-probe it (--linear), or train from scratch."""
    from bebias.training.finetune import FinetuneConfig, finetune

    flags = dict(init=ckpt, data=data, dataset=dataset, split=split, fold=fold, arch=arch, linear=linear,
                 epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, frames=frames, stride=stride,
                 size=size, precision=precision, max_skips=max_skips, device=device, workers=workers, seed=seed, out=out)
    merged = _merge(config, flags)
    if ckpt and "arch" not in merged:  # the checkpoint knows its architecture
        from bebias.checkpoint import load_checkpoint

        merged["arch"] = load_checkpoint(ckpt)["arch"]
    cfg = FinetuneConfig.from_dict(merged)
    with _step_bar("training") as show:
        res = finetune(cfg, resume=resume, progress=show)
    _report_run(res)


@app.command("eval")
def eval_cmd(
    ckpt: Annotated[str, typer.Argument(help="A classifier checkpoint (from bebias finetune).")],
    data: Annotated[Optional[str], typer.Option(help="Default: the data the checkpoint was trained on.")] = None,
    dataset: DatasetOpt = None,
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

    from bebias.training.evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(ckpt, data=data, dataset=dataset, splits=split, fold=fold, num_clips=clips,
                              knn=knn, gallery=gallery, batch_size=batch_size, device=device, workers=workers)
    path = out or os.path.join(os.path.dirname(os.path.abspath(ckpt)), "eval.json")
    from bebias.atomic import write_json

    write_json(path, res)
    table = Table(title=f"{ckpt}  ({res['data']})")
    for col in ("split", "videos", "top-1", "top-5", "mean-class", "bg-follow"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for name, r in res["splits"].items():
        bf = r.get("background_follow")
        table.add_row(name, str(r["n"]), f"{100 * r['top1']:.1f}", f"{100 * r['top5']:.1f}",
                      f"{100 * r['mean_class']:.1f}", "-" if bf is None else f"{100 * bf:.1f}")
    console.print(table)
    for name, r in res["splits"].items():
        if "retrieval" in r:
            console.print(f"{name} retrieval vs {gallery}: " +
                          "  ".join(f"{k} {100 * v:.1f}" for k, v in r["retrieval"].items()))
    console.print(f"results: {path}")


@app.command("probe")
def probe_cmd(
    ckpt: Annotated[str, typer.Argument(help="A classifier checkpoint (bebias finetune) or a pre-trained encoder "
                                             "(bebias train: probed by kNN on its features).")],
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
    suite: Annotated[Optional[str], typer.Option("--suite", help="probes/NAME.toml (or NAME): variants and "
                                                 "parameters. Variant flags replace its variant list and keep its "
                                                 "parameters. Default: every variant.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Default: the data the checkpoint was trained on "
                                                     "(the embedded benchmark).")] = None,
    dataset: DatasetOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    max_videos: Annotated[Optional[int], typer.Option(help="At most N videos, class-balanced (0 = all; "
                                                           "default: the suite's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every variant, donor choice and bootstrap.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 | bf16")] = "fp32",
    workers: Annotated[int, typer.Option(help="DataLoader workers for the kNN gallery.")] = 0,
    out: Annotated[str, typer.Option(help="Output directory (resumable).")] = "runs/probe",
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
) -> None:
    """Counterfactual test sets (background swaps, static frames, actor removed, shuffles, ...)
    and how much the model's decisions rest on the background: predictions.csv, metrics.json."""
    from bebias.probing.run import FLAG_VARIANTS, ProbeConfig, ProbeSuite, load_suite, run_probe
    from bebias.training import runtime

    flags = dict(swap_backgrounds=swap_backgrounds, static_frame=static_frame, background_only=background_only,
                 foreground_only=foreground_only, shuffle=shuffle, reverse=reverse,
                 conflict_foreground=conflict_foreground, be_distraction=be_distraction)
    chosen = tuple(v for k, on in flags.items() if on for v in FLAG_VARIANTS[k]) or None
    s, path = load_suite(suite) if suite else (ProbeSuite(), None)
    spec = {"frames": frames, "stride": stride, "size": size, "mean": _triple_opt("--mean", mean),
            "std": _triple_opt("--std", std)}
    cfg = ProbeConfig(checkpoint=ckpt, data=data, dataset=dataset, split=split, fold=fold, suite=s, suite_path=path,
                      variants=chosen, max_videos=max_videos, seed=seed, out=out, device=device, precision=precision,
                      workers=workers, arch=arch, input={k: v for k, v in spec.items() if v is not None},
                      classes=_class_names(classes))
    # the bar starts with the first video (after the checks: a user error stays one line) and
    # goes away at the end (the table follows)
    with contextlib.ExitStack() as stack:
        bar: dict = {}

        def show(i: int, n: int) -> None:
            if not bar:
                prog = stack.enter_context(Progress(*_progress().columns, console=err_console, transient=True))
                bar.update(prog=prog, task=prog.add_task("probing", total=n))
            bar["prog"].update(bar["task"], completed=i, total=n)

        res = run_probe(cfg, progress=show if os.environ.get("RANK", "0") == "0" else None)
    runtime.end_distributed()
    if os.environ.get("RANK", "0") == "0":  # torchrun: one table, from the rank that gathered
        _print_probe(res)


@app.command("testset")
def testset_cmd(
    kind: Annotated[str, typer.Option("--kind", help="The variant to write: original (the matched clean set), "
                                                     "swap-background, swap-background-static, static-frame, "
                                                     "background-only[-inpaint], foreground-only[-noise], shuffle, "
                                                     "reverse, be, conflict-foreground.")],
    out: Annotated[str, typer.Option("--out", help="Output directory (resumable: run the same command again).")],
    data: DataOpt = "synthetic",
    dataset: DatasetOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Default: conflict (benchmark), test (datasets).")] = None,
    fold: Annotated[int, typer.Option()] = 1,
    fmt: Annotated[str, typer.Option("--format", help="png (lossless frame folders) | mkv (FFV1, lossless) | "
                                                      "mp4 (mp4v, lossy)")] = "png",
    suite: Annotated[Optional[str], typer.Option("--suite", help="probes/NAME.toml (or NAME): mask, swap and BE "
                                                 "parameters (the flags below override it).")] = None,
    max_videos: Annotated[Optional[int], typer.Option(help="At most N videos, class-balanced as in the probe "
                                                           "(0 = all; default: the suite's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every variant and donor choice (as bebias probe).")] = 0,
    frames: Annotated[int, typer.Option(help="Frames per clip (the centre clip is decoded).")] = 16,
    stride: Annotated[int, typer.Option(help="Frame stride.")] = 1,
    size: Annotated[Optional[int], typer.Option(help="Resize the written frames, short side to N (default: "
                                                     "native size, bit-identical to the probe's frames).")] = None,
    mask: Annotated[Optional[str], typer.Option(help="auto | ground-truth | diff | mog2 (default auto).")] = None,
    swap_background: Annotated[Optional[str], typer.Option(help="Background of the swaps: donor | stripes | "
                                                                "images (default donor).")] = None,
    images: Annotated[Optional[str], typer.Option(help="Folder of background images for --swap-background "
                                                       "images.")] = None,
    be_lambda: Annotated[Optional[float], typer.Option(help="Mixing weight of --kind be (default 0.3).")] = None,
) -> None:
    """Write one probe variant of every video of a split to disk (videos, masks, manifest.csv,
    provenance.json), with exactly the frames bebias probe uses, for models of any framework."""
    from bebias.probing.materialize import TestsetConfig, image_files, materialize
    from bebias.probing.run import ProbeSuite, load_suite

    s, path = load_suite(suite) if suite else (ProbeSuite(), None)
    cfg = TestsetConfig(kind=kind, out=out, data=data, dataset=dataset, split=split, fold=fold, suite=s,
                        suite_path=path, max_videos=max_videos, mask=mask, swap_background=swap_background,
                        images=image_files(images) if images else None, be_lambda=be_lambda, seed=seed,
                        frames=frames, stride=stride, size=size, video_format=fmt)
    with contextlib.ExitStack() as stack:
        bar: dict = {}

        def show(i: int, n: int) -> None:
            if not bar:  # after the checks: a user error stays one line
                prog = stack.enter_context(Progress(*_progress().columns, console=err_console, transient=True))
                bar.update(prog=prog, task=prog.add_task(f"writing {kind}", total=n))
            bar["prog"].update(bar["task"], completed=i, total=n)

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


def _print_probe(res) -> None:
    m = res.metrics
    pv, vb = m["provenance"], m["videos"]

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    table = Table(title=f"{pv['checkpoint']}  ({pv['data']}, {pv['split']}, {pv['level']} level)")
    for col in ("variant", "videos", "top-1", "drop", "bg-follow", "agreement", "cos-sim"):
        table.add_column(col, justify="right" if col != "variant" else "left", no_wrap=col == "variant")
    for name, acc in m["accuracy"].items():
        drop = m["drop"].get(name, {}).get("value")
        bf = m["conflict"].get(name, {}).get("background_follow", {}).get("value")
        ag = m["agreement"].get(name, {}).get("agreement", {}).get("value")
        sim = m["similarity"].get(name, {}).get("value")
        table.add_row(name, str(acc["n"]), pct(acc["top1"]["value"]), pct(drop), pct(bf), pct(ag),
                      "-" if sim is None else f"{sim:.3f}")
    console.print(table)
    rel = m.get("background_reliance")
    if rel:
        comps = ", ".join(f"{k} {v['value']:.3f}" for k, v in rel["components"].items()
                          if v is not None and v["value"] is not None)
        lo, hi = rel["ci_low"], rel["ci_high"]
        ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        val = "undefined" if rel["value"] is None else f"{rel['value']:.3f}"
        console.print(f"[bold]background reliance[/] {val}{ci}  ({comps})")
    for key in ("contrasted_accuracy", "static_frame_accuracy", "background_only_accuracy", "shuffle_sensitivity",
                "reverse_sensitivity"):
        if m["headline"].get(key) is not None:
            console.print(f"{key.replace('_', ' ')}: {pct(m['headline'][key])} %")
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


def main() -> None:
    """Console-script entry point: user errors -> one line on stderr, exit code 2."""
    try:
        app()  # typer handles its own usage errors (exit 2) and exits with the command's status
    except BebiasError as e:
        err_console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(BebiasError.exit_code)


if __name__ == "__main__":
    main()
