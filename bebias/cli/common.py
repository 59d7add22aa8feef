"""What every command shares: the typer apps, the consoles, the common options and the
entry point (user errors -> one line, exit code 2); progress is drawn by :mod:`bebias.cli.progress`."""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.markup import escape

from bebias import __version__
from bebias.atomic import WRITE_ERRNOS
from bebias.errors import BebiasError

app = typer.Typer(help="bebias: does your video model recognise the action, or the place it happens in?",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Datasets and the embedded biased-motion benchmark.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


def print_table(table: Table) -> None:
    """Print ``table`` on stdout; off a terminal (a log file, a pipe) at its natural width, as
    rich would otherwise fit it to 80 columns and cut numbers to "0.…"."""
    if console.is_terminal:
        console.print(table)
        return
    wide = Measurement.get(console, console.options.update(width=10_000), table).maximum
    # print(width=) does not widen a table past the console's width; a console of that width does
    Console(file=console.file, width=max(console.width, wide), no_color=console.no_color,
            color_system=console.color_system and "standard", highlight=False).print(table)

DataOpt = Annotated[str, typer.Option("--data", help="'synthetic[:key=value,...]', a `bebias data synth` directory, "
                                                     "a CSV manifest, or a dataset root (with --dataset).")]
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="ucf101 | hmdb51 | diving48 | kinetics400 | "
                                                                     "kinetics600 | kinetics700 | ssv2 | mimetics")]
AnnotationsOpt = Annotated[Optional[str], typer.Option("--annotations", help="Folder (or file) of the dataset's "
                                                       "split / annotation files, when they are not found under "
                                                       "--data.")]
MasksOpt = Annotated[Optional[str], typer.Option("--masks", help="Folder of per-video foreground masks (.npz/.npy "
                                                 "(T,H,W), a PNG per video, or a folder of PNG frames), mirroring "
                                                 "--data's folders; preferred over motion masks.")]
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
TrustCodeOpt = Annotated[bool, typer.Option(
    "--trust-code", help="Accept a TorchScript archive: loading and running one executes the code it carries, which "
                         "bebias cannot check (as trust_remote_code). Only for archives whose author you trust; one "
                         "that defines __setstate__ is refused even then.")]

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="MODULE:FUNCTION (or FILE.py:FUNCTION): your function that builds the network the state_dict "
                    "holds (an nn.Module taking normalised (B, 3, T, H, W) clips, returning logits); the file fills "
                    "it strictly. Importing it runs your code; instead of --arch.")]


def report_run(res) -> None:
    console.print(f"wrote [bold]{res.model_path}[/] ({res.steps} steps, final loss {res.final_loss:.4f}"
                  + ")")
    if res.skipped_steps:
        console.print(f"[bold red]WARNING: {res.skipped_steps} update(s) skipped for bad steps[/] (non-finite or "
                      f"outlier gradients; listed in {res.out}/failures.json): the weights did not get every update")
    if len(res.failures):
        console.print(res.failures.summary(), soft_wrap=True, highlight=False)  # paths stay whole, copyable


def cam_lines(terms: dict | None, what: str) -> list[str]:
    """Console lines of one CAM measure (:func:`bebias.models.cam_measure.summarise`): share,
    chance, the layer's ceiling and the normalised score, each with its CI."""
    if not terms or terms["share"]["value"] is None:
        return [f"  of the {what}: undefined (no usable mask or an all-zero CAM)"]

    def f(t: dict) -> str:
        if t["value"] is None:
            return "undefined"
        ci = f" [{t['ci_low']:.3f}, {t['ci_high']:.3f}]" if t["ci_low"] is not None else ""
        return f"{t['value']:.3f}{ci}"

    return [f"  of the {what}: share {f(terms['share'])}, chance {f(terms['chance'])}, "
            f"ceiling {f(terms['ceiling'])}; normalised {f(terms['normalised'])} (0 = uniform, 1 = the ceiling) "
            f"over {terms['share']['n']} videos"]


def _version(value: bool) -> None:
    if value:
        console.print(f"bebias {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """bebias: background-bias toolkit for video models."""
    from bebias.models.device import set_threads

    set_threads()  # torch's threads: the cores free now, or BEBIAS_THREADS


#: errors of a path the user gave (a file where a folder should be, no permission)
_PATH_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM})


def main() -> None:
    """Console-script entry point: user errors -> one line on stderr, exit code 2."""
    if hasattr(signal, "SIGXFSZ"):  # over a file-size limit, write() fails with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        # standalone_mode=False: a usage error comes back to us as a ClickException, printed below
        # as one line (typer's own rendering is a multi-line panel)
        code = app(standalone_mode=False)
    except typer.TyperException as e:  # click's usage errors (exit 2) and file errors
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is already printed (typer tests the name too)
            sys.exit(e.exit_code)
        cmd = f" ({e.ctx.command_path} --help)" if getattr(e, "ctx", None) is not None else ""
        err_console.print(f"[red]error:[/] {escape(' '.join(e.format_message().split()) + cmd)}",
                          highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Abort:  # Ctrl-C at a prompt, or EOF on stdin
        err_console.print("[red]aborted[/]", highlight=False)
        sys.exit(130)
    except BebiasError as e:
        err_console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        if getattr(e, "abandoned_thread", False):  # an archive's code still runs in C++: exiting normally would
            sys.stdout.flush()                     # wait on it, or abort under it
            sys.stderr.flush()
            os._exit(BebiasError.exit_code)
        sys.exit(BebiasError.exit_code)
    except OSError as e:  # a file-system refusal that no writer wrapped: still one line, not a traceback
        if not (e.errno in WRITE_ERRNOS or (e.filename and e.errno in _PATH_ERRNOS)):
            raise
        where = f"{e.filename}: " if e.filename else ""
        err_console.print(f"[red]error:[/] {escape(where + os.strerror(e.errno))}", highlight=False, soft_wrap=True)
        sys.exit(BebiasError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
