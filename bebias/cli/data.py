"""``bebias data``: the embedded benchmark (synth, calibrate) and datasets (info)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from bebias.cli.common import DataOpt, DatasetOpt, SplitOpt, WorkersOpt, console, data_app, print_table
from bebias.cli.progress import progress_display
from bebias.errors import BebiasError


@data_app.command("synth")
def data_synth(
    out: Annotated[str, typer.Option("--out", help="Output directory (resumable: run again to finish).")],
    seed: Annotated[int, typer.Option(help="Master seed: same seed, same videos.")] = 0,
    version: Annotated[str, typer.Option("--version", help="Named setting: v1 (the original) | v2 (docs/benchmark.md).")
                       ] = "v1",
    classes: Annotated[int, typer.Option(help="Motion classes K = scene families (2..12).")] = 8,
    videos_per_class: Annotated[int, typer.Option(help="Videos per class in train and train-unbiased.")] = 256,
    test_videos_per_class: Annotated[Optional[int], typer.Option(
        help="Videos per class in iid and conflict (default: the version's, 64; v2's conflict has 256).")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frames per video (default: the version's, v1 32, v2 48).")
                      ] = None,
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
                      camera=camera, seed=seed, version=version)
    with progress_display() as show:
        write_benchmark(cfg, out, video_format=fmt, workers=workers, progress=show)
    console.print(f"wrote the benchmark to [bold]{out}[/]  (use it with --data {out})")
    _print_synth_summary(cfg)


def _print_synth_summary(cfg) -> None:
    from bebias.data.synth import split_summary

    table = Table(title=f"embedded biased-motion benchmark {cfg.version} (seed {cfg.seed}, {cfg.frames} frames, "
                        f"{cfg.size}x{cfg.size} px, camera {'on' if cfg.camera else 'off'})")
    for col in ("split", "videos", "P(family = class) target", "measured"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for r in split_summary(cfg):
        target = "-" if r["target_bias"] != r["target_bias"] else f"{r['target_bias']:.3f}"  # nan: pretrain
        table.add_row(r["split"], str(r["videos"]), target, f"{r['measured_bias']:.3f}")
    print_table(table)
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
    with progress_display() as show:
        res = calibrate(out, biases=bl, seeds=sl, base=base, progress=show)
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

        from bebias.progress import Progress

        log = FailureLog()
        with progress_display() as show:
            for i, rec in enumerate(v.records):
                try:
                    d.decoder.check(rec)  # frame by frame, none kept; an end past the video too
                except BebiasError as e:
                    log.add([(0, rec.path, str(e))])
                show(Progress("decoding", i + 1, len(v.records)))
        console.print(log.summary(), soft_wrap=True, highlight=False)
        if len(log):
            raise typer.Exit(1)
